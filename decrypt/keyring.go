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
	byID    map[string]*ringKey // Key.ID -> key, for keys with an ID
	byThumb map[string]*ringKey // upper-case thumbprint -> key, for keys with a certificate
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
// (or both); the certificate must hold the private key's public half. An ID
// or thumbprint already in the ring is an error wrapping [ErrDuplicateKey].
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
		if _, ok := r.byID[rk.id]; ok {
			return fmt.Errorf("%w: id %q", ErrDuplicateKey, rk.id)
		}
	}
	if rk.thumb != "" {
		if _, ok := r.byThumb[rk.thumb]; ok {
			return fmt.Errorf("%w: thumbprint %s", ErrDuplicateKey, rk.thumb)
		}
	}
	if r.byID == nil {
		r.byID = make(map[string]*ringKey)
		r.byThumb = make(map[string]*ringKey)
	}
	if rk.id != "" {
		r.byID[rk.id] = rk
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
	byID, okID := r.byID[idOrThumbprint]
	byThumb, okThumb := r.byThumb[strings.ToUpper(idOrThumbprint)]
	if okID {
		r.drop(byID)
	}
	if okThumb && (!okID || byThumb != byID) {
		r.drop(byThumb)
	}
	return okID || okThumb
}

// drop removes rk from both indexes. r.mu is held.
func (r *KeyRing) drop(rk *ringKey) {
	if rk.id != "" {
		delete(r.byID, rk.id)
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
// Selection: if c.EncryptionCertificateID equals a key's ID, that key is
// used, unless c also carries a thumbprint and that key's certificate has a
// different one (a mismatch is [ErrUnknownKey]). Otherwise a key whose
// certificate thumbprint equals c.EncryptionCertificateThumbprint
// (case-insensitively) is used. Otherwise the error wraps [ErrUnknownKey];
// a nil *KeyRing behaves as an empty one.
func (r *KeyRing) Decrypt(c *EncryptedContent) ([]byte, error) {
	if c == nil {
		return nil, fmt.Errorf("%w: no encryptedContent", ErrEncoding)
	}
	priv, err := r.selectKey(c.EncryptionCertificateID, c.EncryptionCertificateThumbprint)
	if err != nil {
		return nil, err
	}
	return Content(priv, c)
}

func (r *KeyRing) selectKey(id, thumb string) (*rsa.PrivateKey, error) {
	if r == nil {
		return nil, fmt.Errorf("%w: nil KeyRing", ErrUnknownKey)
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if id != "" {
		if rk, ok := r.byID[id]; ok {
			if thumb != "" && rk.thumb != "" && !strings.EqualFold(thumb, rk.thumb) {
				return nil, fmt.Errorf("%w: id %q has thumbprint %s, content names %q",
					ErrUnknownKey, clip(id), rk.thumb, clip(thumb))
			}
			return rk.priv, nil
		}
	}
	if thumb != "" {
		if rk, ok := r.byThumb[strings.ToUpper(thumb)]; ok {
			return rk.priv, nil
		}
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
