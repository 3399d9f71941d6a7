package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/graphhook/graphhook/decrypt"
	"github.com/graphhook/graphhook/receiver"
)

// defaultClientStateFile is the file name, in --data-dir, of the clientState
// generated when none is configured.
const defaultClientStateFile = "client-state"

// defaultNATSTokenFile is the file name, in --data-dir, of the embedded
// NATS server's token when --embedded-nats-token-file is not set.
const defaultNATSTokenFile = "nats-token"

// minNATSTokenLen is the shortest token the embedded server accepts from a
// token file; a generated one is 43 characters.
const minNATSTokenLen = 16

// secrets holds what the configuration names by file, read at start.
type secrets struct {
	clientStates []string
	// clientStateFile is the file the client states came from, if any.
	clientStateFile string
	// generated is true when clientStateFile was created at this start.
	generated bool
	keys      []decrypt.Key

	// natsToken is the token of the embedded NATS server, read from
	// natsTokenFile; empty with --nats-url.
	natsToken     string
	natsTokenFile string
}

// loadSecrets reads client states and keys. It reports every problem; the
// messages name files but never their contents.
func (c *config) loadSecrets() (*secrets, problems) {
	var ps problems
	s := &secrets{clientStates: append([]string(nil), c.ClientStates...)}

	file := c.ClientStateFile
	if file == "" && len(c.ClientStates) == 0 && !c.InsecureSkipClientState {
		file = filepath.Join(c.DataDir, defaultClientStateFile)
		created, err := ensureSecretFile(file)
		if err != nil {
			ps.add(c.where("client-state-file"), err, fmt.Sprintf("no clientState is configured and %s cannot be created: %v (example: --client-state-file /run/secrets/graph-client-state)", file, pathError(err)))
		}
		s.generated = created
	}
	if file != "" {
		s.clientStateFile = file
		states, err := readClientStates(file)
		switch {
		case err != nil:
			ps.add(c.where("client-state-file"), err, err.Error())
		case len(states) == 0:
			ps.add(c.where("client-state-file"), nil, fmt.Sprintf("%s holds no clientState; write one value per line (example: %s > %s)", file, exampleSecretGen, file))
		}
		s.clientStates = append(s.clientStates, states...)
	}

	password := c.KeyPassword
	if c.KeyPasswordFile != "" {
		b, err := readSmallFile(c.KeyPasswordFile, maxSecretFileSize)
		if err != nil {
			ps.add(c.where("key-password-file"), err, fmt.Sprintf("cannot read %s: %v (example: --key-password-file /run/secrets/pfx-password)", c.KeyPasswordFile, pathError(err)))
		}
		password = strings.TrimRight(string(b), "\r\n")
	}
	for _, spec := range c.Keys {
		path, id, err := parseKeySpec(spec)
		if err != nil {
			continue // reported by validate
		}
		k, err := decrypt.LoadFile(path, password)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			ps.add(c.where("key"), err, fmt.Sprintf("key file %s does not exist (example: --key /etc/graphhook/key.pem,id=key-1; make one with: %s)", path, exampleKeygen))
			continue
		case errors.Is(err, decrypt.ErrKeyPassword):
			how := "set --key-password-file"
			if password != "" {
				how = "check --key-password-file or --key-password"
			}
			ps.add(c.where("key"), err, fmt.Sprintf("cannot open PFX file %s: wrong or missing password (%s, example: --key-password-file /run/secrets/pfx-password)", path, how))
			continue
		case err != nil:
			ps.add(c.where("key"), err, fmt.Sprintf("cannot use key file %s: %s (want a PEM private key with its certificate, or a PFX; example: %s)", path, keyErrorText(err, path), exampleKeygen))
			continue
		}
		k.ID = id
		if k.ID == "" && k.Certificate == nil {
			ps.add(c.where("key"), decrypt.ErrKeyFile, fmt.Sprintf("%s holds no certificate, so it needs an id (example: --key %s,id=key-1)", path, path))
			continue
		}
		s.keys = append(s.keys, k)
	}
	if len(s.keys) > 0 {
		if _, err := decrypt.NewKeyRing(s.keys...); err != nil {
			ps.add(c.where("key"), err, fmt.Sprintf("keys cannot be used together: %v (give each key file once; keys may share an id, as when a subscription's certificate is renewed under the same encryptionCertificateId, and are then told apart by certificate thumbprint, so such keys need their certificates; example: --key key-2025.pem,id=key-1 --key key-2026.pem,id=key-1)", err))
		}
	}

	if len(c.NATSURLs) == 0 {
		file, create := c.EmbeddedNATSToken, false
		if file == "" {
			file, create = filepath.Join(c.DataDir, defaultNATSTokenFile), true
		}
		s.natsTokenFile = file
		tok, err := loadNATSToken(file, create)
		if err != nil {
			ps.add(c.where("embedded-nats-token-file"), err, err.Error())
		}
		s.natsToken = tok
	}

	for _, f := range []struct{ name, path string }{
		{"nats-creds", c.NATSCreds}, {"nats-nkey", c.NATSNKey}, {"nats-tls-ca", c.NATSTLSCA},
		{"nats-tls-cert", c.NATSTLSCert}, {"nats-tls-key", c.NATSTLSKey},
	} {
		if f.path == "" {
			continue
		}
		if fh, err := os.Open(f.path); err != nil {
			ps.add(c.where(f.name), err, fmt.Sprintf("cannot read %s: %v (example: %s)", f.path, pathError(err), settingByName(f.name).exampleArg()))
		} else {
			fh.Close()
		}
	}
	return s, ps
}

