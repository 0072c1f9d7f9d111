package main

import (
	"context"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashpool/hashpool/internal/btcdtest"
)

func ms(v ...float64) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x * float64(time.Millisecond))
	}
	return out
}

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []time.Duration
		want summary
	}{
		{"empty", nil, summary{}},
		{"one", ms(7), summary{N: 1, Min: ms(7)[0], Median: ms(7)[0], P90: ms(7)[0], P99: ms(7)[0], Max: ms(7)[0]}},
		// position p/100*(n-1) between ranks.
		{"five unsorted", ms(5, 1, 4, 2, 3),
			summary{N: 5, Min: ms(1)[0], Median: ms(3)[0], P90: ms(4.6)[0], P99: ms(4.96)[0], Max: ms(5)[0]}},
		{"even count median", ms(10, 20, 30, 40),
			summary{N: 4, Min: ms(10)[0], Median: ms(25)[0], P90: ms(37)[0], P99: ms(39.7)[0], Max: ms(40)[0]}},
		{"negative values", ms(-2, 0, 2),
			summary{N: 3, Min: ms(-2)[0], Median: 0, P90: ms(1.6)[0], P99: ms(1.96)[0], Max: ms(2)[0]}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orig := slices.Clone(tc.in)
			if got := summarize(tc.in); got != tc.want {
				t.Errorf("summarize(%v) = %+v, want %+v", tc.in, got, tc.want)
			}
			if !slices.Equal(tc.in, orig) {
				t.Errorf("summarize reordered its input: %v", tc.in)
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	for _, tc := range []struct {
		in   time.Duration
		want string
	}{
		{0, "0.00 ms"},
		{1234 * time.Microsecond, "1.23 ms"},
		{-6480 * time.Microsecond, "-6.48 ms"},
		{9994 * time.Microsecond, "9.99 ms"},
		{10 * time.Millisecond, "10.0 ms"},
		{1287240 * time.Microsecond, "1287.2 ms"},
	} {
		if got := formatDuration(tc.in); got != tc.want {
			t.Errorf("formatDuration(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestTable(t *testing.T) {
	mk := func(c combo, lat []time.Duration) result {
		r := result{combo: c, Elapsed: 10 * time.Second, Templates: 25}
		for i, l := range lat {
			r.Samples = append(r.Samples, sample{Height: int64(i + 1), Latency: l, Generate: ms(4)[0]})
		}
		return r
	}
	results := []result{mk(combo{busMem, modeLongPoll}, ms(3, 1, 2)), mk(combo{busKafka, modeLongPoll}, ms(13, 11, 12))}
	got := table(results)
	want := "| bus | template signal | blocks | min | median | p90 | p99 | max | generate RPC (median) | RawGbt published per s |\n" +
		"|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n" +
		"| mem | long poll | 3 | 1.00 ms | 2.00 ms | 2.80 ms | 2.98 ms | 3.00 ms | 4.00 ms | 2.50 |\n" +
		"| kafka (kfake) | long poll | 3 | 11.0 ms | 12.0 ms | 12.8 ms | 13.0 ms | 13.0 ms | 4.00 ms | 2.50 |\n"
	if got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
	report := renderReport(reportInfo{Command: "go run ./bench/chainlatency -blocks 3", Machine: "nproc: 2\n"}, results)
	for _, s := range []string{want, "-blocks 3", "nproc: 2",
		"a median 2.00 ms after `generate` returns on the in-process bus and 12.0 ms on Kafka", "cost about 10.0 ms"} {
		if !strings.Contains(report, s) {
			t.Errorf("report lacks %q:\n%s", s, report)
		}
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-blocks", "0"},
		{"-blocks", "10001"},
		{"-max-pause", "-1s"},
		{"-max-pause", "2m"},
		{"-poll-max-pause", "-1ms"},
		{"-nosuchflag"},
		{"extra"},
	} {
		if err := run(args, io.Discard, io.Discard); err == nil {
			t.Errorf("run(%q) = nil, want an error", args)
		}
	}
}

// TestMeasureAgainstBtcd runs every combination for two blocks against a
// real btcd regtest node, so the measurement itself is proven; the full run
// is the program (see doc.go). It asserts what must hold on any machine,
// not timings.
func TestMeasureAgainstBtcd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts btcd and polls for seconds")
	}
	n := btcdtest.Start(t, btcdtest.Options{})
	cfg := config{Node: n.ClientOptions(), Payout: n.MiningAddress(), Blocks: 2, MaxPause: 200 * time.Millisecond,
		PollMaxPause: 200 * time.Millisecond,
		Rand:         rand.New(rand.NewPCG(1, 2))}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var results []result
	for _, c := range combos {
		r, err := measure(ctx, c, cfg)
		if err != nil {
			t.Fatalf("%s, %s: %v", c.Bus, c.Mode, err)
		}
		if len(r.Samples) != cfg.Blocks {
			t.Fatalf("%s, %s: %d samples, want %d", c.Bus, c.Mode, len(r.Samples), cfg.Blocks)
		}
		for i, s := range r.Samples {
			if i > 0 && s.Height != r.Samples[i-1].Height+1 {
				t.Errorf("%s, %s: heights %d then %d", c.Bus, c.Mode, r.Samples[i-1].Height, s.Height)
			}
			if s.Generate <= 0 || s.FromCall != s.Latency+s.Generate || s.FromCall <= 0 {
				t.Errorf("%s, %s: inconsistent sample %+v", c.Bus, c.Mode, s)
			}
		}
		if r.Templates == 0 || r.Elapsed <= 0 {
			t.Errorf("%s, %s: %d templates in %v", c.Bus, c.Mode, r.Templates, r.Elapsed)
		}
		results = append(results, r)
	}
	// Each combination mined on from where the previous one stopped.
	for i := 1; i < len(results); i++ {
		if got, want := results[i].Samples[0].Height, results[i-1].Samples[cfg.Blocks-1].Height+1; got != want {
			t.Errorf("%s, %s starts at height %d, want %d", results[i].Bus, results[i].Mode, got, want)
		}
	}
	t.Log("\n" + table(results))
}
