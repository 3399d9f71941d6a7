//go:build openssl && cgo

package decrypt

import (
	"runtime"
	"testing"
)

func TestBackendIsOpenSSL(t *testing.T) {
	if Backend != "openssl" {
		t.Fatalf("Backend = %q in a -tags openssl build", Backend)
	}
}

// A failed unwrap leaves no entry on the thread's OpenSSL error queue, where
// it would be blamed on the next OpenSSL call of any library in the process.
func TestOpenSSLErrorQueueIsLeftEmpty(t *testing.T) {
	k := testKey(t, 0)
	native, err := newNativeKey(k.Private)
	if err != nil {
		t.Fatal(err)
	}
	defer native.release()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	garbage := make([]byte, k.Private.Size())
	garbage[10] = 1
	if _, err := native.unwrap(k.Private, garbage); err == nil {
		t.Fatal("garbage unwrapped")
	}
	if !opensslQueueEmpty() {
		t.Fatal("OpenSSL error queue not empty after a failed unwrap")
	}
}

// The EVP_PKEY is freed when its key is removed and no Decrypt uses it; a
// Decrypt in flight keeps it alive until it returns.
func TestOpenSSLKeyFreedOnRemove(t *testing.T) {
	k := testKey(t, 0)
	ring := newRing(t, k)
	c := sealed(t, k, []byte("x"))
	if _, err := ring.Decrypt(c); err != nil {
		t.Fatal(err)
	}
	keys, err := ring.selectKeys(k.ID, "") // what a running Decrypt holds
	if err != nil {
		t.Fatal(err)
	}
	h := keys[0].native.h
	if !ring.Remove(k.ID) {
		t.Fatal("Remove = false")
	}
	if h.freed.Load() {
		t.Fatal("EVP_PKEY freed while a Decrypt still uses it")
	}
	if _, err := keys[0].native.unwrap(nil, mustB64(t, c.DataKey)); err != nil {
		t.Fatalf("in-flight unwrap after Remove: %v", err)
	}
	keys[0].native.release()
	if !h.freed.Load() {
		t.Fatal("EVP_PKEY not freed after Remove and the last release")
	}
}

// A key refused by Add (a duplicate) is freed at once.
func TestOpenSSLKeyFreedWhenAddFails(t *testing.T) {
	k := testKey(t, 0)
	ring := newRing(t, k)
	if err := ring.Add(k); err == nil {
		t.Fatal("duplicate Add succeeded")
	}
	if ring.Len() != 1 {
		t.Fatalf("Len = %d", ring.Len())
	}
	// Every key still in the ring is alive.
	keys, err := ring.selectKeys(k.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	defer keys[0].native.release()
	if keys[0].native.h.freed.Load() {
		t.Fatal("the ring's own key was freed")
	}
}
