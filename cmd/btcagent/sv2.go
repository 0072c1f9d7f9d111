package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/hashpool/hashpool/agent"
	"github.com/hashpool/hashpool/sv2proxy"
)

// runSV2 serves miners on the agent's listen address through the SV1 → SV2
// translator until ctx ends (SIGINT/SIGTERM), then closes the miners and
// the pool connection and returns nil. A listener that fails is an error.
func runSV2(ctx context.Context, tr *sv2proxy.Translator, cfg agent.Config, log *slog.Logger, statsEvery time.Duration, statsFile string) error {
	ln, err := net.Listen("tcp", cfg.Listen())
	if err != nil {
		return err
	}
	pools := make([]string, len(cfg.Pools))
	for i, p := range cfg.Pools {
		pools[i] = p.SV2URL
	}
	log.Info("btcagent listening", "addr", ln.Addr().String(), "upstream", "sv2", "sv2_mode", cfg.SV2Mode, "pools", pools)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	served := make(chan error, 1)
	go func() {
		served <- tr.Serve(ln)
		cancel() // a dead listener stops the translator too
	}()
	statsDone := make(chan struct{})
	go func() {
		defer close(statsDone)
		if statsEvery > 0 {
			logSV2Stats(runCtx, tr, log, statsEvery, statsFile)
		}
	}()
	tr.Run(runCtx) // closes the listener, the miners and the pool connection
	serveErr := <-served
	<-statsDone
	s := snapshotSV2(tr)
	log.Info("btcagent stopped", "accepted", s.Accepted, "rejected", s.Rejected, "upstream_sessions", s.Connects)
	if ctx.Err() == nil && serveErr != nil && !errors.Is(serveErr, net.ErrClosed) {
		return fmt.Errorf("listener %s: %w", ln.Addr(), serveErr)
	}
	return nil
}

// SV2Snapshot is a copy of sv2proxy.Stats (see its field comments) plus the
// connected pool.
type SV2Snapshot struct {
	Pool          string `json:"pool"` // connected pool ("" none)
	LastError     string `json:"last_error,omitempty"`
	Miners        int64  `json:"miners"`
	Submitted     int64  `json:"submitted"`
	Forwarded     int64  `json:"forwarded"`
	Accepted      int64  `json:"accepted"`
	Rejected      int64  `json:"rejected"`
	RejectedStale int64  `json:"rejected_stale"`
	RejectedDup   int64  `json:"rejected_duplicate"`
	RejectedLow   int64  `json:"rejected_low_difficulty"`
	Jobs          int64  `json:"jobs"`
	Notifies      int64  `json:"notifies"`
	Connects      int64  `json:"upstream_sessions"`
	DialFailures  int64  `json:"dial_failures"`
	UpWireOut     int64  `json:"up_wire_out"`
	UpWireIn      int64  `json:"up_wire_in"`
	DownWireOut   int64  `json:"down_wire_out"`
	DownWireIn    int64  `json:"down_wire_in"`
}

func snapshotSV2(tr *sv2proxy.Translator) SV2Snapshot {
	st := tr.Stats()
	pool, lastErr := tr.Upstream()
	s := SV2Snapshot{Pool: pool,
		Miners: st.Miners.Load(), Submitted: st.Submitted.Load(), Forwarded: st.Forwarded.Load(),
		Accepted: st.Accepted.Load(), Rejected: st.Rejected.Load(), RejectedStale: st.RejectedStale.Load(),
		RejectedDup: st.RejectedDup.Load(), RejectedLow: st.RejectedLow.Load(), Jobs: st.Jobs.Load(),
		Notifies: st.Notifies.Load(), Connects: st.Connects.Load(), DialFailures: st.DialFailures.Load(),
		UpWireOut: st.UpWireOut.Load(), UpWireIn: st.UpWireIn.Load(), DownWireOut: st.DownWireOut.Load(), DownWireIn: st.DownWireIn.Load()}
	if lastErr != nil {
		s.LastError = lastErr.Error()
	}
	return s
}

// logSV2Stats logs the translator's counters (deltas since the last line)
// and the pool link's rates, and writes the cumulative snapshot to file.
func logSV2Stats(ctx context.Context, tr *sv2proxy.Translator, log *slog.Logger, every time.Duration, file string) {
	t := time.NewTicker(every)
	defer t.Stop()
	prev, prevAt := snapshotSV2(tr), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s := snapshotSV2(tr)
			secs := now.Sub(prevAt).Seconds()
			kbps := func(d int64) float64 { return float64(d) * 8 / 1000 / secs }
			log.Info("stats", "miners", s.Miners, "pool", s.Pool, "shares", s.Submitted-prev.Submitted,
				"accepted", s.Accepted-prev.Accepted, "rejected", s.Rejected-prev.Rejected,
				"stale", s.RejectedStale-prev.RejectedStale, "duplicate", s.RejectedDup-prev.RejectedDup,
				"low_difficulty", s.RejectedLow-prev.RejectedLow, "jobs", s.Jobs-prev.Jobs,
				"upstream_sessions", s.Connects, "dial_failures", s.DialFailures-prev.DialFailures,
				"up_kbps_wire", kbps(s.UpWireOut-prev.UpWireOut), "down_kbps_wire", kbps(s.UpWireIn-prev.UpWireIn))
			prev, prevAt = s, now
			if file != "" {
				if err := writeSV2Stats(file, now, s); err != nil {
					log.Warn("stats file", "err", err)
				}
			}
		}
	}
}

// SV2StatsRecord is what -stats-file holds with sv2:// pools.
type SV2StatsRecord struct {
	At  time.Time   `json:"at"`
	SV2 SV2Snapshot `json:"sv2"`
}

func writeSV2Stats(path string, at time.Time, s SV2Snapshot) error {
	b, err := json.Marshal(SV2StatsRecord{At: at, SV2: s})
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
