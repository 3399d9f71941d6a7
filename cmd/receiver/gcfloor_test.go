package main

import (
	"os"
	"runtime"
	rtmetrics "runtime/metrics"
	"testing"
	"time"
)

func TestGCPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		name               string
		floor, live, roots uint64
		base, want         int
	}{
		{"nothing collected yet", 32 * mib, 0, 0, 100, 100},
		// 2 MiB live, 1 MiB of roots: 2 + 3*p = 32 gives p = 10, but the
		// runtime's 4 MiB minimum times p reaches 32 MiB at p = 8 already.
		{"small heap: the runtime's minimum sets it", 32 * mib, 2 * mib, 1 * mib, 100, 800},
		// 8 MiB live, 4 MiB of roots: 8 + 12*p = 32 gives p = 2.
		{"roots count", 32 * mib, 8 * mib, 4 * mib, 100, 200},
		{"GOGC's own goal reaches the floor", 32 * mib, 16 * mib, 0, 100, 100},
		{"large heap", 32 * mib, 100 * mib, 2 * mib, 100, 100},
		{"floor under the runtime's minimum", 2 * mib, 1 * mib, 0, 100, 100},
		{"a higher base is kept", 32 * mib, 12 * mib, 0, 200, 200},
	} {
		if got := gcPercentFor(c.floor, c.live, c.roots, c.base); got != c.want {
			t.Errorf("%s: gcPercentFor(%d MiB, %d MiB, %d MiB, %d) = %d, want %d", c.name, c.floor/mib, c.live/mib, c.roots/mib, c.base, got, c.want)
		}
	}
}

// gcStats reads the runtime's GOGC percent and heap goal.
func gcStats() (pct int, goal uint64) {
	s := []rtmetrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/heap/goal:bytes"}}
	rtmetrics.Read(s)
	return int(s[0].Value.Uint64()), s[1].Value.Uint64()
}

// collectUntil runs collections until ok holds (the floor tunes after
// each one, on the cleanup goroutine) or 5 s pass.
func collectUntil(t *testing.T, what string, ok func(pct int, goal uint64) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		runtime.GC()
		pct, goal := gcStats()
		if ok(pct, goal) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: GOGC %d%%, heap goal %d MiB after 5 s of collections", what, pct, goal>>20)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestHeapFloor runs the floor on this test process's runtime: a small
// heap gets a goal at the floor, a heap past half of it gets GOGC's own
// rule back, and stop restores GOGC. It is not parallel: it changes the
// process's collector and measures the heap.
func TestHeapFloor(t *testing.T) {
	if _, set := os.LookupEnv("GOGC"); set {
		t.Skip("GOGC is set: the floor leaves the collector to it (TestHeapFloorLeavesGOGCToTheOperator)")
	}
	const floor = 256 << 20
	base, _ := gcStats()
	stop := startHeapFloor(floor)
	defer stop()

	collectUntil(t, "small heap", func(pct int, goal uint64) bool {
		return pct > base && goal >= floor-floor/20 && goal <= floor+floor/20
	})

	// 192 MiB live, pointers included: live + (live+roots) > floor.
	live := make([][]*int, 192)
	for i := range live {
		live[i] = make([]*int, (1<<20)/8)
	}
	collectUntil(t, "large heap", func(pct int, goal uint64) bool {
		return pct == base && goal >= 2*192<<20
	})
	runtime.KeepAlive(live)
	live = nil

	collectUntil(t, "small heap again", func(pct int, _ uint64) bool { return pct > base })
	stop()
	runtime.GC()
	time.Sleep(50 * time.Millisecond)
	runtime.GC()
	if pct, _ := gcStats(); pct != base {
		t.Fatalf("after stop GOGC is %d%%, want %d%% as before", pct, base)
	}
}

func TestHeapFloorLeavesGOGCToTheOperator(t *testing.T) {
	t.Setenv("GOGC", "100")
	base, _ := gcStats()
	stop := startHeapFloor(256 << 20)
	defer stop()
	for range 3 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if pct, goal := gcStats(); pct != base || goal >= 256<<20 {
		t.Fatalf("with GOGC set the floor changed the collector: GOGC %d%%, goal %d MiB", pct, goal>>20)
	}
}
