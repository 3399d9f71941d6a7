package natspub

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/graphhook/graphhook/receiver"
	"github.com/nats-io/nats.go"
)

// CloudEvents 1.0 binary-mode attribute headers, and graphhook's own
// headers. See the package documentation for what each one holds.
const (
	HeaderSpecVersion    = "ce-specversion"
	HeaderID             = "ce-id"
	HeaderType           = "ce-type"
	HeaderSource         = "ce-source"
	HeaderSubject        = "ce-subject"
	HeaderTime           = "ce-time"
	HeaderContentType    = "content-type"
	HeaderSubscriptionID = "graphhook-subscription-id"
	HeaderTenantID       = "graphhook-tenant-id"
	HeaderReason         = "graphhook-reason"
	HeaderError          = "graphhook-error"
	HeaderItems          = "graphhook-items"
	HeaderReceivedAt     = "graphhook-received-at"
	// HeaderVerifiedContent is set only on an event whose content
	// graphhook decrypted after verifying its dataSignature; it names the
	// body member holding it ("content" or "contentBase64"). Consumers
	// that act on content check it rather than the body's shape.
	HeaderVerifiedContent = "graphhook-verified-content"
)

// DefaultSource is the CloudEvents source used when none is configured.
const DefaultSource = "/graphhook"

// Event types are typeChangePrefix + changeType and
// typeLifecyclePrefix + lifecycleEvent.
const (
	typeChangePrefix    = "com.microsoft.graph.change."
	typeLifecyclePrefix = "com.microsoft.graph.lifecycle."
)

// eventID returns the CloudEvents id of n, which is also its Nats-Msg-Id, so
// that Graph's redelivery of the same item is dropped by the stream.
//
// When Graph sent an id, the result is "<subscriptionId>:<id>", readable and
// unique across subscriptions. Otherwise, or when either part contains bytes
// unfit for a header (control characters, spaces, a ':' in the
// subscriptionId) or the pair is over 200 bytes, it is "sha256:" and 32 hex
// digits of a hash over every part of the item as received except
// clientState and encryptedContent: id, subscriptionId, tenantId,
// changeType or lifecycleEvent, resource, all of resourceData (compacted,
// so whitespace does not count), the instant of
// subscriptionExpirationDateTime, every unknown field (Extra, sorted by
// key), and for rich items the SHA-256 of the decrypted content (a retry
// may be encrypted again with a fresh key, so the ciphertext is no
// identity). Each part is length-prefixed, so no two lists of parts hash
// alike. Two items without id that agree in all these parts get the same
// id: see the package documentation.
func eventID(n *receiver.Notification) string {
	if n.ID != "" && safeID(n.SubscriptionID, true) && safeID(n.ID, false) && len(n.SubscriptionID)+len(n.ID) <= 200 {
		return n.SubscriptionID + ":" + n.ID
	}
	h := sha256.New()
	field := func(s string) { writeField(h, []byte(s)) }
	field("graphhook/event/v2")
	field(n.ID)
	field(n.SubscriptionID)
	field(n.TenantID)
	if n.IsLifecycle() {
		field("lifecycle")
		field(n.LifecycleEvent)
	} else {
		field("change")
		field(n.ChangeType)
	}
	field(n.Resource)
	// The expiry tells lifecycle events apart (a second reauthorization
	// challenge after a renewal); for a change it would only make a retry
	// that straddles a renewal look new.
	exp := ""
	if n.IsLifecycle() && !n.SubscriptionExpirationDateTime.IsZero() {
		exp = n.SubscriptionExpirationDateTime.UTC().Format(time.RFC3339Nano)
	}
	field(exp)
	writeJSONField(h, n.ResourceData)
	keys := make([]string, 0, len(n.Extra))
	for k := range n.Extra {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	field(strconv.Itoa(len(keys)))
	for _, k := range keys {
		field(k)
		writeJSONField(h, n.Extra[k])
	}
	switch {
	case n.Content != nil:
		sum := sha256.Sum256(n.Content)
		field("content")
		writeField(h, sum[:])
	case n.EncryptedContent != nil:
		// Not decrypted (the Receiver never delivers such an item as
		// accepted); fall back to the ciphertext.
		sum := sha256.Sum256([]byte(n.EncryptedContent.Data))
		field("ciphertext")
		writeField(h, sum[:])
	default:
		field("basic")
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)[:16])
}

