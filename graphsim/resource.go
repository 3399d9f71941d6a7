package graphsim

import (
	"strings"
	"time"
)

// resourceKind is what graphsim knows about a subscribable resource: its
// maximum subscription lifetime (protocol doc §8), the changeTypes it
// supports, whether it supports resource data and which lifecycle events
// Graph sends for it (§7).
type resourceKind struct {
	name        string        // e.g. "message", "chatMessage"
	odataType   string        // resourceData @odata.type
	maxLifetime time.Duration // without resource data
	maxRich     time.Duration // with resource data; 0 means maxLifetime
	noRich      bool          // includeResourceData unsupported
	changeTypes []string      // nil means created, updated, deleted
	teams       bool          // lifecycleNotificationUrl required beyond 1 h
	removed     bool          // subscriptionRemoved supported
	missed      bool          // missed supported
	parenIDs    bool          // resource ids written as ('id') rather than /id
}

func minutes(n int) time.Duration { return time.Duration(n) * time.Minute }

// maxLifetimeFor returns the maximum lifetime of a subscription on k.
func (k resourceKind) maxLifetimeFor(rich bool) time.Duration {
	if rich && k.maxRich > 0 {
		return k.maxRich
	}
	return k.maxLifetime
}

// normalizeResource lower-cases a resource path, drops a leading slash, a
// query string and OData key syntax: teams('a')/channels('b') becomes
// teams/a/channels/b.
func normalizeResource(r string) string {
	if i := strings.IndexByte(r, '?'); i >= 0 {
		r = r[:i]
	}
	r = strings.ToLower(strings.Trim(strings.TrimSpace(r), "/"))
	var b strings.Builder
	for _, c := range r {
		switch c {
		case '(':
			b.WriteByte('/')
		case ')', '\'':
		default:
			b.WriteRune(c)
		}
	}
	return strings.Trim(b.String(), "/")
}

