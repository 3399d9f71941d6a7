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
	"strings"
	"time"

	"github.com/graphhook/graphhook/receiver"
	"github.com/nats-io/nats.go"
)

// CloudEvents 1.0 binary-mode attribute headers, and graphhook's own
// headers. See the package documentation for what each one holds.
const (
	HeaderSpecVersion     = "ce-specversion"
	HeaderID              = "ce-id"
	HeaderType            = "ce-type"
	HeaderSource          = "ce-source"
	HeaderSubject         = "ce-subject"
	HeaderTime            = "ce-time"
	HeaderContentType     = "content-type"
	HeaderSubscriptionID  = "graphhook-subscription-id"
	HeaderTenantID        = "graphhook-tenant-id"
	HeaderReason          = "graphhook-reason"
	HeaderError           = "graphhook-error"
	HeaderValidationToken = "graphhook-validation-token"
	HeaderReceivedAt      = "graphhook-received-at"
)

// DefaultSource is the CloudEvents source used when none is configured.
const DefaultSource = "/graphhook"

// Event types are TypeChangePrefix + changeType and
// TypeLifecyclePrefix + lifecycleEvent.
const (
	TypeChangePrefix    = "com.microsoft.graph.change."
	TypeLifecyclePrefix = "com.microsoft.graph.lifecycle."
)

// EventID returns the CloudEvents id of n, which is also its Nats-Msg-Id, so
// that Graph's redelivery of the same item is dropped by the stream.
//
// When Graph sent an id, the result is "<subscriptionId>:<id>", readable and
// unique across subscriptions. Otherwise, or when either part contains bytes
// unfit for a header (control characters, spaces, a ':' in the
// subscriptionId) or the pair is over 200 bytes, it is "sha256:" and 32 hex
// digits of a hash over the fields that identify the item: subscriptionId,
// tenantId, changeType or lifecycleEvent, resource, resourceData's
// @odata.etag, subscriptionExpirationDateTime for lifecycle items, and for
// rich items the SHA-256 of the decrypted content (a retry may be encrypted
// again with a fresh key, so the ciphertext is no identity). Each field is
// length-prefixed, so no two field lists hash alike.
func EventID(n *receiver.Notification) string {
	if n.ID != "" && safeID(n.SubscriptionID, true) && safeID(n.ID, false) && len(n.SubscriptionID)+len(n.ID) <= 200 {
		return n.SubscriptionID + ":" + n.ID
	}
	h := sha256.New()
	field := func(s string) { writeField(h, []byte(s)) }
	field("graphhook/event/v1")
	field(n.ID)
	field(n.SubscriptionID)
	field(n.TenantID)
	if n.IsLifecycle() {
		field("lifecycle")
		field(n.LifecycleEvent)
		exp := ""
		if !n.SubscriptionExpirationDateTime.IsZero() {
			exp = n.SubscriptionExpirationDateTime.UTC().Format(time.RFC3339Nano)
		}
		field(exp)
	} else {
		field("change")
		field(n.ChangeType)
	}
	field(n.Resource)
	field(etag(n.ResourceData))
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

func safeID(s string, noColon bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || noColon && c == ':' {
			return false
		}
	}
	return true
}

// etag returns resourceData's "@odata.etag", or "" if there is none.
func etag(resourceData json.RawMessage) string {
	if len(resourceData) == 0 {
		return ""
	}
	var rd struct {
		ETag json.RawMessage `json:"@odata.etag"`
	}
	if json.Unmarshal(resourceData, &rd) != nil || rd.ETag == nil {
		return ""
	}
	var s string
	if json.Unmarshal(rd.ETag, &s) == nil {
		return s
	}
	return string(rd.ETag)
}

// EventType returns the CloudEvents type of n:
// com.microsoft.graph.change.<changeType> or
// com.microsoft.graph.lifecycle.<lifecycleEvent>.
func EventType(n *receiver.Notification) string {
	if n.IsLifecycle() {
		return TypeLifecyclePrefix + n.LifecycleEvent
	}
	return TypeChangePrefix + n.ChangeType
}

// Encode returns the message for an accepted notification: the body
// described in the package documentation, CloudEvents binary-mode headers
// and Nats-Msg-Id = ce-id, on [Subject](DefaultSubjectPrefix, n). An empty
// source means [DefaultSource]. ce-time is the time the batch was received,
// which n does not know: Encode leaves it out (it is optional in
// CloudEvents) and [Publisher.Deliver] sets it. Use [Publisher.Messages] to
// get exactly what Deliver publishes.
func Encode(n *receiver.Notification, source string) (*nats.Msg, error) {
	return encode(DefaultSubjectPrefix, source, n, time.Time{})
}

