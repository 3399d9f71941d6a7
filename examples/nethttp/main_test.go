package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/graphhook/graphhook/internal/testkit"
)

func TestExampleServesHandshakeAndBatch(t *testing.T) {
	// testkit.SyncBuffer is a bytes.Buffer safe for the server's and the test's goroutines.
	var out testkit.SyncBuffer
	getenv := func(k string) string {
		if k == "GRAPH_CLIENT_STATE" {
			return "secretClientValue"
		}
		return ""
	}
	// Serve also checks that run returns nil once the test ends.
	addr := testkit.Serve(t, func(ctx context.Context, ready chan<- string) error {
		return run(ctx, []string{"-listen", "127.0.0.1:0"}, getenv, &out, ready)
	})

	resp, err := http.Post("http://"+addr+"/notifications?validationToken=hello+graph", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "hello graph" {
		t.Fatalf("handshake: %d %q", resp.StatusCode, b)
	}

	body := `{"value":[{"subscriptionId":"s1","clientState":"secretClientValue","changeType":"created","resource":"me/messages/1","tenantId":"t"},
	{"subscriptionId":"s1","clientState":"forged","changeType":"created","resource":"me/messages/2","tenantId":"t"},
	{"subscriptionId":"s1","clientState":"secretClientValue","lifecycleEvent":"missed","tenantId":"t"}]}`
	resp, err = http.Post("http://"+addr+"/lifecycle", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("batch: status %d", resp.StatusCode)
	}
	want := "change created me/messages/1\nlifecycle missed s1\nrejected client_state\n"
	if out.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestExampleRefusesToRunWithoutClientState(t *testing.T) {
	err := run(t.Context(), nil, func(string) string { return "" }, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "GRAPH_CLIENT_STATE") {
		t.Errorf("run = %v, want an error naming GRAPH_CLIENT_STATE", err)
	}
}
