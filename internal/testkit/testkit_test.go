package testkit

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestCheckForReturnsOnceTheConditionHolds(t *testing.T) {
	calls := 0
	CheckFor(t, time.Second, func() error {
		calls++
		if calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if calls != 3 {
		t.Fatalf("calls = %d, want 3", calls)
	}
}

func TestSyncBufferKeepsEveryConcurrentWrite(t *testing.T) {
	var b SyncBuffer
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() { fmt.Fprintf(&b, "%02d\n", i) })
	}
	wg.Wait()
	if got := len(b.String()); got != 150 {
		t.Fatalf("len = %d, want 150", got)
	}
}