// keyErrorText shortens decrypt's error text, which repeats the package and
// the path.
func keyErrorText(err error, path string) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "decrypt: load key "+path+": ")
	return strings.ReplaceAll(msg, "decrypt: ", "")
}

// pathError returns the reason of a *fs.PathError without repeating the path.
func pathError(err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err
	}
	return err
}

// maxSecretFileSize bounds the files holding secrets.
const maxSecretFileSize = 64 << 10

// readSmallFile reads path, refusing a file larger than limit bytes.
func readSmallFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return b, nil
}

// readClientStates reads one clientState per line; surrounding white space
// and blank lines are ignored. Errors name lines, never their contents.
func readClientStates(path string) ([]string, error) {
	b, err := readSmallFile(path, maxSecretFileSize)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w (example: --client-state-file /run/secrets/graph-client-state)", path, pathError(err))
	}
	var out []string
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if n := utf8.RuneCountInString(line); n > receiver.MaxClientStateLen {
			return nil, fmt.Errorf("line %d of %s is %d characters; Graph allows at most %d (example: %s > %s)", i+1, path, n, receiver.MaxClientStateLen, exampleSecretGen, path)
		}
		out = append(out, line)
	}
	return out, nil
}

// loadNATSToken returns the embedded NATS server's token from path. With
// create, a missing file is created with a random token (mode 0600). The
// token must be usable in a URL (nats://TOKEN@host:port), so it may hold
// only letters, digits and -._~. Errors name the file, never its content.
func loadNATSToken(path string, create bool) (string, error) {
	example := fmt.Sprintf("example: %s > %s", exampleTokenGen, path)
	if create {
		if _, err := ensureSecretFile(path); err != nil {
			return "", fmt.Errorf("%s cannot be created: %w (example: --data-dir /var/lib/graphhook)", path, pathError(err))
		}
	}
	b, err := readSmallFile(path, maxSecretFileSize)
	if err != nil {
		return "", fmt.Errorf("cannot read %s: %w (example: --embedded-nats-token-file /run/secrets/nats-token)", path, pathError(err))
	}
	tok := strings.TrimSpace(string(b))
	switch {
	case len(tok) < minNATSTokenLen:
		return "", fmt.Errorf("%s holds a token shorter than %d characters (%s)", path, minNATSTokenLen, example)
	case strings.ContainsFunc(tok, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_' || r == '~')
	}):
		return "", fmt.Errorf("%s holds characters other than letters, digits and -._~, which a nats:// URL cannot carry as they are (%s)", path, example)
	}
	return tok, nil
}

// ensureSecretFile creates path with a random value (32 bytes, base64url:
// 43 characters that need no quoting in a URL or a shell) and mode 0600,
// unless it exists. It reports whether it created the file.
func ensureSecretFile(path string) (bool, error) {
	if _, err := os.Stat(path); err == nil {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, err
	}
	var b [32]byte
	_, _ = rand.Read(b[:])
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return false, nil // created concurrently; use it
	}
	if err != nil {
		return false, err
	}
	_, err = f.WriteString(base64.RawURLEncoding.EncodeToString(b[:]) + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return false, err
	}
	return true, nil
}
