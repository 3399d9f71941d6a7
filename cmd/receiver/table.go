package main

import (
	"cmp"
	"fmt"
	"io"
	"strings"
)

// writeConfigTable writes the settings as a Markdown table, the one the
// README shows ("receiver help config").
func writeConfigTable(w io.Writer) error {
	var b strings.Builder
	b.WriteString("| Flag / YAML key | Environment | Default | Description |\n")
	b.WriteString("|---|---|---|---|\n")
	for _, s := range settings() {
		env := "`" + s.envName() + "`"
		if s.noEnv {
			env = ""
		}
		key := "`--" + s.name + "`"
		if s.noFile {
			key += " (not in the file)"
		}
		def := cmp.Or(s.def, s.shown)
		if def != "" {
			def = "`" + def + "`"
		}
		usage := s.usage
		if s.list() {
			usage += "; a list in YAML"
			if !s.split {
				usage += ", one value in the environment"
			}
		}
		if s.secret {
			usage += "; secret, never logged"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", key, env, def, mdEscape(usage))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// mdEscape keeps text inside one Markdown table cell.
func mdEscape(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(s, "<", "&lt;")
	return strings.ReplaceAll(s, ">", "&gt;")
}

// writeUsage writes -h output.
func writeUsage(w io.Writer) {
	fmt.Fprintf(w, `usage: receiver [flags]
       receiver keygen --out DIR [--id ID] [--bits 2048] [--cn NAME]
       receiver doctor --url https://HOST/notifications [--lifecycle-url URL]   (check the public endpoint as Graph will)
       receiver subscriptions list|create|renew|delete|rotate-cert|retry [--json] [flags]   (the subscription manager's commands)
       receiver help config    (print the settings as a Markdown table)

Receives Microsoft Graph change notifications and publishes them to NATS
JetStream. With no flags it serves http://localhost:8080/notifications and
runs an embedded NATS server on 127.0.0.1:4222 storing in ./data, whose
clients authenticate with the token in ./data/nats-token.

Every flag can also be set with an environment variable (GRAPHHOOK_ and the
flag name in upper case with _ for -) or in the YAML file given by --config;
a flag wins over the environment, which wins over the file.

`)
	fmt.Fprint(w, newFlagSet(settings()).FlagUsages())
}
