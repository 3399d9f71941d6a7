package receiver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/graphhook/graphhook/decrypt"
)

// Collection is a changeNotificationCollection, the body of every
// notification POST.
type Collection struct {
	// Value holds the notifications, change and lifecycle items alike.
	Value []*Notification
	// ValidationTokens holds the JWTs that prove a rich batch came from
	// Graph. It is nil when absent; TokensNull reports an explicit null,
	// which Graph sends when the app is misconfigured.
	ValidationTokens []string
	// TokensNull is true when the body carried "validationTokens": null.
	TokensNull bool
	// Extra holds the top-level fields this package does not know, verbatim.
	Extra map[string]json.RawMessage
}

// Notification is one changeNotification or lifecycle notification.
//
// Fields this package does not know (organizationId, @odata.type, future
// additions) are kept verbatim in Extra and written back by MarshalJSON, so a
// Notification round-trips without loss.
//
// Lifecycle notifications from real tenants carry the tenant as
// organizationId rather than tenantId: when tenantId is absent or empty,
// TenantID is taken from organizationId (which stays in Extra as well).
type Notification struct {
	ID                             string                    // "id"; optional
	SubscriptionID                 string                    // "subscriptionId"
	SubscriptionExpirationDateTime time.Time                 // "subscriptionExpirationDateTime"
	ChangeType                     string                    // "changeType": created, updated, deleted
	LifecycleEvent                 string                    // "lifecycleEvent": reauthorizationRequired, subscriptionRemoved, missed
	Resource                       string                    // "resource"
	ResourceData                   json.RawMessage           // "resourceData", an open type, verbatim
	ClientState                    ClientState               // "clientState"
	TenantID                       string                    // "tenantId", else "organizationId" (see below)
	EncryptedContent               *decrypt.EncryptedContent // "encryptedContent"; nil for basic notifications
	Extra                          map[string]json.RawMessage

	// Content is the decrypted resource (UTF-8 JSON) of a rich notification,
	// set by the Receiver after the dataSignature was verified. It is never
	// written by MarshalJSON and redacts itself in logs.
	Content Content
	// Raw is the item exactly as received.
	Raw json.RawMessage

	expRaw  string    // subscriptionExpirationDateTime as received, re-emitted verbatim
	expAt   time.Time // ... while the field still holds this value
	invalid string    // why the item could not be decoded, reported by Validate
}

// IsLifecycle reports whether n is a lifecycle notification
// (it carries lifecycleEvent rather than changeType).
func (n *Notification) IsLifecycle() bool { return n.LifecycleEvent != "" }

// IsRich reports whether n carried encryptedContent.
func (n *Notification) IsRich() bool { return n.EncryptedContent != nil }

// LogValue logs the identifying fields of n, never its secrets. Each is
// taken from the request, so it is clipped to 64 characters and sanitised.
func (n *Notification) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("subscription_id", logText(n.SubscriptionID, maxLogValueLen)),
		slog.String("tenant_id", logText(n.TenantID, maxLogValueLen)),
	}
	if n.IsLifecycle() {
		attrs = append(attrs, slog.String("lifecycle_event", logText(n.LifecycleEvent, maxLogValueLen)))
	} else {
		attrs = append(attrs, slog.String("change_type", logText(n.ChangeType, maxLogValueLen)))
	}
	return slog.GroupValue(attrs...)
}

// ClientState is a subscription's shared secret. It prints and logs as
// "REDACTED"; use string(c) for the value.
type ClientState string

// String returns "REDACTED" so the secret cannot leak through fmt.
func (c ClientState) String() string { return "REDACTED" }

// LogValue returns "REDACTED".
func (c ClientState) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// Content is decrypted resource data. It prints and logs as "REDACTED".
type Content []byte

// String returns "REDACTED".
func (c Content) String() string { return "REDACTED" }

