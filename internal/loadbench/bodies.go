package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/graphhook/graphhook/decrypt"
	"github.com/graphhook/graphhook/graphsim"
)

// idPlaceholder is the notification id every generated item carries until
// a request is sent: "lb-" and 16 hex digits that [bodySet.take] overwrites
// with a counter, so no two requests of a run carry the same
// (subscriptionId, id) pair and nothing is deduplicated by the stream.
const (
	idPrefix      = "lb-"
	idDigits      = 16
	idPlaceholder = idPrefix + "0000000000000000"
)

// richPoolSize is how many distinct encrypted items a rich scenario cycles
// through: twice the receiver's cache of unwrapped keys, so that when a
// body comes round again its keys were evicted long ago (the cache is
// first-in, first-out) and every item costs an RSA operation, as fresh
// notifications from Graph do.
const richPoolSize = 2 * decrypt.UnwrapCacheSize

// basicTemplates is how many distinct basic bodies a scenario cycles
// through (their resource ids differ; the notification ids differ anyway).
const basicTemplates = 64

// bodySet is a pre-generated set of notification bodies. take hands out
// copies with fresh notification ids; it costs a copy and a few dozen byte
// writes per item, no crypto and no JSON encoding.
type bodySet struct {
	batch  int      // items per body
	bodies [][]byte // templates, cycled in order
	slots  [][]int  // per template: offsets of the id digits
	next   atomic.Uint64
}

// newBodySet finds the id slots in bodies, each of which must hold batch
// placeholders.
func newBodySet(batch int, bodies [][]byte) (*bodySet, error) {
	s := &bodySet{batch: batch, bodies: bodies, slots: make([][]int, len(bodies))}
	for i, b := range bodies {
		slots, err := idSlots(b)
		if err != nil {
			return nil, err
		}
		if len(slots) != batch {
			return nil, fmt.Errorf("loadbench: body %d has %d id slots, want %d", i, len(slots), batch)
		}
		s.slots[i] = slots
	}
	return s, nil
}

// idSlots returns the offsets of the digits of every `"id":"lb-0…0"` in body.
func idSlots(body []byte) ([]int, error) {
	marker := []byte(`"id":"` + idPlaceholder + `"`)
	var slots []int
	for off := 0; ; {
		i := bytes.Index(body[off:], marker)
		if i < 0 {
			break
		}
		slots = append(slots, off+i+len(`"id":"`+idPrefix))
		off += i + len(marker)
	}
	if len(slots) == 0 {
		return nil, errors.New("loadbench: body has no id placeholder")
	}
	return slots, nil
}

// take returns the next body with the ids of request number n: item j gets
// the id n*batch+j in hex. The caller owns the returned slice.
func (s *bodySet) take() []byte { return s.appendNext(nil) }

// appendNext appends the next body, with fresh ids as take does, to dst.
func (s *bodySet) appendNext(dst []byte) []byte {
	n := s.next.Add(1) - 1
	k := n % uint64(len(s.bodies))
	start := len(dst)
	dst = append(dst, s.bodies[k]...)
	b := dst[start:]
	for j, off := range s.slots[k] {
		putHex(b[off:off+idDigits], n*uint64(s.batch)+uint64(j))
	}
	return dst
}

// putHex writes v as len(dst) lower-case hex digits, zero-padded.
func putHex(dst []byte, v uint64) {
	const digits = "0123456789abcdef"
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = digits[v&15]
		v >>= 4
	}
}

// payload holds what the generated notifications have in common.
type payload struct {
	ClientState    string
	SubscriptionID string
	AppID          string // aud of the validationTokens
}

// basicBodies returns a set of change notification bodies without resource
// data, batch items each.
func basicBodies(p payload, batch int) (*bodySet, error) {
	bodies := make([][]byte, basicTemplates)
	for i := range bodies {
		items := make([]graphsim.Notification, batch)
		for j := range items {
			n := graphsim.BasicNotification(graphsim.Item{SubscriptionID: p.SubscriptionID, ClientState: p.ClientState})
			n.ID = idPlaceholder
			items[j] = n
		}
		b, err := graphsim.Marshal(items...)
		if err != nil {
			return nil, err
		}
		bodies[i] = b
	}
	return newBodySet(batch, bodies)
}

// richPool encrypts n distinct rich notifications for key, spread over
// every core, calling progress now and then. It runs before any
// measurement: the load client must not spend CPU on RSA while measuring.
func richPool(ctx context.Context, p payload, key decrypt.Key, certID string, n int, progress func(done int)) ([]graphsim.Notification, error) {
	pool := make([]graphsim.Notification, n)
	var (
		next, done atomic.Int64
		wg         sync.WaitGroup
		errOnce    sync.Once
		firstErr   error
	)
	workers := runtime.GOMAXPROCS(0)
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				it, _, err := graphsim.RichNotification(graphsim.Item{SubscriptionID: p.SubscriptionID, ClientState: p.ClientState}, key.Certificate, certID)
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				it.ID = idPlaceholder
				pool[i] = it
				done.Add(1)
			}
		})
	}
	stop := make(chan struct{})
	ticked := make(chan struct{})
	go func() {
		defer close(ticked)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				progress(int(done.Load()))
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-ticked
	if firstErr != nil {
		return nil, fmt.Errorf("loadbench: encrypt rich notification: %w", firstErr)
	}
	return pool, ctx.Err()
}

// richBodies groups pool into bodies of batch items, each with the
// validationToken sim signs for p.AppID. The token is signed once (the
// simulator caches it); the bodies cycle through the whole pool.
func richBodies(sim *graphsim.Sim, p payload, pool []graphsim.Notification, batch int) (*bodySet, error) {
	if len(pool) < batch {
		return nil, fmt.Errorf("loadbench: pool of %d items for batch %d", len(pool), batch)
	}
	bodies := make([][]byte, len(pool)/batch)
	for i := range bodies {
		b, err := sim.Batch(p.AppID, pool[i*batch:(i+1)*batch]...)
		if err != nil {
			return nil, err
		}
		bodies[i] = b
	}
	return newBodySet(batch, bodies)
}
