package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/graphhook/graphhook/internal/natstest"
)

var update = flag.Bool("update", false, "rewrite the configuration table in the repository's README.md and docs/status.png")

// readmePath is the repository's README, whose examples these tests keep true.
var readmePath = filepath.Join("..", "..", "README.md")

const (
	tableStart = "<!-- config-table -->"
	tableEnd   = "<!-- /config-table -->"
)

// tableSection returns the text between the table markers of doc.
func tableSection(doc string) (before, table, after string, ok bool) {
	i := strings.Index(doc, tableStart)
	if i < 0 {
		return "", "", "", false
	}
	rest := doc[i+len(tableStart):]
	j := strings.Index(rest, tableEnd)
	if j < 0 {
		j = strings.Index(rest, tableStart) // the same marker may close the section
	}
	if j < 0 {
		return "", "", "", false
	}
	return doc[:i+len(tableStart)], rest[:j], rest[j:], true
}

// TestConfigTableMatchesREADME checks that the configuration table in the
// repository's README.md is the one the code generates. Run with -update
// to rewrite it.
func TestConfigTableMatchesREADME(t *testing.T) {
	var want bytes.Buffer
	if err := writeConfigTable(&want); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	before, got, after, ok := tableSection(string(data))
	if !ok {
		t.Fatalf("%s has no %s ... %s section", readmePath, tableStart, tableEnd)
	}
	if strings.TrimSpace(got) == strings.TrimSpace(want.String()) {
		return
	}
	if *update {
		if err := os.WriteFile(readmePath, []byte(before+"\n"+want.String()+after), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("the configuration table in %s differs from the code; regenerate it with\n"+
		"  go test ./cmd/receiver -run TestConfigTableMatchesREADME -update\ngot:\n%s\nwant:\n%s", readmePath, got, want.String())
}

// quickStartCommands returns the curl commands of the Quick start section.
func quickStartCommands(t *testing.T, doc string) []string {
	t.Helper()
	_, section, ok := strings.Cut(doc, "## Quick start")
	if !ok {
		t.Fatal("README.md has no Quick start section")
	}
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	var cmds []string
	for block := range strings.SplitSeq(section, "```sh\n") {
		body, _, ok := strings.Cut(block, "```")
		if !ok {
			continue
		}
		for line := range strings.SplitSeq(body, "\n") {
			if strings.HasPrefix(line, "curl ") {
				cmds = append(cmds, line)
			}
		}
	}
	return cmds
}

// TestQuickStartWorksAsPasted runs the quick start's curl commands, as
// written, against a receiver started with the defaults (ports aside) in a
// directory of its own, the way "go run ./cmd/receiver" starts.
func TestQuickStartWorksAsPasted(t *testing.T) {
	for _, tool := range []string{"bash", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	doc, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	cmds := quickStartCommands(t, string(doc))
	if len(cmds) != 2 {
		t.Fatalf("quick start has %d curl commands, want the handshake and the POST", len(cmds))
	}
	if !strings.Contains(string(doc), "```sh\ngo run ./cmd/receiver\n```") {
		t.Error("the quick start does not start with the one command `go run ./cmd/receiver`")
	}
	work := t.TempDir()
	p := startInProcess(t, []string{"--listen", "127.0.0.1:0", "--embedded-nats-listen", "127.0.0.1:0", "--data-dir", filepath.Join(work, "data")}, nil)
	hostPort := strings.TrimPrefix(p.base, "http://")
	for i, want := range []string{"HTTP/1.1 200 OK", "HTTP/1.1 202 Accepted"} {
		cmd := strings.ReplaceAll(cmds[i], "localhost:8080", hostPort)
		c := exec.CommandContext(t.Context(), "bash", "-c", cmd)
		c.Dir = work
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", cmds[i], err, out)
		}
		if !strings.HasPrefix(string(out), want) {
			t.Errorf("%s\nanswered:\n%s\nwant %s", cmds[i], out, want)
		}
		if i == 0 && !strings.HasSuffix(string(out), "\r\n\r\nValidation: Testing client application reachability") {
			t.Errorf("handshake body is not the decoded token:\n%s", out)
		}
	}
	if _, ex, _ := get(t.Context(), p.base+"/metrics"); !strings.Contains(ex, `graphhook_notifications_total{outcome="published"} 1`) {
		t.Error("the quick start's notification was not published (clientState from data/client-state not accepted?)")
	}

	// The NATS URL the quick start gives consumers, expanded by the shell
	// in the same directory, reads the event from the embedded server.
	_, section, _ := strings.Cut(string(doc), "## Quick start")
	m := quickStartNATSURLRe.FindStringSubmatch(section)
	if m == nil {
		t.Fatal("the quick start shows no nats://TOKEN@127.0.0.1:4222 URL reading data/nats-token")
	}
	shown := strings.ReplaceAll(m[1], "127.0.0.1:4222", strings.TrimPrefix(p.nats, "nats://"))
	c := exec.CommandContext(t.Context(), "bash", "-c", "printf %s "+shown)
	c.Dir = work
	url, err := c.Output()
	if err != nil {
		t.Fatalf("%s: %v", shown, err)
	}
	if got := readStream(t, natstest.Connect(t, string(url)), "GRAPH"); len(got) != 1 {
		t.Errorf("the quick start's NATS URL reads %d events from GRAPH, want 1", len(got))
	}

	// The commands after the export can be pasted as one block: each
	// returns. The example consumer is run; nats CLI commands are run when
	// the CLI is installed, else checked not to be ones that block or need
	// a terminal.
	cmds = consumeCommands(t, section)
	if len(cmds) == 0 {
		t.Fatal("the quick start shows no commands to read the event")
	}
	_, hasNATS := exec.LookPath("nats")
	for _, cmd := range cmds {
		switch {
		case strings.HasPrefix(cmd, "nats ") && hasNATS != nil:
			if strings.HasPrefix(cmd, "nats sub") && !strings.Contains(cmd, "--count") || strings.HasPrefix(cmd, "nats stream view") {
				t.Errorf("%q blocks or needs a terminal, so the block cannot be pasted as one", cmd)
			}
			continue
		case strings.HasPrefix(cmd, "nats "), strings.HasPrefix(cmd, "go run ./examples/"):
		default:
			t.Errorf("unexpected command %q in the quick start's NATS block", cmd)
			continue
		}
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		c := exec.CommandContext(ctx, "bash", "-c", cmd)
		c.Dir = filepath.Join("..", "..")
		c.Env = append(os.Environ(), "NATS_URL="+string(url))
		out, err := c.CombinedOutput()
		cancel()
		if err != nil {
			t.Errorf("%s: %v (a command of the block must return)\n%s", cmd, err, out)
		} else if strings.HasPrefix(cmd, "go run ./examples/consumer") && !strings.Contains(string(out), "graph.notifications.") {
			t.Errorf("%s printed no event:\n%s", cmd, out)
		}
	}
}

// consumeCommands returns the commands after "export NATS_URL=" in the
// quick start's shell block.
func consumeCommands(t *testing.T, section string) []string {
	t.Helper()
	_, rest, ok := strings.Cut(section, "export NATS_URL=")
	if !ok {
		return nil
	}
	body, _, _ := strings.Cut(rest, "```")
	lines := strings.Split(body, "\n")[1:] // after the export itself
	var cmds []string
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" {
			cmds = append(cmds, l)
		}
	}
	return cmds
}

