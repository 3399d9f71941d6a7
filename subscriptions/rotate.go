package subscriptions

import (
	"context"
	"slices"

	"github.com/graphhook/graphhook/decrypt"
)

// RotateKey makes k the encryption key of rich subscriptions. Add k to the
// receiver's key ring first, keeping the old key. The lease holder then
// PATCHes every rich subscription's encryptionCertificate and
// encryptionCertificateId to k (now if this replica holds the lease, else
// on the holder's next pass: rotate on every replica). The old key is
// reported by [Manager.Retirable] once no subscription uses it and no
// notification encrypted for it has arrived for Config.RetireAfter.
func (m *Manager) RotateKey(ctx context.Context, k decrypt.Key) error {
	if k.Certificate == nil || k.Private == nil {
		return &ConfigError{Field: "Key", Err: ErrRequired}
	}
	m.mu.Lock()
	now := m.now()
	if m.key != nil && keyID(*m.key) != keyID(k) {
		m.retiring[keyID(*m.key)] = now
	}
	m.key = &k
	delete(m.retiring, keyID(k))
	m.mu.Unlock()
	m.Wake()
	return m.Reconcile(ctx)
}

func (m *Manager) rotate(ctx context.Context, s Spec, rec Record, rev uint64) {
	k := s.key()
	rev, ok := m.claim(ctx, k, &rec, rev)
	if !ok {
		return
	}
	old := rec.CertificateID
	cert, id := m.key.EncryptionCertificate(), keyID(*m.key)
	// Renew in the same PATCH: one call, and the 10-minute rule holds.
	exp := m.now().Add(m.cfg.Policy.Lifetime(m.capFor(s, rec))).UTC()
	sub, err := m.c.Update(ctx, rec.ID, Update{EncryptionCertificate: &cert, EncryptionCertificateID: &id, ExpirationDateTime: &exp})
	if err == nil && old != "" {
		m.retiring[old] = m.now()
	}
	m.finish(ctx, k, rec, rev, ActionRotate, "rotation", sub, err)
}

// Retirable returns the ids of old encryption keys that no subscription
// uses and no notification has used for Config.RetireAfter: remove them
// from the key ring.
func (m *Manager) Retirable() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	inUse := map[string]bool{}
	for _, r := range m.Records() {
		if r.IncludeResourceData && r.CertificateID != "" {
			inUse[r.CertificateID] = true
		}
	}
	m.smu.Lock()
	defer m.smu.Unlock()
	var out []string
	for id, since := range m.retiring {
		last := since
		if u := m.certUse[id]; u.After(last) {
			last = u
		}
		if !inUse[id] && now.Sub(last) >= m.cfg.RetireAfter {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// Retire forgets a retired key id (after you removed it from the ring).
func (m *Manager) Retire(id string) {
	m.mu.Lock()
	delete(m.retiring, id)
	m.mu.Unlock()
}
