// Package decrypt decrypts the encryptedContent of Microsoft Graph rich
// change notifications (subscriptions with includeResourceData set to
// true), and loads, generates and rotates the RSA keys it needs.
//
// It is pure functions over bytes and keys: no HTTP, no logging, no I/O
// except [LoadFile].
//
// # Algorithm
//
// Graph encrypts every notification item with a fresh 32-byte symmetric key
// k and sends four base64 values plus the id of our certificate:
//
//	dataKey       = RSA-OAEP(SHA-1, MGF1-SHA-1, no label) of k, for our certificate's public key
//	data          = AES-256-CBC(key k, IV k[:16], PKCS#7 padding) of the resource JSON
//	dataSignature = HMAC-SHA256(key k) over the raw ciphertext bytes (not the base64 text)
//	encryptionCertificateId, encryptionCertificateThumbprint (hex SHA-1 of the certificate DER)
//
// [Content] reverses this: it unwraps k with the private key, verifies the
// HMAC in constant time before decrypting anything (so there is no padding
// oracle), decrypts, and fully validates the padding. Every failure is a
// distinct sentinel ([ErrEncoding], [ErrKeyUnwrap], [ErrSignature],
// [ErrCiphertext], [ErrPadding], [ErrUnknownKey]) for metrics and logs;
// none of them carries key material or plaintext. A receiver should answer
// Graph the same way whichever check failed.
//
// [Encrypt] does what Graph does, for simulators and tests.
//
// # Keys
//
// A subscription names its public key twice: encryptionCertificate (base64
// DER, from [Key.EncryptionCertificate]) and encryptionCertificateId (any
// string up to 128 characters, our [Key.ID]). Keys come from PEM files
// ([ParsePEM]: PKCS#1 or PKCS#8 plus the certificate), PKCS#12/PFX files
// ([ParsePKCS12]), either via [LoadFile], or are made by [GenerateKey]:
//
//	k, err := decrypt.GenerateKey(2048, "graphhook", 365*24*time.Hour)
//	k.ID = "2026-05"
//	pemBytes, err := k.MarshalPEM() // store with mode 0600
//	sub.EncryptionCertificate, sub.EncryptionCertificateID = k.EncryptionCertificate(), k.ID
//
// # Rotation
//
// A [KeyRing] holds several keys and picks one per item: by
// encryptionCertificateId first (cross-checked against the thumbprint when
// both are known), else by thumbprint alone. To rotate without losing a
// notification:
//
//  1. Add the new key to the ring ([KeyRing.Add]) while the old one stays.
//  2. Update or recreate the subscriptions with the new certificate and id.
//  3. Keep the old key until no notification can reference it any more:
//     Graph retries failed deliveries for up to 4 hours, so wait at least
//     that long after the last subscription switched.
//  4. Remove the old key ([KeyRing.Remove]); anything still encrypted for
//     it now fails with [ErrUnknownKey].
//
// Add and Remove are safe while other goroutines call [KeyRing.Decrypt].
//
// # Redelivery
//
// Graph delivers a batch again when it got no 2xx answer in time. A
// [KeyRing] remembers the last [UnwrapCacheSize] symmetric keys it
// unwrapped, keyed by the SHA-256 of dataKey and the ring key that
// unwrapped it, so the second delivery costs no RSA operation. A cached key
// must still verify the content's HMAC, only keys that opened their
// content are kept, and removing a key drops its entries.
// [KeyRing.Cached] tells beforehand, for a hash lookup, whether an item will
// need RSA, and [KeyRing.DecryptCounted] how many RSA operations it took: a
// caller that admits work by its cost (as the receiver does) counts a
// redelivered item as nearly free and learns RSA's cost from RSA alone.
//
// # Backends
//
// RSA is nearly all of the cost of a rich notification. By default the
// ring unwraps with crypto/rsa and binaries stay static (CGO_ENABLED=0
// works). Built with
//
//	go build -tags openssl ./...
//
// and cgo, [KeyRing] uses the system's libcrypto (OpenSSL 1.1.1 or 3.x,
// EVP_PKEY_decrypt with RSA-OAEP, SHA-1 and MGF1-SHA-1). On the
// development machine (OpenSSL 3.0, Go 1.26) its unwrap is 3.2 times as
// fast as crypto/rsa's for RSA-2048 and 1.5 times for RSA-4096
// (BenchmarkUnwrapPaired). It needs libcrypto at run time and its headers
// to build (Debian: libssl-dev). [Backend] names the one in
// use. Each key is loaded into OpenSSL once, checked against crypto/rsa
// with one unwrap when it is added, and freed when it is removed and no
// decryption uses it any more. [Content] always uses crypto/rsa.
package decrypt
