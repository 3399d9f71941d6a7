package receiver

import "sync/atomic"

// Stats counts what a Receiver did since it was created. Every counter only
// grows.
type Stats struct {
	Handshakes  uint64            // validation handshakes answered 200
	Batches     uint64            // notification requests answered 202
	Accepted    uint64            // notifications delivered to the Sink as accepted
	Rejected    map[Reason]uint64 // items delivered as rejected, by reason
	Invalid     uint64            // requests answered 4xx
	Unavailable uint64            // requests answered 503
}

const numReasons = 5

// reasons lists every Reason; Reason.index is its position.
func reasons() [numReasons]Reason {
	return [numReasons]Reason{ReasonMalformed, ReasonClientState, ReasonTokenInvalid, ReasonTokenMissing, ReasonDecrypt}
}

func (r Reason) index() int {
	switch r {
	case ReasonMalformed:
		return 0
	case ReasonClientState:
		return 1
	case ReasonTokenInvalid:
		return 2
	case ReasonTokenMissing:
		return 3
	}
	return 4
}

type counters struct {
	handshakes, batches, accepted, invalid, unavailable atomic.Uint64
	rejected                                            [numReasons]atomic.Uint64
}

func (c *counters) reject(r Reason) { c.rejected[r.index()].Add(1) }

// Stats returns a snapshot of r's counters.
func (r *Receiver) Stats() Stats {
	c := &r.stats
	st := Stats{
		Handshakes:  c.handshakes.Load(),
		Batches:     c.batches.Load(),
		Accepted:    c.accepted.Load(),
		Invalid:     c.invalid.Load(),
		Unavailable: c.unavailable.Load(),
		Rejected:    make(map[Reason]uint64, numReasons),
	}
	for i, reason := range reasons() {
		st.Rejected[reason] = c.rejected[i].Load()
	}
	return st
}
