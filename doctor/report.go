package doctor

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Status is the outcome of one check.
type Status string

// The outcomes of a check.
const (
	Pass Status = "pass" // Graph will be satisfied
	Warn Status = "warn" // works, but is fragile or unusual; see Fix
	Fail Status = "fail" // Graph will fail here; see Fix
	Skip Status = "skip" // not run, because an earlier check failed
)

// The IDs of the checks, in the order they run.
const (
	CheckURL                = "url"
	CheckDNS                = "dns"
	CheckTLS                = "tls"
	CheckTLS12              = "tls12"
	CheckHandshake          = "handshake"
	CheckLifecycleHandshake = "lifecycle-handshake"
	CheckClientState        = "client-state"
	CheckNotPublished       = "not-published"
	CheckAnswerTime         = "answer-time"
	CheckBodyLimit          = "body-limit"
)

// Check is one line of the checklist.
type Check struct {
	// ID is stable, one of the Check* constants.
	ID string `json:"id"`
	// Name says what was checked, e.g. "Handshake on the notification URL".
	Name string `json:"name"`
	// Status is the outcome.
	Status Status `json:"status"`
	// Detail says what was seen: an address, a status, a time.
	Detail string `json:"detail"`
	// Fix says what to do, for Warn and Fail.
	Fix string `json:"fix,omitempty"`
	// Duration is how long the check took.
	Duration time.Duration `json:"duration"`
}

// Report is the checklist of one [Run].
type Report struct {
	// URL and LifecycleURL are the URLs checked.
	URL          string `json:"url"`
	LifecycleURL string `json:"lifecycleUrl,omitempty"`
	// Checks are in the order they ran.
	Checks []Check `json:"checks"`
	// Started is when the run began; Duration how long it took.
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration"`
}

// OK reports whether no check failed.
func (r *Report) OK() bool { return len(r.Failed()) == 0 }

// Failed returns the failed checks.
func (r *Report) Failed() []Check {
	var out []Check
	for _, c := range r.Checks {
		if c.Status == Fail {
			out = append(out, c)
		}
	}
	return out
}

// Check returns the check with id and whether it ran.
func (r *Report) Check(id string) (Check, bool) {
	for _, c := range r.Checks {
		if c.ID == id {
			return c, true
		}
	}
	return Check{}, false
}

// WriteText writes the checklist for a terminal: one line per check, the
// fix under each failure and warning, and a summary.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	r.writeHeader(&b)
	for _, c := range r.Checks {
		writeCheck(&b, c)
	}
	r.writeSummary(&b)
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteSummary writes WriteText's last line alone, for a command that
// printed each check as it completed (Config.Progress and
// [Check.WriteLine]).
func (r *Report) WriteSummary(w io.Writer) error {
	var b strings.Builder
	r.writeSummary(&b)
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *Report) writeHeader(b *strings.Builder) {
	fmt.Fprintf(b, "graphhook doctor: %s\n", r.URL)
	if r.LifecycleURL != "" {
		fmt.Fprintf(b, "  lifecycle URL:  %s\n", r.LifecycleURL)
	}
}

func (r *Report) writeSummary(b *strings.Builder) {
	counts := map[Status]int{}
	for _, c := range r.Checks {
		counts[c.Status]++
	}
	fmt.Fprintf(b, "%d passed, %d failed", counts[Pass], counts[Fail])
	if counts[Warn] > 0 {
		fmt.Fprintf(b, ", %d warnings", counts[Warn])
	}
	if counts[Skip] > 0 {
		fmt.Fprintf(b, ", %d skipped", counts[Skip])
	}
	if counts[Fail] > 0 {
		b.WriteString(": Graph will not deliver to this endpoint until the failures are fixed\n")
	} else {
		b.WriteString(": Graph can validate and deliver to this endpoint\n")
	}
}

// WriteLine writes one check as WriteText does, for progress output.
func (c Check) WriteLine(w io.Writer) error {
	var b strings.Builder
	writeCheck(&b, c)
	_, err := io.WriteString(w, b.String())
	return err
}

func writeCheck(b *strings.Builder, c Check) {
	fmt.Fprintf(b, "  %-4s  %s", strings.ToUpper(string(c.Status)), c.Name)
	if c.Detail != "" {
		fmt.Fprintf(b, ": %s", c.Detail)
	}
	b.WriteByte('\n')
	if c.Fix != "" && (c.Status == Fail || c.Status == Warn) {
		fmt.Fprintf(b, "        fix: %s\n", c.Fix)
	}
}
