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

type counters struct {
	handshakes, batches, accepted, invalid, unavailable         atomic.Uint64
	malformed, clientState, tokenInvalid, tokenMissing, decrypt atomic.Uint64
}

func (c *counters) reject(r Reason) {
	switch r {
	case ReasonMalformed:
		c.malformed.Add(1)
	case ReasonClientState:
		c.clientState.Add(1)
	case ReasonTokenInvalid:
		c.tokenInvalid.Add(1)
	case ReasonTokenMissing:
		c.tokenMissing.Add(1)
	case ReasonDecrypt:
		c.decrypt.Add(1)
	}
}

// Stats returns a snapshot of r's counters.
func (r *Receiver) Stats() Stats {
	c := &r.stats
	return Stats{
		Handshakes:  c.handshakes.Load(),
		Batches:     c.batches.Load(),
		Accepted:    c.accepted.Load(),
		Invalid:     c.invalid.Load(),
		Unavailable: c.unavailable.Load(),
		Rejected: map[Reason]uint64{
			ReasonMalformed:    c.malformed.Load(),
			ReasonClientState:  c.clientState.Load(),
			ReasonTokenInvalid: c.tokenInvalid.Load(),
			ReasonTokenMissing: c.tokenMissing.Load(),
			ReasonDecrypt:      c.decrypt.Load(),
		},
	}
}
