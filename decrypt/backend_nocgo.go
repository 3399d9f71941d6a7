//go:build openssl && !cgo

package decrypt

import "crypto/rsa"

// The openssl build tag needs cgo and the libcrypto headers (Debian:
// libssl-dev). Build with CGO_ENABLED=1, or without -tags openssl for the
// pure-Go backend. The declarations below only keep the compiler's
// complaint to this one line.
var _ = the_openssl_build_tag_needs_cgo_set_CGO_ENABLED_1_or_drop_the_tag

const Backend = "openssl"

type nativeKey struct{}

func newNativeKey(*rsa.PrivateKey) (*nativeKey, error)            { return nil, nil }
func (*nativeKey) unwrap(*rsa.PrivateKey, []byte) ([]byte, error) { return nil, nil }
func (*nativeKey) acquire()                                       {}
func (*nativeKey) release()                                       {}
