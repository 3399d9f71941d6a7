package receiver

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"go.opentelemetry.io/otel/trace"

	"github.com/graphhook/graphhook/decrypt"
)

// This file decrypts rich batches and admits them by their work: a batch is
// taken when the decryption work already queued plus its own fits in the
// batch budget (Config.MaxDecryptWait), estimated from the measured cost of
// recent RSA operations, per key size; otherwise it is answered 503 at
// once. Items whose unwrapped key the KeyRing has cached count as no work.
// RSA is more than 99% of a rich item's cost, and its cost depends on the
// key size alone, which the dataKey's length gives away (an RSA-OAEP
// ciphertext is as long as the modulus).

// costClasses is the number of key-size classes: the decoded dataKey
// length in 128-byte (1,024-bit) steps, the last class taking every larger
// size. The classes are fixed, so hostile dataKey lengths cannot grow
// anything.
const costClasses = 9

// admission holds the decryption slots and the work estimate of one
// Receiver.
type admission struct {
	slots  int64
	cpu    *semaphore.Weighted // one slot per core, granted in arrival order
	queued atomic.Int64        // estimated core-nanoseconds admitted and not yet done
	cost   [costClasses]atomic.Int64
}

func newAdmission(slots int) *admission {
	return &admission{slots: int64(slots), cpu: semaphore.NewWeighted(int64(slots))}
}

// costClass returns the key-size class of ec.
func costClass(ec *decrypt.EncryptedContent) int {
	n := len(ec.DataKey) * 3 / 4 // decoded length, near enough
	return min((n+64)/128, costClasses-1)
}

// estimate returns the expected core-nanoseconds of one item of class c:
// an exponentially weighted moving average of the measured unwrap and
// decryption times, or, before the first measurement, a cautious prior of
// 2 ms for RSA-2048 (pure Go takes about 0.75 ms), scaled by the cube of
// the key size as RSA's private-key operation is.
func (a *admission) estimate(c int) int64 {
	if ns := a.cost[c].Load(); ns > 0 {
		return ns
	}
	bits := int64(max(c, 1)) * 1024
	return max(int64(2*time.Millisecond)*bits*bits*bits/(2048*2048*2048), int64(50*time.Microsecond))
}

// observe records that an item of class c took d. Only successful
// decryptions are recorded: a hostile dataKey can fail fast, and must not
// make the estimate optimistic.
func (a *admission) observe(c int, d time.Duration) {
	ns := max(int64(d), 1)
	old := a.cost[c].Load()
	if old > 0 {
		ns = old + (ns-old)/8
	}
	a.cost[c].Store(ns) // concurrent updates may lose one sample: harmless
}

// admit reserves est core-nanoseconds of work and reports whether it fits,
// with the work already queued, in budget on a.slots cores. An idle
// receiver admits any batch: the batch deadline then bounds it.
func (a *admission) admit(est int64, budget time.Duration) bool {
	for {
		q := a.queued.Load()
		if q > 0 && (q+est)/a.slots > int64(budget) {
			return false
		}
		if a.queued.CompareAndSwap(q, q+est) {
			return true
		}
	}
}

// decryptAll decrypts the rich candidates and returns the candidates that
// remain, in their original order, and the rejected ones. An item
// encrypted for a certificate we do not hold is quarantined like any
// undecryptable item (and stays replayable once its key is added); an
// operator warning names the certificate.
func (r *Receiver) decryptAll(ctx context.Context, candidates []*Notification) (kept []*Notification, rejected []*Rejected, err error) {
	var rich []int
	for i, n := range candidates {
		if n.IsRich() {
			rich = append(rich, i)
		}
	}
	if len(rich) == 0 {
		return candidates, nil, nil
	}
	ctx, span := r.tracer.start(ctx, spanDecrypt, trace.SpanKindInternal)
	defer func() { endStep(span, len(rejected), err) }()
	if span.IsRecording() {
		span.SetAttributes(attrItems.Int(len(rich)))
	}
	errs := make([]error, len(candidates))
	if r.cfg.Keys == nil {
		for _, i := range rich {
			errs[i] = ErrNoKeys
		}
	} else {
		if len(rich) > MaxDecryptsPerRequest {
			for _, i := range rich[MaxDecryptsPerRequest:] {
				errs[i] = fmt.Errorf("%w: more than %d rich items in one request, not decrypted", ErrTooManyItems, MaxDecryptsPerRequest)
			}
			rich = rich[:MaxDecryptsPerRequest]
		}
		if err := r.decryptItems(ctx, span, candidates, rich, errs); err != nil {
			return nil, nil, err
		}
	}
	for i, err := range errs {
		if errors.Is(err, decrypt.ErrUnknownKey) {
			ec := candidates[i].EncryptedContent
			r.log.WarnContext(ctx, "rich notification encrypted for a certificate this receiver does not hold: add its key, then replay the quarantined items",
				"encryption_certificate_id", logText(ec.EncryptionCertificateID, maxLogValueLen),
				"encryption_certificate_thumbprint", logText(ec.EncryptionCertificateThumbprint, maxLogValueLen))
			break
		}
	}
	kept = make([]*Notification, 0, len(candidates))
	for i, n := range candidates {
		if errs[i] != nil {
			rejected = append(rejected, reject(n, ReasonDecrypt, errs[i]))
			continue
		}
		kept = append(kept, n)
	}
	return kept, rejected, nil
}

