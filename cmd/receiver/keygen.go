package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/graphhook/graphhook/decrypt"
)

// keygen implements "receiver keygen": it writes a new RSA key and
// self-signed certificate to <out>/key.pem (mode 0600) and prints the
// values a subscription request needs. A directory it creates gets a
// .gitignore of "*", so that "git add ." never commits the key.
func keygen(args []string, stdout io.Writer) error {
	flags := flag.NewFlagSet("receiver keygen", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	out := flags.String("out", ".", "directory to write key.pem to")
	id := flags.String("id", "", "encryptionCertificateId to use in subscriptions (default: key-<date>)")
	bits := flags.Int("bits", 2048, "RSA key size, 2048 to 4096")
	cn := flags.String("cn", "graphhook", "certificate common name")
	validFor := flags.Duration("valid-for", 2*365*24*time.Hour, "certificate validity")
	force := flags.Bool("force", false, "overwrite an existing key.pem")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, "usage: receiver keygen [--out dir] [--id ID] [--bits 2048] [--cn name] [--valid-for 17520h] [--force]")
			flags.SetOutput(stdout)
			flags.PrintDefaults()
			return nil
		}
		return fmt.Errorf("%w: keygen: %v", errUsage, err) // the standard flag package's own words
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("%w: keygen: unexpected argument %q (example: receiver keygen --out /etc/graphhook --id key-1)", errUsage, flags.Arg(0))
	}
	if *bits < decrypt.MinKeyBits || *bits > decrypt.MaxKeyBits {
		return &problem{setting: "--bits", msg: fmt.Sprintf("%d is outside %d..%d, the sizes Graph accepts (example: --bits 2048)", *bits, decrypt.MinKeyBits, decrypt.MaxKeyBits)}
	}
	if *validFor <= 0 {
		return &problem{setting: "--valid-for", msg: fmt.Sprintf("%v is not positive (example: --valid-for 8760h)", *validFor)}
	}
	if *id == "" {
		*id = "key-" + time.Now().UTC().Format("20060102")
	}
	path := filepath.Join(*out, "key.pem")
	if _, err := os.Stat(path); err == nil && !*force {
		return &problem{setting: "--out", err: fs.ErrExist, msg: fmt.Sprintf("%s already exists; keep it, or pass --force to replace it (example: receiver keygen --out %s --force)", path, *out)}
	}

	k, err := decrypt.GenerateKey(*bits, *cn, *validFor)
	if err != nil {
		return err
	}
	k.ID = *id
	pemData, err := k.MarshalPEM()
	if err != nil {
		return err
	}
	if err := mkdirIgnored(*out); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	tmp, err := os.CreateTemp(*out, ".key-*.pem")
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("keygen: %w", err)
	}
	_, err = tmp.Write(pemData)
	clear(pemData)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}

	fmt.Fprintf(stdout, `Wrote %s (private key and certificate, mode 0600).

Start the receiver with it:
  receiver --key %s,id=%s --app-id <your application id>

Subscription request fields (POST https://graph.microsoft.com/v1.0/subscriptions):
  "includeResourceData": true,
  "encryptionCertificateId": %q,
  "encryptionCertificate": %q

Certificate thumbprint (SHA-1): %s
Valid until: %s
`, path, path, *id, *id, k.EncryptionCertificate(), k.Thumbprint(), k.Certificate.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

// mkdirIgnored creates dir (mode 0700) unless it exists; a directory it
// creates holds a .gitignore that ignores everything in it.
func mkdirIgnored(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, ".gitignore"), []byte("# Written by receiver keygen: private keys stay out of git.\n*\n"), 0o600)
}
