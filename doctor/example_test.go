package doctor_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/http/httptest"

	"github.com/graphhook/graphhook/doctor"
	"github.com/graphhook/graphhook/receiver"
)

// ExampleRun checks a receiver served over TLS. In production, leave
// RootCAs nil (the system's roots, as a public client has) and pass the
// public URL; here the test server's own certificate is the root, and the
// URL names an IP address on loopback, which the DNS check warns about.
func ExampleRun() {
	rcv, err := receiver.New(receiver.Config{ClientStates: []string{"a-long-random-secret"}, Sink: receiver.Callbacks{}})
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := httptest.NewTLSServer(rcv)
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())

	rep, err := doctor.Run(context.Background(), doctor.Config{URL: srv.URL + "/notifications", RootCAs: roots})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range rep.Checks {
		fmt.Println(c.Status, c.ID)
	}
	fmt.Println("OK:", rep.OK())
	// Output:
	// pass url
	// warn dns
	// pass tls
	// pass tls12
	// pass handshake
	// pass client-state
	// skip not-published
	// pass answer-time
	// pass body-limit
	// OK: true
}
