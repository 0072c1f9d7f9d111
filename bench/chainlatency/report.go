package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// summary is the distribution of one combination's latencies.
type summary struct {
	N                          int
	Min, Median, P90, P99, Max time.Duration
}

// summarize sorts a copy of d and returns its order statistics. Percentiles
// interpolate linearly between the two nearest ranks (the "R-7" estimator of
// R and NumPy), so with fewer than 100 samples p99 lies between the two
// largest. An empty d gives the zero summary.
func summarize(d []time.Duration) summary {
	if len(d) == 0 {
		return summary{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return summary{N: len(s), Min: s[0], Median: percentile(s, 50), P90: percentile(s, 90),
		P99: percentile(s, 99), Max: s[len(s)-1]}
}

// percentile returns the p-th percentile (0..100) of the sorted, non-empty s.
func percentile(s []time.Duration, p float64) time.Duration {
	pos := p / 100 * float64(len(s)-1)
	lo := int(math.Floor(pos))
	if lo >= len(s)-1 {
		return s[len(s)-1]
	}
	frac := pos - float64(lo)
	return s[lo] + time.Duration(math.Round(frac*float64(s[lo+1]-s[lo])))
}

func latencies(ss []sample) []time.Duration {
	out := make([]time.Duration, len(ss))
	for i, s := range ss {
		out[i] = s.Latency
	}
	return out
}

func generateTimes(ss []sample) []time.Duration {
	out := make([]time.Duration, len(ss))
	for i, s := range ss {
		out[i] = s.Generate
	}
	return out
}

// formatDuration prints d in ms with 0.01 ms resolution below 10 ms and 0.1
// ms above, so the table's columns compare at a glance.
func formatDuration(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	if math.Abs(ms) < 10 {
		return fmt.Sprintf("%.2f ms", ms)
	}
	return fmt.Sprintf("%.1f ms", ms)
}

// table renders the results as a Markdown table: one row per combination,
// the latency distribution, the generate RPC's median (the uncertainty of
// the start time) and how often gbtmaker published a template.
func table(results []result) string {
	var b strings.Builder
	b.WriteString("| bus | template signal | blocks | min | median | p90 | p99 | max | generate RPC (median) | RawGbt published per s |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range results {
		s := summarize(latencies(r.Samples))
		g := summarize(generateTimes(r.Samples))
		rate := 0.0
		if r.Elapsed > 0 {
			rate = float64(r.Templates) / r.Elapsed.Seconds()
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s | %s | %s | %s | %.2f |\n", r.Bus, r.Mode, s.N,
			formatDuration(s.Min), formatDuration(s.Median), formatDuration(s.P90), formatDuration(s.P99),
			formatDuration(s.Max), formatDuration(g.Median), rate)
	}
	return b.String()
}

// find returns the result for bus and mode, or nil.
func find(results []result, busName, mode string) *result {
	for i := range results {
		if results[i].Bus == busName && results[i].Mode == mode {
			return &results[i]
		}
	}
	return nil
}

// interpretation is the report's paragraph, written from the numbers so that
// it stays true when the program is run again.
func interpretation(results []result) string {
	med := func(busName, mode string) (time.Duration, bool) {
		r := find(results, busName, mode)
		if r == nil || len(r.Samples) == 0 {
			return 0, false
		}
		return summarize(latencies(r.Samples)).Median, true
	}
	var b strings.Builder
	lpMem, ok1 := med(busMem, modeLongPoll)
	lpKafka, ok2 := med(busKafka, modeLongPoll)
	if ok1 && ok2 {
		fmt.Fprintf(&b, "With long polling the job for the next height is on the bus a median %s after `generate` returns on the in-process bus and %s on Kafka (kfake), so Kafka's two extra hops (RawGbt and StratumJob, each produce + fetch on loopback) cost about %s. ",
			formatDuration(lpMem), formatDuration(lpKafka), formatDuration(lpKafka-lpMem))
		b.WriteString("btcd answers the long poll when the block is connected, which can be before the `generate` reply reaches the client, so small or negative values mean the job beat the RPC reply; the generate column bounds that uncertainty. ")
	}
	pMem, ok1 := med(busMem, modePoll)
	pKafka, ok2 := med(busKafka, modePoll)
	if ok1 && ok2 {
		period := time.Duration(0)
		if r := find(results, busMem, modePoll); r != nil && r.Templates > 0 {
			period = r.Elapsed / time.Duration(r.Templates)
		}
		fmt.Fprintf(&b, "With polling (long poll off, rpcinterval 1 s) the median is %s (mem) and %s (kfake): the latency is set by when gbtmaker next polls, not by the bus. ",
			formatDuration(pMem), formatDuration(pKafka))
		fmt.Fprintf(&b, "gbtmaker's main loop ticks every 1 s and fetches a template when the last one is at least rpcinterval old. That age is counted from the previous publish, which comes after the previous tick's getblocktemplate and bus acknowledgement, so one tick later it is usually a little short of 1 s and the fetch waits for the tick after (it polls after 1 s only when a tick happens to wake late). Templates came every %s on average (polls / elapsed time), so the expected latency is uniform between 0 and that period: a median near half of it and a p99 near all of it, i.e. about 1 s and 2 s rather than the 0.5 s and 1 s that rpcinterval 1 s suggests. The same reading of the code says any rpcinterval polls one tick later than configured (11 s with btcpool's default 10 s). ",
			formatDuration(period))
	}
	b.WriteString("Long polling (or ZMQ hashblock with bitcoind) is what keeps miners off stale work; polling is only a fallback.")
	return b.String()
}