// LogValue returns "REDACTED".
func (c Content) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// Parse parses a changeNotificationCollection. It fails with [ErrMalformed]
// when the body is not a JSON object with a "value" array. Items that are
// not objects or lack required fields do not fail the parse: they are kept
// with their Raw bytes and reported by [Notification.Validate], so one bad
// item never costs the others.
func Parse(body []byte) (*Collection, error) {
	if !json.Valid(body) {
		err := json.Unmarshal(body, new(any))
		return nil, fmt.Errorf("%w: %s", ErrMalformed, jsonErrorText(err))
	}
	ms := newMembers(body)
	if ms.bad {
		return nil, fmt.Errorf("%w: body is not a JSON object", ErrMalformed)
	}
	c := &Collection{}
	var rawValue, rawTokens json.RawMessage
	for {
		rawKey, val, ok := ms.next()
		if !ok {
			break
		}
		key, ok := stringValue(rawKey)
		if !ok {
			ms.bad = true
			break
		}
		switch key {
		case "value":
			rawValue = val
		case "validationTokens":
			rawTokens = val
		default:
			if c.Extra == nil {
				c.Extra = make(map[string]json.RawMessage, 2)
			}
			c.Extra[key] = val
		}
	}
	if ms.bad {
		return nil, fmt.Errorf("%w: body is not a JSON object", ErrMalformed)
	}
	if rawValue == nil {
		return nil, fmt.Errorf("%w: no \"value\" array", ErrMalformed)
	}
	items, ok := arrayElements(rawValue)
	if !ok && !isNull(rawValue) {
		return nil, fmt.Errorf("%w: \"value\" is not an array", ErrMalformed)
	}
	if rawTokens != nil {
		if isNull(rawTokens) {
			c.TokensNull = true
		} else if err := json.Unmarshal(rawTokens, &c.ValidationTokens); err != nil {
			return nil, fmt.Errorf("%w: \"validationTokens\" is not an array of strings", ErrMalformed)
		}
	}
	c.Value = make([]*Notification, len(items))
	all := make([]Notification, len(items)) // one allocation for the batch
	for i, raw := range items {
		n := &all[i]
		// A malformed item keeps only its Raw bytes; Validate reports it.
		_ = n.decode(raw)
		c.Value[i] = n
	}
	return c, nil
}

func isNull(b json.RawMessage) bool { return string(bytes.TrimSpace(b)) == "null" }

// jsonErrorText describes a JSON syntax error without echoing input.
func jsonErrorText(err error) string {
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return fmt.Sprintf("invalid JSON at offset %d", se.Offset)
	}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		return fmt.Sprintf("unexpected JSON %s at offset %d", te.Value, te.Offset)
	}
	return "invalid JSON"
}

// UnmarshalJSON decodes a changeNotification, keeping unknown fields in Extra.
func (n *Notification) UnmarshalJSON(b []byte) error {
	b = append([]byte(nil), b...)
	if !json.Valid(b) {
		*n = Notification{Raw: b, invalid: "item is not valid JSON"}
		return fmt.Errorf("%w: item is not valid JSON", ErrMalformed)
	}
	return n.decode(b)
}

// The string fields decode knows, in the order their errors are reported.
const (
	fieldID = iota
	fieldSubscriptionID
	fieldChangeType
	fieldLifecycleEvent
	fieldResource
	fieldTenantID
	fieldClientState
	fieldExpiration
	fieldOrganizationID // also kept in Extra
	numStringFields
)

// fieldName returns the wire name of string field f.
func fieldName(f int) string {
	return [numStringFields]string{"id", "subscriptionId", "changeType", "lifecycleEvent", "resource", "tenantId",
		"clientState", "subscriptionExpirationDateTime", "organizationId"}[f]
}

// Other members decode knows.
const (
	fieldResourceData = numStringFields + iota
	fieldEncryptedContent
	fieldUnknown = -1
)

// fieldOf returns the field named key, or fieldUnknown. The switch on
// string(key) does not allocate.
func fieldOf(key []byte) int {
	switch string(key) {
	case "id":
		return fieldID
	case "subscriptionId":
		return fieldSubscriptionID
	case "changeType":
		return fieldChangeType
	case "lifecycleEvent":
		return fieldLifecycleEvent
	case "resource":
		return fieldResource
	case "tenantId":
		return fieldTenantID
	case "clientState":
		return fieldClientState
	case "subscriptionExpirationDateTime":
		return fieldExpiration
	case "organizationId":
		return fieldOrganizationID
	case "resourceData":
		return fieldResourceData
	case "encryptedContent":
		return fieldEncryptedContent
	}
	return fieldUnknown
}