func writeField(h hash.Hash, b []byte) {
	var l [8]byte
	binary.BigEndian.PutUint64(l[:], uint64(len(b)))
	h.Write(l[:])
	h.Write(b)
}

// writeJSONField writes raw, compacted so that insignificant whitespace
// does not change the hash; raw that is not valid JSON is written as is.
func writeJSONField(h hash.Hash, raw json.RawMessage) {
	var buf bytes.Buffer
	if json.Compact(&buf, raw) == nil {
		writeField(h, buf.Bytes())
		return
	}
	writeField(h, raw)
}

func safeID(s string, noColon bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || noColon && c == ':' {
			return false
		}
	}
	return true
}

// eventType returns the CloudEvents type of n:
// com.microsoft.graph.change.<changeType> or
// com.microsoft.graph.lifecycle.<lifecycleEvent>.
func eventType(n *receiver.Notification) string {
	if n.IsLifecycle() {
		switch n.LifecycleEvent {
		case "reauthorizationRequired":
			return typeLifecyclePrefix + "reauthorizationRequired"
		case "subscriptionRemoved":
			return typeLifecyclePrefix + "subscriptionRemoved"
		case "missed":
			return typeLifecyclePrefix + "missed"
		}
		return typeLifecyclePrefix + n.LifecycleEvent
	}
	// Graph's change types as constants: no concatenation per event.
	switch n.ChangeType {
	case "created":
		return typeChangePrefix + "created"
	case "updated":
		return typeChangePrefix + "updated"
	case "deleted":
		return typeChangePrefix + "deleted"
	}
	return typeChangePrefix + n.ChangeType
}

