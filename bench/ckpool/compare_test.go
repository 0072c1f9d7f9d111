package ckpool

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashpool/hashpool/engine"
	"github.com/hashpool/hashpool/internal/enginetest"
	"github.com/hashpool/hashpool/loadgen"
)

// TestMain lets the test binary act as a loadgen child process.
func TestMain(m *testing.M) {
	if os.Getenv(loadgen.ChildEnv) == "1" {
		if err := loadgen.RunChild(context.Background(), os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestParseScenarios(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		err  string
	}{
		{in: "", want: strings.Join(Names(), ",")},
		{in: "all", want: strings.Join(Names(), ",")},
		{in: "fanout, rss-slope,fanout", want: "rss-slope,fanout"}, // canonical order, no duplicates
		{in: "connect-rate", want: "connect-rate"},
		{in: "fanout,bogus,,x", err: `unknown scenario "bogus"`},
	} {
		got, err := ParseScenarios(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), `"x"`) || !strings.Contains(err.Error(), "empty") {
				t.Errorf("ParseScenarios(%q) error %v: want every problem, including %s", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || strings.Join(got, ",") != tc.want {
			t.Errorf("ParseScenarios(%q) = %v, %v: want %s", tc.in, got, err, tc.want)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	o := Options{Scenarios: []string{"fanout", "nope"}, Pools: []string{"btcpool"}}
	err := o.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{`"nope"`, `"btcpool"`, "root"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if _, why := resolveCkpool("/nonexistent/ckpool"); !strings.Contains(why, "no ckpool binary at /nonexistent/ckpool") {
		t.Errorf("resolveCkpool: %q", why)
	}
}

func TestFitSlope(t *testing.T) {
	var ss []sample
	for fds := 10; fds <= 1010; fds += 100 {
		ss = append(ss, sample{fds: fds, rssKB: int64(5000 + fds*3)}) // 3 KiB per descriptor
	}
	if got, n := fitSlope(ss); n != len(ss) || got < 3071 || got > 3073 {
		t.Fatalf("slope %.1f over %d samples: want 3072 B", got, n)
	}
	if got, _ := fitSlope(ss[:1]); got != 0 {
		t.Fatalf("one sample: slope %v, want 0", got)
	}
}

func TestReportRows(t *testing.T) {
	r := &Report{Started: time.Date(2026, 12, 4, 21, 0, 0, 0, time.UTC), Quick: true}
	r.add(Row{Metric: "rss", Unit: "B", Ckpool: "6,466", Hashpool: "2,943", Lower: true, Goal: "≤ 1,024 B", GoalMax: 1024})
	r.add(Row{Metric: "connect", Unit: "/s", Ckpool: "3,445", Hashpool: "5,920", Higher: true, Goal: "≥ 20,000/s", GoalMin: 20000})
	r.add(Row{Metric: "cpu", Unit: "µs", Ckpool: "131 / 57", Hashpool: "8 / 9", Ratio: ratios([]float64{131, 57}, []float64{8, 9}),
		GoalMax: 10, hashpoolVals: []float64{8, 9}})
	r.add(Row{Metric: "only hashpool", Hashpool: "5", Lower: true, GoalMax: 10})
	want := []struct{ ratio, verdict string }{{"2.20×", "missed"}, {"1.72×", "missed"}, {"16.38 / 6.33×", "met"}, {"–", "met"}}
	for i, w := range want {
		if r.Rows[i].Ratio != w.ratio || r.Rows[i].Verdict != w.verdict {
			t.Errorf("row %d: ratio %q verdict %q, want %q %q", i, r.Rows[i].Ratio, r.Rows[i].Verdict, w.ratio, w.verdict)
		}
	}
	if r.Rows[3].Ckpool != "–" {
		t.Errorf("unmeasured ckpool cell %q", r.Rows[3].Ckpool)
	}
	sec := r.Markdown("go run ./bench/suite -scenarios ckpool-compare -quick")
	for _, want := range []string{SectionBegin, SectionEnd, "| rss | 6,466 B | 2,943 B | 2.20× | ≤ 1,024 B — **missed** |", "2026-12-04 21:00 UTC", "load average"} {
		if !strings.Contains(string(sec), want) {
			t.Errorf("section lacks %q:\n%s", want, sec)
		}
	}
	r.Ckpool = "absent: no ckpool binary at /x"
	if !strings.Contains(string(r.Markdown("c")), "**ckpool was not measured (no ckpool binary at /x): hashpool alone.**") {
		t.Error("an absent ckpool is not said in the section")
	}
}

// TestScenariosSmokeAgainstEngine runs the submit, connect-rate and
// rss-slope scenario code, tiny, against a real engine in this process, so
// the code paths `make bench` takes cannot rot. It checks the mechanics
// (every share rejected as low difficulty, rows filled), not performance.
func TestScenariosSmokeAgainstEngine(t *testing.T) {
	e := enginetest.Start(t, func(o *engine.Options) { o.EventLoops = 2 })
	e.AddJob(false)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c := &comparer{
		opts:    Options{Root: "."},
		loadgen: exe,
		size: size{sessions: 20, slopeSessions: 30, window: time.Second, sustained: time.Second, fanoutJobs: 1,
			margin: 500 * time.Millisecond, cpuRates: []int{200}, p99Rates: []int{200}, sustainedRate: 200},
		pools: []*pool{{name: "hashpool", addr: e.Addr, pidN: os.Getpid()}},
		rep:   &Report{},
		cache: map[string]*runResult{},
	}
	ctx := context.Background()
	for name, f := range map[string]func(context.Context) error{
		CPUPerSubmit: c.cpuPerSubmit, ConnectRate: c.connectRate, RSSSlope: c.rssSlope, RSSSustained: c.rssSustained,
	} {
		if err := f(ctx); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	r := c.cache["hashpool/200/false/1s"]
	if r == nil || r.rep.Shares.Submitted == 0 || r.rep.Shares.Accepted != 0 {
		t.Fatalf("submit run: %+v: want submits, none accepted", r)
	}
	var low int64
	for k, n := range r.rep.Shares.Rejected {
		if strings.HasPrefix(k, "23 ") {
			low += n
		}
	}
	if low == 0 || low < r.rep.Shares.Submitted*9/10 {
		t.Fatalf("rejects %v of %d submits: want (nearly) all code 23 low difficulty", r.rep.Shares.Rejected, r.rep.Shares.Submitted)
	}
	if len(c.rep.Rows) != 4 {
		t.Fatalf("%d rows: want 4 (%+v)", len(c.rep.Rows), c.rep.Rows)
	}
	for _, row := range c.rep.Rows {
		if row.Hashpool == "–" || row.Hashpool == "" || row.Ckpool != "–" {
			t.Errorf("row %q: hashpool %q ckpool %q: want a hashpool value only", row.Metric, row.Hashpool, row.Ckpool)
		}
	}
}
