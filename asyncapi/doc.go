// Package asyncapi holds the AsyncAPI 3 document of the subjects graphhook
// publishes on and of its event payloads (JSON Schema), for consumers in
// other stacks: code generators, documentation tools, schema registries.
// A test checks it against natspub's golden events, so it cannot drift
// from what the receiver publishes.
package asyncapi

import _ "embed"

//go:embed asyncapi.yaml
var document []byte

// Document returns the AsyncAPI 3.0.0 document (YAML). Each call returns a
// new copy.
func Document() []byte { return append([]byte(nil), document...) }
