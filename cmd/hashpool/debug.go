package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime/debug"
	"time"
)

// DebugConfig holds opt-in diagnostics; everything in it is off by default.
type DebugConfig struct {
	PprofListen string `toml:"pprof_listen" comment:"ip:port of a net/http/pprof listener (heap, goroutine, profile); empty = off; a port alone (':6060') binds 127.0.0.1 only"`
}

// pprofAddr is the address the pprof listener binds: an empty host means loopback, never all
// interfaces (profiles reveal memory contents and cost CPU).
func (d DebugConfig) pprofAddr() (string, error) {
	host, port, err := net.SplitHostPort(d.PprofListen)
	if err != nil {
		return "", fmt.Errorf("debug.pprof_listen %q: want ip:port: %w", d.PprofListen, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// addPprof serves net/http/pprof on debug.pprof_listen when it is set.
func (p *pool) addPprof() {
	if p.cfg.Debug.PprofListen == "" {
		return
	}
	addr, err := p.cfg.Debug.pprofAddr()
	if err != nil { // validate already refused it
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// No WriteTimeout: profile and trace stream for their ?seconds= argument.
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	p.add("pprof", func(ctx context.Context) error {
		go func() {
			<-ctx.Done()
			srv.Close()
		}()
		p.log.Warn("pprof listening (debug.pprof_listen; diagnostics only)", "addr", "http://"+addr+"/debug/pprof/")
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("pprof listen %s: %w", addr, err)
		}
		return nil
	})
}

// RuntimeConfig tunes the Go runtime of `hashpool run`.
type RuntimeConfig struct {
	MemoryLimitMiB int `toml:"memory_limit_mib" comment:"soft memory limit of the Go runtime in MiB (debug.SetMemoryLimit: the GC runs harder as the heap nears it, it never refuses memory); 0 = none; the GOMEMLIMIT environment variable, when set, wins"`
}

// applyMemoryLimit sets runtime.memory_limit_mib unless GOMEMLIMIT is set in the environment.
func applyMemoryLimit(cfg *Config, log *slog.Logger) {
	mib := cfg.Runtime.MemoryLimitMiB
	if mib <= 0 {
		return
	}
	if v, ok := os.LookupEnv("GOMEMLIMIT"); ok {
		log.Info("runtime.memory_limit_mib ignored: GOMEMLIMIT is set", "GOMEMLIMIT", v)
		return
	}
	debug.SetMemoryLimit(int64(mib) << 20)
	log.Info("soft memory limit", "mib", mib)
}
