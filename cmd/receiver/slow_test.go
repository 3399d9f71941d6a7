package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graphhook/graphhook/internal/testkit"
)

// slowPost opens a connection to addr, sends the headers of a notification
// POST announcing size body bytes and the first part of the body, then
// trickles a byte every 100 ms. It returns the status of the answer (0 if
// the connection was closed without one) once the server answered or cut
// the connection.
func slowPost(t *testing.T, addr string, size int, stop <-chan struct{}) (int, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /notifications HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{\"value\":[", addr, size)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if _, err := conn.Write([]byte(" ")); err != nil {
				return
			}
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return 0, fmt.Errorf("not answered nor closed within 20 s")
		}
		return 0, nil // closed without an answer
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
		return 0, fmt.Errorf("503 without Retry-After")
	}
	return resp.StatusCode, nil
}

// TestSlowClientsAreBoundedAndCut: 50 clients announce 1 MiB bodies and
// trickle them. The in-flight budget (4 MiB) admits four and answers the
// rest 503 with Retry-After at once, counted; the admitted ones are cut at
// --body-timeout; afterwards a genuine batch is accepted again.
func TestSlowClientsAreBoundedAndCut(t *testing.T) {
	const clientState = "a-long-enough-client-state-value"
	p := startInProcess(t, baseArgs(t.TempDir(), "--client-state", clientState,
		"--max-body-bytes", "1MiB", "--max-inflight-bytes", "4MiB", "--body-timeout", "1s"), nil)
	addr := strings.TrimPrefix(p.base, "http://")
	stop := make(chan struct{})
	defer close(stop)

	const clients = 50
	start := time.Now()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses = map[int]int{}
	)
	for range clients {
		wg.Go(func() {
			status, err := slowPost(t, addr, 1<<20, stop)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			statuses[status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	took := time.Since(start)
	if took > 10*time.Second {
		t.Errorf("the slow clients were dealt with in %v, want a few seconds (--body-timeout 1s)", took)
	}
	if statuses[http.StatusServiceUnavailable] < clients-4 || statuses[http.StatusServiceUnavailable] == clients {
		t.Errorf("answers %v: want the budget to admit up to 4 of %d and refuse the rest with 503", statuses, clients)
	}
	_, ex, _ := get(t.Context(), p.base+"/metrics")
	if got, _ := metricValue(ex, `graphhook_requests_shed_total{reason="budget"}`); got != fmt.Sprint(statuses[http.StatusServiceUnavailable]) {
		t.Errorf("graphhook_requests_shed_total{reason=\"budget\"} = %q, want %d", got, statuses[http.StatusServiceUnavailable])
	}
	testkit.CheckFor(t, 5*time.Second, func() error {
		_, ex, _ := get(t.Context(), p.base+"/metrics")
		if got, _ := metricValue(ex, "graphhook_inflight_body_bytes"); got != "0" {
			return fmt.Errorf("graphhook_inflight_body_bytes = %s, want 0 once the clients are gone", got)
		}
		return nil
	})
	if status, err := post(t.Context(), http.DefaultClient, p.base+"/notifications", batchBody(t, clientState, "after-1")); err != nil || status != http.StatusAccepted {
		t.Errorf("a genuine batch after the attack: %d %v, want 202", status, err)
	}
}

// TestConnectionLimit holds --max-connections idle connections: a further
// client is not served until one of them closes.
func TestConnectionLimit(t *testing.T) {
	p := startInProcess(t, baseArgs(t.TempDir(), "--client-state", "a-long-enough-client-state-value", "--max-connections", "4"), nil)
	addr := strings.TrimPrefix(p.base, "http://")
	var held []net.Conn
	for range 4 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	client := &http.Client{Timeout: 500 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
	testkit.CheckFor(t, 5*time.Second, func() error {
		// Until the server accepted the four, a fifth may still get in.
		resp, err := client.Get(p.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			return fmt.Errorf("a fifth connection was served")
		}
		return nil
	})
	held[0].Close()
	testkit.CheckFor(t, 5*time.Second, func() error {
		resp, err := client.Get(p.base + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
}

// TestSlowLargeBodiesLeaveRoomForSmallOnes: slow clients announcing large
// bodies fill the large bodies' share of the budget (three quarters);
// small genuine batches still get 202, from the quarter kept for them,
// while a further large body is refused.
func TestSlowLargeBodiesLeaveRoomForSmallOnes(t *testing.T) {
	const clientState = "a-long-enough-client-state-value"
	// 8 MiB budget: 6 MiB for bodies over 256 KiB, that is three slow 2 MiB
	// clients; 2 MiB kept for small ones.
	p := startInProcess(t, baseArgs(t.TempDir(), "--client-state", clientState,
		"--max-body-bytes", "2MiB", "--max-inflight-bytes", "8MiB", "--body-timeout", "30s", "--shutdown-timeout", "1s"), nil)
	addr := strings.TrimPrefix(p.base, "http://")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// Stopping the receiver cuts the slow clients after --shutdown-timeout.
	t.Cleanup(func() { close(stop); _ = p.stop(t); wg.Wait() })

	const slow = 3
	for range slow {
		wg.Go(func() { _, _ = slowPost(t, addr, 2<<20, stop) })
	}
	testkit.CheckFor(t, 10*time.Second, func() error {
		_, ex, _ := get(t.Context(), p.base+"/metrics")
		if got, _ := metricValue(ex, "graphhook_inflight_body_bytes"); got != strconv.FormatFloat(slow*2<<20, 'g', -1, 64) {
			return fmt.Errorf("graphhook_inflight_body_bytes = %s, want %d: the slow clients hold the large share", got, slow*2<<20)
		}
		return nil
	})
	// A fourth large body would still fit in the whole budget, but not in
	// the large bodies' share: refused at once.
	refused := make(chan int, 1)
	wg.Go(func() {
		status, err := slowPost(t, addr, 2<<20, stop)
		if err != nil {
			t.Error(err)
		}
		refused <- status
	})
	select {
	case status := <-refused:
		if status != http.StatusServiceUnavailable {
			t.Errorf("a large body beyond the large share: %d, want 503", status)
		}
	case <-time.After(10 * time.Second):
		t.Error("a large body beyond the large share was not answered within 10 s, want 503 at once")
	}
	for i := range 20 {
		status, err := post(t.Context(), http.DefaultClient, p.base+"/notifications", batchBody(t, clientState, fmt.Sprintf("small-%d", i)))
		if err != nil || status != http.StatusAccepted {
			t.Fatalf("small batch %d while the slow clients hold the large share: %d %v, want 202", i, status, err)
		}
	}
}
