package graphsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// stateVersion is the format of Config.StateFile.
const stateVersion = 1

// savedState is the content of Config.StateFile.
type savedState struct {
	Version       int                 `json:"version"`
	Saved         time.Time           `json:"saved"`
	Offset        time.Duration       `json:"clockOffset"`
	Subscriptions []savedSubscription `json:"subscriptions"`
}

type savedSubscription struct {
	Subscription  Subscription `json:"subscription"`
	TenantID      string       `json:"tenantId"`
	AuthExpires   time.Time    `json:"authExpires"`
	AuthStart     time.Time    `json:"authStart"`
	LastChallenge time.Time    `json:"lastChallenge,omitzero"`
	RevokedAt     time.Time    `json:"revokedAt,omitzero"`
}

// UnmarshalJSON reads a Subscription as [Subscription.MarshalJSON] writes
// it (null for unset strings).
func (s *Subscription) UnmarshalJSON(b []byte) error {
	type plain Subscription
	var raw struct {
		plain
		ExpirationDateTime string `json:"expirationDateTime"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*s = Subscription(raw.plain)
	if raw.ExpirationDateTime != "" {
		t, err := time.Parse(time.RFC3339Nano, raw.ExpirationDateTime)
		if err != nil {
			return err
		}
		s.ExpirationDateTime = t
	}
	return nil
}

// saveLocked writes the subscriptions to Config.StateFile (if set),
// atomically, mode 0600: the file holds clientStates. Errors are logged:
// the simulator keeps running in memory.
func (s *Sim) saveLocked() {
	if s.cfg.StateFile == "" {
		return
	}
	st := savedState{Version: stateVersion, Saved: time.Now().UTC(), Offset: s.offset}
	for _, sub := range s.subs {
		st.Subscriptions = append(st.Subscriptions, savedSubscription{
			Subscription: sub.pub, TenantID: sub.tenantID, AuthExpires: sub.authExpires, AuthStart: sub.authStart,
			LastChallenge: sub.lastChallenge, RevokedAt: sub.revokedAt,
		})
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err == nil {
		tmp := s.cfg.StateFile + ".tmp"
		if err = os.WriteFile(tmp, b, 0o600); err == nil {
			err = os.Rename(tmp, s.cfg.StateFile)
		}
	}
	if err != nil {
		s.log.Error("state file not written; subscriptions are kept in memory only", "file", filepath.Base(s.cfg.StateFile), "error", err)
	}
}

// loadState reads Config.StateFile into s (a missing file is an empty
// state).
func (s *Sim) loadState() error {
	if s.cfg.StateFile == "" {
		return nil
	}
	b, err := os.ReadFile(s.cfg.StateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("graphsim: read state file: %w", err)
	}
	var st savedState
	if err := json.Unmarshal(b, &st); err != nil || st.Version != stateVersion {
		return fmt.Errorf("graphsim: state file %s is not a graphsim state (version %d); move it away to start empty", filepath.Base(s.cfg.StateFile), stateVersion)
	}
	s.offset = st.Offset
	for _, ss := range st.Subscriptions {
		pub := ss.Subscription
		kind := classify(pub.Resource)
		types, err := parseChangeTypes(pub.ChangeType, kind)
		if err != nil {
			return fmt.Errorf("graphsim: state file: subscription %s: %w", pub.ID, err)
		}
		sub := &subscription{pub: pub, kind: kind, changeTypes: types, norm: normalizeResource(pub.Resource),
			tenantID: ss.TenantID, authExpires: ss.AuthExpires, authStart: ss.AuthStart,
			lastChallenge: ss.LastChallenge, revokedAt: ss.RevokedAt, rich: pub.IncludeResourceData}
		if pub.EncryptionCertificate != "" {
			if sub.cert, err = parseCertificate(pub.EncryptionCertificate); err != nil {
				return fmt.Errorf("graphsim: state file: subscription %s: %w", pub.ID, err)
			}
		}
		s.subs[pub.ID] = sub
	}
	return nil
}

// Persistent reports whether subscriptions survive a restart
// (Config.StateFile is set).
func (s *Sim) Persistent() bool { return s.cfg.StateFile != "" }
