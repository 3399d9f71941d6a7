package main

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// version is the release version, set at build time with
// -ldflags "-X main.version=v1.2.3". It is the one package-level variable of
// the command, because the linker can only set variables.
var version = "dev"

// versionString describes the build: the release version, the module
// version and VCS revision when the build recorded them, and the Go version.
func versionString() string {
	var b strings.Builder
	fmt.Fprintf(&b, "graphhook receiver %s", version)
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b.String()
	}
	if v := info.Main.Version; v != "" && v != "(devel)" && v != version {
		fmt.Fprintf(&b, " (module %s)", v)
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+dirty"
			}
		}
	}
	if rev != "" {
		fmt.Fprintf(&b, " commit %.12s%s", rev, modified)
	}
	fmt.Fprintf(&b, " %s", info.GoVersion)
	return b.String()
}