// classify maps a resource path onto the lifetime table of the protocol
// doc §8. Unknown resources get 4,230 minutes and every changeType.
func classify(resource string) resourceKind {
	segs := strings.Split(normalizeResource(resource), "/")
	has := func(names ...string) bool {
		for _, s := range segs {
			for _, n := range names {
				if s == n {
					return true
				}
			}
		}
		return false
	}
	first := segs[0]
	second := ""
	if len(segs) > 1 {
		second = segs[1]
	}
	teams := func(name, odata string) resourceKind {
		return resourceKind{name: name, odataType: odata, maxLifetime: minutes(4320), teams: true, parenIDs: true}
	}
	outlook := func(name, odata string) resourceKind {
		return resourceKind{name: name, odataType: odata, maxLifetime: minutes(10080), maxRich: minutes(1440), removed: true, missed: true}
	}
	switch {
	case has("presence", "presences"):
		return resourceKind{name: "presence", odataType: "#Microsoft.Graph.presence", maxLifetime: minutes(60), parenIDs: true}
	case first == "communications" && second == "callrecords":
		return resourceKind{name: "callRecord", odataType: "#microsoft.graph.callRecord", maxLifetime: minutes(4230), noRich: true}
	case has("recordings", "getallrecordings"):
		return teams("callRecording", "#microsoft.graph.callRecording")
	case has("transcripts", "getalltranscripts"):
		return teams("callTranscript", "#microsoft.graph.callTranscript")
	case has("onlinemeetings"):
		return teams("onlineMeeting", "#Microsoft.Graph.onlineMeeting")
	case has("schedule") && has("shifts", "openshiftchangerequests", "swapshiftschangerequests", "offershiftrequests", "timeoffrequests"):
		return resourceKind{name: "shift", odataType: "#microsoft.graph.shift", maxLifetime: minutes(360), noRich: true}
	case has("getallmessages") || has("messages") && (has("chats", "channels") || first == "teams"):
		k := teams("chatMessage", "#Microsoft.Graph.ChatMessage")
		k.removed = true
		return k
	case has("members", "getallmembers") && has("chats", "teams", "channels"):
		return teams("conversationMember", "#microsoft.graph.aadUserConversationMember")
	case has("installedapps") && has("chats", "teams", "users"):
		return teams("teamsAppInstallation", "#microsoft.graph.teamsAppInstallation")
	case has("channels", "getallchannels"):
		return teams("channel", "#Microsoft.Graph.Channel")
	case has("chats", "getallchats"):
		return teams("chat", "#Microsoft.Graph.Chat")
	case first == "teams":
		return teams("team", "#Microsoft.Graph.Team")
	case has("aiinteractionhistory", "interactionhistory", "aiinteraction") || first == "copilot":
		return resourceKind{name: "aiInteraction", odataType: "#microsoft.graph.aiInteraction", maxLifetime: minutes(4320)}
	case first == "security" && has("alerts", "alerts_v2"):
		return resourceKind{name: "alert", odataType: "#microsoft.graph.security.alert", maxLifetime: minutes(43200), noRich: true}
	case has("approval", "approvals", "approvalitems"):
		return resourceKind{name: "approval", odataType: "#microsoft.graph.approvalItem", maxLifetime: minutes(43200), noRich: true}
	case first == "groups" && has("conversations", "threads"):
		return resourceKind{name: "conversation", odataType: "#Microsoft.Graph.Conversation", maxLifetime: minutes(4230), noRich: true}
	case has("drive", "drives", "root"):
		return resourceKind{name: "driveItem", odataType: "#Microsoft.Graph.DriveItem", maxLifetime: minutes(42300), noRich: true, changeTypes: []string{"updated"}}
	case first == "sites" && has("lists"):
		return resourceKind{name: "list", odataType: "#Microsoft.Graph.List", maxLifetime: minutes(42300), noRich: true, changeTypes: []string{"updated"}}
	case has("messages", "mailfolders"):
		return outlook("message", "#Microsoft.Graph.Message")
	case has("events", "calendar", "calendars"):
		return outlook("event", "#Microsoft.Graph.Event")
	case has("contacts", "contactfolders"):
		return outlook("contact", "#Microsoft.Graph.Contact")
	case has("todo"):
		return resourceKind{name: "todoTask", odataType: "#microsoft.graph.todoTask", maxLifetime: minutes(4230), noRich: true}
	case first == "print":
		return resourceKind{name: "printer", odataType: "#microsoft.graph.printJob", maxLifetime: minutes(4230), noRich: true}
	case has("tasks"):
		return resourceKind{name: "baseTask", odataType: "#microsoft.graph.baseTask", maxLifetime: minutes(4230), noRich: true}
	case has("healthmonitoring"):
		return resourceKind{name: "healthAlert", odataType: "#microsoft.graph.healthMonitoring.alert", maxLifetime: minutes(42300), noRich: true}
	case first == "users" && len(segs) <= 2:
		return resourceKind{name: "user", odataType: "#Microsoft.Graph.User", maxLifetime: minutes(41760), changeTypes: []string{"updated", "deleted"}}
	case first == "groups" && len(segs) <= 2:
		return resourceKind{name: "group", odataType: "#Microsoft.Graph.Group", maxLifetime: minutes(41760), changeTypes: []string{"updated", "deleted"}}
	case first == "directory" || first == "serviceprincipals" || first == "applications" || first == "devices" || first == "organization":
		return resourceKind{name: "directoryObject", odataType: "#Microsoft.Graph.DirectoryObject", maxLifetime: minutes(41760)}
	}
	return resourceKind{name: "resource", odataType: "#Microsoft.Graph.Entity", maxLifetime: minutes(4230)}
}

// outlook reports whether k is an Outlook resource (mailbox quota,
// MailboxNotEnabledForRESTAPI).
func (k resourceKind) outlook() bool {
	return k.name == "message" || k.name == "event" || k.name == "contact"
}

// directory reports whether k is a directory resource (tenant quotas).
func (k resourceKind) directory() bool {
	return k.name == "user" || k.name == "group" || k.name == "directoryObject"
}

// allowedChangeTypes returns the changeTypes k supports.
func (k resourceKind) allowedChangeTypes() []string {
	if k.changeTypes != nil {
		return k.changeTypes
	}
	return []string{"created", "updated", "deleted"}
}
