package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzConfigFile feeds arbitrary bytes to the YAML config file reader and
// the merge with flags: it must never panic, must either load or return a
// configuration error, and its messages must never quote the value of a
// secret setting.
func FuzzConfigFile(f *testing.F) {
	f.Add([]byte("listen: ':8443'\nclient-state:\n  - a\n  - b\n"))
	f.Add([]byte("app-id: 11111111-2222-3333-4444-555555555555, 22222222-2222-3333-4444-555555555555\n"))
	f.Add([]byte("key: [a.pem,id=1, b.pfx]\nkey-password: pw\n"))
	f.Add([]byte("listen: [a, b]\n"))
	f.Add([]byte("- just\n- a list\n"))
	f.Add([]byte("client-state: {nested: map}\n"))
	f.Add([]byte("shutdown-timeout: forever\n"))
	f.Add([]byte("a: &x 1\nb: *x\n"))
	f.Add([]byte("listen: \"unterminated\n"))
	f.Add([]byte("\xff\xfe\x00"))
	f.Add([]byte("key-password: *Hunter2-secret\n"))
	f.Add([]byte("listen: ':8080'\nclient-state:\n  - *Hunter2-secret\n"))
	f.Add([]byte("nats-password: *Hunter2-secret\nnats-token: [*Hunter3-secret]\n"))
	f.Add([]byte("client-state: &Hunter2-secret\nkey-password: *Hunter2-secret\n"))
	f.Add([]byte("key-password: \"\\qHunter2-secret\"\n"))
	f.Add([]byte("max-connections: lots\nstream-replicas: [1]\nmax-inflight-bytes: 1KiB\nbody-timeout: -1s\n"))
	f.Add([]byte("subscriptions:\n  - resource: users/42/messages\n    changeType: created\n"))
	f.Add([]byte("subscriptions:\n  tenantId: t\n  clientSecretFile: s\n  leaseTtl: 3s\n  desired:\n    - resource: users/42/messages\n      changeType: created\n      includeResourceData: maybe\n      maxLifetime: [1h]\n"))
	f.Add([]byte("subscriptions:\n  desired: {resource: r}\n  extra: 1\n"))
	f.Add([]byte("subscriptions:\n  desired:\n    - resource: r\n      clientState: [Hunter2-secret-value]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := loadConfig([]string{"--config", path}, noEnv)
		if err != nil {
			if !errors.Is(err, errConfig) {
				t.Fatalf("error %v is not a configuration error", err)
			}
			for _, secret := range secretValues(data) {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error quotes a secret setting's value %q: %v", secret, err)
				}
			}
			return
		}
		_ = c.validate()
	})
}

// secretValues returns the values of secret settings in a YAML document
// (those of 6 bytes or more, which cannot be part of a message by chance).
// Besides what the YAML parser reads, it takes the words written after a
// secret key in the text itself (of 8 bytes or more), so that a document
// the parser rejects, such as "key-password: *Hunter2-secret" (an alias of
// no anchor), is checked too.
func secretValues(data []byte) []string {
	var out []string
	secret := map[string]bool{}
	for _, s := range settings() {
		if s.secret {
			secret[s.name] = true
		}
	}
	secret["clientState"] = true // in the subscriptions section
	inSecret := false            // the lines below a secret key, for block lists
	for line := range strings.SplitSeq(string(data), "\n") {
		rest := strings.TrimSpace(line)
		if k, v, ok := strings.Cut(rest, ":"); ok && !strings.HasPrefix(rest, "-") {
			inSecret = secret[strings.TrimSpace(k)]
			rest = v
		}
		if !inSecret {
			continue
		}
		for _, w := range strings.FieldsFunc(rest, func(r rune) bool { return strings.ContainsRune(" \t\r,[]{}'\"*&!#", r) }) {
			if len(w) >= 8 {
				out = append(out, w)
			}
		}
	}

	var m map[string]any
	if yaml.Unmarshal(data, &m) != nil {
		return out
	}
	add := func(v any) {
		if s, ok := v.(string); ok && len(s) >= 6 {
			out = append(out, s)
		}
	}
	for name := range secret {
		switch v := m[name].(type) {
		case []any:
			for _, e := range v {
				add(e)
			}
		default:
			add(v)
		}
	}
	return out
}

// FuzzParseKeySpec checks that --key values never panic and that a
// parsed spec names a path.
func FuzzParseKeySpec(f *testing.F) {
	for _, s := range []string{"key.pem", "key.pem,id=k1", "a,b,id=x", ",id=x", "key.pem,", "key.pem,ID=x", "k,id="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		path, id, err := parseKeySpec(spec)
		if err != nil {
			return
		}
		if path == "" {
			t.Fatalf("%q: empty path without error", spec)
		}
		if id != "" && path+",id="+id != spec {
			t.Fatalf("%q: split into %q and %q", spec, path, id)
		}
	})
}