// decryptItems decrypts candidates[i] for every i in idx, setting Content
// or errs[i]. Items whose symmetric key the ring has cached (Graph
// redelivering a batch) cost no RSA operation, only microseconds, and are
// decrypted at once, as basic items are handled, without admission or a
// slot. The others are admitted as work first (see admission), then up to
// one worker per core decrypts them, each holding a core slot taken in
// arrival order while items remain, and they stop between items once
// ctx is done: the batch is then answered 503, as it is when it is not
// admitted.
func (r *Receiver) decryptItems(ctx context.Context, span trace.Span, candidates []*Notification, idx []int, errs []error) error {
	a := r.work
	var uncached []int
	for _, i := range idx {
		n := candidates[i]
		if !r.cfg.Keys.Cached(n.EncryptedContent) {
			uncached = append(uncached, i)
			continue
		}
		if ctx.Err() != nil {
			break
		}
		errs[i] = r.decryptOne(n, costClass(n.EncryptedContent))
	}
	if span.IsRecording() {
		span.SetAttributes(attrCached.Int(len(idx) - len(uncached)))
	}
	if err := ctx.Err(); err != nil {
		return &Error{Op: "decrypt", kind: kindUnavailable, Err: fmt.Errorf("%w: decryption did not finish within the batch's time: %w", ErrUnavailable, err)}
	}
	if len(uncached) == 0 {
		return nil
	}
	idx = uncached
	classes := make([]int, len(idx))
	costs := make([]int64, len(idx))
	var total int64
	for k, i := range idx {
		classes[k] = costClass(candidates[i].EncryptedContent)
		costs[k] = a.estimate(classes[k])
		total += costs[k]
	}
	budget := r.cfg.MaxDecryptWait
	if dl, ok := ctx.Deadline(); ok {
		budget = min(budget, time.Until(dl))
	}
	admitted := a.admit(total, budget)
	if span.IsRecording() {
		span.SetAttributes(attrAdmitted.Bool(admitted))
	}
	if !admitted {
		return &Error{Op: "decrypt", kind: kindUnavailable, Err: fmt.Errorf("%w: the decryption work queued does not fit in the %v budget", ErrUnavailable, budget.Round(time.Millisecond))}
	}
	var pending atomic.Int64 // this batch's share of a.queued
	pending.Store(total)
	defer func() { a.queued.Add(-pending.Load()) }()

	// Each worker takes one core slot, in arrival order, and keeps it while
	// this batch has items left. A batch therefore never waits for a
	// second slot it may not need, and its last item leaves the other
	// slot to the next batch at once instead of idle.
	workers := min(int(a.slots), len(idx))
	wait, stopWaiting := context.WithTimeout(ctx, budget)
	defer stopWaiting()
	var next, started atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			if a.cpu.Acquire(wait, 1) != nil {
				return // the batch's items were taken by the other workers, or the budget ran out
			}
			defer a.cpu.Release(1)
			started.Add(1)
			for ctx.Err() == nil {
				k := int(next.Add(1)) - 1
				if k >= len(idx) {
					stopWaiting() // no work left for a worker still waiting for a slot
					return
				}
				i := idx[k]
				errs[i] = r.decryptOne(candidates[i], classes[k])
				a.queued.Add(-costs[k])
				pending.Add(-costs[k])
			}
		})
	}
	wg.Wait()
	if started.Load() == 0 && ctx.Err() == nil {
		return &Error{Op: "decrypt", kind: kindUnavailable, Err: fmt.Errorf("%w: no CPU for decryption within %v", ErrUnavailable, budget.Round(time.Millisecond))}
	}
	if err := ctx.Err(); err != nil {
		return &Error{Op: "decrypt", kind: kindUnavailable, Err: fmt.Errorf("%w: decryption did not finish within the batch's time: %w", ErrUnavailable, err)}
	}
	return nil
}

// decryptOne decrypts n, an item of cost class c, and sets its Content.
// The time it took teaches the estimate of class c only when the item was
// decrypted and it cost RSA operations: a cache hit takes microseconds and
// a hostile dataKey can fail fast, and neither must make the estimate
// optimistic.
func (r *Receiver) decryptOne(n *Notification, c int) error {
	start := time.Now()
	pt, ops, err := r.cfg.Keys.DecryptCounted(n.EncryptedContent)
	if err != nil {
		return err
	}
	if ops > 0 {
		r.work.observe(c, time.Since(start)/time.Duration(ops))
	}
	n.Content = pt
	return nil
}
