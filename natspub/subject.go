package natspub

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/graphhook/graphhook/receiver"
)

// DefaultSubjectPrefix is the subject prefix used when none is configured.
const DefaultSubjectPrefix = "graph"

// maxSubjectTokenLen is the longest subject token [SubjectToken] returns. Longer inputs
// are shortened to a prefix and a hash, so no input can push a subject past
// the server's control-line limit.
const maxSubjectTokenLen = 64

// EmptySubjectToken stands for a missing value in a subject.
const EmptySubjectToken = "_"

// eventSubject returns the subject an accepted notification is published on:
//
//	<prefix>.notifications.<tenantId>.<subscriptionId>.<changeType>
//	<prefix>.lifecycle.<tenantId>.<subscriptionId>.<lifecycleEvent>
//
// Each variable part goes through [SubjectToken]. An empty prefix means
// [DefaultSubjectPrefix]. The prefix itself is not escaped: it comes from
// configuration, not from Graph, and may hold several tokens ("acme.graph").
func eventSubject(prefix string, n *receiver.Notification) string {
	if prefix == "" {
		prefix = DefaultSubjectPrefix
	}
	if n.IsLifecycle() {
		return prefix + ".lifecycle." + SubjectToken(n.TenantID) + "." + SubjectToken(n.SubscriptionID) + "." + SubjectToken(n.LifecycleEvent)
	}
	return prefix + ".notifications." + SubjectToken(n.TenantID) + "." + SubjectToken(n.SubscriptionID) + "." + SubjectToken(n.ChangeType)
}

// rejectedSubject returns the subject of a quarantine message:
//
//	<prefix>.rejected.<reason>.<tenantId>
//
// Deliver publishes one quarantine message per reason present in a batch,
// holding every item rejected for that reason. tenantID is the tenantId the
// items share; pass "" when they do not all share one, or have none, and
// the token is [EmptySubjectToken] ("_"). Both parts go through [SubjectToken]. An empty
// prefix means [DefaultSubjectPrefix].
func rejectedSubject(prefix string, reason receiver.Reason, tenantID string) string {
	if prefix == "" {
		prefix = DefaultSubjectPrefix
	}
	return prefix + ".rejected." + SubjectToken(string(reason)) + "." + SubjectToken(tenantID)
}

// Token makes s safe as one subject token, so that nothing Graph (or a
// forger) sends can add tokens or wildcards to a subject. Bytes outside
// printable ASCII, and '.', '*', '>', '%' and '~' are written as %XX
// (upper-case hex), and a consumer can compute the token for a filter. An
// empty s becomes [EmptySubjectToken] (a literal "_" stays "_", so the two read
// alike). A result longer than 64 characters is cut and ends in "~" and 16
// hex digits of the SHA-256 of s. Since '~' is escaped everywhere else, a
// shortened token never equals an unshortened one, and two long inputs
// share a token only if those 64 bits of their hashes collide: apart from
// that and "_", the mapping is one-to-one.
//
// Graph's GUIDs and enum values pass unchanged.
func SubjectToken(s string) string {
	if s == "" {
		return EmptySubjectToken
	}
	clean := true
	for i := 0; i < len(s); i++ {
		if needsEscape(s[i]) {
			clean = false
			break
		}
	}
	out := s
	if !clean {
		var b strings.Builder
		b.Grow(len(s) + 8)
		for i := 0; i < len(s); i++ {
			c := s[i]
			if needsEscape(c) {
				b.WriteByte('%')
				b.WriteByte(upperHex[c>>4])
				b.WriteByte(upperHex[c&0xf])
				continue
			}
			b.WriteByte(c)
		}
		out = b.String()
	}
	if len(out) > maxSubjectTokenLen {
		sum := sha256.Sum256([]byte(s))
		cut := maxSubjectTokenLen - 17
		// Do not cut an escape in half.
		if i := strings.LastIndexByte(out[:cut], '%'); i >= cut-2 {
			cut = i
		}
		out = out[:cut] + "~" + hex.EncodeToString(sum[:8])
	}
	return out
}

const upperHex = "0123456789ABCDEF"

func needsEscape(c byte) bool {
	return c <= ' ' || c >= 0x7f || c == '.' || c == '*' || c == '>' || c == '%' || c == '~'
}
