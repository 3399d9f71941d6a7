package graphsim

import (
	"context"
	"fmt"
	"time"
)

// now is the simulated clock: Config.Now plus every [Sim.Advance].
func (s *Sim) now() time.Time {
	s.mu.Lock()
	off := s.offset
	s.mu.Unlock()
	return s.cfg.Now().Add(off)
}

// nowLocked is now with s.mu held.
func (s *Sim) nowLocked() time.Time { return s.cfg.Now().Add(s.offset) }

// Now returns the simulated time: Config.Now moved forward by every
// [Sim.Advance]. Subscriptions, access tokens, throttling windows and the
// lifecycle schedule run on it.
func (s *Sim) Now() time.Time { return s.now() }

// MaxAdvance bounds one [Sim.Advance] (and POST /_sim/advance).
const MaxAdvance = 400 * 24 * time.Hour

// Advance moves the simulated clock forward by d and lets everything that
// falls due on the way happen in order, as it would have in a tenant:
// the clock stops at each subscription's expiration (removed, with
// subscriptionRemoved where the resource supports it), at each point of
// the reauthorizationRequired schedule (protocol doc §7) and at the
// removal of subscriptions whose consent was revoked, and sweeps there.
// Lifecycle deliveries are queued as they fall due; [Sim.Wait] waits for
// them. Delivery retries waiting for their backoff wake when the simulated
// clock reaches it, and are discarded once Graph's 4-hour window has
// passed (§3). Access tokens issued before expire on the simulated clock, so a
// client needs a new token after advancing past its lifetime (clients
// that cache tokens on the wall clock, such as azidentity, must be
// recreated; see the README).
func (s *Sim) Advance(ctx context.Context, d time.Duration) error {
	if d < 0 || d > MaxAdvance {
		return badRequest(ErrBadRequest, "advance must be between 0 and %s.", MaxAdvance)
	}
	s.mu.Lock()
	target := s.nowLocked().Add(d)
	s.mu.Unlock()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return errClosed()
		}
		now := s.nowLocked()
		next := s.nextEventLocked(now)
		if next.IsZero() || next.After(target) {
			next = target
		}
		if next.After(now) {
			s.offset += next.Sub(now)
			close(s.moved) // wake deliveries waiting on the simulated clock
			s.moved = make(chan struct{})
		}
		s.mu.Unlock()
		if err := s.Sweep(ctx); err != nil {
			return err
		}
		if !next.Before(target) {
			s.mu.Lock()
			s.saveLocked() // the clock offset survives a restart too
			s.mu.Unlock()
			s.log.Info("clock advanced", "by", d, "now", FormatDateTime(target))
			return nil
		}
	}
}

// nextEventLocked returns the earliest time after now at which a sweep
// has something to do, or zero.
func (s *Sim) nextEventLocked(now time.Time) time.Time {
	var next time.Time
	consider := func(t time.Time) {
		if t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, sub := range s.subs {
		consider(sub.pub.ExpirationDateTime)
		if !sub.revokedAt.IsZero() {
			consider(sub.revokedAt.Add(s.cfg.RevokedRemoveAfter))
		}
		if sub.pub.LifecycleNotificationURL == "" {
			continue
		}
		last := sub.lastChallenge
		if last.Before(now) {
			last = now
		}
		for _, p := range challengePoints(sub.scheduleEnd(), sub.authStart) {
			if p.After(last) {
				consider(p)
				break
			}
		}
	}
	return next
}

// challengePoints is the reauthorizationRequired schedule of the protocol
// doc §7 for an authorization (or subscription) ending at end, granted at
// start. The doc's pseudo-code starts from t = (end − now)/4; while
// 60 < t ≤ 180 minutes it challenges and halves t, which puts challenges
// 12 h and 6 h before the end (t = 180 and 90 min); while 0 ≤ t < 60 min
// it challenges every 15 minutes, from 3 h before the end (t = 45 min)
// until the end. A challenge needs the authorization to have existed for
// 15 minutes, so a fresh one-hour token is first challenged 45 minutes
// before it expires.
func challengePoints(end, start time.Time) []time.Time {
	var pts []time.Time
	for _, r := range []time.Duration{12 * time.Hour, 6 * time.Hour} {
		if p := end.Add(-r); p.After(start) {
			pts = append(pts, p)
		}
	}
	for r := 3 * time.Hour; r >= 15*time.Minute; r -= 15 * time.Minute {
		if p := end.Add(-r); !p.Before(start.Add(15 * time.Minute)) {
			pts = append(pts, p)
		}
	}
	return pts
}

// challengeDueAt reports whether sub is due a reauthorizationRequired at
// now: a point of its schedule lies after its last challenge (or its
// authorization) and at or before now.
func (sub *subscription) challengeDueAt(now time.Time) bool {
	last := sub.lastChallenge
	if last.Before(sub.authStart) {
		last = sub.authStart
	}
	for _, p := range challengePoints(sub.scheduleEnd(), sub.authStart) {
		if p.After(last) && !p.After(now) {
			return true
		}
	}
	return false
}

// scheduleEnd is the end the schedule counts down to: the authorization's
// expiry or the subscription's, whichever comes first (§7: challenges come
// when the token or the subscription is about to expire).
func (sub *subscription) scheduleEnd() time.Time {
	if sub.pub.ExpirationDateTime.Before(sub.authExpires) {
		return sub.pub.ExpirationDateTime
	}
	return sub.authExpires
}

// parseAdvance reads the "by" of POST /_sim/advance: a Go duration
// ("36h", "90m") or a number of days followed by d ("30d").
func parseAdvance(v string) (time.Duration, error) {
	if n, ok := cutSuffix(v, "d"); ok {
		var days float64
		if _, err := fmt.Sscanf(n, "%g", &days); err != nil {
			return 0, err
		}
		return time.Duration(days * float64(24*time.Hour)), nil
	}
	return time.ParseDuration(v)
}

func cutSuffix(s, suffix string) (string, bool) {
	if len(s) > len(suffix) && s[len(s)-len(suffix):] == suffix {
		return s[:len(s)-len(suffix)], true
	}
	return s, false
}
