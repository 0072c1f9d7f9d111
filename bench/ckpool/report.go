package ckpool

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Machine is the box a comparison ran on.
type Machine struct {
	Nproc int    `json:"nproc"`
	CPU   string `json:"cpu"`
}

// Row is one line of the table: a metric for both pools.
type Row struct {
	Metric   string `json:"metric"`
	Unit     string `json:"unit,omitempty"`
	Ckpool   string `json:"ckpool"`   // "" when ckpool was not measured
	Hashpool string `json:"hashpool"` // "" when hashpool was not measured
	// Ratio is how many times better hashpool is (> 1 = hashpool ahead):
	// ckpool ÷ hashpool for costs, hashpool ÷ ckpool for rates. Computed
	// from the two values when empty and Lower or Higher says which.
	Ratio         string `json:"ratio"`
	Lower, Higher bool   `json:"-"`
	Goal          string `json:"goal"`
	// GoalMax / GoalMin is the absolute goal on hashpool's value(s).
	GoalMax, GoalMin float64 `json:"-"`
	// Verdict is "met", "missed" or "" (not measured).
	Verdict string   `json:"verdict"`
	Notes   []string `json:"notes,omitempty"`

	hashpoolVals []float64 // the values the goal applies to (nil: Hashpool parsed)
}

// Report is one comparison run.
type Report struct {
	Started   time.Time `json:"started"`
	Ended     time.Time `json:"ended"`
	Quick     bool      `json:"quick"`
	Scenarios []string  `json:"scenarios"`
	Machine   Machine   `json:"machine"`
	LoadStart string    `json:"load_start"`
	LoadEnd   string    `json:"load_end"`
	// Ckpool is the binary measured, or "absent: <why>".
	Ckpool   string   `json:"ckpool"`
	Commands []string `json:"commands"`
	Rows     []Row    `json:"rows"`
	Notes    []string `json:"notes,omitempty"`
}

// add completes a row's ratio and verdict and appends it.
func (r *Report) add(row Row, notes ...string) {
	row.Notes = append(row.Notes, notes...)
	ck, okc := number(row.Ckpool)
	hp, okh := number(row.Hashpool)
	if row.Ratio == "" {
		switch {
		case okc && okh && row.Lower && hp > 0:
			row.Ratio = fmt.Sprintf("%.2f×", ck/hp)
		case okc && okh && row.Higher && ck > 0:
			row.Ratio = fmt.Sprintf("%.2f×", hp/ck)
		default:
			row.Ratio = "–"
		}
	}
	vals := row.hashpoolVals
	if vals == nil && okh {
		vals = []float64{hp}
	}
	if len(vals) > 0 {
		row.Verdict = "met"
		for _, v := range vals {
			if (row.GoalMax > 0 && v > row.GoalMax) || (row.GoalMin > 0 && v < row.GoalMin) {
				row.Verdict = "missed"
			}
		}
	}
	if row.Ckpool == "" {
		row.Ckpool = "–"
	}
	if row.Hashpool == "" {
		row.Hashpool = "–"
	}
	r.Rows = append(r.Rows, row)
}

// number reads the leading number of a cell ("6466", "131 / 101").
func number(s string) (float64, bool) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0, false
	}
	v, err := strconv.ParseFloat(strings.ReplaceAll(f[0], ",", ""), 64)
	return v, err == nil
}

// SectionBegin and SectionEnd delimit the comparison in RESULTS.md, so a
// partial run (-scenarios ckpool-compare) can replace only its section
// (bench/suite's results.go does the replacing).
const (
	SectionBegin = "<!-- ckpool-compare: begin (bench/suite writes this section) -->"
	SectionEnd   = "<!-- ckpool-compare: end -->"
)

// Markdown renders the report as the RESULTS.md section, markers included.
func (r *Report) Markdown(command string) []byte {
	var b bytes.Buffer
	fmt.Fprintln(&b, SectionBegin)
	mode := "full run"
	if r.Quick {
		mode = "quick run"
	}
	fmt.Fprintf(&b, "## ckpool vs hashpool, side by side (%s of %s UTC)\n\n", mode, r.Started.Format("2006-01-02 15:04"))
	fmt.Fprintf(&b, "One run, both pools on one btcd regtest node, the same loadgen scenarios alternating between them; difficulty 1 and every share ground to miss its target, so both pools hash and reject each (low difficulty) without the clients grinding. Ratio = how many times better hashpool is (> 1× = hashpool ahead). The goal column applies to hashpool.\n\n")
	if strings.HasPrefix(r.Ckpool, "absent") {
		fmt.Fprintf(&b, "**ckpool was not measured (%s): hashpool alone.**\n\n", strings.TrimPrefix(r.Ckpool, "absent: "))
	}
	fmt.Fprintf(&b, "| %s | ckpool | hashpool | ratio | goal |\n|---|---|---|---|---|\n", sessionsLabel(r.Quick))
	for _, row := range r.Rows {
		unit := row.Unit
		if unit != "" && unit != "/s" {
			unit = " " + unit
		}
		cell := func(v string) string {
			if v == "–" || unit == "" {
				return v
			}
			return v + unit
		}
		verdict := ""
		if row.Verdict != "" {
			verdict = " — **" + row.Verdict + "**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s%s |\n", row.Metric, cell(row.Ckpool), cell(row.Hashpool), row.Ratio, row.Goal, verdict)
	}
	fmt.Fprintf(&b, "\nMachine: %d CPUs (`nproc`), %s; load average %s at the start, %s at the end (1, 5, 15 min). ", r.Machine.Nproc, r.Machine.CPU, r.LoadStart, r.LoadEnd)
	fmt.Fprintf(&b, "The box is shared with other engineers' builds and tests, so absolute numbers are disturbed; the ratios compare runs made minutes apart under the same load.\n\n")
	fmt.Fprintf(&b, "ckpool: %s. Run %s → %s.\n\n", r.Ckpool, r.Started.Format(time.RFC3339), r.Ended.Format(time.RFC3339))
	fmt.Fprintf(&b, "Commands:\n\n```\n%s\n", command)
	for _, c := range r.Commands {
		fmt.Fprintln(&b, c)
	}
	fmt.Fprintf(&b, "```\n\nHow it is measured: each scenario starts from freshly started pools (submit-p99 reuses cpu-per-submit's runs without a broadcast); loadgen runs as child processes (≤ 8,000 connections each) dialling from 127.0.0.2–21. RSS and CPU (utime + stime) are read from /proc/<pid> every 250 ms. CPU per submit = the pool's CPU time over the submit window ÷ the submits it answered (sessions are up before the window opens: loadgen -submit-delay), so it includes the idle cost of the sessions. RSS slope = least squares of RSS over the pool's open descriptors while the sessions come up. Fan-out = per new block (btcd generate), first to last receipt over the sessions. ckpool answers a rejected share with result false and a null error, which loadgen counts as code 0.\n\nPer-run numbers:\n\n")
	for _, row := range r.Rows {
		for _, n := range row.Notes {
			fmt.Fprintf(&b, "- %s: %s\n", row.Metric, n)
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	fmt.Fprintln(&b)
	fmt.Fprintln(&b, SectionEnd)
	return b.Bytes()
}

func sessionsLabel(quick bool) string {
	if quick {
		return "2,000 sessions (quick; rss-slope 3,000)"
	}
	return "10,000 sessions (rss-slope 15,000)"
}
