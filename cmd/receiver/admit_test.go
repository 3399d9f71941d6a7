package main

import "testing"

// TestBodyBudgetKeepsAReserveForSmallBodies: a quarter of the budget, or
// less when the largest body would not fit in the rest, is for bodies up
// to smallBodyBytes only.
func TestBodyBudgetKeepsAReserveForSmallBodies(t *testing.T) {
	const mib = 1 << 20
	for _, tt := range []struct {
		name           string
		limit, maxBody int64
		wantReserve    int64
	}{
		{"defaults", 32 * mib, 4 * mib, 8 * mib},
		{"largest body needs more than three quarters", 8 * mib, 7 * mib, mib},
		{"budget equals the largest body", 4 * mib, 4 * mib, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := newBodyBudget(tt.limit, tt.maxBody)
			if b.reserve != tt.wantReserve {
				t.Fatalf("reserve = %d, want %d", b.reserve, tt.wantReserve)
			}
			if !b.take(tt.maxBody) {
				t.Fatal("the largest body is refused by an idle budget")
			}
			b.release(tt.maxBody)
			// Fill the large share, then small bodies get the reserve.
			large := tt.limit - tt.wantReserve
			for large > 0 {
				n := min(large, tt.maxBody)
				if n <= smallBodyBytes {
					break
				}
				if !b.take(n) {
					t.Fatalf("a large body of %d refused with %d of the large share left", n, large)
				}
				large -= n
			}
			if large == 0 && b.take(smallBodyBytes+1) {
				t.Error("a large body was taken beyond the large share")
			}
			if tt.wantReserve >= smallBodyBytes && !b.take(smallBodyBytes) {
				t.Error("a small body was refused while the reserve is free")
			}
		})
	}
}