func encode(prefix, source string, n *receiver.Notification, receivedAt time.Time) (*nats.Msg, error) {
	if n == nil {
		return nil, fmt.Errorf("%w: nil notification", ErrEncode)
	}
	if source == "" {
		source = DefaultSource
	}
	body, err := Body(n)
	if err != nil {
		return nil, err
	}
	id := EventID(n)
	m := nats.NewMsg(Subject(prefix, n))
	m.Data = body
	h := m.Header
	h.Set(HeaderSpecVersion, "1.0")
	h.Set(HeaderID, id)
	h.Set(HeaderType, headerValue(EventType(n)))
	h.Set(HeaderSource, headerValue(source))
	subject := n.Resource
	if n.IsLifecycle() || subject == "" {
		subject = n.SubscriptionID
	}
	if subject != "" {
		h.Set(HeaderSubject, headerValue(subject))
	}
	if !receivedAt.IsZero() {
		h.Set(HeaderTime, receivedAt.UTC().Format(time.RFC3339Nano))
	}
	h.Set(HeaderContentType, "application/json")
	h.Set(HeaderSubscriptionID, headerValue(n.SubscriptionID))
	h.Set(HeaderTenantID, headerValue(n.TenantID))
	h.Set(nats.MsgIdHdr, id)
	return m, nil
}

// Body returns the JSON event body of an accepted notification: its Graph
// wire fields (unknown ones included) without clientState and
// encryptedContent, and for a rich item the decrypted resource under
// "content" as a JSON value. Content that is not valid JSON is put under
// "contentBase64" as a base64 string instead. Keys are sorted, so equal
// notifications give equal bytes.
func Body(n *receiver.Notification) ([]byte, error) {
	if n == nil {
		return nil, fmt.Errorf("%w: nil notification", ErrEncode)
	}
	fields := make(map[string][]byte, 10+len(n.Extra))
	for k, v := range n.Extra {
		if strings.HasPrefix(k, "\x00") { // the receiver's internal markers
			continue
		}
		fields[k] = v
	}
	// These names are ours to fill (or to leave out), whatever Extra holds.
	for _, k := range []string{"clientState", "encryptedContent", "content", "contentBase64"} {
		delete(fields, k)
	}
	str := func(k, v string) {
		if v != "" {
			b, _ := json.Marshal(v) // a string always marshals
			fields[k] = b
		}
	}
	str("id", n.ID)
	str("subscriptionId", n.SubscriptionID)
	if !n.SubscriptionExpirationDateTime.IsZero() {
		str("subscriptionExpirationDateTime", n.SubscriptionExpirationDateTime.Format(time.RFC3339Nano))
	}
	str("changeType", n.ChangeType)
	str("lifecycleEvent", n.LifecycleEvent)
	str("resource", n.Resource)
	str("tenantId", n.TenantID)
	if n.ResourceData != nil {
		fields["resourceData"] = n.ResourceData
	}
	if n.Content != nil {
		if json.Valid(n.Content) {
			fields["content"] = n.Content
		} else {
			str("contentBase64", base64.StdEncoding.EncodeToString(n.Content))
		}
	}
	keys := make([]string, 0, len(fields))
	size := 2
	for k, v := range fields {
		keys = append(keys, k)
		size += len(k) + len(v) + 4
	}
	slices.Sort(keys)
	buf := bytes.NewBuffer(make([]byte, 0, size))
	buf.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		buf.Write(kb)
		buf.WriteByte(':')
		if err := json.Compact(buf, fields[k]); err != nil {
			return nil, fmt.Errorf("%w: field %q is not valid JSON", ErrEncode, k)
		}
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// encodeRejected returns the quarantine message of a rejected item.
func encodeRejected(prefix string, r *receiver.Rejected, tokens []string, receivedAt time.Time) (*nats.Msg, error) {
	if r == nil {
		return nil, fmt.Errorf("%w: nil rejected item", ErrEncode)
	}
	var raw []byte
	if r.Notification != nil {
		raw = r.Notification.Raw
	}
	m := nats.NewMsg(RejectedSubject(prefix, r))
	m.Data = raw
	h := m.Header
	h.Set(HeaderReason, headerValue(string(r.Reason)))
	if r.Err != nil {
		h.Set(HeaderError, headerValue(r.Err.Error()))
	}
	for _, t := range tokens {
		h.Add(HeaderValidationToken, headerValue(t))
	}
	if !receivedAt.IsZero() {
		h.Set(HeaderReceivedAt, receivedAt.UTC().Format(time.RFC3339Nano))
	}
	if r.Notification != nil {
		if r.Notification.SubscriptionID != "" {
			h.Set(HeaderSubscriptionID, headerValue(r.Notification.SubscriptionID))
		}
		if r.Notification.TenantID != "" {
			h.Set(HeaderTenantID, headerValue(r.Notification.TenantID))
		}
	}
	sum := sha256.Sum256(raw)
	h.Set(nats.MsgIdHdr, "raw:"+hex.EncodeToString(sum[:16]))
	return m, nil
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
