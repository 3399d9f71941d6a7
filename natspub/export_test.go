package natspub

// Unexported names the external tests check.
var (
	EventID = eventID
	MsgID   = msgID
)

const (
	MaxItemHeaderLen   = maxItemHeaderLen
	MaxSubjectTokenLen = maxSubjectTokenLen
	HeaderTraceParent  = headerTraceParent
	HeaderTraceState   = headerTraceState
)
