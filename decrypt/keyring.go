package decrypt

import (
	"crypto/rsa"
	"fmt"
	"strings"
	"sync"
)

// maxIDInError bounds how much of an untrusted id or thumbprint goes into
// an error string.
const maxIDInError = 128

// KeyRing is a set of private keys selected by encryptionCertificateId
// and/or certificate thumbprint. It is safe for concurrent use; [KeyRing.Add]
// and [KeyRing.Remove] may run while [KeyRing.Decrypt] does, which is how
// keys are rotated without losing a notification. The zero value is an empty
// ring ready to use.
type KeyRing struct {
	mu      sync.RWMutex
	byID    map[string][]*ringKey // Key.ID -> keys, for keys with an ID (several during a same-id rotation)
	byThumb map[string]*ringKey   // upper-case thumbprint -> key, for keys with a certificate
	n       int
}

type ringKey struct {
	id    string
	thumb string // upper-case hex, "" without certificate
	priv  *rsa.PrivateKey
}

// NewKeyRing returns a ring holding keys. It fails as [KeyRing.Add] does.
func NewKeyRing(keys ...Key) (*KeyRing, error) {
	r := &KeyRing{}
	for _, k := range keys {
		if err := r.Add(k); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Add puts k in the ring. k needs a private key and an ID or a certificate
// (or both); the certificate must hold the private key's public half. A
// thumbprint already in the ring is an error wrapping [ErrDuplicateKey].
// Several keys may share an ID, as when a subscription's certificate is
// replaced but its encryptionCertificateId kept, if each has a certificate
// so that they can be told apart by thumbprint; otherwise a repeated ID is
// an error wrapping [ErrDuplicateKey] too.
// The ring keeps its own precomputed copy of the private key, so later
// changes to k have no effect.
func (r *KeyRing) Add(k Key) error {
	if r == nil {
		return fmt.Errorf("%w: nil KeyRing", ErrKeyFile)
	}
	if k.Private == nil {
		return fmt.Errorf("%w: no private key", ErrKeyFile)
	}
	if k.ID == "" && k.Certificate == nil {
		return fmt.Errorf("%w: key has neither id nor certificate, so it can never be selected", ErrKeyFile)
	}
	if k.Certificate != nil && !matches(k.Certificate, k.Private) {
		return fmt.Errorf("%w: certificate does not match the private key", ErrKeyFile)
	}
	// A private copy, precomputed once: a key built by hand without CRT
	// values would otherwise be precomputed (and checked) on every decrypt.
	priv := *k.Private
	priv.Precompute()
	if err := priv.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrKeyFile, err)
	}
	rk := &ringKey{id: k.ID, thumb: k.Thumbprint(), priv: &priv}

	r.mu.Lock()
	defer r.mu.Unlock()
	if rk.id != "" {
		for _, other := range r.byID[rk.id] {
			if other.thumb == "" || rk.thumb == "" {
				return fmt.Errorf("%w: id %q (keys sharing an id need certificates to be told apart)", ErrDuplicateKey, rk.id)
			}
		}
	}
	if rk.thumb != "" {
		if _, ok := r.byThumb[rk.thumb]; ok {
			return fmt.Errorf("%w: thumbprint %s", ErrDuplicateKey, rk.thumb)
		}
	}
	if r.byID == nil {
		r.byID = make(map[string][]*ringKey)
		r.byThumb = make(map[string]*ringKey)
	}
	if rk.id != "" {
		r.byID[rk.id] = append(r.byID[rk.id], rk)
	}
	if rk.thumb != "" {
		r.byThumb[rk.thumb] = rk
	}
	r.n++
	return nil
}

// Remove removes the keys whose ID equals idOrThumbprint or whose
// certificate thumbprint equals it case-insensitively, and reports whether
// any was removed. Content still encrypted for a removed key then fails with
// [ErrUnknownKey].
func (r *KeyRing) Remove(idOrThumbprint string) bool {
	if r == nil || idOrThumbprint == "" {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	removed := false
	for _, rk := range append([]*ringKey(nil), r.byID[idOrThumbprint]...) {
		r.drop(rk)
		removed = true
	}
	if rk, ok := r.byThumb[strings.ToUpper(idOrThumbprint)]; ok {
		r.drop(rk)
		removed = true
	}
	return removed
}

// drop removes rk from both indexes. r.mu is held.
func (r *KeyRing) drop(rk *ringKey) {
	if rk.id != "" {
		keys := r.byID[rk.id]
		for i, k := range keys {
			if k == rk {
				keys = append(keys[:i:i], keys[i+1:]...)
				break
			}
		}
		if len(keys) == 0 {
			delete(r.byID, rk.id)
		} else {
			r.byID[rk.id] = keys
		}
	}
	if rk.thumb != "" {
		delete(r.byThumb, rk.thumb)
	}
	r.n--
}

// Len returns the number of keys in the ring.
func (r *KeyRing) Len() int {
	if r == nil {
		return 0
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.n
}

// Decrypt selects the key for c and decrypts it with [Content].
//
// Selection: a key whose certificate thumbprint equals
// c.EncryptionCertificateThumbprint (case-insensitively) is used. Otherwise
// the keys whose ID equals c.EncryptionCertificateID are tried, except those
// whose certificate has a different thumbprint than the one c names (a
// cross-check). Otherwise the error wraps [ErrUnknownKey]; a nil *KeyRing
// behaves as an empty one. The thumbprint comes first because it names one
// certificate, while an ID may be kept across a certificate rotation.
func (r *KeyRing) Decrypt(c *EncryptedContent) ([]byte, error) {
	if c == nil {
		return nil, fmt.Errorf("%w: no encryptedContent", ErrEncoding)
	}
	keys, err := r.selectKeys(c.EncryptionCertificateID, c.EncryptionCertificateThumbprint)
	if err != nil {
		return nil, err
	}
	var first error
	for _, priv := range keys {
		pt, err := Content(priv, c)
		if err == nil {
			return pt, nil
		}
		if first == nil {
			first = err
		}
	}
	return nil, first
}

func (r *KeyRing) selectKeys(id, thumb string) ([]*rsa.PrivateKey, error) {
	if r == nil {
		return nil, fmt.Errorf("%w: nil KeyRing", ErrUnknownKey)
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if thumb != "" {
		if rk, ok := r.byThumb[strings.ToUpper(thumb)]; ok {
			return []*rsa.PrivateKey{rk.priv}, nil
		}
	}
	var keys []*rsa.PrivateKey
	var mismatch string
	for _, rk := range r.byID[id] {
		if thumb != "" && rk.thumb != "" {
			mismatch = rk.thumb // it would have matched byThumb
			continue
		}
		keys = append(keys, rk.priv)
	}
	if len(keys) > 0 {
		return keys, nil
	}
	if mismatch != "" {
		return nil, fmt.Errorf("%w: id %q has thumbprint %s, content names %q",
			ErrUnknownKey, clip(id), mismatch, clip(thumb))
	}
	return nil, fmt.Errorf("%w: id %q, thumbprint %q", ErrUnknownKey, clip(id), clip(thumb))
}

// clip shortens untrusted text for an error string.
func clip(s string) string {
	if len(s) > maxIDInError {
		return s[:maxIDInError] + "..."
	}
	return s
}
