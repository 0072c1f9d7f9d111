package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashpool/hashpool/bench/ckpool"
)

// section is a part of RESULTS.md that the suite writes: everything from its begin marker to
// its end marker. A regenerate replaces only these parts; the rest of the file (sections
// written by hand after measurements `make bench` does not run) is kept byte for byte.
type section struct {
	begin, end string
	// top: a document without the section gets it at its start (else at its end).
	top bool
}

var (
	// reportSection is the suite's own report: machine, targets, micro benchmarks,
	// comparisons, load scenarios and commands.
	reportSection = section{
		begin: "<!-- bench/suite: begin (make bench rewrites everything up to the end marker; write by hand outside the markers) -->",
		end:   "<!-- bench/suite: end -->",
		top:   true,
	}
	// ckpoolSection is ckpool-compare's (its report carries the markers itself).
	ckpoolSection = section{begin: ckpool.SectionBegin, end: ckpool.SectionEnd}
)

// legacyHead starts a RESULTS.md written before the report had markers: such a file cannot
// be regenerated without losing or doubling text, so the writer refuses it.
const legacyHead = "Written by `make bench` (`go run ./bench/suite`); do not edit by hand"

// wrap puts body between the section's markers.
func (s section) wrap(body []byte) []byte {
	out := make([]byte, 0, len(s.begin)+len(body)+len(s.end)+3)
	out = append(out, s.begin...)
	out = append(out, '\n')
	out = append(out, bytes.TrimRight(body, "\n")...)
	out = append(out, '\n')
	out = append(out, s.end...)
	return append(out, '\n')
}

// splice returns doc with the section's markers and what is between them replaced by text
// (which carries the markers), or with text added at the start or the end when doc has no
// such section. Nothing else in doc changes.
func (s section) splice(doc, text []byte) ([]byte, error) {
	i := bytes.Index(doc, []byte(s.begin))
	if i < 0 {
		if bytes.Contains(doc, []byte(s.end)) {
			return nil, fmt.Errorf("%q without %q", s.end, s.begin)
		}
		rest := bytes.TrimRight(doc, "\n")
		switch {
		case len(rest) == 0:
			return append([]byte{}, text...), nil
		case s.top:
			return append(append(append([]byte{}, text...), '\n'), doc...), nil
		default:
			return append(append(append([]byte{}, rest...), '\n', '\n'), text...), nil
		}
	}
	j := bytes.Index(doc[i:], []byte(s.end))
	if j < 0 {
		return nil, fmt.Errorf("%q without %q after it", s.begin, s.end)
	}
	j += i + len(s.end)
	if j < len(doc) && doc[j] == '\n' {
		j++
	}
	out := append([]byte{}, doc[:i]...)
	out = append(out, text...)
	return append(out, doc[j:]...), nil
}

// updateResults rewrites the file at path with the suite's report and ckpool-compare's section
// replaced (either may be nil: that section is left as it is) and everything outside them kept
// verbatim; a missing file is created. The file is replaced atomically.
func updateResults(path string, report, ck []byte) error {
	doc, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if bytes.Contains(doc, []byte(legacyHead)) && !bytes.Contains(doc, []byte(reportSection.begin)) {
		return fmt.Errorf("%s has the report of an older suite without its markers: put %q before its first line and %q after its Commands block, then run again",
			path, reportSection.begin, reportSection.end)
	}
	if report != nil {
		if doc, err = reportSection.splice(doc, reportSection.wrap(report)); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	if ck != nil {
		if doc, err = ckpoolSection.splice(doc, ck); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".results-*.md")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(doc); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
