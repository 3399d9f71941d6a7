package decrypt

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"software.sslmate.com/src/go-pkcs12"
)

// fuzzSetup is built once per fuzz process: a ring with two small test keys
// and, when the vectors are checked out, Microsoft's key under its id.
type fuzzSetup struct {
	ring     *KeyRing
	keys     []Key
	vector   *EncryptedContent // nil without the vectors
	vectorPT []byte
}

var fuzzState = sync.OnceValues(func() (*fuzzSetup, error) {
	keys, err := testKeys()
	if err != nil {
		return nil, err
	}
	s := &fuzzSetup{keys: keys[:2]}
	if s.ring, err = NewKeyRing(s.keys...); err != nil {
		return nil, err
	}
	pemData, err1 := os.ReadFile(filepath.Join(vectorDir, "private-key.pem"))
	certData, err2 := os.ReadFile(filepath.Join(vectorDir, "certificate.pem"))
	content, err3 := os.ReadFile(filepath.Join(vectorDir, "encrypted-content.json"))
	pt, err4 := os.ReadFile(filepath.Join(vectorDir, "plaintext.json"))
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return s, nil // vectors absent: fuzz with generated keys only
	}
	k, err := ParsePEM(append(pemData, certData...))
	if err != nil {
		return nil, err
	}
	k.ID = vectorID
	if err := s.ring.Add(k); err != nil {
		return nil, err
	}
	s.vector = new(EncryptedContent)
	if err := json.Unmarshal(content, s.vector); err != nil {
		return nil, err
	}
	s.vectorPT = pt
	return s, nil
})

// FuzzDecrypt feeds arbitrary encryptedContent fields to KeyRing.Decrypt
// and Content: they must return plaintext or exactly one sentinel error,
// never panic. Each input's data is also used as plaintext for a round trip
// through Encrypt.
//
//	go test ./decrypt -run '^$' -fuzz FuzzDecrypt -fuzztime 60s
func FuzzDecrypt(f *testing.F) {
	s, err := fuzzState()
	if err != nil {
		f.Fatal(err)
	}
	for i, k := range s.keys {
		c := sealed(f, k, []byte(`{"seed":"generated","n":`+string(rune('0'+i))+`}`))
		f.Add(c.Data, c.DataKey, c.DataSignature, c.EncryptionCertificateID, c.EncryptionCertificateThumbprint)
		f.Add(c.Data, c.DataKey, c.DataSignature, "", c.EncryptionCertificateThumbprint)
		f.Add(c.Data[:len(c.Data)-4], c.DataKey, c.DataSignature, c.EncryptionCertificateID, "")
	}
	f.Add("AAAAAAAAAAAAAAAAAAAAAA==", "AA==", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "test-0", "")

	f.Fuzz(func(t *testing.T, data, dataKey, signature, id, thumbprint string) {
		s, err := fuzzState()
		if err != nil {
			t.Fatal(err)
		}
		c := &EncryptedContent{Data: data, DataKey: dataKey, DataSignature: signature,
			EncryptionCertificateID: id, EncryptionCertificateThumbprint: thumbprint}

		_ = s.ring.Cached(c) // arbitrary input: must not panic
		pt, err := s.ring.Decrypt(c)
		checkOutcome(t, pt, err)
		if err == nil && s.vector != nil && data == s.vector.Data && !bytes.Equal(pt, s.vectorPT) {
			t.Fatal("Microsoft's ciphertext decrypted to something other than plaintext.json")
		}
		if err == nil {
			// Opened once, it is cached: again it costs no RSA and opens
			// to the same bytes.
			if !s.ring.Cached(c) {
				t.Fatal("content that decrypted is not Cached")
			}
			again, n, err := s.ring.DecryptCounted(c)
			if err != nil || n != 0 || !bytes.Equal(again, pt) {
				t.Fatalf("second decrypt: %d RSA operations, %v", n, err)
			}
		}
		pt, err = Content(s.keys[0].Private, c)
		checkOutcome(t, pt, err)

		// Round trip: whatever Encrypt seals, the ring opens byte-exactly.
		plain := []byte(data)
		k := s.keys[len(data)%len(s.keys)]
		enc, err := encrypt(k.Certificate, k.ID, plain)
		if err != nil {
			t.Fatalf("Encrypt: %v", err)
		}
		if s.ring.Cached(enc) {
			t.Fatal("fresh content is Cached")
		}
		got, n, err := s.ring.DecryptCounted(enc)
		if err != nil || n != 1 {
			t.Fatalf("round trip: %d RSA operations, %v", n, err)
		}
		if !bytes.Equal(got, plain) {
			t.Fatalf("round trip: got %d bytes, want %d", len(got), len(plain))
		}
	})
}

