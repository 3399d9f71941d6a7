package testkit

import (
	"os"
	"path/filepath"
	"testing"
)

// AddSeeds adds the contents of every file matching pattern (a
// filepath.Glob pattern such as "testdata/*.json") to f's seed corpus.
func AddSeeds(f *testing.F, pattern string) {
	f.Helper()
	names, err := filepath.Glob(pattern)
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}