// encode returns the message of an accepted notification: the body
// described in the package documentation, CloudEvents binary-mode headers
// and Nats-Msg-Id = msgID(ce-id), on eventSubject(prefix, n). ceTime is the
// ce-time header (receivedAt in RFC 3339, formatted once per batch by
// [formatTime]), left out when empty. [Publisher.Messages] is its exported
// form.
func encode(prefix, source string, n *receiver.Notification, ceTime string) (*nats.Msg, error) {
	if n == nil {
		return nil, fmt.Errorf("%w: nil notification", ErrEncode)
	}
	if source == "" {
		source = DefaultSource
	}
	body, err := eventBody(n)
	if err != nil {
		return nil, err
	}
	id := eventID(n)
	subject := n.Resource
	if n.IsLifecycle() || subject == "" {
		subject = n.SubscriptionID
	}
	field := contentField(n)
	// One header map of the right size and one array for all the values,
	// instead of nats.Header.Set's slice per header and the map's growth.
	h := make(nats.Header, maxEventHeaders)
	vals := make([]string, 0, maxEventHeaders)
	set := func(k, v string) {
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	set(HeaderSpecVersion, "1.0")
	set(HeaderID, id)
	set(HeaderType, itemHeader(eventType(n)))
	set(HeaderSource, headerValue(source))
	if subject != "" {
		set(HeaderSubject, itemHeader(subject))
	}
	if ceTime != "" {
		set(HeaderTime, ceTime)
	}
	set(HeaderContentType, "application/json")
	set(HeaderSubscriptionID, itemHeader(n.SubscriptionID))
	set(HeaderTenantID, itemHeader(n.TenantID))
	if field != "" {
		set(HeaderVerifiedContent, field)
	}
	set(nats.MsgIdHdr, msgID(id))
	return &nats.Msg{Subject: eventSubject(prefix, n), Header: h, Data: body}, nil
}

// msgID returns the Nats-Msg-Id of the event whose ce-id is ceID: the
// unpadded base64url form of the first 16 bytes of SHA-256(ceID), 22
// characters. It is not ce-id itself because the stream holds every id of
// its duplicate window in memory: about 180 bytes of heap per message for
// a 73-character "<subscriptionId>:<id>", about 110 for 22 characters
// (BenchmarkDuplicateWindowMemory).
func msgID(ceID string) string {
	var in [256]byte // eventID returns at most 201 bytes: no allocation
	sum := sha256.Sum256(append(in[:0], ceID...))
	var out [22]byte
	base64.RawURLEncoding.Encode(out[:], sum[:16])
	return string(out[:])
}

// maxEventHeaders is the most headers encode sets, with room for the
// expected-stream header Deliver adds and the trace headers (traceparent,
// tracestate).
const maxEventHeaders = 14

// formatTime is the form of ce-time and graphhook-received-at: t in UTC,
// RFC 3339 with as many fractional digits as needed; "" for the zero time.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// extraKey is the member of an event body that holds the item's unknown
// fields (organizationId, sequenceNumber, @odata.type, ...), so that none of
// them can stand beside, or for a case-insensitive decoder such as
// encoding/json stand in for, a field graphhook writes.
const extraKey = "extra"

// eventBody returns the JSON event body of an accepted notification: the
// Graph fields graphhook knows as [receiver.Notification.MarshalJSON] writes
// them (subscriptionExpirationDateTime spelled as Graph sent it) without
// clientState and encryptedContent, every unknown field under [extraKey],
// and for a rich item the decrypted resource under "content" as a JSON
// value, or under "contentBase64" as a base64 string when it is not valid
// JSON. Keys are sorted, so equal notifications give equal bytes.
func eventBody(n *receiver.Notification) ([]byte, error) {
	if n == nil {
		return nil, fmt.Errorf("%w: nil notification", ErrEncode)
	}
	// A copy keeps the receiver's record of Graph's spelling of
	// subscriptionExpirationDateTime, so MarshalJSON writes it unchanged.
	cp := *n
	cp.ClientState = ""
	cp.EncryptedContent = nil
	cp.Extra = nil
	field := contentField(n)
	if len(n.Extra) > 0 || field != "" {
		cp.Extra = make(map[string]json.RawMessage, 2)
	}
	if len(n.Extra) > 0 {
		b, err := marshalNoEscape(n.Extra)
		if err != nil {
			return nil, fmt.Errorf("%w: unknown fields: %w", ErrEncode, err)
		}
		cp.Extra[extraKey] = b
	}
	if field != "" {
		if field == "content" {
			cp.Extra[field] = json.RawMessage(n.Content)
		} else {
			cp.Extra[field], _ = json.Marshal(base64.StdEncoding.EncodeToString(n.Content)) // a string always marshals
		}
	}
	// MarshalJSON writes a compact object with sorted keys.
	b, err := cp.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEncode, err)
	}
	return b, nil
}

// contentField names the body member that holds n's decrypted content:
// "content", "contentBase64", or "" for an item without content.
func contentField(n *receiver.Notification) string {
	switch {
	case n.Content == nil:
		return ""
	case json.Valid(n.Content):
		return "content"
	default:
		return "contentBase64"
	}
}

