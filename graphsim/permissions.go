package graphsim

import (
	"net/http"
	"slices"
	"strings"
)

// Application permissions per resource kind, from the permissions table of
// Microsoft's "Create subscription" page (shared/seeds,
// create-subscription-v1.0.txt, "Application" column). Any one of a kind's
// permissions lets an app-only caller subscribe. A kind the table marks
// "Not supported" for applications has none (appOnly false); a kind the
// table does not name (onlineMeeting, directory objects, ...) is not
// checked. (A function, not a package variable: no mutable global state.)
func appPermissions() map[string][]string {
	return map[string][]string{
		"aiInteraction":        {"AiEnterpriseInteraction.Read.All", "AiEnterpriseInteraction.Read.User"},
		"callRecord":           {"CallRecords.Read.All"},
		"callRecording":        {"OnlineMeetingRecording.Read.All"},
		"callTranscript":       {"OnlineMeetingTranscript.Read.All"},
		"channel":              {"Channel.ReadBasic.All", "ChannelSettings.Read.All"},
		"chat":                 {"Chat.ReadBasic.All", "Chat.Read.All", "Chat.ReadWrite.All", "Chat.ReadBasic.WhereInstalled", "Chat.Read.WhereInstalled", "Chat.ReadWrite.WhereInstalled"},
		"channelMessage":       {"ChannelMessage.Read.Group", "ChannelMessage.Read.All"},
		"chatMessage":          {"Chat.Read.All", "Chat.ReadWrite.All", "Chat.Read.WhereInstalled", "Chat.ReadWrite.WhereInstalled"},
		"contact":              {"Contacts.Read"},
		"conversationMember":   {"ChatMember.Read.All", "ChatMember.ReadWrite.All", "Chat.ReadBasic.All", "Chat.Read.All", "Chat.ReadWrite.All", "TeamMember.Read.All", "ChannelMember.Read.All", "ChatMember.Read.WhereInstalled", "ChatMember.ReadWrite.WhereInstalled"},
		"driveItem":            {"Files.Read.All"},
		"event":                {"Calendars.Read"},
		"group":                {"Group.Read.All"},
		"list":                 {"Sites.Read.All"},
		"message":              {"Mail.Read"},
		"shift":                {"Schedule.Read.All", "Schedule.ReadWrite.All"},
		"printer":              {"Printer.Read.All", "Printer.ReadWrite.All"},
		"alert":                {"SecurityEvents.ReadWrite.All"},
		"team":                 {"Team.ReadBasic.All", "TeamSettings.Read.All"},
		"user":                 {"User.Read.All"},
		"conversation":         nil, // group conversation: "Not supported" for applications
		"presence":             nil, // "Not supported" for applications
		"todoTask":             nil, // "Not supported" for applications
		"teamsAppInstallation": {},  // not in the table: unchecked
	}
}

// permissionKey is the row of the permissions table for resource: Teams
// channel messages and chat messages need different permissions.
func permissionKey(resource string, kind resourceKind) string {
	if kind.name == "chatMessage" {
		n := normalizeResource(resource)
		if !strings.Contains(n, "chats") {
			return "channelMessage"
		}
	}
	return kind.name
}

// RequiredPermissions returns the application permissions, any one of
// which lets an app-only caller subscribe to resource, as Microsoft's
// permissions table names them. nil with ok false means applications
// cannot subscribe to it at all ("Not supported"); nil with ok true means
// graphsim does not check it.
func RequiredPermissions(resource string) (perms []string, ok bool) {
	kind := classify(resource)
	p, known := appPermissions()[permissionKey(resource, kind)]
	if !known {
		return nil, true
	}
	if p == nil {
		return nil, false
	}
	if len(p) == 0 {
		return nil, true
	}
	return slices.Clone(p), true
}

// AllPermissions returns every application permission of the table,
// sorted: roles for an app that may subscribe to any resource.
func AllPermissions() []string {
	var out []string
	for _, ps := range appPermissions() {
		for _, p := range ps {
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	slices.Sort(out)
	return out
}

// checkPermission answers what Graph answers an app-only caller without
// the permission a resource needs (403), and a delegated-only path such as
// me/... (400). Callers of the Go API act as a signed-in user who consented
// everything and are not checked.
func checkPermission(op, resource string, c caller) error {
	if c.delegated {
		return nil
	}
	n := normalizeResource(resource)
	if n == "me" || strings.HasPrefix(n, "me/") {
		// Graph's answer to /me with an app-only token.
		return &Error{Status: http.StatusBadRequest, Code: "BadRequest", Message: "/me request is only valid with delegated authentication flow.", Err: ErrDelegatedOnly}
	}
	perms, ok := RequiredPermissions(resource)
	if !ok {
		return forbidden("Operation: %s; Exception: [Status Code: Forbidden; Reason: Application permissions are not supported for resource '%s'.]", op, resource)
	}
	if len(perms) == 0 {
		return nil
	}
	for _, r := range c.roles {
		if slices.Contains(perms, r) {
			return nil
		}
	}
	return forbidden("Operation: %s; Exception: [Status Code: Forbidden; Reason: Insufficient privileges to complete the operation. The application needs one of these permissions: %s.]", op, strings.Join(perms, ", "))
}

func forbidden(format string, args ...any) *Error {
	e := badRequest(ErrForbidden, format, args...)
	e.Status, e.Code = http.StatusForbidden, "ExtensionError"
	return e
}
