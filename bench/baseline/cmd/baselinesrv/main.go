// Command baselinesrv serves the baseline stratum server (package
// bench/baseline) so loadgen scenarios can run against it exactly as
// against hashpool's engine. It publishes a synthetic job on a new height at
// start and then every -job-interval (each one a clean notify fan-out to
// every authorized session), and prints its counters after each job.
//
//	baselinesrv -listen 127.0.0.1:3333 -difficulty 0.001 -job-interval 5s
package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/hashpool/hashpool/bench/baseline"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:3333", "address to serve stratum on")
	difficulty := flag.Float64("difficulty", 1, "share difficulty of every miner (fractional allowed)")
	interval := flag.Duration("job-interval", 30*time.Second, "publish a job on a new height this often (0: only one job)")
	bits := flag.String("bits", "1d00ffff", "compact network target of the jobs (hex)")
	branch := flag.Int("branch", 12, "merkle branch length of the jobs (0..20)")
	vmask := flag.String("version-mask", "1fffe000", "version-rolling mask (hex; 0 disables)")
	verbose := flag.Bool("v", false, "log connection errors")
	flag.Parse()

	nbits, err1 := strconv.ParseUint(*bits, 16, 32)
	mask, err2 := strconv.ParseUint(*vmask, 16, 32)
	switch {
	case err1 != nil:
		fatalf("-bits %q: want 8 hex digits", *bits)
	case err2 != nil:
		fatalf("-version-mask %q: want hex", *vmask)
	case !(*difficulty > 0):
		fatalf("-difficulty %g: want > 0", *difficulty)
	case *branch < 0 || *branch > 20:
		fatalf("-branch %d: want 0..20", *branch)
	case *interval != 0 && *interval < 100*time.Millisecond:
		fatalf("-job-interval %v: want 0 or at least 100ms", *interval)
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	srv := baseline.New(baseline.Options{Difficulty: *difficulty, VersionMask: uint32(mask), NoVersionRolling: mask == 0, Log: log})

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fatalf("listen: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	log.Info("serving", "addr", ln.Addr().String(), "difficulty", *difficulty, "job_interval", interval.String())

	height := int32(1000)
	publish := func() {
		height++
		srv.Broadcast(syntheticJob(height, uint32(nbits), *branch))
		m := srv.Metrics()
		log.Info("job published", "height", height, "sessions", m.Sessions.Load(),
			"broadcast_ms", float64(m.LastBroadcastNanos.Load())/1e6, "accepted", m.Accepted.Load(),
			"rejected", m.Rejected.Load(), "solved", m.Solved.Load())
	}
	publish()
	var tick <-chan time.Time
	if *interval > 0 {
		t := time.NewTicker(*interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-tick:
			publish()
		case err := <-done:
			if err != nil {
				fatalf("serve: %v", err)
			}
			return
		}
	}
}

// syntheticJob is a job with a BIP34 height push in the coinbase, a random
// previous hash and a random merkle branch of the given length.
func syntheticJob(height int32, bits uint32, branchLen int) *baseline.Job {
	now := uint32(time.Now().Unix())
	cb1 := []byte{1, 0, 0, 0, 1}
	cb1 = append(cb1, make([]byte, 32)...)
	cb1 = append(cb1, 0xff, 0xff, 0xff, 0xff, 4+12, 3, byte(height), byte(height>>8), byte(height>>16))
	cb2 := []byte{0xff, 0xff, 0xff, 0xff, 1}
	cb2 = binary.LittleEndian.AppendUint64(cb2, 50e8)
	cb2 = append(cb2, 0x19, 0x76, 0xa9, 0x14)
	cb2 = append(cb2, make([]byte, 20)...)
	cb2 = append(cb2, 0x88, 0xac, 0, 0, 0, 0)
	j := &baseline.Job{ID: uint64(now)<<32 | uint64(uint32(height)), Height: height, Coinbase1: cb1, Coinbase2: cb2,
		Version: 0x20000000, Bits: bits, Time: now, MinTime: now - 3600, Branch: make([][32]byte, branchLen)}
	rand.Read(j.PrevHash[:])
	for i := range j.Branch {
		rand.Read(j.Branch[i][:])
	}
	return j
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "baselinesrv: "+format+"\n", args...)
	os.Exit(2)
}