// marshalNoEscape is json.Marshal without HTML escaping, which would make
// HTML in resource data up to six times larger than Graph sent it.
func marshalNoEscape(v any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// MaxErrorHeaderLen bounds the graphhook-error header of a quarantine
// message.
const MaxErrorHeaderLen = 256

// encodeQuarantine returns the quarantine message of the items of one batch
// rejected for reason: a replayable changeNotificationCollection of their
// raw bytes and the batch's validationTokens.
func encodeQuarantine(prefix string, reason receiver.Reason, items []*receiver.Rejected, tokens []string, receivedAt time.Time) (*nats.Msg, error) {
	body, err := quarantineBody(items, tokens)
	if err != nil {
		return nil, err
	}
	tenant, shared := "", true
	var errText string
	for i, r := range items {
		t := ""
		if r.Notification != nil {
			t = r.Notification.TenantID
		}
		if i == 0 {
			tenant = t
		} else if t != tenant {
			shared = false
		}
		if errText == "" && r.Err != nil {
			errText = r.Err.Error()
		}
	}
	if !shared {
		tenant = ""
	}
	m := nats.NewMsg(rejectedSubject(prefix, reason, tenant))
	m.Data = body
	h := m.Header
	h.Set(HeaderContentType, "application/json")
	h.Set(HeaderReason, headerValue(truncate(string(reason), MaxErrorHeaderLen)))
	h.Set(HeaderItems, strconv.Itoa(len(items)))
	if errText != "" {
		h.Set(HeaderError, truncate(headerValue(errText), MaxErrorHeaderLen))
	}
	if !receivedAt.IsZero() {
		h.Set(HeaderReceivedAt, receivedAt.UTC().Format(time.RFC3339Nano))
	}
	sum := sha256.New()
	writeField(sum, []byte("graphhook/rejected/v2"))
	writeField(sum, []byte(reason))
	writeField(sum, body)
	h.Set(nats.MsgIdHdr, "sha256:"+hex.EncodeToString(sum.Sum(nil)[:16]))
	return m, nil
}

// quarantineBody returns {"value":[raw items...],"validationTokens":[...]}.
func quarantineBody(items []*receiver.Rejected, tokens []string) ([]byte, error) {
	size := 32
	for _, r := range items {
		if r.Notification != nil {
			size += len(r.Notification.Raw) + 1
		}
	}
	for _, t := range tokens {
		size += len(t) + 3
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	buf.WriteString(`{"value":[`)
	for i, r := range items {
		if i > 0 {
			buf.WriteByte(',')
		}
		raw, err := rawItem(r.Notification)
		if err != nil {
			return nil, err
		}
		buf.Write(raw)
	}
	buf.WriteByte(']')
	if len(tokens) > 0 {
		buf.WriteString(`,"validationTokens":`)
		// Not HTML-escaped: a token's bytes do not grow sixfold.
		enc := json.NewEncoder(buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(tokens); err != nil {
			return nil, fmt.Errorf("%w: validationTokens: %w", ErrEncode, err)
		}
		buf.Truncate(buf.Len() - 1) // Encode's newline
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// rawItem returns the bytes of a rejected item as received. An item the
// Receiver did not parse from a request (no Raw) is written in Graph's wire
// form; Raw that is not JSON is kept as a JSON string, so the collection
// stays valid JSON.
func rawItem(n *receiver.Notification) ([]byte, error) {
	switch {
	case n == nil:
		return []byte("null"), nil
	case len(n.Raw) == 0:
		b, err := n.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("%w: rejected item: %w", ErrEncode, err)
		}
		return b, nil
	case json.Valid(n.Raw):
		return n.Raw, nil
	default:
		b, _ := json.Marshal(string(n.Raw)) // a string always marshals
		return b, nil
	}
}

// maxItemHeaderLen bounds a header value taken from a notification
// (ce-type, ce-subject, the subscription and tenant ids), so that an
// unusually long resource cannot push an event past the server's 64 KiB
// header limit and block its batch. The body carries the full values.
const maxItemHeaderLen = 1024

func itemHeader(s string) string { return truncate(headerValue(s), maxItemHeaderLen) }

// truncate cuts s to at most n bytes, not in the middle of a UTF-8
// sequence or of a %XX escape, marking the cut with "...".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - 3
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	if i := strings.LastIndexByte(s[:cut], '%'); i >= 0 && i >= cut-2 {
		cut = i
	}
	return s[:cut] + "..."
}

// headerValue makes s safe as a NATS header value: CR, LF and other control
// bytes are written as %XX, so a value cannot end the header block or add a
// header. Other bytes, '%' included, are kept.
func headerValue(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c == 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' || c == 0x7f {
			b.WriteByte('%')
			b.WriteByte(upperHex[c>>4])
			b.WriteByte(upperHex[c&0xf])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
