package decrypt

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/big"
	"os"
	"strings"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

// Limits of [GenerateKey], from Graph's requirements for encryptionCertificate.
const (
	MinKeyBits = 2048
	MaxKeyBits = 4096
)

// maxKeyFileSize bounds what [LoadFile] reads; real key files are a few KiB.
const maxKeyFileSize = 1 << 20

// Key is one private key with its certificate and the id used in
// subscriptions. Key redacts itself when printed with fmt or logged with
// log/slog: only the id and thumbprint are shown.
type Key struct {
	// ID is the encryptionCertificateId set on the subscriptions that use
	// this key. It may be empty; the key is then matched by thumbprint only.
	ID string
	// Private is the RSA private key. Required.
	Private *rsa.PrivateKey
	// Certificate holds the public key given to Graph. It may be nil for a
	// bare PEM private key; the key is then matched by ID only.
	Certificate *x509.Certificate
}

// Thumbprint returns the certificate's SHA-1 thumbprint (the
// encryptionCertificateThumbprint Graph sends) as upper-case hex, or "" if
// k has no certificate.
func (k Key) Thumbprint() string { return thumbprint(k.Certificate) }

// EncryptionCertificate returns the standard base64 of the certificate's
// DER, the encryptionCertificate value of a subscription, or "" if k has no
// certificate.
func (k Key) EncryptionCertificate() string {
	if k.Certificate == nil {
		return ""
	}
	return base64.StdEncoding.EncodeToString(k.Certificate.Raw)
}

// String describes k without key material.
func (k Key) String() string {
	return fmt.Sprintf("decrypt.Key{ID:%q Thumbprint:%q}", k.ID, k.Thumbprint())
}

// GoString describes k without key material, for %#v.
func (k Key) GoString() string { return k.String() }

// LogValue implements [slog.LogValuer]: it logs the id and thumbprint only.
func (k Key) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", k.ID), slog.String("thumbprint", k.Thumbprint()))
}

func thumbprint(cert *x509.Certificate) string {
	if cert == nil {
		return ""
	}
	sum := sha1.Sum(cert.Raw)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// matches reports whether cert carries the public half of priv.
func matches(cert *x509.Certificate, priv *rsa.PrivateKey) bool {
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	return ok && pub.Equal(&priv.PublicKey)
}

// ParsePEM parses an unencrypted RSA private key (PKCS#8 "PRIVATE KEY" or
// PKCS#1 "RSA PRIVATE KEY") and optional "CERTIFICATE" blocks, in any
// order. When certificates are present, the one holding the key's public
// half is used (so a chain file works) and it is an error if none does.
// Other block types are ignored. The returned Key has an empty ID.
// Errors wrap [ErrKeyFile].
func ParsePEM(pemData []byte) (Key, error) {
	var (
		priv  *rsa.PrivateKey
		certs []*x509.Certificate
		rest  = pemData
	)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch b.Type {
		case "PRIVATE KEY", "RSA PRIVATE KEY":
			if priv != nil {
				return Key{}, fmt.Errorf("%w: more than one private key", ErrKeyFile)
			}
			if _, ok := b.Headers["DEK-Info"]; ok {
				return Key{}, fmt.Errorf("%w: encrypted PEM private keys are not supported", ErrKeyFile)
			}
			p, err := parsePrivate(b)
			if err != nil {
				return Key{}, err
			}
			priv = p
		case "ENCRYPTED PRIVATE KEY":
			return Key{}, fmt.Errorf("%w: encrypted PEM private keys are not supported", ErrKeyFile)
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return Key{}, fmt.Errorf("%w: certificate: %w", ErrKeyFile, err)
			}
			certs = append(certs, c)
		}
	}
	if priv == nil {
		return Key{}, fmt.Errorf("%w: no PEM private key found", ErrKeyFile)
	}
	return newKey(priv, certs)
}

func parsePrivate(b *pem.Block) (*rsa.PrivateKey, error) {
	if b.Type == "RSA PRIVATE KEY" {
		p, err := x509.ParsePKCS1PrivateKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: PKCS#1 private key: %w", ErrKeyFile, err)
		}
		return p, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: PKCS#8 private key: %w", ErrKeyFile, err)
	}
	p, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: private key is %T, want RSA", ErrKeyFile, k)
	}
	return p, nil
}