// decode fills n from b, valid JSON that n may keep referring to. It makes
// one pass over the members, the last value winning for a repeated key as
// in encoding/json, and copies the plain string values (the common case:
// no escapes) into one allocation shared by the fields.
func (n *Notification) decode(b []byte) error {
	*n = Notification{Raw: b}
	ms := newMembers(b)
	var vals [numStringFields][]byte
	var resourceData, encrypted []byte
	for {
		rawKey, val, ok := ms.next()
		if !ok {
			break
		}
		key, plain := plainContent(rawKey)
		if !plain {
			k, ok := stringValue(rawKey)
			if !ok {
				ms.bad = true
				break
			}
			key = []byte(k)
		}
		f := fieldOf(key)
		switch {
		case f == fieldResourceData:
			resourceData = val
		case f == fieldEncryptedContent:
			encrypted = val
		case f >= 0:
			vals[f] = val
		}
		if f == fieldUnknown || f == fieldOrganizationID {
			if n.Extra == nil {
				n.Extra = make(map[string]json.RawMessage, 4)
			}
			n.Extra[string(key)] = val
		}
	}
	if ms.bad {
		*n = Notification{Raw: b, invalid: "item is not a JSON object"}
		return fmt.Errorf("%w: item is not a JSON object", ErrMalformed)
	}

	// One allocation for every plain string value.
	var strs [numStringFields]string
	size := 0
	var plain [numStringFields]bool
	var contents [numStringFields][]byte
	for f, v := range vals {
		if c, ok := plainContent(v); ok {
			contents[f], plain[f] = c, true
			size += len(c)
		}
	}
	var sb strings.Builder
	sb.Grow(size)
	var ends [numStringFields]int
	for f := range vals {
		sb.Write(contents[f])
		ends[f] = sb.Len()
	}
	all := sb.String()
	var bad string
	for f, v := range vals {
		switch {
		case plain[f]:
			strs[f] = all[ends[f]-(len(v)-2) : ends[f]]
		case v == nil || isNull(v):
		default:
			var v2 string // declared here: it escapes, and costs only here
			if err := json.Unmarshal(v, &v2); err != nil && bad == "" && f != fieldOrganizationID {
				bad = fieldName(f) + " is not a string"
			}
			strs[f] = v2
		}
	}
	n.ID, n.SubscriptionID, n.ChangeType, n.LifecycleEvent = strs[fieldID], strs[fieldSubscriptionID], strs[fieldChangeType], strs[fieldLifecycleEvent]
	n.Resource, n.TenantID, n.ClientState = strs[fieldResource], strs[fieldTenantID], ClientState(strs[fieldClientState])
	if n.TenantID == "" {
		// Lifecycle items from real tenants name the tenant so (protocol
		// doc §11). It stays in Extra: it is not ours to drop. A value that
		// is not a string names no tenant.
		n.TenantID = strs[fieldOrganizationID]
	}
	if exp := strs[fieldExpiration]; exp != "" {
		t, err := time.Parse(time.RFC3339Nano, exp)
		if err != nil && bad == "" {
			bad = "subscriptionExpirationDateTime is not an RFC 3339 timestamp"
		}
		n.SubscriptionExpirationDateTime = t
		n.expRaw, n.expAt = exp, t
	}
	if resourceData != nil && !isNull(resourceData) {
		n.ResourceData = resourceData
	}
	if encrypted != nil && !isNull(encrypted) {
		n.EncryptedContent = plainEncryptedContent(encrypted)
		if n.EncryptedContent == nil {
			n.EncryptedContent = new(decrypt.EncryptedContent)
			if err := json.Unmarshal(encrypted, n.EncryptedContent); err != nil && bad == "" {
				bad = "encryptedContent is not an object of strings"
			}
		}
	}
	if bad != "" {
		n.invalid = bad
		return fmt.Errorf("%w: %s", ErrMalformed, bad)
	}
	return nil
}

// plainEncryptedContent decodes b, an encryptedContent object, in the
// shape Graph sends: every member one of the five known names, spelled
// exactly, with a plain string value. The strings share one allocation.
// For anything else it returns nil, and the caller decodes with
// encoding/json (whose case-insensitive matching this does not copy).
func plainEncryptedContent(b []byte) *decrypt.EncryptedContent {
	var vals [5][]byte
	ms := newMembers(b)
	size := 0
	for {
		rawKey, val, ok := ms.next()
		if !ok {
			break
		}
		key, ok := plainContent(rawKey)
		if !ok {
			return nil
		}
		f := -1
		switch string(key) {
		case "data":
			f = 0
		case "dataSignature":
			f = 1
		case "dataKey":
			f = 2
		case "encryptionCertificateId":
			f = 3
		case "encryptionCertificateThumbprint":
			f = 4
		}
		c, ok := plainContent(val)
		if f < 0 || !ok {
			return nil
		}
		if vals[f] != nil {
			size -= len(vals[f])
		}
		vals[f] = c
		size += len(c)
	}
	if ms.bad {
		return nil
	}
	var sb strings.Builder
	sb.Grow(size)
	for _, v := range vals {
		sb.Write(v)
	}
	all := sb.String()
	var strs [5]string
	at := 0
	for f, v := range vals {
		strs[f] = all[at : at+len(v)]
		at += len(v)
	}
	return &decrypt.EncryptedContent{Data: strs[0], DataSignature: strs[1], DataKey: strs[2],
		EncryptionCertificateID: strs[3], EncryptionCertificateThumbprint: strs[4]}
}

