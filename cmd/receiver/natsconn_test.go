package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/graphhook/graphhook/internal/natstest"
	"github.com/graphhook/graphhook/internal/testkit"
)

func TestConnectNATSRetriesUntilServerStarts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	var logs testkit.SyncBuffer
	nc, err := connectNATS(natsConnConfig{
		URLs:   []string{"nats://127.0.0.1:" + strconv.Itoa(port)},
		Name:   "test",
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatalf("connectNATS with the server down = %v, want a connection that retries", err)
	}
	t.Cleanup(nc.Close)
	if nc.IsConnected() {
		t.Fatal("connected to nothing")
	}
	natstest.RunServer(t, t.TempDir(), port)
	testkit.CheckFor(t, 10*time.Second, func() error {
		if !nc.IsConnected() {
			return errors.New("not connected")
		}
		return nil
	})
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AccountInfo(t.Context()); err != nil {
		t.Fatal(err)
	}
	testkit.CheckFor(t, 5*time.Second, func() error {
		if !strings.Contains(logs.String(), "NATS connected") {
			return fmt.Errorf("connect not logged: %q", logs.String())
		}
		return nil
	})
}

func TestConnectNATSAuth(t *testing.T) {
	tests := []struct {
		name    string
		cfg     natsConnConfig
		wantErr error
	}{
		{"no urls", natsConnConfig{}, errNATSConfig},
		{"blank urls", natsConnConfig{URLs: []string{" , "}}, errNATSConfig},
		{"two auth methods", natsConnConfig{URLs: []string{"nats://127.0.0.1:1"}, User: "u", Token: "t"}, errNATSConfig},
		{"password without user", natsConnConfig{URLs: []string{"nats://127.0.0.1:1"}, Password: "p"}, errNATSConfig},
		{"cert without key", natsConnConfig{URLs: []string{"nats://127.0.0.1:1"}, TLSCertFile: "c.pem"}, errNATSConfig},
		{"missing seed file", natsConnConfig{URLs: []string{"nats://127.0.0.1:1"}, NKeySeedFile: "/nonexistent/seed.nk"}, errNATSConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc, err := connectNATS(tt.cfg)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("connectNATS = %v, want %v", err, tt.wantErr)
			}
			if nc != nil {
				nc.Close()
			}
		})
	}
}
