// Package receiver is the framework-free core of graphhook: it receives
// Microsoft Graph change notifications over HTTP, verifies them and hands
// them to a [Sink].
//
// A [Receiver] is an [http.Handler]. For every request it:
//
//   - answers the validation handshake (a request carrying the
//     validationToken query parameter) with 200, text/plain and the decoded
//     token, byte-exact, with X-Content-Type-Options: nosniff;
//   - parses the changeNotificationCollection (unknown fields are kept, see
//     [Notification]);
//   - checks every item's clientState in constant time against the value
//     expected for its subscription;
//   - validates the batch's validationTokens (when the batch carries rich
//     notifications) with a [token.Validator];
//   - decrypts encryptedContent with a [decrypt.KeyRing];
//   - hands the accepted items and the rejected ones (forged, unverifiable,
//     undecryptable or malformed) to the Sink in one [Batch], and answers
//     202 Accepted only when the Sink returned nil.
//
// # Status codes
//
// Following Graph's guidance, the answer never tells a caller which check
// failed: a batch whose items were all rejected is still answered 202, and
// the rejected items go to the Sink's quarantine. Malformed requests get 400
// (bad JSON, too many or malformed validationTokens), 405 (wrong method), 413
// (body over Config.MaxBodyBytes or more than Config.MaxItems items) or 415
// (not JSON). 503 with Retry-After is reserved for our own transient
// inability, so that Graph redelivers: the Sink, the token key endpoint or the
// ClientStateLookup is unavailable, or a rich batch's decryption would not fit
// in Config.MaxDecryptWait behind the work already admitted (answered at once)
// or did not finish within Config.Timeout. Error answers are a JSON object
// {"error": "..."}; a 503's message is the bare status text.
//
// [Receiver.Handle] gives the same answers to an adapter that renders its own
// error bodies (the package handlers does so for Echo): it sets Retry-After or
// Allow and returns an [*Error] whose Status and Message are the answer.
//
// # Tracing
//
// With Config.TracerProvider set (an OpenTelemetry SDK provider; nil, the
// default, traces nothing and costs nothing), every notification request
// (not a handshake) is one span, graphhook.receive, whether it reaches
// [Receiver.Receive] or is refused before its body is read: a server span,
// or an internal one when the caller (an HTTP middleware) already started
// a span. Each verification step the batch needs is a child span:
//
//	graphhook.verify.client_state   every batch
//	graphhook.verify.tokens         batches with rich items (or tokens and a validator)
//	graphhook.decrypt               batches with rich items
//
// The Sink is handed the batch span's context: natspub's publish span is
// its child, and the traceparent natspub puts on each message lets the
// consumers continue the trace. The spans carry counts and outcomes only,
// never a clientState, a token, content or a string taken from the request:
// graphhook.items, graphhook.subscriptions (distinct subscriptionIds),
// graphhook.accepted, graphhook.rejected and graphhook.rejected.<reason>,
// graphhook.outcome (accepted, refused or unavailable) and
// http.response.status_code; the steps add graphhook.tokens,
// graphhook.tenants, graphhook.cached (rich items needing no RSA),
// graphhook.admitted and graphhook.skipped (an Insecure switch is set). A
// batch answered 503 has an error status; one refused with a 4xx leaves the
// status unset, as an HTTP server span does. Graph sends no trace context,
// and the Receiver does not take one from the request.
//
// # Embedding
//
//	r, err := receiver.New(receiver.Config{
//		ClientStates: []string{os.Getenv("GRAPH_CLIENT_STATE")},
//		Sink:         sink,
//	})
//	if err != nil { ... }
//	http.Handle("/notifications", r)
//
// The package handlers mounts a Receiver on an Echo server, and the package
// natspub provides the JetStream Sink.
package receiver