// newKey pairs priv with the certificate among certs that matches it.
func newKey(priv *rsa.PrivateKey, certs []*x509.Certificate) (Key, error) {
	if len(certs) == 0 {
		return Key{Private: priv}, nil
	}
	for _, c := range certs {
		if matches(c, priv) {
			return Key{Private: priv, Certificate: c}, nil
		}
	}
	return Key{}, fmt.Errorf("%w: no certificate matches the private key", ErrKeyFile)
}

// ParsePKCS12 decodes a DER PKCS#12 (PFX) file holding one RSA private key
// and its certificate (other certificates, such as a chain, are ignored).
// Both legacy (RC2/3DES) and modern (AES/PBKDF2) encryption are accepted.
// The returned Key has an empty ID. Errors wrap [ErrKeyFile], and also
// [ErrKeyPassword] when the password is wrong; they never contain the
// password.
//
// The MAC of a PKCS#12 file is checked before anything is decrypted, and
// its key-derivation iteration count is attacker-chosen until then; counts
// above 1,000,000 (real files use 2,000 to 600,000) are refused rather than
// spending minutes hashing. A file without a MAC (empty password only) is
// not authenticated at all: only load such files from trusted places.
func ParsePKCS12(pfx []byte, password string) (Key, error) {
	if n := pkcs12MACIterations(pfx); n > maxPKCS12Iterations {
		return Key{}, fmt.Errorf("%w: PKCS#12 MAC uses %d iterations, more than %d", ErrKeyFile, n, maxPKCS12Iterations)
	}
	k, leaf, chain, err := pkcs12.DecodeChain(pfx, password)
	if err != nil {
		if errors.Is(err, pkcs12.ErrIncorrectPassword) || errors.Is(err, pkcs12.ErrDecryption) {
			return Key{}, fmt.Errorf("%w: %w", ErrKeyFile, ErrKeyPassword)
		}
		return Key{}, fmt.Errorf("%w: PKCS#12: %w", ErrKeyFile, err)
	}
	priv, ok := k.(*rsa.PrivateKey)
	if !ok {
		return Key{}, fmt.Errorf("%w: PKCS#12 private key is %T, want RSA", ErrKeyFile, k)
	}
	return newKey(priv, append([]*x509.Certificate{leaf}, chain...))
}

// LoadFile reads a key file and parses it with [ParsePEM] or [ParsePKCS12].
// PEM is recognised by its armour; anything else is PKCS#12, either DER
// (.pfx, .p12) or its standard base64 text (as stored by some key vaults).
// password is used for PKCS#12 only; encrypted PEM is not supported. Errors
// name the file, never the password, and wrap [ErrKeyFile] (and the
// [os] error when the file cannot be read). The returned Key has an empty
// ID.
func LoadFile(path, password string) (Key, error) {
	data, err := readLimited(path)
	if pe, ok := err.(*fs.PathError); ok {
		err = pe.Err // the path is named once, below
	}
	if err != nil {
		return Key{}, fmt.Errorf("decrypt: load key %s: %w: %w", path, ErrKeyFile, err)
	}
	var k Key
	switch {
	case bytes.Contains(data, []byte("-----BEGIN")):
		k, err = ParsePEM(data)
	case isBase64Text(data):
		der, derr := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(data)))
		if derr != nil {
			return Key{}, fmt.Errorf("decrypt: load key %s: %w: neither PEM, DER nor base64", path, ErrKeyFile)
		}
		k, err = ParsePKCS12(der, password)
	default:
		k, err = ParsePKCS12(data, password)
	}
	if err != nil {
		return Key{}, fmt.Errorf("decrypt: load key %s: %w", path, err)
	}
	return k, nil
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("larger than %d bytes", maxKeyFileSize)
	}
	return data, nil
}

// isBase64Text reports whether data looks like base64 text rather than DER:
// DER PKCS#12 starts with a SEQUENCE tag (0x30, which is '0', a valid
// base64 character, but is followed by binary length bytes).
func isBase64Text(data []byte) bool {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return false
	}
	for _, c := range data {
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9',
			c == '+', c == '/', c == '=', c == '\r', c == '\n':
		default:
			return false
		}
	}
	return true
}

