package graphsim_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/graphhook/graphhook/graphsim"
)

// Example_subscription runs the whole protocol against a tiny receiver:
// the validation handshake, a subscription, three changes and their
// delivery.
func Example_subscription() {
	ctx := context.Background()
	var mu sync.Mutex
	var got []graphsim.Notification
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token := r.URL.Query().Get("validationToken"); token != "" {
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, token) // the handshake: echo the decoded token
			return
		}
		var c graphsim.Collection
		if err := json.NewDecoder(r.Body).Decode(&c); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, c.Value...)
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer receiver.Close()

	sim, err := graphsim.New(graphsim.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sim.Close()

	sub, err := sim.CreateSubscription(ctx, graphsim.SubscriptionRequest{
		ChangeType:         "created",
		NotificationURL:    receiver.URL,
		Resource:           "me/mailFolders('Inbox')/messages",
		ExpirationDateTime: time.Now().Add(24 * time.Hour),
		ClientState:        "a-secret-of-up-to-128-chars",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	rep, err := sim.Change(ctx, graphsim.ChangeRequest{SubscriptionID: sub.ID, Count: 3})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := sim.Wait(ctx); err != nil {
		fmt.Println(err)
		return
	}
	mu.Lock()
	defer mu.Unlock()
	fmt.Println("queued:", rep.Notifications, "in", rep.Batches, "batch")
	fmt.Println("received:", len(got))
	fmt.Println("clientState echoed:", got[0].ClientState == "a-secret-of-up-to-128-chars")
	fmt.Println("delivery:", sim.Deliveries()[0].State)
	// Output:
	// queued: 3 in 1 batch
	// received: 3
	// clientState echoed: true
	// delivery: delivered
}

// ExampleNew serves the simulator over HTTP and uses it the way a Graph
// client does: a client-credentials token for a registered app, then GET
// /v1.0/subscriptions. The token endpoint refuses apps that are not
// registered and wrong secrets, so a receiver left trusting a simulator
// does not trust anyone who can reach it. Real clients (azidentity) need
// HTTPS: see [Sim.StartTLS].
func ExampleNew() {
	sim, err := graphsim.New(graphsim.Config{Apps: []graphsim.App{
		{ClientID: "my-app", Secret: "my-secret", Roles: []string{"Mail.Read"}},
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sim.Close()
	if _, err := sim.Start("127.0.0.1:0"); err != nil {
		fmt.Println(err)
		return
	}
	token := func(clientID, secret string) (string, int) {
		resp, err := http.PostForm(sim.TokenURL(""), map[string][]string{
			"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret},
			"scope": {"https://graph.microsoft.com/.default"},
		})
		if err != nil {
			return "", 0
		}
		defer resp.Body.Close()
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		json.NewDecoder(resp.Body).Decode(&tok)
		return tok.AccessToken, resp.StatusCode
	}
	_, status := token("my-app", "guessed")
	fmt.Println("wrong secret:", status)
	_, status = token("someone-else", "anything")
	fmt.Println("unregistered app:", status)
	tok, _ := token("my-app", "my-secret")

	req, _ := http.NewRequest("GET", sim.GraphURL()+"/subscriptions", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println("GET /v1.0/subscriptions:", resp.StatusCode)

	resp, err = http.Get(sim.GraphURL() + "/subscriptions")
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println("without a token:", resp.StatusCode)
	// Output:
	// wrong secret: 401
	// unregistered app: 400
	// GET /v1.0/subscriptions: 200
	// without a token: 401
}

// ExampleSim_Advance lives through two simulated days in milliseconds: a
// subscription that is never renewed gets reauthorizationRequired
// challenges as its end approaches (§7), then expires and is removed with
// subscriptionRemoved.
func ExampleSim_Advance() {
	ctx := context.Background()
	var mu sync.Mutex
	events := map[string]int{}
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token := r.URL.Query().Get("validationToken"); token != "" {
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, token)
			return
		}
		var c graphsim.Collection
		json.NewDecoder(r.Body).Decode(&c)
		mu.Lock()
		for _, n := range c.Value {
			events[n.LifecycleEvent]++
		}
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer receiver.Close()

	sim, err := graphsim.New(graphsim.Config{SweepInterval: -1, AccessTokenLifetime: 48 * time.Hour})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sim.Close()
	_, err = sim.CreateSubscription(ctx, graphsim.SubscriptionRequest{
		ChangeType:               "created",
		NotificationURL:          receiver.URL + "/notifications",
		LifecycleNotificationURL: receiver.URL + "/lifecycle",
		Resource:                 "users/alex@contoso.com/messages",
		ExpirationDateTime:       sim.Now().Add(24 * time.Hour),
		ClientState:              "a-secret",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := sim.Advance(ctx, 48*time.Hour); err != nil {
		fmt.Println(err)
		return
	}
	sim.Wait(ctx)
	mu.Lock()
	defer mu.Unlock()
	fmt.Println("reauthorizationRequired:", events[graphsim.EventReauthorizationRequired])
	fmt.Println("subscriptionRemoved:", events[graphsim.EventSubscriptionRemoved])
	fmt.Println("subscriptions left:", len(sim.Subscriptions()))
	// Output:
	// reauthorizationRequired: 14
	// subscriptionRemoved: 1
	// subscriptions left: 0
}
