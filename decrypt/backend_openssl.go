//go:build openssl && cgo

package decrypt

// The OpenSSL backend: a minimal binding to the system's libcrypto
// (OpenSSL 1.1.1 or 3.x) for the one operation that dominates the cost of
// a rich notification, the RSA-OAEP(SHA-1, MGF1-SHA-1) unwrap of dataKey.
// No maintained Go binding can be used here, so the C below is kept to two
// functions, every OpenSSL call's result is checked, and the thread's
// OpenSSL error queue is left empty after every call (a stale entry would
// otherwise be blamed on the next, unrelated call in the same thread).
//
// Lifetime: a key is parsed once into an EVP_PKEY when it is added to a
// KeyRing. The ring holds one reference and every Decrypt using the key
// holds another while it runs; the EVP_PKEY is freed when the last one is
// released, that is when the key is removed from the ring and no Decrypt
// uses it any more. A ring that is dropped without removing its keys frees
// them when the garbage collector finds them unreachable (runtime.AddCleanup),
// so nothing leaks either way.

/*
#cgo LDFLAGS: -lcrypto
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

// gh_err returns the earliest error on this thread's queue (0 if none)
// and empties the queue.
static unsigned long gh_err(void) {
	unsigned long e = ERR_get_error();
	ERR_clear_error();
	return e;
}

// gh_load parses a DER PKCS#1 RSA private key. On failure it returns NULL
// and the OpenSSL error code in *err (0 when OpenSSL queued none).
static EVP_PKEY *gh_load(const unsigned char *der, long len, unsigned long *err) {
	ERR_clear_error();
	const unsigned char *p = der;
	EVP_PKEY *pkey = d2i_PrivateKey(EVP_PKEY_RSA, NULL, &p, len);
	if (pkey == NULL) {
		*err = gh_err();
		return NULL;
	}
	if (EVP_PKEY_base_id(pkey) != EVP_PKEY_RSA || p != der + len) {
		EVP_PKEY_free(pkey);
		*err = gh_err();
		return NULL;
	}
	*err = 0;
	return pkey;
}

// gh_size returns the RSA modulus size in bytes.
static int gh_size(EVP_PKEY *pkey) { return EVP_PKEY_size(pkey); }

// gh_oaep_decrypt decrypts in with RSA-OAEP, SHA-1 for the label hash and
// for MGF1, and an empty label. *outlen is the capacity of out on entry and
// the plaintext length on success. It returns 1 on success; otherwise 0
// and the OpenSSL error code in *err.
static int gh_oaep_decrypt(EVP_PKEY *pkey, unsigned char *out, size_t *outlen,
                           const unsigned char *in, size_t inlen, unsigned long *err) {
	int ok = 0;
	ERR_clear_error();
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pkey, NULL);
	if (ctx == NULL) goto done;
	if (EVP_PKEY_decrypt_init(ctx) <= 0) goto done;
	if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) <= 0) goto done;
	if (EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha1()) <= 0) goto done;
	if (EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha1()) <= 0) goto done;
	if (EVP_PKEY_decrypt(ctx, out, outlen, in, inlen) <= 0) goto done;
	ok = 1;
done:
	*err = ok ? 0 : ERR_peek_error();
	ERR_clear_error();
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

static void gh_free(EVP_PKEY *pkey) { EVP_PKEY_free(pkey); }
*/
import "C"

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"fmt"
	"runtime"
	"sync/atomic"
	"unsafe"
)

// Backend names the RSA implementation [KeyRing] uses to unwrap data keys:
// "go" (crypto/rsa, the default, which keeps binaries static) or
// "openssl" (the system's libcrypto through cgo, in binaries built with
// -tags openssl). [Content] always uses crypto/rsa.
const Backend = "openssl"

// nativeKey is a private key loaded into OpenSSL.
type nativeKey struct {
	h *pkeyHandle
}

// pkeyHandle owns the EVP_PKEY. It is separate from nativeKey so that the
// cleanup attached to the nativeKey can reach it.
type pkeyHandle struct {
	pkey  *C.EVP_PKEY
	size  int          // modulus bytes
	refs  atomic.Int64 // the ring's reference plus one per running Decrypt
	freed atomic.Bool
}