// GenerateKey creates an RSA key of bits bits (2048 to 4096, as Graph
// requires) and a self-signed certificate for it with the given common name
// (default "graphhook"), valid from now for validFor. Put
// [Key.EncryptionCertificate] in the subscription's encryptionCertificate
// and choose an ID for its encryptionCertificateId; the returned Key has an
// empty ID. Save it with [Key.MarshalPEM].
func GenerateKey(bits int, commonName string, validFor time.Duration) (Key, error) {
	if bits < MinKeyBits || bits > MaxKeyBits {
		return Key{}, fmt.Errorf("decrypt: generate key: %d bits outside %d..%d", bits, MinKeyBits, MaxKeyBits)
	}
	if validFor <= 0 {
		return Key{}, fmt.Errorf("decrypt: generate key: validity %v is not positive", validFor)
	}
	priv, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return Key{}, fmt.Errorf("decrypt: generate key: %w", err)
	}
	cert, err := selfSigned(priv, commonName, time.Now(), validFor)
	if err != nil {
		return Key{}, err
	}
	return Key{Private: priv, Certificate: cert}, nil
}

// selfSigned issues a self-signed certificate for priv valid from now-5m
// (clock skew) to now+validFor.
func selfSigned(priv *rsa.PrivateKey, commonName string, now time.Time, validFor time.Duration) (*x509.Certificate, error) {
	if commonName == "" {
		commonName = "graphhook"
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("decrypt: generate key: serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              now.Add(validFor),
		KeyUsage:              x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return nil, fmt.Errorf("decrypt: generate key: certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("decrypt: generate key: certificate: %w", err)
	}
	return cert, nil
}

// MarshalPEM encodes k as an unencrypted PKCS#8 "PRIVATE KEY" block
// followed by a "CERTIFICATE" block (if k has a certificate), the format
// [ParsePEM] and openssl read. The ID is not stored. Write the result to a
// file readable only by its owner (mode 0600).
func (k Key) MarshalPEM() ([]byte, error) {
	if k.Private == nil {
		return nil, fmt.Errorf("%w: no private key", ErrKeyFile)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.Private)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyFile, err)
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	clear(der)
	if k.Certificate != nil {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: k.Certificate.Raw})...)
	}
	return out, nil
}

// maxPKCS12Iterations bounds the password hashing ParsePKCS12 does before
// the password is known to be right.
const maxPKCS12Iterations = 1_000_000

// oidPBMAC1 is PBMAC1 (RFC 8018), the newer PKCS#12 MAC whose PBKDF2
// iteration count lives in the algorithm parameters.
var oidPBMAC1 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 14}

// The outer structure of a PFX (RFC 7292 section 4), only as far as the
// MAC's iteration count.
type pfxOuter struct {
	Version  int
	AuthSafe asn1.RawValue
	MacData  pfxMacData `asn1:"optional"`
}

type pfxMacData struct {
	Mac struct {
		Algorithm pkix.AlgorithmIdentifier
		Digest    []byte
	}
	MacSalt    []byte
	Iterations int `asn1:"optional,default:1"`
}

type pbmac1Params struct {
	KDF    pkix.AlgorithmIdentifier
	Scheme pkix.AlgorithmIdentifier
}

type pbkdf2Params struct {
	Salt       asn1.RawValue
	Iterations int
}

// pkcs12MACIterations returns the key-derivation iteration count of the
// PFX's MAC, or 0 if it cannot tell (the PKCS#12 decoder then reports the
// malformed file).
func pkcs12MACIterations(der []byte) int {
	var pfx pfxOuter
	if _, err := asn1.Unmarshal(der, &pfx); err != nil {
		return 0
	}
	if !pfx.MacData.Mac.Algorithm.Algorithm.Equal(oidPBMAC1) {
		return pfx.MacData.Iterations
	}
	var p pbmac1Params
	if _, err := asn1.Unmarshal(pfx.MacData.Mac.Algorithm.Parameters.FullBytes, &p); err != nil {
		return 0
	}
	var kdf pbkdf2Params
	if _, err := asn1.Unmarshal(p.KDF.Parameters.FullBytes, &kdf); err != nil {
		return 0
	}
	return kdf.Iterations
}