// checkOutcome asserts the contract of a decrypt call: plaintext and no
// error, or no plaintext and an error wrapping exactly one sentinel.
func checkOutcome(t *testing.T, pt []byte, err error) {
	t.Helper()
	if err == nil {
		if pt == nil {
			t.Fatal("nil plaintext without an error")
		}
		return
	}
	if pt != nil {
		t.Fatalf("plaintext returned with error %v", err)
	}
	if _, cerr := classify(err); cerr != nil {
		t.Fatal(cerr)
	}
	if n := len(err.Error()); n > 512 {
		t.Fatalf("error string is %d bytes", n)
	}
}

// FuzzParseKey feeds arbitrary bytes to ParsePEM and ParsePKCS12: they must
// return a usable key or an ErrKeyFile error, never panic.
//
//	go test ./decrypt -run '^$' -fuzz FuzzParseKey -fuzztime 60s
func FuzzParseKey(f *testing.F) {
	k := testKey(f, 0)
	pemData, err := k.MarshalPEM()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pemData, "")
	f.Add(append(pemBlock("CERTIFICATE", k.Certificate.Raw), pemBlock("RSA PRIVATE KEY", []byte("junk"))...), "")
	for _, enc := range []*pkcs12.Encoder{pkcs12.Modern2023, pkcs12.LegacyDES} {
		pfx, err := enc.WithIterations(1).Encode(k.Private, k.Certificate, nil, "pw")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(pfx, "pw")
	}
	f.Fuzz(func(t *testing.T, data []byte, password string) {
		check := func(what string, k Key, err error) {
			t.Helper()
			if err != nil {
				if !errors.Is(err, ErrKeyFile) {
					t.Fatalf("%s: error %v does not wrap ErrKeyFile", what, err)
				}
				return
			}
			if k.Private == nil {
				t.Fatalf("%s: no private key and no error", what)
			}
			if k.Certificate != nil && !matches(k.Certificate, k.Private) {
				t.Fatalf("%s: certificate does not match the key", what)
			}
		}
		k, err := ParsePEM(data)
		check("ParsePEM", k, err)
		// A non-empty password makes the decoder insist on a MAC, whose
		// iteration count ParsePKCS12 bounds; files without a MAC are
		// trusted input (see ParsePKCS12) and would let the fuzzer spend
		// minutes in key derivation.
		if password == "" {
			password = "pw"
		}
		k, err = ParsePKCS12(data, password)
		check("ParsePKCS12", k, err)
	})
}

// unwrapState is built once per fuzz process: a 1024-bit test key loaded
// into the backend, and one key wrapped for it.
var unwrapState = sync.OnceValues(func() (*unwrapSetup, error) {
	keys, err := testKeys()
	if err != nil {
		return nil, err
	}
	k := keys[0]
	native, err := newNativeKey(k.Private)
	if err != nil {
		return nil, err
	}
	return &unwrapSetup{key: k, native: native}, nil
})

type unwrapSetup struct {
	key    Key
	native *nativeKey
}

// FuzzUnwrap feeds arbitrary dataKey bytes to the RSA backend named by
// Backend and to crypto/rsa: both must fail, or both return the same
// 32-byte key, and neither may panic. Under -tags openssl this is a
// differential test of the OpenSSL binding against crypto/rsa.
//
//	go test -tags openssl ./decrypt -run '^$' -fuzz FuzzUnwrap -fuzztime 3000x
func FuzzUnwrap(f *testing.F) {
	s, err := unwrapState()
	if err != nil {
		f.Fatal(err)
	}
	c, err := encrypt(s.key.Certificate, s.key.ID, []byte("seed"))
	if err != nil {
		f.Fatal(err)
	}
	wrapped, err := base64.StdEncoding.DecodeString(c.DataKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(wrapped)
	f.Add(wrapped[:len(wrapped)-1])
	f.Add(append(bytes.Clone(wrapped), 0))
	f.Add(make([]byte, len(wrapped)))
	f.Add(bytes.Repeat([]byte{0xff}, len(wrapped)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := unwrapState()
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.native.unwrap(s.key.Private, in)
		want, wantErr := unwrapKey(s.key.Private, in)
		if (err == nil) != (wantErr == nil) || !bytes.Equal(got, want) {
			t.Fatalf("%s: %x, %v; crypto/rsa: %x, %v", Backend, got, err, want, wantErr)
		}
		if err != nil && !errors.Is(err, ErrKeyUnwrap) {
			t.Fatalf("error %v does not wrap ErrKeyUnwrap", err)
		}
		if err == nil && len(got) != symKeySize {
			t.Fatalf("unwrapped %d bytes", len(got))
		}
	})
}
