package receiver_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/graphhook/graphhook/receiver"
)

// ExampleNew embeds a Receiver in a plain net/http server. The Sink here
// prints; in production it is a natspub.Publisher, which stores every
// notification in JetStream before the Receiver answers 202.
func ExampleNew() {
	r, err := receiver.New(receiver.Config{
		// The clientState you set on your subscriptions. Items carrying any
		// other value are forged: they never reach OnChange.
		ClientStates: []string{"secretClientValue"},
		Sink: receiver.Callbacks{
			OnChange: func(ctx context.Context, n *receiver.Notification, q url.Values) error {
				fmt.Println("change:", n.ChangeType, n.Resource, "tenant key:", q.Get("key"))
				return nil
			},
			OnLifecycle: func(ctx context.Context, n *receiver.Notification, q url.Values) error {
				fmt.Println("lifecycle:", n.LifecycleEvent, n.SubscriptionID)
				return nil
			},
			OnRejected: func(ctx context.Context, rj *receiver.Rejected, q url.Values) error {
				fmt.Println("rejected:", rj.Reason)
				return nil
			},
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	mux := http.NewServeMux()
	mux.Handle("POST /notifications", r)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	body := `{"value":[
	 {"subscriptionId":"s1","clientState":"secretClientValue","changeType":"created","resource":"me/messages/1","tenantId":"t1"},
	 {"subscriptionId":"s1","clientState":"guess","changeType":"deleted","resource":"me/messages/2","tenantId":"t1"},
	 {"subscriptionId":"s2","clientState":"secretClientValue","lifecycleEvent":"reauthorizationRequired","tenantId":"t1"}]}`
	resp, err := http.Post(srv.URL+"/notifications?key=contoso", "application/json", strings.NewReader(body))
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.Status)
	// Output:
	// change: created me/messages/1 tenant key: contoso
	// lifecycle: reauthorizationRequired s2
	// rejected: client_state
	// 202 Accepted
}

// ExampleReceiver_ServeHTTP shows the validation handshake Graph performs
// when a subscription is created: the decoded token comes back as
// text/plain, byte-exact.
func ExampleReceiver_ServeHTTP() {
	r, err := receiver.New(receiver.Config{
		ClientStates: []string{"secretClientValue"},
		Sink:         receiver.SinkFunc(func(context.Context, *receiver.Batch) error { return nil }),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := httptest.NewServer(r)
	defer srv.Close()

	resp, err := http.Post(srv.URL+"/?validationToken=Validation%3a+Testing+client+application+reachability", "text/plain; charset=utf-8", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("X-Content-Type-Options"))
	fmt.Println(string(b))
	// Output:
	// 200 text/plain; charset=utf-8 nosniff
	// Validation: Testing client application reachability
}

// ExampleReceiver_Handle mounts a Receiver behind an adapter that renders
// error answers itself, as a framework's error handler would: the
// receiver sets the headers (here Allow) and says which status and text
// to answer.
func ExampleReceiver_Handle() {
	r, err := receiver.New(receiver.Config{
		ClientStates: []string{"secretClientValue"},
		Sink:         receiver.SinkFunc(func(context.Context, *receiver.Batch) error { return nil }),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	adapter := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		err := r.Handle(w, req)
		if e, ok := errors.AsType[*receiver.Error](err); ok {
			http.Error(w, "graphhook says: "+e.Message(), e.Status())
		}
	})
	srv := httptest.NewServer(adapter)
	defer srv.Close()

	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/notifications", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, resp.Header.Get("Allow"))
	fmt.Print(string(b))
	// Output:
	// 405 POST
	// graphhook says: check: receiver: method not allowed
}

// ExampleValidationToken tells a validation handshake from a notification
// POST in middleware, without parsing the query into a map.
func ExampleValidationToken() {
	for _, q := range []string{
		"validationToken=Validation%3a+Testing+client+application+reachability",
		"tenant=contoso",
	} {
		tok, ok := receiver.ValidationToken(q)
		fmt.Printf("%v %q\n", ok, tok)
	}
	// Output:
	// true "Validation: Testing client application reachability"
	// false ""
}
