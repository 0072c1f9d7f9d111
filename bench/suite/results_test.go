package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// handWritten is a section added by hand after a measurement make bench does not run.
const handWritten = "## TLS per share (by hand)\n\n| what | figure |\n|---|---|\n| TLS per share | 41–51 µs |\n"

func fixture(report string) string {
	return string(reportSection.wrap([]byte(report))) + "\n" + handWritten + "\n" +
		string(ckpoolSection.wrap([]byte("## ckpool vs hashpool\nold numbers"))) + "\n## Aux share path (by hand)\n\nkept\n"
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A regenerate replaces the suite's sections and keeps every hand-written one byte for byte.
func TestRegenerateKeepsHandWrittenSections(t *testing.T) {
	path := filepath.Join(t.TempDir(), "RESULTS.md")
	writeFile(t, path, fixture("# hashpool benchmark results\nold report"))

	report := render(time.Unix(3, 0), "0.1 0.2 0.3", []string{"go test ./sha/"}, nil, nil, nil, nil, 1)
	if err := updateResults(path, report, nil); err != nil {
		t.Fatal(err)
	}
	got := readFile(t, path)
	want := string(reportSection.wrap(report)) + "\n" + handWritten + "\n" +
		string(ckpoolSection.wrap([]byte("## ckpool vs hashpool\nold numbers"))) + "\n## Aux share path (by hand)\n\nkept\n"
	if got != want {
		t.Fatalf("after regenerate:\n%s\nwant:\n%s", got, want)
	}
	if strings.Contains(got, "old report") || !strings.Contains(got, "go test ./sha/") {
		t.Fatal("the report was not replaced")
	}

	// ckpool-compare alone (runPartial) replaces only its section.
	ck := ckpoolSection.wrap([]byte("## ckpool vs hashpool\nnew numbers"))
	if err := updateResults(path, nil, ck); err != nil {
		t.Fatal(err)
	}
	got2 := readFile(t, path)
	if want2 := strings.Replace(want, "old numbers", "new numbers", 1); got2 != want2 {
		t.Fatalf("after the ckpool section:\n%s\nwant:\n%s", got2, want2)
	}

	// Regenerating twice changes nothing more.
	if err := updateResults(path, report, ck); err != nil {
		t.Fatal(err)
	}
	if got3 := readFile(t, path); got3 != got2 {
		t.Fatalf("second regenerate changed the file:\n%s", got3)
	}
}

func TestRegenerateNewAndBrokenFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "RESULTS.md")
	// No file: the report, then the ckpool section.
	if err := updateResults(path, []byte("# r\n"), ckpoolSection.wrap([]byte("ck"))); err != nil {
		t.Fatal(err)
	}
	if got, want := readFile(t, path), string(reportSection.wrap([]byte("# r")))+"\n"+string(ckpoolSection.wrap([]byte("ck"))); got != want {
		t.Fatalf("new file:\n%q\nwant\n%q", got, want)
	}
	// A hand-written file without markers: the report goes first, the text stays.
	writeFile(t, path, "## by hand\n\ntext\n")
	if err := updateResults(path, []byte("# r"), nil); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, path); got != string(reportSection.wrap([]byte("# r")))+"\n## by hand\n\ntext\n" {
		t.Fatalf("report added to a hand-written file:\n%s", got)
	}
	for name, doc := range map[string]string{
		"legacy report without markers": "# hashpool benchmark results\n\n" + legacyHead + " — rerun it.\n\n## by hand\n",
		"end marker without begin":      "x\n" + reportSection.end + "\n",
		"begin marker without end":      reportSection.begin + "\nx\n",
	} {
		writeFile(t, path, doc)
		if err := updateResults(path, []byte("# r"), nil); err == nil {
			t.Errorf("%s: want an error", name)
		}
		if got := readFile(t, path); got != doc {
			t.Errorf("%s: the file changed on error", name)
		}
	}
}

// The committed bench/RESULTS.md regenerates without losing a byte outside the report: every
// hand-written section (ckpool comparison, hostile authorize, the session table with TLS, the
// aux share path, ...) survives.
func TestRegenerateCommittedResults(t *testing.T) {
	orig, err := os.ReadFile("../RESULTS.md")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "RESULTS.md")
	writeFile(t, path, string(orig))
	if err := updateResults(path, []byte("# hashpool benchmark results\n\nregenerated\n"), nil); err != nil {
		t.Fatal(err)
	}
	got := []byte(readFile(t, path))
	end := []byte(reportSection.end + "\n")
	_, origRest, ok1 := bytes.Cut(orig, end)
	_, gotRest, ok2 := bytes.Cut(got, end)
	if !ok1 || !ok2 || !bytes.Equal(origRest, gotRest) {
		t.Fatalf("the text after the report changed (markers found: %v %v)", ok1, ok2)
	}
	if before, _, _ := bytes.Cut(orig, []byte(reportSection.begin)); len(bytes.TrimSpace(before)) != 0 {
		t.Fatalf("text before the report's begin marker: %q", before)
	}
	for _, want := range []string{"## ckpool vs hashpool", "## Hostile authorize", "## Measured in this session outside `make bench`", "TLS (stratum+ssl) per session", "aux chains"} {
		if !bytes.Contains(got, []byte(want)) {
			t.Errorf("regenerated RESULTS.md lost %q", want)
		}
	}
}