func (h *pkeyHandle) free() {
	if h.freed.CompareAndSwap(false, true) {
		C.gh_free(h.pkey)
	}
}

// newNativeKey loads priv into an EVP_PKEY and checks, with one unwrap of
// a random key wrapped by crypto/rsa, that OpenSSL holds the same key.
// Errors wrap [ErrKeyFile] and never contain key material.
func newNativeKey(priv *rsa.PrivateKey) (*nativeKey, error) {
	der := x509.MarshalPKCS1PrivateKey(priv)
	defer clear(der)
	var cerr C.ulong
	pkey := C.gh_load((*C.uchar)(unsafe.Pointer(&der[0])), C.long(len(der)), &cerr)
	if pkey == nil {
		return nil, fmt.Errorf("%w: openssl cannot load the private key: %s", ErrKeyFile, opensslError(cerr))
	}
	h := &pkeyHandle{pkey: pkey, size: int(C.gh_size(pkey))}
	h.refs.Store(1)
	k := &nativeKey{h: h}
	runtime.AddCleanup(k, (*pkeyHandle).free, h)

	var probe [symKeySize]byte
	rand.Read(probe[:])
	defer clear(probe[:])
	wrapped, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, &priv.PublicKey, probe[:], nil)
	if err != nil {
		h.free()
		return nil, fmt.Errorf("%w: self-test: %w", ErrKeyFile, err)
	}
	got, err := k.unwrap(priv, wrapped)
	ok := err == nil && bytes.Equal(got, probe[:])
	clear(got)
	if !ok {
		h.free()
		return nil, fmt.Errorf("%w: openssl self-test failed: the key it loaded does not unwrap what crypto/rsa wrapped", ErrKeyFile)
	}
	return k, nil
}

// unwrap is step 1 of [Content] in OpenSSL; priv is not used.
func (k *nativeKey) unwrap(_ *rsa.PrivateKey, wrapped []byte) ([]byte, error) {
	if len(wrapped) == 0 || len(wrapped) > k.h.size {
		// OpenSSL refuses these too; Go's crypto/rsa returns an error
		// without detail for them, and so do we.
		return nil, fmt.Errorf("%w: %w", ErrKeyUnwrap, rsa.ErrDecryption)
	}
	if k.h.freed.Load() {
		return nil, fmt.Errorf("%w: key already released", ErrKeyUnwrap) // unreachable: acquire precedes use
	}
	out := make([]byte, k.h.size)
	outLen := C.size_t(len(out))
	var cerr C.ulong
	ok := C.gh_oaep_decrypt(k.h.pkey, (*C.uchar)(unsafe.Pointer(&out[0])), &outLen,
		(*C.uchar)(unsafe.Pointer(&wrapped[0])), C.size_t(len(wrapped)), &cerr)
	runtime.KeepAlive(k)
	if ok != 1 {
		clear(out)
		return nil, fmt.Errorf("%w: %w (openssl: %s)", ErrKeyUnwrap, rsa.ErrDecryption, opensslError(cerr))
	}
	n := int(outLen)
	if n != symKeySize {
		clear(out)
		return nil, fmt.Errorf("%w: unwrapped key is %d bytes, want %d", ErrKeyUnwrap, n, symKeySize)
	}
	return out[:n:n], nil
}

func (k *nativeKey) acquire() { k.h.refs.Add(1) }

func (k *nativeKey) release() {
	if k.h.refs.Add(-1) == 0 {
		k.h.free()
	}
}

// opensslError describes an OpenSSL error code. The text names the
// library routine and reason (for example "oaep decoding error"); it holds
// no key material or input.
func opensslError(code C.ulong) string {
	if code == 0 {
		return "no error queued"
	}
	var buf [256]C.char
	C.ERR_error_string_n(code, &buf[0], C.size_t(len(buf)))
	return C.GoString(&buf[0])
}

// opensslQueueEmpty reports whether this thread's OpenSSL error queue is
// empty (tests lock the goroutine to its thread around the calls).
func opensslQueueEmpty() bool { return C.ERR_peek_error() == 0 }
