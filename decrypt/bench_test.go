package decrypt

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// benchKeys are generated once per benchmark binary (RSA-4096 takes seconds).
var benchKeys = sync.OnceValues(func() (map[int]Key, error) {
	keys := make(map[int]Key)
	for _, bits := range []int{2048, 4096} {
		k, err := GenerateKey(bits, "bench", time.Hour)
		if err != nil {
			return nil, err
		}
		k.ID = fmt.Sprintf("bench-%d", bits)
		keys[bits] = k
	}
	return keys, nil
})

// BenchmarkUnwrap measures the RSA-OAEP(SHA-1) unwrap of one dataKey by
// each backend in this build: crypto/rsa always, OpenSSL under
// -tags openssl. BenchmarkUnwrapParallel runs the same on every core.
// Compare the backends with
//
//	go test -tags openssl ./decrypt -run '^$' -bench 'BenchmarkUnwrap' -count 6 >unwrap.txt
//	benchstat -col /backend unwrap.txt
func BenchmarkUnwrap(b *testing.B) {
	for name, unwrap := range unwrapBackends(b) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := unwrap(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkUnwrapParallel(b *testing.B) {
	for name, unwrap := range unwrapBackends(b) {
		b.Run(name, func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := unwrap(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkUnwrapPaired alternates a crypto/rsa and a backend unwrap of
// the same dataKey in each iteration and reports the median over
// iterations of go/backend as "speedup". Pairing cancels the load of a
// shared machine far better than comparing benchmarks run seconds apart.
// It needs a second backend (-tags openssl).
func BenchmarkUnwrapPaired(b *testing.B) {
	if Backend == "go" {
		b.Skip("only one backend in this build; use -tags openssl")
	}
	var goUnwrap func() ([]byte, error)
	for name, unwrap := range unwrapBackends(b) {
		if strings.HasSuffix(name, "/backend=go") {
			goUnwrap = unwrap
			continue
		}
		b.Run(strings.Split(name, "/")[0], func(b *testing.B) {
			var ratios []float64
			for b.Loop() {
				t0 := time.Now()
				if _, err := goUnwrap(); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if _, err := unwrap(); err != nil {
					b.Fatal(err)
				}
				ratios = append(ratios, float64(t1.Sub(t0))/float64(time.Since(t1)))
			}
			slices.Sort(ratios)
			b.ReportMetric(ratios[len(ratios)/2], "speedup")
		})
	}
}

// unwrapBackends yields "bits=N/backend=X" and an unwrap of one dataKey by
// that backend, in a stable order.
func unwrapBackends(b *testing.B) iter.Seq2[string, func() ([]byte, error)] {
	keys, err := benchKeys()
	if err != nil {
		b.Fatal(err)
	}
	return func(yield func(string, func() ([]byte, error)) bool) {
		for _, bits := range []int{2048, 4096} {
			k := keys[bits]
			native, err := newNativeKey(k.Private)
			if err != nil {
				b.Fatal(err)
			}
			defer native.release()
			c := sealed(b, k, []byte("x"))
			wrapped, err := base64.StdEncoding.DecodeString(c.DataKey)
			if err != nil {
				b.Fatal(err)
			}
			if !yield(fmt.Sprintf("bits=%d/backend=go", bits), func() ([]byte, error) { return unwrapKey(k.Private, wrapped) }) {
				return
			}
			if Backend != "go" {
				if !yield(fmt.Sprintf("bits=%d/backend=%s", bits, Backend), func() ([]byte, error) { return native.unwrap(k.Private, wrapped) }) {
					return
				}
			}
		}
	}
}

// benchPayloadSize is the plaintext size: a typical 2 KiB resource.
const benchPayloadSize = 2048

// BenchmarkDecrypt measures decrypting a 2 KiB payload. OAEP is the bare
// rsa.DecryptOAEP of the same dataKey with the same key: the physical floor.
// Content and KeyRing are the full paths; NonRSA is everything but the RSA
// step (base64, length checks, HMAC, AES-CBC, unpadding). The overhead of
// the package is KeyRing/OAEP - 1, or NonRSA/OAEP measured directly, or
// the "overhead" metric of Paired.
//
//	go test ./decrypt -run '^$' -bench BenchmarkDecrypt -count 5 -benchtime 1s
func BenchmarkDecrypt(b *testing.B) {
	keys, err := benchKeys()
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, benchPayloadSize)
	rand.Read(payload)
	payload = []byte(base64.StdEncoding.EncodeToString(payload)[:benchPayloadSize]) // JSON-like ASCII
	for _, bits := range []int{2048, 4096} {
		k := keys[bits]
		ring := newRing(b, k)
		ring.cache.disabled = true // measure the RSA path; Redelivered measures the cache
		c := sealed(b, k, payload)
		wrapped, err := base64.StdEncoding.DecodeString(c.DataKey)
		if err != nil {
			b.Fatal(err)
		}
		sym, err := unwrapKey(k.Private, wrapped)
		if err != nil {
			b.Fatal(err)
		}
		prefix := fmt.Sprintf("RSA-%d/", bits)

		b.Run(prefix+"OAEP", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := rsa.DecryptOAEP(sha1.New(), nil, k.Private, wrapped, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(prefix+"Content", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(benchPayloadSize)
			for b.Loop() {
				if _, err := Content(k.Private, c); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(prefix+"KeyRing", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(benchPayloadSize)
			for b.Loop() {
				if _, err := ring.Decrypt(c); err != nil {
					b.Fatal(err)
				}
			}
		})
		// Redelivered decrypts content the ring has unwrapped before, as
		// when Graph delivers a batch again: the unwrap cache saves the RSA
		// step, so this is close to NonRSA.
		b.Run(prefix+"Redelivered", func(b *testing.B) {
			cached := newRing(b, k)
			if _, err := cached.Decrypt(c); err != nil {
				b.Fatal(err)
			}
			ops := cached.rsaOps.Load()
			b.ReportAllocs()
			b.SetBytes(benchPayloadSize)
			for b.Loop() {
				if _, err := cached.Decrypt(c); err != nil {
					b.Fatal(err)
				}
			}
			if cached.rsaOps.Load() != ops {
				b.Fatal("redelivered content was unwrapped again")
			}
		})
		b.Run(prefix+"NonRSA", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(benchPayloadSize)
			for b.Loop() {
				var w wire
				if err := w.decode(c); err != nil {
					b.Fatal(err)
				}
				if _, err := w.open(sym); err != nil {
					b.Fatal(err)
				}
			}
		})
		// Paired alternates the bare OAEP step and a full KeyRing.Decrypt in
		// each iteration and reports the median over iterations of
		// full/OAEP - 1 as "overhead". Pairing and the median cancel the load
		// of a shared machine far better than comparing two benchmarks run
		// seconds apart.
		b.Run(prefix+"Paired", func(b *testing.B) {
			var ratios []float64
			for b.Loop() {
				t0 := time.Now()
				if _, err := rsa.DecryptOAEP(sha1.New(), nil, k.Private, wrapped, nil); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if _, err := ring.Decrypt(c); err != nil {
					b.Fatal(err)
				}
				ratios = append(ratios, float64(time.Since(t1))/float64(t1.Sub(t0)))
			}
			slices.Sort(ratios)
			b.ReportMetric(ratios[len(ratios)/2]-1, "overhead")
		})
		b.Run(prefix+"OAEP-parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := rsa.DecryptOAEP(sha1.New(), nil, k.Private, wrapped, nil); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		b.Run(prefix+"KeyRing-parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(benchPayloadSize)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := ring.Decrypt(c); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
