//go:build !openssl

package decrypt

import "crypto/rsa"

// Backend names the RSA implementation [KeyRing] uses to unwrap data keys:
// "go" (crypto/rsa, the default, which keeps binaries static) or
// "openssl" (the system's libcrypto through cgo, in binaries built with
// -tags openssl). [Content] always uses crypto/rsa.
const Backend = "go"

// nativeKey is the backend's copy of a private key. The pure-Go build has
// none: its methods work on a nil *nativeKey and use crypto/rsa.
type nativeKey struct{}

func newNativeKey(*rsa.PrivateKey) (*nativeKey, error) { return nil, nil }

func (*nativeKey) unwrap(priv *rsa.PrivateKey, wrapped []byte) ([]byte, error) {
	return unwrapKey(priv, wrapped)
}

func (*nativeKey) acquire() {}
func (*nativeKey) release() {}
