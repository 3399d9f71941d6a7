package natspub

// Unexported names the external tests check.
var EventID = eventID

const (
	MaxItemHeaderLen   = maxItemHeaderLen
	MaxSubjectTokenLen = maxSubjectTokenLen
	HeaderTraceParent  = headerTraceParent
	HeaderTraceState   = headerTraceState
)
