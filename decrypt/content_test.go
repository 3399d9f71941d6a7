package decrypt

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func TestContentRoundTrip(t *testing.T) {
	k := testKey(t, 0)
	for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 2048, 4099} {
		pt := make([]byte, n)
		rand.Read(pt)
		c, err := encrypt(k.Certificate, k.ID, pt)
		if err != nil {
			t.Fatalf("encrypt(%d bytes): %v", n, err)
		}
		ct, _ := base64.StdEncoding.DecodeString(c.Data)
		if want := (n/16 + 1) * 16; len(ct) != want {
			t.Errorf("%d bytes encrypt to %d, want %d (PKCS#7 always pads)", n, len(ct), want)
		}
		got, err := Content(k.Private, c)
		if err != nil {
			t.Fatalf("Content(%d bytes): %v", n, err)
		}
		if !bytes.Equal(got, pt) {
			t.Errorf("round trip of %d bytes differs", n)
		}
	}
}

func TestEncryptSetsIDAndThumbprint(t *testing.T) {
	k := testKey(t, 0)
	c, err := encrypt(k.Certificate, "my-id", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if c.EncryptionCertificateID != "my-id" {
		t.Errorf("id = %q, want my-id", c.EncryptionCertificateID)
	}
	if c.EncryptionCertificateThumbprint != k.Thumbprint() || len(c.EncryptionCertificateThumbprint) != 40 {
		t.Errorf("thumbprint = %q, want %q", c.EncryptionCertificateThumbprint, k.Thumbprint())
	}
	sig, _ := base64.StdEncoding.DecodeString(c.DataSignature)
	wrapped, _ := base64.StdEncoding.DecodeString(c.DataKey)
	if len(sig) != 32 || len(wrapped) != k.Private.Size() {
		t.Errorf("signature %d bytes, dataKey %d bytes; want 32 and %d", len(sig), len(wrapped), k.Private.Size())
	}
}

func TestEncryptUsesFreshKeyPerCall(t *testing.T) {
	k := testKey(t, 0)
	pt := []byte(`{"same":"plaintext"}`)
	a := sealed(t, k, pt)
	b := sealed(t, k, pt)
	if a.Data == b.Data || a.DataKey == b.DataKey || a.DataSignature == b.DataSignature {
		t.Error("two encryptions of the same plaintext share data, dataKey or signature")
	}
	ka, _ := unwrapKey(k.Private, mustB64(t, a.DataKey))
	kb, _ := unwrapKey(k.Private, mustB64(t, b.DataKey))
	if bytes.Equal(ka, kb) {
		t.Error("two encryptions used the same symmetric key")
	}
}

func TestEncryptRejectsBadCertificate(t *testing.T) {
	if _, err := encrypt(nil, "id", []byte("x")); err == nil {
		t.Error("encrypt(nil cert) succeeded")
	}
	c := *testKey(t, 0).Certificate
	c.PublicKey = "not a key"
	if _, err := encrypt(&c, "id", []byte("x")); err == nil {
		t.Error("Encrypt with a non-RSA certificate succeeded")
	}
}

func mustB64(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func TestContentErrors(t *testing.T) {
	k, other := testKey(t, 0), testKey(t, 1)
	plaintext := []byte(`{"secret":"top-secret-resource-data-0123456789"}`)
	good := sealed(t, k, plaintext)
	ct := mustB64(t, good.Data)
	sig := mustB64(t, good.DataSignature)
	wrapped := mustB64(t, good.DataKey)
	sym, err := unwrapKey(k.Private, wrapped)
	if err != nil {
		t.Fatal(err)
	}

	flip := func(b []byte, i int) []byte {
		b = bytes.Clone(b)
		b[i] ^= 0x01
		return b
	}
	with := func(f func(c *EncryptedContent)) *EncryptedContent {
		c := *good
		f(&c)
		return &c
	}
	padded := func(last []byte) []byte { // one block of data, then a last block ending in last
		p := bytes.Repeat([]byte{'A'}, 32)
		copy(p[32-len(last):], last)
		return p
	}
	sym32 := make([]byte, 32)
	rand.Read(sym32)

	tests := []struct {
		name    string
		priv    Key
		content *EncryptedContent
		wantErr error
	}{
		{"valid", k, good, nil},
		{"wrong key", other, good, ErrKeyUnwrap},
		{"tampered data", k, with(func(c *EncryptedContent) { c.Data = b64(flip(ct, 5)) }), ErrSignature},
		{"tampered last block", k, with(func(c *EncryptedContent) { c.Data = b64(flip(ct, len(ct)-1)) }), ErrSignature},
		{"tampered signature", k, with(func(c *EncryptedContent) { c.DataSignature = b64(flip(sig, 31)) }), ErrSignature},
		{"tampered dataKey", k, with(func(c *EncryptedContent) { c.DataKey = b64(flip(wrapped, 10)) }), ErrKeyUnwrap},
		{"signature swapped", k, with(func(c *EncryptedContent) { c.DataSignature = b64(make([]byte, 32)) }), ErrSignature},
		{"data truncated by a block", k, with(func(c *EncryptedContent) { c.Data = b64(ct[:len(ct)-16]) }), ErrSignature},
		{"data truncated mid block", k, with(func(c *EncryptedContent) { c.Data = b64(ct[:len(ct)-3]) }), ErrCiphertext},
		{"data not block aligned", k, with(func(c *EncryptedContent) { c.Data = b64(append(bytes.Clone(ct), 0)) }), ErrCiphertext},
		{"data empty", k, with(func(c *EncryptedContent) { c.Data = "" }), ErrCiphertext},
		{"signature truncated", k, with(func(c *EncryptedContent) { c.DataSignature = b64(sig[:31]) }), ErrSignature},
		{"signature too long", k, with(func(c *EncryptedContent) { c.DataSignature = b64(append(bytes.Clone(sig), 0)) }), ErrSignature},
		{"signature empty", k, with(func(c *EncryptedContent) { c.DataSignature = "" }), ErrSignature},
		{"dataKey truncated", k, with(func(c *EncryptedContent) { c.DataKey = b64(wrapped[:len(wrapped)-1]) }), ErrKeyUnwrap},
		{"dataKey empty", k, with(func(c *EncryptedContent) { c.DataKey = "" }), ErrKeyUnwrap},
		{"bad base64 data", k, with(func(c *EncryptedContent) { c.Data = "!" + c.Data[1:] }), ErrEncoding},
		{"bad base64 dataKey", k, with(func(c *EncryptedContent) { c.DataKey = c.DataKey[:10] + "*" + c.DataKey[11:] }), ErrEncoding},
		{"bad base64 signature", k, with(func(c *EncryptedContent) { c.DataSignature = "wAtDAqtryLgLo4zhy8BOpqTjf6BYlGv1I9acDpKQo5w" }), ErrEncoding},
		{"url base64 data", k, with(func(c *EncryptedContent) { c.Data = base64.URLEncoding.EncodeToString(ct) + "-_" }), ErrEncoding},
		{"nil content", k, nil, ErrEncoding},
		{"nil key", Key{}, good, ErrKeyUnwrap},
		{"16-byte data key", k, sealRaw(t, k, sym32[:16], padded([]byte{1})), ErrKeyUnwrap},
		{"33-byte data key", k, sealRaw(t, k, append(bytes.Clone(sym32), 1), padded([]byte{1})), ErrKeyUnwrap},
		{"padding byte zero", k, sealRaw(t, k, sym32, padded([]byte{0})), ErrPadding},
		{"padding byte 17", k, sealRaw(t, k, sym32, padded([]byte{17})), ErrPadding},
		{"padding byte 255", k, sealRaw(t, k, sym32, padded([]byte{255})), ErrPadding},
		{"padding inconsistent", k, sealRaw(t, k, sym32, padded([]byte{4, 3, 4, 4})), ErrPadding},
		{"padding 16 with one wrong", k, sealRaw(t, k, sym32, padded(append([]byte{15}, bytes.Repeat([]byte{16}, 15)...))), ErrPadding},
		{"padding full block", k, sealRaw(t, k, sym32, padded(bytes.Repeat([]byte{16}, 16))), nil},
	}
	secrets := []string{string(plaintext), "top-secret", hex.EncodeToString(sym), b64(sym), b64(sym32), hex.EncodeToString(sym32)}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Content(tt.priv.Private, tt.content)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Content() error = %v, want %v", err, tt.wantErr)
			}
			if err == nil {
				if tt.content == good && !bytes.Equal(got, plaintext) {
					t.Errorf("Content() = %q, want %q", got, plaintext)
				}
				return
			}
			if got != nil {
				t.Errorf("Content() returned %d bytes with error %v", len(got), err)
			}
			if _, cerr := classify(err); cerr != nil {
				t.Error(cerr)
			}
			for _, s := range secrets {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q contains secret %q", err, s)
				}
			}
		})
	}
}

func TestUnpad(t *testing.T) {
	block := func(tail ...byte) []byte {
		b := bytes.Repeat([]byte{'x'}, 16)
		copy(b[16-len(tail):], tail)
		return b
	}
	tests := []struct {
		name    string
		in      []byte
		want    int
		wantErr error
	}{
		{"one byte", block(1), 15, nil},
		{"two bytes", block(2, 2), 14, nil},
		{"full block", bytes.Repeat([]byte{16}, 16), 0, nil},
		{"two blocks, full padding block", append(block(1), bytes.Repeat([]byte{16}, 16)...), 16, nil},
		{"zero", block(0), 0, ErrPadding},
		{"seventeen", block(17), 0, ErrPadding},
		{"short run", block(1, 3, 3), 0, ErrPadding},
		{"empty", nil, 0, ErrPadding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := unpad(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("unpad() error = %v, want %v", err, tt.wantErr)
			}
			if err == nil && len(got) != tt.want {
				t.Errorf("unpad() left %d bytes, want %d", len(got), tt.want)
			}
		})
	}
}
