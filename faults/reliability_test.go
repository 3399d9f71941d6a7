package faults

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// reportRow is one scenario's row of RELIABILITY.md, as text cells.
type reportRow struct {
	scenario, sent, answered, landed, duplicates, lost, forged string
}

// parseReport returns the rows of the table in a RELIABILITY.md.
func parseReport(md string) (map[string]reportRow, error) {
	_, table, ok := strings.Cut(md, reportHeader+"\n")
	if !ok {
		return nil, fmt.Errorf("no table with the header %q", reportHeader)
	}
	rows := map[string]reportRow{}
	for i, line := range strings.Split(table, "\n") {
		if i == 0 {
			continue // the alignment row
		}
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for j := range cells {
			cells[j] = strings.TrimSpace(cells[j])
		}
		if len(cells) != 10 {
			return nil, fmt.Errorf("row %q has %d cells, want 10", line, len(cells))
		}
		r := reportRow{scenario: cells[0], sent: cells[2], answered: cells[3], landed: cells[4], duplicates: cells[5], lost: cells[6], forged: cells[8]}
		rows[r.scenario] = r
	}
	return rows, nil
}

// TestReliabilityFileShowsEveryScenarioWithoutLoss checks the committed
// RELIABILITY.md: one row per scenario of the suite, each with nothing
// lost, duplicated or forged, and everything sent answered and landed.
// Regenerate it with go test ./faults -run TestFaults -faults.update.
func TestReliabilityFileShowsEveryScenarioWithoutLoss(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "RELIABILITY.md"))
	if err != nil {
		t.Fatalf("%v (generate it with go test ./faults -run TestFaults -faults.update)", err)
	}
	rows, err := parseReport(string(b))
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range scenarios() {
		r, ok := rows[sc.name]
		if !ok {
			t.Errorf("RELIABILITY.md has no row for scenario %s; regenerate it with -faults.update", sc.name)
			continue
		}
		if r.lost != "0" || r.duplicates != "0" {
			t.Errorf("%s: %s lost and %s duplicated, want 0 and 0", sc.name, r.lost, r.duplicates)
		}
		if r.sent == "0" || r.sent != r.answered || r.sent != r.landed {
			t.Errorf("%s: sent %s, answered %s, landed %s; want all equal and not 0", sc.name, r.sent, r.answered, r.landed)
		}
		if !strings.HasSuffix(r.forged, "/ 0") {
			t.Errorf("%s: forged sent / quarantined / landed is %q, want none landed", sc.name, r.forged)
		}
	}
	if len(rows) != len(scenarios()) {
		t.Errorf("RELIABILITY.md has %d rows, the suite %d scenarios", len(rows), len(scenarios()))
	}
}

// TestReportRoundTrip checks that renderReport writes what parseReport
// (and so the check above) reads.
func TestReportRoundTrip(t *testing.T) {
	in := result{Name: "x", Load: "1/s", Done: "did", Sent: 7, Answered: 7, Landed: 7, ForgedSent: 2, ForgedAnswered: 2, ForgedQuarantined: 2,
		Recovery: []recovery{{label: "a", d: 1500 * time.Millisecond}}}
	rows, err := parseReport(string(renderReport(currentSettings(), []result{in})))
	if err != nil {
		t.Fatal(err)
	}
	got := rows["x"]
	want := reportRow{scenario: "x", sent: "7", answered: "7", landed: "7", duplicates: "0", lost: "0", forged: "2 / 2 / 0"}
	if got != want {
		t.Errorf("parsed %+v, want %+v", got, want)
	}
}