// quickStartNATSURLRe finds the quoted NATS URL of the quick start.
var quickStartNATSURLRe = regexp.MustCompile(`export NATS_URL=("nats://\$\(cat data/nats-token\)@127\.0\.0\.1:4222")`)

// TestREADMEListsEveryFuzzTarget: the README's list of fuzz targets names
// every Fuzz function of the repository's tests.
func TestREADMEListsEveryFuzzTarget(t *testing.T) {
	doc, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	_, list, ok := strings.Cut(string(doc), "Fuzz targets (")
	if !ok {
		t.Fatal("README.md has no \"Fuzz targets (\" paragraph")
	}
	list, _, _ = strings.Cut(list, "\n\n")
	fuzzRe := regexp.MustCompile(`(?m)^func (Fuzz\w+)\(`)
	root := filepath.Join("..", "..")
	found := 0
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range fuzzRe.FindAllStringSubmatch(string(b), -1) {
			found++
			if !strings.Contains(list, "`"+m[1]+"`") {
				rel, _ := filepath.Rel(root, path)
				t.Errorf("README.md's fuzz target list lacks `%s` (%s)", m[1], rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found == 0 {
		t.Fatal("found no Fuzz functions in the repository")
	}
}

// shellWords splits a shell command line into words, with single and
// double quotes (no expansion), enough for the README's commands.
func shellWords(line string) []string {
	var words []string
	var cur strings.Builder
	in, quote := false, rune(0)
	for _, r := range line {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}

// sectionCommands returns the command lines (continuations joined) of the
// sh blocks in the README section that starts with heading.
func sectionCommands(t *testing.T, doc, heading string) []string {
	t.Helper()
	_, section, ok := strings.Cut(doc, "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README.md has no %q section", heading)
	}
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	var cmds []string
	for i, block := range strings.Split(section, "```sh\n") {
		if i == 0 {
			continue
		}
		body, _, _ := strings.Cut(block, "```")
		joined := strings.ReplaceAll(body, "\\\n", " ")
		for line := range strings.SplitSeq(joined, "\n") {
			if line = strings.TrimSpace(line); line != "" {
				cmds = append(cmds, line)
			}
		}
	}
	return cmds
}

// TestGraphsimWalkThroughCommandsParse runs the README's graphsim
// walk-through commands as far as they run without a simulator: keygen
// writes the key, the receiver's command line loads and validates with it,
// and every graphsim command's flags are ones that command has.
func TestGraphsimWalkThroughCommandsParse(t *testing.T) {
	doc, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	cmds := sectionCommands(t, string(doc), "## graphsim: a local Microsoft Graph")
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	sim := filepath.Join(dir, "graphsim")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", sim, "../graphsim")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ../graphsim: %v\n%s", err, out)
	}
	usage := map[string]string{}
	var ran []string
	for _, cmd := range cmds {
		words := shellWords(cmd)
		for len(words) > 0 && strings.Contains(words[0], "=") && !strings.HasPrefix(words[0], "-") {
			words = words[1:] // VAR=value prefixes
		}
		switch {
		case len(words) >= 4 && words[0] == "go" && words[2] == "./cmd/receiver" && words[3] == "keygen":
			args := words[4:]
			for i := range args {
				if args[i] == "./keys" {
					args[i] = keys
				}
			}
			if err := keygen(args, io.Discard); err != nil {
				t.Errorf("%s: %v", cmd, err)
			}
			ran = append(ran, "keygen")
		case len(words) >= 3 && words[0] == "go" && words[2] == "./cmd/receiver":
			args := words[3:]
			for i := range args {
				args[i] = strings.ReplaceAll(args[i], "./keys/", keys+string(filepath.Separator))
			}
			args = append(args, "--data-dir", filepath.Join(dir, "data"))
			c, err := loadConfig(args, noEnv)
			if err != nil {
				t.Errorf("%s: %v", cmd, err)
				continue
			}
			if ps := c.validate(); len(ps) > 0 {
				t.Errorf("%s: %v", cmd, ps.err())
			}
			ran = append(ran, "receiver")
		case len(words) >= 4 && words[0] == "go" && words[2] == "./cmd/graphsim":
			sub := words[3]
			if _, ok := usage[sub]; !ok {
				out, _ := exec.CommandContext(t.Context(), sim, sub, "-h").CombinedOutput()
				usage[sub] = string(out)
			}
			for _, w := range words[4:] {
				name, ok := strings.CutPrefix(w, "--")
				if !ok {
					continue
				}
				name, _, _ = strings.Cut(name, "=")
				if !strings.Contains(usage[sub], "\n  -"+name+" ") && !strings.Contains(usage[sub], "\n  -"+name+"\n") {
					t.Errorf("%s: graphsim %s has no flag --%s:\n%s", cmd, sub, name, usage[sub])
				}
			}
			ran = append(ran, "graphsim "+sub)
		}
	}
	for _, want := range []string{"keygen", "receiver", "graphsim serve", "graphsim subscribe", "graphsim change", "graphsim load"} {
		if !slices.Contains(ran, want) {
			t.Errorf("the walk-through has no %s command (commands: %q)", want, ran)
		}
	}
}
