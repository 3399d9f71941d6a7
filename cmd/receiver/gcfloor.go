package main

import (
	"os"
	"runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"sync"
)

// heapFloorBytes is the heap the daemon lets grow before the garbage
// collector runs, however little of it is live. Go's default (GOGC=100)
// collects whenever the heap doubles, at 4 MiB at the least: a receiver
// whose live heap is a few MiB (handshakes, small batches) then collects
// a hundred times a second, and each cycle scans the goroutine stacks and
// globals of the embedded NATS server too, so garbage collection was the
// largest cost separating the daemon's handshake from a bare net/http
// server's (README, Performance). Past heapFloorBytes/2 of live heap the
// floor no longer matters and GOGC's own rule applies.
const heapFloorBytes = 32 << 20

// runtimeHeapMinimum is the Go runtime's least heap goal at GOGC=100; it
// scales with GOGC.
const runtimeHeapMinimum = 4 << 20

// heapFloor raises GOGC after each collection so that the next one comes
// at floor bytes of heap at the least.
type heapFloor struct {
	floor   uint64
	base    int // GOGC percent when started
	pct     int // GOGC percent last set
	samples []rtmetrics.Sample

	mu      sync.Mutex // orders tune after stop
	stopped bool
}

// startHeapFloor keeps the heap goal at floor bytes or more until stop is
// called, which restores GOGC. It does nothing when the GOGC environment
// variable is set: then the operator decides. A GOMEMLIMIT still applies
// on top of the floor.
func startHeapFloor(floor uint64) (stop func()) {
	if _, set := os.LookupEnv("GOGC"); set || floor == 0 {
		return func() {}
	}
	h := &heapFloor{floor: floor, samples: []rtmetrics.Sample{
		{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}, {Name: "/gc/gogc:percent"},
	}}
	rtmetrics.Read(h.samples)
	h.base = int(h.samples[3].Value.Uint64())
	if h.base <= 0 { // collection is off: nothing to raise
		return func() {}
	}
	h.pct = h.base
	h.samples = h.samples[:3] // no collection has run yet: nothing to tune before the first
	h.arm()
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if !h.stopped {
			h.stopped = true
			debug.SetGCPercent(h.base)
		}
	}
}

// sentinel is an object allocated only to become garbage: its cleanup
// runs after the collection that found it unreachable. It holds a
// pointer so that it is not batched with other tiny objects.
type sentinel struct{ _ *byte }

// arm has h.tune run after the next collection.
func (h *heapFloor) arm() {
	runtime.AddCleanup(new(sentinel), func(h *heapFloor) {
		if h.tune() {
			h.arm()
		}
	}, h)
}

// tune sets GOGC so that the next collection comes at floor bytes of heap
// or at GOGC's own goal, whichever is larger. It reports false once h is
// stopped.
func (h *heapFloor) tune() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return false
	}
	rtmetrics.Read(h.samples)
	pct := gcPercentFor(h.floor, h.samples[0].Value.Uint64(), h.samples[1].Value.Uint64()+h.samples[2].Value.Uint64(), h.base)
	// Set it when it moved by more than a twentieth (not on every cycle),
	// or back to base.
	if pct != h.pct && (pct == h.base || max(pct-h.pct, h.pct-pct)*20 > h.pct) {
		debug.SetGCPercent(pct)
		h.pct = pct
	}
	return true
}

// gcPercentFor returns the GOGC percent at which the runtime's heap goal,
// after a collection that found live bytes of heap and roots bytes of
// stacks and globals, is floor, or base when base already gives more.
// The runtime's goal is live + (live + roots) * GOGC/100, and at least
// 4 MiB * GOGC/100.
func gcPercentFor(floor, live, roots uint64, base int) int {
	scanned := live + roots
	if live == 0 || live+scanned*uint64(base)/100 >= floor || floor*100/runtimeHeapMinimum <= uint64(base) {
		return base
	}
	return int(min((floor-live)*100/scanned, floor*100/runtimeHeapMinimum))
}
