package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/graphhook/graphhook/decrypt"
	"github.com/graphhook/graphhook/graphsim"
)

// rawPoolSize is the number of distinct items the raw decrypt measurement
// cycles through. Each pass over them uses a fresh KeyRing, so its cache of
// unwrapped keys never hits; building the ring costs one crypto/rsa
// operation per pass (the OpenSSL backend checks each key it loads), under
// 0.5 % of a pass.
const rawPoolSize = 1024

// rawResult is what -raw-rsa prints as JSON.
type rawResult struct {
	Backend    string  `json:"backend"`
	Bits       int     `json:"bits"`
	Goroutines int     `json:"goroutines"`
	Decrypts   int64   `json:"decrypts"`
	Seconds    float64 `json:"seconds"`
	PerSecond  float64 `json:"perSecond"`
	// CPUPerDecrypt is the process's CPU time (getrusage) per decrypt, in
	// milliseconds: unlike PerSecond it hardly changes when other
	// processes share the cores.
	CPUPerDecrypt float64 `json:"cpuMsPerDecrypt"`
}

// rawDecryptRate measures how many rich items per second KeyRing.Decrypt
// (RSA-OAEP unwrap, HMAC, AES; RSA is over 99 % of it) opens with the
// backend this binary was built with, on every core
// (runtime.GOMAXPROCS goroutines), for d.
func rawDecryptRate(ctx context.Context, keyFile string, d time.Duration) (rawResult, error) {
	key, err := decrypt.LoadFile(keyFile, "")
	if err != nil {
		return rawResult{}, err
	}
	pool := make([]*decrypt.EncryptedContent, rawPoolSize)
	for i := range pool {
		ec, err := graphsim.Encrypt(key.Certificate, "raw", graphsim.ResourceContent("me/messages", strconv.Itoa(i), graphsim.DefaultTenantID))
		if err != nil {
			return rawResult{}, err
		}
		pool[i] = ec
	}
	g := runtime.GOMAXPROCS(0)
	var (
		total    atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	cpu0 := selfCPU()
	start := time.Now()
	deadline := start.Add(d)
	for w := range g {
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				ring, err := decrypt.NewKeyRing(key)
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				for i := range pool {
					if _, err := ring.Decrypt(pool[(i+w*rawPoolSize/g)%rawPoolSize]); err != nil {
						errOnce.Do(func() { firstErr = err })
						return
					}
					total.Add(1)
					if i%32 == 31 && !time.Now().Before(deadline) {
						break
					}
				}
			}
		})
	}
	wg.Wait()
	cpu := selfCPU() - cpu0
	if firstErr != nil {
		return rawResult{}, fmt.Errorf("loadbench: raw decrypt: %w", firstErr)
	}
	el := time.Since(start).Seconds()
	n := total.Load()
	return rawResult{
		Backend: decrypt.Backend, Bits: key.Private.N.BitLen(), Goroutines: g,
		Decrypts: n, Seconds: el, PerSecond: float64(n) / el,
		CPUPerDecrypt: ms(cpu) / float64(max(n, 1)),
	}, ctx.Err()
}

// measureRaw runs bin -raw-rsa in a separate process (so each backend is
// measured by a binary built with it) and checks it used wantBackend.
func measureRaw(ctx context.Context, bin, keyFile, wantBackend string, d time.Duration) (rawResult, error) {
	cmd := exec.CommandContext(ctx, bin, "-raw-rsa", "-key", keyFile, "-duration", d.String())
	outp, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return rawResult{}, fmt.Errorf("%s -raw-rsa: %w: %s", bin, err, ee.Stderr)
		}
		return rawResult{}, err
	}
	var r rawResult
	if err := json.Unmarshal(outp, &r); err != nil {
		return rawResult{}, fmt.Errorf("%s -raw-rsa printed %q: %w", bin, outp, err)
	}
	if r.Backend != wantBackend {
		return rawResult{}, fmt.Errorf("%s -raw-rsa used backend %q, want %q", bin, r.Backend, wantBackend)
	}
	return r, nil
}

// printRaw writes r as JSON, for the parent harness.
func printRaw(w io.Writer, r rawResult) error {
	return json.NewEncoder(w).Encode(r)
}
