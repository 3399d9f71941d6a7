package decrypt

import (
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// maxIDInError bounds how much of an untrusted id or thumbprint goes into
// an error string.
const maxIDInError = 128

// KeyRing is a set of private keys selected by encryptionCertificateId
// and/or certificate thumbprint. It is safe for concurrent use; [KeyRing.Add]
// and [KeyRing.Remove] may run while [KeyRing.Decrypt] does, which is how
// keys are rotated without losing a notification. The zero value is an empty
// ring ready to use.
//
// The ring remembers the symmetric keys it unwrapped (see
// [UnwrapCacheSize]), so content Graph delivers again costs no RSA
// operation the second time.
type KeyRing struct {
	mu      sync.RWMutex
	byID    map[string][]*ringKey // Key.ID -> keys, for keys with an ID (several during a same-id rotation)
	byThumb map[string]*ringKey   // upper-case thumbprint -> key, for keys with a certificate
	n       int
	serial  uint64 // last ringKey.serial handed out; guarded by mu

	cache  unwrapCache
	rsaOps atomic.Int64 // RSA private-key operations performed (tests, benchmarks)
}

type ringKey struct {
	id     string
	thumb  string // upper-case hex, "" without certificate
	serial uint64 // unique per Add in this ring: the unwrap cache's key namespace
	priv   *rsa.PrivateKey
	native *nativeKey // the backend's copy of priv; nil in the pure-Go build
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
	native, err := newNativeKey(&priv)
	if err != nil {
		return err
	}
	rk := &ringKey{id: k.ID, thumb: k.Thumbprint(), priv: &priv, native: native}

	r.mu.Lock()
	defer r.mu.Unlock()
	added := false
	defer func() {
		if !added {
			native.release()
		}
	}()
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
	r.serial++
	rk.serial = r.serial
	r.n++
	added = true
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
	r.cache.forget(rk.serial)
	rk.native.release() // freed now, or when the last Decrypt using it returns
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

// Decrypt selects the key for c and decrypts it as [Content] does, with
// the RSA implementation named by [Backend].
//
// Selection: a key whose certificate thumbprint equals
// c.EncryptionCertificateThumbprint (case-insensitively) is used. Otherwise
// the keys whose ID equals c.EncryptionCertificateID are tried, except those
// whose certificate has a different thumbprint than the one c names (a
// cross-check). Otherwise the error wraps [ErrUnknownKey]; a nil *KeyRing
// behaves as an empty one. The thumbprint comes first because it names one
// certificate, while an ID may be kept across a certificate rotation.
//
// A dataKey this ring has already unwrapped with the same key (Graph
// redelivering a batch) is not unwrapped again: the symmetric key comes
// from a bounded cache ([UnwrapCacheSize]) and must still verify the
// content's HMAC. Only keys that opened their content are cached.
func (r *KeyRing) Decrypt(c *EncryptedContent) ([]byte, error) {
	pt, _, err := r.DecryptCounted(c)
	return pt, err
}

// DecryptCounted is [KeyRing.Decrypt] that also returns the number of RSA
// private-key operations it performed: 0 when the symmetric key came from
// the cache, 1 otherwise, more only when several keys share c's
// encryptionCertificateId and the first ones failed. A caller that
// measures the cost of an RSA operation learns from the items with n > 0
// only, as a cache hit costs some microseconds.
func (r *KeyRing) DecryptCounted(c *EncryptedContent) (pt []byte, n int, err error) {
	if c == nil {
		return nil, 0, fmt.Errorf("%w: no encryptedContent", ErrEncoding)
	}
	keys, err := r.selectKeys(c.EncryptionCertificateID, c.EncryptionCertificateThumbprint)
	if err != nil {
		return nil, 0, err
	}
	defer release(keys)
	var w wire
	if err := w.decode(c); err != nil {
		return nil, 0, err
	}
	sum := sha256.Sum256(w.wrapped)
	// A key that unwrapped this dataKey before goes first: it needs no RSA
	// operation (keys is this call's own slice).
	for i, rk := range keys {
		if r.cache.has(cacheKey{serial: rk.serial, sum: sum}) {
			keys[0], keys[i] = keys[i], keys[0]
			break
		}
	}
	var first error
	for _, rk := range keys {
		pt, didRSA, err := r.open(rk, &w, sum)
		if didRSA {
			n++
		}
		if err == nil {
			return pt, n, nil
		}
		if first == nil {
			first = err
		}
	}
	return nil, n, first
}

// Cached reports whether [KeyRing.Decrypt] of c would now take the
// symmetric key from the cache and so perform no RSA operation, as when
// Graph delivers a batch again. It costs a base64 decode of the dataKey, a
// SHA-256 and a map lookup, so a caller can use it to estimate a batch's
// work before admitting it. It checks nothing cryptographic: true does not
// mean that c is genuine (Decrypt still verifies the HMAC), and the answer
// may change before Decrypt runs (a key removed, an entry evicted).
func (r *KeyRing) Cached(c *EncryptedContent) bool {
	if c == nil {
		return false
	}
	keys, err := r.selectKeys(c.EncryptionCertificateID, c.EncryptionCertificateThumbprint)
	if err != nil {
		return false
	}
	defer release(keys)
	var w wire
	if w.wrapped, err = decodeInto(w.wrappedBuf[:], c.DataKey, "dataKey"); err != nil {
		return false
	}
	sum := sha256.Sum256(w.wrapped)
	for _, rk := range keys {
		if r.cache.has(cacheKey{serial: rk.serial, sum: sum}) {
			return true
		}
	}
	return false
}

// release releases keys acquired by selectKeys.
func release(keys []*ringKey) {
	for _, rk := range keys {
		rk.native.release()
	}
}

// open unwraps the data key of w (whose SHA-256 is sum) with rk, from the
// cache when this exact dataKey was unwrapped by rk before, then verifies
// and decrypts w, and reports whether it performed an RSA operation. Only
// a key that opened the content is cached.
func (r *KeyRing) open(rk *ringKey, w *wire, sum [sha256.Size]byte) (pt []byte, didRSA bool, err error) {
	ck := cacheKey{serial: rk.serial, sum: sum}
	var sym [symKeySize]byte
	defer clear(sym[:])
	hit := r.cache.get(ck, &sym)
	if !hit {
		r.rsaOps.Add(1)
		k, err := rk.native.unwrap(rk.priv, w.wrapped)
		if err != nil {
			return nil, true, err
		}
		copy(sym[:], k)
		clear(k)
	}
	pt, err = w.open(sym[:])
	if err == nil && !hit {
		r.cache.put(ck, &sym)
	}
	return pt, !hit, err
}

// selectKeys returns the candidate keys for an id and thumbprint, each
// acquired: the caller releases them when done.
func (r *KeyRing) selectKeys(id, thumb string) ([]*ringKey, error) {
	if r == nil {
		return nil, fmt.Errorf("%w: nil KeyRing", ErrUnknownKey)
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if thumb != "" {
		if rk, ok := r.byThumb[strings.ToUpper(thumb)]; ok {
			rk.native.acquire()
			return []*ringKey{rk}, nil
		}
	}
	var keys []*ringKey
	var mismatch string
	for _, rk := range r.byID[id] {
		if thumb != "" && rk.thumb != "" {
			mismatch = rk.thumb // it would have matched byThumb
			continue
		}
		rk.native.acquire()
		keys = append(keys, rk)
	}
	if len(keys) > 0 {
		return keys, nil
	}
	if mismatch != "" {
		return nil, fmt.Errorf("%w: id %s has thumbprint %s, content names %s",
			ErrUnknownKey, clip(id), mismatch, clip(thumb))
	}
	return nil, fmt.Errorf("%w: id %s, thumbprint %s", ErrUnknownKey, clip(id), clip(thumb))
}

// clip quotes untrusted text for an error string, keeping at most
// maxIDInError bytes of the quoted form: a byte that is not printable
// UTF-8 quotes to four ("\xa2"), so clipping before quoting would let 128
// such bytes grow to 512.
func clip(s string) string {
	q := strconv.Quote(s)
	if len(q) > maxIDInError {
		q = q[:maxIDInError] + `..."`
	}
	return q
}
