// Command btcagent is hashpool's BtcAgent-compatible farm proxy. It takes
// BtcAgent's JSON configuration file and flags:
//
//	btcagent -c agent_conf.json -l log_btcagent
//
// See package agent for what it does and the configuration keys. When the
// pools are SV2 pools (["sv2://host:port", "<authority key>", "user"]) it
// runs package sv2proxy instead, an SV1 → SV2 translator: the same miners'
// port, logging, -check, -stats and shutdown on SIGINT/SIGTERM.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/hashpool/hashpool/agent"
	"github.com/hashpool/hashpool/internal/config"
	"github.com/hashpool/hashpool/sv2proxy"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "btcagent:", err)
		os.Exit(1)
	}
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("btcagent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	confPath := fs.String("c", "agent_conf.json", "BtcAgent JSON configuration file")
	logDir := fs.String("l", "", "log directory (btcagent.log is appended there); empty: stderr")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	statsEvery := fs.Duration("stats", time.Minute, "log counters (miners, shares, upstream bytes and kbps) this often; 0: never")
	checkOnly := fs.Bool("check", false, "validate the configuration and exit")
	statsFile := fs.String("stats-file", "", "with -stats: also write the counters as JSON to this file (replaced each time)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to this file until exit")
	memProfile := fs.String("memprofile", "", "write a heap profile to this file at exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var logOut io.Writer = stderr
	if *logDir != "" {
		if err := os.MkdirAll(*logDir, 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(filepath.Join(*logDir, "btcagent.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		logOut = f
	}
	log, err := config.NewLogger(logOut, *level, "text")
	if err != nil {
		return err
	}
	cfg, warns, err := agent.LoadConfig(*confPath)
	for _, w := range warns {
		if *checkOnly { // printed once, not also logged to the same stderr
			fmt.Fprintln(stderr, "warning:", w)
		} else {
			log.Warn(w)
		}
	}
	if err != nil {
		return err
	}
	if *checkOnly {
		if cfg.SV2() {
			if _, err := cfg.SV2Options(nil); err != nil {
				return err
			}
		}
		fmt.Fprintln(stderr, "configuration ok")
		return nil
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(cfg.GCPercent)
	}
	var a *agent.Agent
	var tr *sv2proxy.Translator
	if cfg.SV2() {
		o, err := cfg.SV2Options(log)
		if err != nil {
			return err
		}
		if tr, err = sv2proxy.New(o); err != nil {
			return err
		}
	} else if a, err = agent.New(cfg, log); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *memProfile != "" {
		defer func() {
			f, err := os.Create(*memProfile)
			if err != nil {
				log.Warn("memprofile", "err", err)
				return
			}
			defer f.Close()
			if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
				log.Warn("memprofile", "err", err)
			}
		}()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if tr != nil {
		return runSV2(ctx, tr, cfg, log, *statsEvery, *statsFile)
	}
	if *statsEvery > 0 {
		go logStats(ctx, a, log, *statsEvery, *statsFile)
	}
	err = a.Serve(ctx)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// logStats logs the counters and the upstream rates since the last line.
func logStats(ctx context.Context, a *agent.Agent, log *slog.Logger, every time.Duration, file string) {
	t := time.NewTicker(every)
	defer t.Stop()
	prev, prevAt := a.Stats(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s := a.Stats()
			secs := now.Sub(prevAt).Seconds()
			kbps := func(d int64) float64 { return float64(d) * 8 / 1000 / secs }
			log.Info("stats", "miners", s.Miners, "upstreams", s.Upstreams, "shares", s.Shares-prev.Shares,
				"accepted", s.Accepted-prev.Accepted, "rejected", s.Rejected-prev.Rejected,
				"up_kbps_payload", kbps(s.UpBytesOut-prev.UpBytesOut), "down_kbps_payload", kbps(s.UpBytesIn-prev.UpBytesIn),
				"up_kbps_wire", kbps(s.Wire.EstOut()-prev.Wire.EstOut()), "down_kbps_wire", kbps(s.Wire.EstIn()-prev.Wire.EstIn()))
			prev, prevAt = s, now
			if file != "" {
				if err := writeStats(file, now, s); err != nil {
					log.Warn("stats file", "err", err)
				}
			}
		}
	}
}

// StatsRecord is what -stats-file holds.
type StatsRecord struct {
	At    time.Time      `json:"at"`
	Stats agent.Snapshot `json:"stats"`
}

func writeStats(path string, at time.Time, s agent.Snapshot) error {
	b, err := json.Marshal(StatsRecord{At: at, Stats: s})
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
