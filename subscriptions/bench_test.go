package subscriptions

import (
	"testing"
)

// BenchmarkClientStateLookup measures the receiver's per-item clientState
// lookup against the watched bucket copy (a hit).
func BenchmarkClientStateLookup(b *testing.B) {
	m := &Manager{recs: map[string]*entry{}, byID: map[string]string{}, changed: make(chan struct{})}
	for i := range 1000 {
		id := NewClientState()[:36]
		key := specKey("users/"+id+"/messages", "created", "https://example.com/")
		m.recs[key] = &entry{rec: Record{ID: id, ClientState: NewClientState()}, rev: uint64(i + 1)}
		m.byID[id] = key
	}
	var id string
	for k := range m.byID {
		id = k
		break
	}
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.ClientStateLookup(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
}
