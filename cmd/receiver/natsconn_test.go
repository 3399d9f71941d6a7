package main

// The tests of natsconn.go, moved with it from package natspub.

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/graphhook/graphhook/internal/natstest"
	"github.com/graphhook/graphhook/internal/testkit"
	"github.com/nats-io/nats.go/jetstream"
)

func TestConnectRetriesUntilServerStarts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	var logs testkit.SyncBuffer
	nc, err := Connect(ConnConfig{
		URLs:   []string{"nats://127.0.0.1:" + strconv.Itoa(port)},
		Name:   "test",
		Token:  "", // no auth: the test server has none
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatalf("Connect with the server down = %v, want a connection that retries", err)
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

func TestConnectAuth(t *testing.T) {
	tests := []struct {
		name    string
		cfg     ConnConfig
		wantErr error
	}{
		{"no urls", ConnConfig{}, errNATSConfig},
		{"blank urls", ConnConfig{URLs: []string{" , "}}, errNATSConfig},
		{"two auth methods", ConnConfig{URLs: []string{"nats://127.0.0.1:1"}, User: "u", Token: "t"}, errNATSConfig},
		{"password without user", ConnConfig{URLs: []string{"nats://127.0.0.1:1"}, Password: "p"}, errNATSConfig},
		{"cert without key", ConnConfig{URLs: []string{"nats://127.0.0.1:1"}, TLSCertFile: "c.pem"}, errNATSConfig},
		{"missing seed file", ConnConfig{URLs: []string{"nats://127.0.0.1:1"}, NKeySeedFile: "/nonexistent/seed.nk"}, errNATSConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc, err := Connect(tt.cfg)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Connect = %v, want %v", err, tt.wantErr)
			}
			if nc != nil {
				nc.Close()
			}
		})
	}
}
