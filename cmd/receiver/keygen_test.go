package main

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/graphhook/graphhook/decrypt"
	"github.com/graphhook/graphhook/internal/testkit"
)

func TestKeygenWritesKeyAndPrintsSubscriptionValues(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	var out testkit.SyncBuffer
	if err := run(t.Context(), []string{"keygen", "--out", dir, "--id", "key-2026", "--cn", "hooks.example.com"}, noEnv, &out, &testkit.SyncBuffer{}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "key.pem")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key.pem mode %v, want 0600", fi.Mode().Perm())
	}
	k, err := decrypt.LoadFile(path, "")
	if err != nil {
		t.Fatal(err)
	}
	if k.Certificate == nil || k.Certificate.Subject.CommonName != "hooks.example.com" || k.Private.N.BitLen() != 2048 {
		t.Fatalf("key: %v", k)
	}

	text := out.String()
	m := regexp.MustCompile(`"encryptionCertificate": "([^"]+)"`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no encryptionCertificate in:\n%s", text)
	}
	der, err := base64.StdEncoding.DecodeString(m[1])
	if err != nil {
		t.Fatalf("encryptionCertificate is not standard base64: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil || !cert.Equal(k.Certificate) {
		t.Fatalf("encryptionCertificate is not the certificate in key.pem (%v)", err)
	}
	for _, want := range []string{`"encryptionCertificateId": "key-2026"`, k.Thumbprint(), "--key " + path + ",id=key-2026"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "PRIVATE KEY") {
		t.Error("the private key was printed")
	}

	// A second run must not overwrite the key.
	err = run(t.Context(), []string{"keygen", "--out", dir}, noEnv, &testkit.SyncBuffer{}, &testkit.SyncBuffer{})
	if !errors.Is(err, fs.ErrExist) {
		t.Errorf("second keygen: %v, want fs.ErrExist", err)
	}
	// The key works with the receiver's --key.
	c, err := loadConfig([]string{"--key", path + ",id=key-2026", "--insecure-skip-token-validation", "--client-state", "x", "--data-dir", t.TempDir()}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	sec, ps := c.loadSecrets()
	if len(ps) > 0 || len(sec.keys) != 1 || sec.keys[0].ID != "key-2026" {
		t.Fatalf("loading the generated key: %v %v", ps.err(), sec.keys)
	}
}

func TestKeygenRejectsBadBits(t *testing.T) {
	err := run(t.Context(), []string{"keygen", "--out", t.TempDir(), "--bits", "1024"}, noEnv, &testkit.SyncBuffer{}, &testkit.SyncBuffer{})
	if !errors.Is(err, errConfig) || !strings.HasPrefix(err.Error(), "--bits: 1024 is outside 2048..4096") {
		t.Errorf("err = %v", err)
	}
	err = run(t.Context(), []string{"keygen", "--bogus"}, noEnv, &testkit.SyncBuffer{}, &testkit.SyncBuffer{})
	if !errors.Is(err, errUsage) {
		t.Errorf("err = %v, want errUsage", err)
	}
}

// TestKeygenKeysStayOutOfGit checks both guards: a directory keygen creates
// holds a .gitignore of "*", and the repository's .gitignore covers a keys/
// directory anywhere in the tree.
func TestKeygenKeysStayOutOfGit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	if err := run(t.Context(), []string{"keygen", "--out", dir, "--id", "key-1"}, noEnv, &testkit.SyncBuffer{}, &testkit.SyncBuffer{}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, ".gitignore"))
	if err != nil {
		t.Fatalf("keygen created %s without a .gitignore: %v", dir, err)
	}
	if !slices.Contains(strings.Split(string(b), "\n"), "*") {
		t.Errorf("%s/.gitignore does not ignore everything:\n%s", dir, b)
	}
	// An existing directory (say /etc/graphhook) is left as it is.
	existing := t.TempDir()
	if err := run(t.Context(), []string{"keygen", "--out", existing}, noEnv, &testkit.SyncBuffer{}, &testkit.SyncBuffer{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(existing, ".gitignore")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("keygen wrote a .gitignore into a directory it did not create: %v", err)
	}

	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git not installed")
	}
	root := filepath.Join("..", "..")
	if _, err := os.Stat(filepath.Join(root, ".git")); err != nil {
		t.Skip("not a git checkout")
	}
	for _, p := range []string{"keys/key.pem", "cmd/receiver/keys/key.pem", "deploy/keys/key-2026.pem"} {
		cmd := exec.CommandContext(t.Context(), git, "check-ignore", "-q", "--no-index", p)
		cmd.Dir = root
		if err := cmd.Run(); err != nil {
			t.Errorf("the repository's .gitignore does not cover %s (git check-ignore: %v)", p, err)
		}
	}
}
