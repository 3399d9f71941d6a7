package subscriptions_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/graphhook/graphhook/graphsim"
	"github.com/graphhook/graphhook/natspub"
	"github.com/graphhook/graphhook/receiver"
	"github.com/graphhook/graphhook/subscriptions"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Example wires a Manager the way a daemon does, against graphsim over
// HTTPS: an azidentity credential, a Client, a receiver whose clientState
// check reads the Manager's bucket, and one declared subscription that the
// Manager creates and keeps alive. For a real tenant only the credential
// (tenant, app, secret or certificate), the Cloud and a public
// NotificationURL change.
//
// The clientState is generated (64 random characters), stored in the
// JetStream bucket and never printed: every replica's receiver checks it
// in constant time through ClientStateLookup.
func Example() {
	ctx := context.Background()

	// Microsoft Graph and Entra ID, simulated.
	sim, err := graphsim.New(graphsim.Config{ClientSecret: "app-secret"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sim.Close()
	graphURL, ca, err := sim.StartTLS("127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	trust := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca}}}

	// NATS with JetStream, in process.
	dir, _ := os.MkdirTemp("", "graphhook-example")
	defer os.RemoveAll(dir)
	ns, err := natspub.StartServer(natspub.ServerConfig{StoreDir: dir, Port: -1})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	pub, err := natspub.New(ctx, natspub.Config{Conn: nc})
	if err != nil {
		fmt.Println(err)
		return
	}

	// The credential and the client.
	cred, err := subscriptions.NewCredential(subscriptions.CredentialConfig{
		TenantID:      graphsim.DefaultTenantID,
		ClientID:      graphsim.DefaultAppID,
		ClientSecret:  "app-secret",
		AuthorityHost: graphURL, // for a national cloud: Cloud: subscriptions.CloudUSGov
		Transport:     trust,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	client, err := subscriptions.NewClient(subscriptions.ClientConfig{Credential: cred, BaseURL: graphURL + "/v1.0", HTTPClient: trust})
	if err != nil {
		fmt.Println(err)
		return
	}

	// The receiver checks clientStates against the Manager's bucket.
	var mgr *subscriptions.Manager
	rcv, err := receiver.New(receiver.Config{
		Sink: pub,
		ClientStateLookup: func(ctx context.Context, id string) (string, error) {
			return mgr.ClientStateLookup(ctx, id)
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	public := httptest.NewServer(rcv) // in production: your public HTTPS URL
	defer public.Close()

	mgr, err = subscriptions.New(ctx, subscriptions.Config{
		Client:    client,
		JetStream: js,
		TenantID:  graphsim.DefaultTenantID,
		Subscriptions: []subscriptions.Spec{{
			Resource:                 "users/42/messages",
			ChangeType:               "created,updated",
			NotificationURL:          public.URL,
			LifecycleNotificationURL: public.URL,
		}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer mgr.Close()
	if err := mgr.Reconcile(ctx); err != nil { // the background loop would do this too
		fmt.Println(err)
		return
	}
	for _, r := range mgr.Records() {
		fmt.Println("resource:", r.Resource)
		fmt.Println("owner:", r.Owner)
		fmt.Println("clientState length:", len(r.ClientState))
		fmt.Println("expires in under 7 days:", time.Until(r.Expiration) < 7*24*time.Hour)
		fmt.Println("renewal due before expiry:", r.RenewAt.Before(r.Expiration))
	}
	fmt.Println("lease held:", mgr.Holder())
	// Output:
	// resource: users/42/messages
	// owner: graphhook
	// clientState length: 64
	// expires in under 7 days: true
	// renewal due before expiry: true
	// lease held: true
}
