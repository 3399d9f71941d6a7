package decrypt_test

import (
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/graphhook/graphhook/decrypt"
	"github.com/graphhook/graphhook/graphsim"
)

// Generate a key pair for a subscription with includeResourceData. The
// certificate goes to Graph; the private key stays with the receiver.
func ExampleGenerateKey() {
	k, err := decrypt.GenerateKey(2048, "graphhook.example.com", 365*24*time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	k.ID = "graphhook-2026-05" // our encryptionCertificateId, up to 128 characters

	// The subscription carries the public half:
	//   "encryptionCertificate":   k.EncryptionCertificate()  (base64 DER)
	//   "encryptionCertificateId": k.ID
	fmt.Println("certificate set:", k.EncryptionCertificate() != "")
	fmt.Println("thumbprint length:", len(k.Thumbprint()))

	// Persist the private key (mode 0600) and load it back at startup.
	pemData, err := k.MarshalPEM()
	if err != nil {
		log.Fatal(err)
	}
	loaded, err := decrypt.ParsePEM(pemData)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("same certificate after reload:", loaded.Thumbprint() == k.Thumbprint())
	// Output:
	// certificate set: true
	// thumbprint length: 40
	// same certificate after reload: true
}

// Decrypt the encryptedContent of a rich notification. Encrypt plays
// Microsoft Graph here.
func ExampleKeyRing_Decrypt() {
	k, err := decrypt.GenerateKey(2048, "graphhook.example.com", time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	k.ID = "graphhook-2026-05"
	ring, err := decrypt.NewKeyRing(k)
	if err != nil {
		log.Fatal(err)
	}

	content, err := graphsim.Encrypt(k.Certificate, k.ID, []byte(`{"id":"1625126194597","body":{"content":"Hello World"}}`))
	if err != nil {
		log.Fatal(err)
	}
	plaintext, err := ring.Decrypt(content)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(plaintext))

	// Tampering is caught by the HMAC before anything is decrypted.
	tampered := *content
	tampered.DataSignature = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	_, err = ring.Decrypt(&tampered)
	fmt.Println(errors.Is(err, decrypt.ErrSignature))
	// Output:
	// {"id":"1625126194597","body":{"content":"Hello World"}}
	// true
}

// Rotate keys without losing a notification: the old and the new key both
// decrypt until the old one can no longer be referenced. Graph retries a
// failed delivery for up to 4 hours, so keep the old key at least that long
// after the last subscription moved to the new certificate.
func ExampleKeyRing_rotation() {
	oldKey, err := decrypt.GenerateKey(2048, "graphhook", time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	oldKey.ID = "2026-04"
	newKey, err := decrypt.GenerateKey(2048, "graphhook", time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	newKey.ID = "2026-05"

	ring, err := decrypt.NewKeyRing(oldKey)
	if err != nil {
		log.Fatal(err)
	}
	inFlight, _ := graphsim.Encrypt(oldKey.Certificate, oldKey.ID, []byte(`"sent before the switch"`))

	// 1. Add the new key, 2. renew the subscriptions with newKey's certificate and id.
	if err := ring.Add(newKey); err != nil {
		log.Fatal(err)
	}
	fresh, _ := graphsim.Encrypt(newKey.Certificate, newKey.ID, []byte(`"sent after the switch"`))
	for _, c := range []*decrypt.EncryptedContent{inFlight, fresh} {
		pt, err := ring.Decrypt(c)
		fmt.Println(string(pt), err)
	}

	// 3. After the retry window, retire the old key.
	ring.Remove(oldKey.ID)
	_, err = ring.Decrypt(inFlight)
	fmt.Println(errors.Is(err, decrypt.ErrUnknownKey), ring.Len())
	// Output:
	// "sent before the switch" <nil>
	// "sent after the switch" <nil>
	// true 1
}