// Validate reports why n is not a well-formed notification, or nil. It
// requires subscriptionId and exactly one of changeType and lifecycleEvent.
func (n *Notification) Validate() error {
	if n.invalid != "" {
		return fmt.Errorf("%w: %s", ErrMalformed, n.invalid)
	}
	switch {
	case n.SubscriptionID == "":
		return fmt.Errorf("%w: missing subscriptionId", ErrMalformed)
	case n.ChangeType == "" && n.LifecycleEvent == "":
		return fmt.Errorf("%w: neither changeType nor lifecycleEvent", ErrMalformed)
	case n.ChangeType != "" && n.LifecycleEvent != "":
		return fmt.Errorf("%w: both changeType and lifecycleEvent", ErrMalformed)
	}
	return nil
}

// MarshalJSON writes n in Graph's wire form, unknown fields included.
// Content and Raw are not written. TenantID is written as tenantId, also
// when it was taken from organizationId (which is written too, from Extra).
// The output is what encoding/json writes for a map of the members without
// HTML escaping: compact, keys sorted, a known field taking the place of an
// unknown one of the same name. It is written by hand because events are
// encoded from it once per notification on the publish path.
func (n *Notification) MarshalJSON() ([]byte, error) {
	var stack [16]wireMember
	ms := stack[:0]
	for k, v := range n.Extra {
		ms = append(ms, wireMember{key: k, raw: v, isRaw: true})
	}
	set := func(m wireMember) {
		for i := range ms {
			if ms[i].key == m.key {
				ms[i] = m
				return
			}
		}
		ms = append(ms, m)
	}
	put := func(k, v string) {
		if v != "" {
			set(wireMember{key: k, str: v})
		}
	}
	put("id", n.ID)
	put("subscriptionId", n.SubscriptionID)
	if !n.SubscriptionExpirationDateTime.IsZero() {
		exp := n.expRaw // keep Graph's own spelling, e.g. 7 fractional digits
		if exp == "" || !n.expAt.Equal(n.SubscriptionExpirationDateTime) {
			exp = n.SubscriptionExpirationDateTime.Format(time.RFC3339Nano)
		}
		set(wireMember{key: "subscriptionExpirationDateTime", str: exp})
	}
	put("changeType", n.ChangeType)
	put("lifecycleEvent", n.LifecycleEvent)
	put("resource", n.Resource)
	if n.ResourceData != nil {
		set(wireMember{key: "resourceData", raw: n.ResourceData, isRaw: true})
	}
	put("clientState", string(n.ClientState))
	put("tenantId", n.TenantID)
	if n.EncryptedContent != nil {
		b, err := marshal(n.EncryptedContent)
		if err != nil {
			return nil, err
		}
		set(wireMember{key: "encryptedContent", raw: b, isRaw: true})
	}
	slices.SortFunc(ms, func(a, b wireMember) int { return strings.Compare(a.key, b.key) })
	size := 2
	for _, m := range ms {
		size += len(m.key) + len(m.str) + len(m.raw) + 6
	}
	out := make([]byte, 0, size)
	out = append(out, '{')
	for i, m := range ms {
		if i > 0 {
			out = append(out, ',')
		}
		out = appendJSONString(out, m.key)
		out = append(out, ':')
		switch {
		case !m.isRaw:
			out = appendJSONString(out, m.str)
		case m.raw == nil:
			out = append(out, "null"...)
		default:
			buf := bytes.NewBuffer(out)
			if err := json.Compact(buf, m.raw); err != nil {
				return nil, fmt.Errorf("json: error calling MarshalJSON for type json.RawMessage: %w", err)
			}
			out = buf.Bytes()
		}
	}
	return append(out, '}'), nil
}

// wireMember is a member of a Notification's wire form: a string, or JSON
// written as it is (compacted).
type wireMember struct {
	key, str string
	raw      json.RawMessage
	isRaw    bool
}

// appendJSONString appends s as a JSON string exactly as encoding/json
// writes it without HTML escaping. A string of printable ASCII without '"'
// or '\' (ids, subscription ids, resources, times) is copied as it is;
// anything else goes through encoding/json.
func appendJSONString(dst []byte, s string) []byte {
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c > '~' || c == '"' || c == '\\' {
			plain = false
			break
		}
	}
	if plain {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	b, _ := marshal(s) // a string always marshals
	return append(dst, b...)
}

// marshal is json.Marshal without HTML escaping: escaping '<', '>' and '&'
// as \u003c... would make resource data (HTML mail bodies) up to six times
// larger than Graph sent it, and nothing here is embedded in HTML.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// MarshalJSON writes c in Graph's wire form, unknown fields included.
func (c *Collection) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, 2+len(c.Extra))
	for k, v := range c.Extra {
		m[k] = v
	}
	value := c.Value
	if value == nil {
		value = []*Notification{}
	}
	m["value"] = value
	switch {
	case c.ValidationTokens != nil:
		m["validationTokens"] = c.ValidationTokens
	case c.TokensNull:
		m["validationTokens"] = nil
	}
	return marshal(m)
}
