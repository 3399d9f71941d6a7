package natspub_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/graphhook/graphhook/natspub"
	"github.com/graphhook/graphhook/receiver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ExampleNew runs the zero-set-up mode: an embedded JetStream server, a
// Publisher as the Receiver's sink, and a consumer reading the event back.
func ExampleNew() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "graphhook-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	ns, err := natspub.StartServer(natspub.ServerConfig{StoreDir: dir, Port: -1})
	if err != nil {
		log.Fatal(err)
	}
	defer ns.WaitForShutdown()
	defer ns.Shutdown()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()

	pub, err := natspub.New(ctx, natspub.Config{Conn: nc})
	if err != nil {
		log.Fatal(err)
	}
	defer pub.Close()
	rcv, err := receiver.New(receiver.Config{Sink: pub, ClientStates: []string{"secretClientValue"}})
	if err != nil {
		log.Fatal(err)
	}

	// What Graph POSTs (ServeHTTP does this for an HTTP request).
	_, err = rcv.Receive(ctx, []byte(`{"value":[{
		"id":"lsgTZMr9KwAAA",
		"subscriptionId":"c6126aa3-0ed8-412f-a988-71e6cee627c4",
		"subscriptionExpirationDateTime":"2026-03-19T22:11:09.952Z",
		"clientState":"secretClientValue",
		"changeType":"created",
		"resource":"users/u1/messages/m1",
		"tenantId":"84bd8158-6d4d-4958-8b9f-9d6445542f95",
		"resourceData":{"@odata.etag":"W/\"CQAAABYAAADk\"","id":"m1"}}]}`), nil)
	if err != nil {
		log.Fatal(err)
	}

	// A consumer of one tenant's notifications.
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	cons, err := js.OrderedConsumer(ctx, natspub.DefaultStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"graph.notifications.84bd8158-6d4d-4958-8b9f-9d6445542f95.>"},
	})
	if err != nil {
		log.Fatal(err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(msg.Subject())
	fmt.Println(msg.Headers().Get("ce-type"), msg.Headers().Get("ce-id"))
	fmt.Println(string(msg.Data()))
	// Output:
	// graph.notifications.84bd8158-6d4d-4958-8b9f-9d6445542f95.c6126aa3-0ed8-412f-a988-71e6cee627c4.created
	// com.microsoft.graph.change.created c6126aa3-0ed8-412f-a988-71e6cee627c4:lsgTZMr9KwAAA
	// {"changeType":"created","id":"lsgTZMr9KwAAA","resource":"users/u1/messages/m1","resourceData":{"@odata.etag":"W/\"CQAAABYAAADk\"","id":"m1"},"subscriptionExpirationDateTime":"2026-03-19T22:11:09.952Z","subscriptionId":"c6126aa3-0ed8-412f-a988-71e6cee627c4","tenantId":"84bd8158-6d4d-4958-8b9f-9d6445542f95"}
}

// ExamplePublisher_Messages shows the wire form of an event: Messages
// returns exactly what Deliver publishes (less the trace headers of a
// traced batch). Fields graphhook does not know travel under "extra", so a
// look-alike such as "TenantId" cannot pass for the real tenantId in a
// consumer that decodes with encoding/json.
func ExamplePublisher_Messages() {
	dir, err := os.MkdirTemp("", "graphhook-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ns, err := natspub.StartServer(natspub.ServerConfig{StoreDir: dir, Port: -1})
	if err != nil {
		log.Fatal(err)
	}
	defer ns.WaitForShutdown()
	defer ns.Shutdown()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	pub, err := natspub.New(context.Background(), natspub.Config{Conn: nc})
	if err != nil {
		log.Fatal(err)
	}
	defer pub.Close()

	c, err := receiver.Parse([]byte(`{"value":[{"id":"1","subscriptionId":"s1","changeType":"updated",
		"resource":"users/u1","tenantId":"t1","clientState":"secretClientValue","TenantId":"t2"}]}`))
	if err != nil {
		log.Fatal(err)
	}
	msgs, err := pub.Messages(&receiver.Batch{Notifications: c.Value, ReceivedAt: time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)})
	if err != nil {
		log.Fatal(err)
	}
	m := msgs[0]
	fmt.Println(m.Subject)
	fmt.Println(m.Header.Get(natspub.HeaderID), m.Header.Get(natspub.HeaderTime))
	fmt.Println(string(m.Data))
	// Output:
	// graph.notifications.t1.s1.updated
	// s1:1 2026-04-01T12:00:00Z
	// {"changeType":"updated","extra":{"TenantId":"t2"},"id":"1","resource":"users/u1","subscriptionId":"s1","tenantId":"t1"}
}

// ExampleConfig_Validate shows how a daemon names the setting at fault:
// every invalid field is a *ConfigError carrying the field's Go name, which
// the daemon maps to its own flag. The rule itself lives only here.
func ExampleConfig_Validate() {
	flags := map[string]string{"SubjectPrefix": "--subject-prefix", "Stream": "--stream"}
	err := natspub.Config{Stream: "GRAPH.EVENTS"}.Validate()
	if ce, ok := errors.AsType[*natspub.ConfigError](err); ok {
		fmt.Printf("%s: %v\n", flags[ce.Field], ce.Err)
	}
	// Output:
	// --stream: "GRAPH.EVENTS" is not a stream name: it may not hold whitespace, control characters, '.', '*', '>', '/' or '\' (example: GRAPH)
}
