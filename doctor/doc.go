// Package doctor checks a public notification endpoint the way Microsoft
// Graph will reach it, and explains how to fix each failure. It is the
// library behind "receiver doctor".
//
// Graph creates a subscription only after its notificationUrl (and
// lifecycleNotificationUrl) answered a validation handshake, and it never
// says why a handshake failed beyond "validation request failed". The usual
// causes (graph-protocol.md §1 and §11) are each a check here:
//
//   - the URL is https and its host name resolves, to a public address;
//   - TLS 1.2 or later with a chain a public client trusts, valid for the
//     name, and TLS 1.2 itself (Graph's default latestSupportedTlsVersion);
//   - an anonymous POST with a validationToken (one holding '+', "%2B" and
//     '<', so a wrong decoding shows) on each URL is answered 200, text/plain,
//     with exactly the decoded token, within 10 s: an authentication layer in
//     front (401/403), an "OK" or HTML answer, a token sent back still
//     encoded, a cold start that takes longer than 10 s all fail here;
//   - notifications are answered within Graph's 3 s budget;
//   - a notification with a wrong clientState is answered 202 (forged items
//     are quarantined, not refused, so nothing leaks) and, when
//     Config.NATS is set, is not published;
//   - a body as large as the receiver's limit is not refused by a proxy.
//
// # Use
//
//	rep, err := doctor.Run(ctx, doctor.Config{
//		URL:          "https://hooks.example.com/notifications",
//		LifecycleURL: "https://hooks.example.com/lifecycle",
//	})
//	if err != nil { ... }     // a bad Config, or ctx ended
//	rep.WriteText(os.Stdout)  // the checklist, with a fix under each failure
//	if !rep.OK() { ... }
//
// The wrong-clientState and body-limit checks post notifications for a
// made-up subscription and tenant; a correct receiver quarantines them.
package doctor
