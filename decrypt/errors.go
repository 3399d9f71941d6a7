package decrypt

import "errors"

// Errors returned by [Content] and [KeyRing.Decrypt]. Each failure is wrapped
// with detail that contains no key material and no plaintext; match with
// [errors.Is]. The HMAC is verified before any decryption, so distinguishing
// these errors inside the process opens no padding oracle; an HTTP answer
// should still not tell the sender which check failed.
var (
	// ErrUnknownKey means no key in the ring matches the item's
	// encryptionCertificateId or encryptionCertificateThumbprint, or the key
	// chosen by id has a certificate whose thumbprint differs from the item's.
	ErrUnknownKey = errors.New("decrypt: no key for certificate")

	// ErrEncoding means data, dataKey or dataSignature is not valid standard
	// base64, or the content is missing.
	ErrEncoding = errors.New("decrypt: invalid base64")

	// ErrKeyUnwrap means RSA-OAEP(SHA-1) could not unwrap dataKey (usually the
	// wrong private key) or the unwrapped key is not 32 bytes long.
	ErrKeyUnwrap = errors.New("decrypt: cannot unwrap data key")

	// ErrSignature means dataSignature is not a 32-byte HMAC-SHA256 or does
	// not match the ciphertext: the content was tampered with or truncated.
	ErrSignature = errors.New("decrypt: data signature mismatch")

	// ErrCiphertext means data is empty or its length is not a multiple of the
	// AES block size.
	ErrCiphertext = errors.New("decrypt: malformed ciphertext")

	// ErrPadding means the PKCS#7 padding of the decrypted data is invalid.
	// With a valid signature this only happens when the sender is broken.
	ErrPadding = errors.New("decrypt: invalid padding")
)

// Errors returned when loading, generating or adding keys.
var (
	// ErrKeyFile means key material (PEM, PKCS#12, or a file holding either)
	// cannot be used: unreadable, malformed, not RSA, encrypted PEM, or a
	// certificate that does not match the private key. [KeyRing.Add] returns
	// it for a Key it cannot use.
	ErrKeyFile = errors.New("decrypt: unusable key material")

	// ErrKeyPassword means a PKCS#12 file could not be opened with the given
	// password. It is always returned together with [ErrKeyFile].
	ErrKeyPassword = errors.New("decrypt: wrong key file password")

	// ErrDuplicateKey means [KeyRing.Add] was given a key whose id or
	// certificate thumbprint is already in the ring. Remove the old key first
	// to replace it.
	ErrDuplicateKey = errors.New("decrypt: key already in ring")
)
