package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"
)

// ChildEnv is set in a child process's environment ("1"); together with the
// -child argument it tells a loadgen binary (or a test binary's TestMain) to
// call RunChild.
const ChildEnv = "LOADGEN_CHILD"

// Run runs the scenario until its Duration ends or ctx is cancelled and
// returns the report. With more than one process (Scenario.Procs, or more
// connections than MaxConnsPerProc) it starts Scenario.Executable children,
// each with a slice of the miners, and merges their reports.
func Run(ctx context.Context, s Scenario) (*Report, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if n := s.procs(); n > 1 {
		return runProcs(ctx, s, n)
	}
	return runLocal(ctx, &s, func(p progress) {
		if s.Progress != nil {
			fmt.Fprintln(s.Progress, progressLine(&s, p))
		}
	})
}

// progressLine renders one progress snapshot.
func progressLine(s *Scenario, p progress) string {
	line := fmt.Sprintf("loadgen %5.0fs  sessions %d/%d", p.Elapsed, p.SessionsUp, s.Miners+s.Agents)
	if s.Agents > 0 {
		line += fmt.Sprintf("  agent miners %d/%d", p.WorkersUp, s.Agents*s.MinersPerAgent)
	}
	rate := 0.0
	if p.Elapsed > 0 {
		rate = float64(p.Accepted) / p.Elapsed
	}
	return line + fmt.Sprintf("  shares %d acc %d rej %d (%.1f/s)  latency p50 %.2fms p99 %.2fms  notifies %d  errors %d",
		p.Submitted, p.Accepted, p.Rejected, rate, float64(p.P50us)/1000, float64(p.P99us)/1000, p.Notifies, p.Errors)
}

// runLocal runs the scenario's connections in this process; tick gets a
// snapshot once a second.
func runLocal(parent context.Context, s *Scenario, tick func(progress)) (*Report, error) {
	target, err := CheckTarget(s.URL, s.AllowRemote)
	if err != nil {
		return nil, err
	}
	sources, err := ParseSourceIPs(s.SourceIPs)
	if err != nil {
		return nil, err
	}
	rec := newRecorder()
	// runCtx ends the run; clients stop on ctx, cancelled only after the
	// sessions still up have been counted.
	runCtx, stopRun := context.WithTimeout(parent, s.Duration)
	defer stopRun()
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	stopCtx, stopClients := context.WithCancel(ctx)
	defer stopClients()
	e := newEnv(s, rec, newDialer(target, sources, s.ConnectRate, s.DialTimeout), stopCtx)

	var server *ServerStats
	var aux sync.WaitGroup
	if s.PID > 0 {
		aux.Go(func() { st := sampleProc(ctx, s.PID); server = &st })
	}
	aux.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				tick(rec.snapshot())
			}
		}
	})

	// Global indexes keep worker names unique over the processes.
	stride, base := max(s.ShardCount, 1), s.Shard
	var wg sync.WaitGroup
	for i := range s.Miners {
		wg.Go(func() { runMiner(ctx, e, base+i*stride) })
	}
	for i := range s.Agents {
		wg.Go(func() { runFarm(ctx, e, base+i*stride) })
	}
	for i := range s.BadClients {
		wg.Go(func() { runBadClient(ctx, e, base+i*stride) })
	}
	if s.Publish != nil {
		aux.Go(func() { publishLoop(ctx, s, rec) })
	}
	<-runCtx.Done()
	elapsed := time.Since(rec.start)
	rec.endSessions, rec.endWorkers = rec.sessionsUp.Load(), rec.workersUp.Load()
	// Stop submitting, give outstanding submits a moment to be answered
	// (so counts match the server's), then close everything.
	stopClients()
	e.waitSubmitters(s.ResponseTimeout)
	drainUntil := time.Now().Add(min(s.ResponseTimeout, 2*time.Second))
	for rec.answered.Load()+rec.unanswered.Load() < rec.submitted.Load() && time.Now().Before(drainUntil) && parent.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	aux.Wait()
	rep := rec.build(s, target.String(), elapsed)
	rep.Server = server
	return rep, nil
}

// publishLoop waits until the sessions are up (or a third of the run has
// passed), then calls Publish every PublishEvery.
func publishLoop(ctx context.Context, s *Scenario, rec *recorder) {
	want := int64(s.Miners + s.Agents)
	deadline := time.Now().Add(s.Duration / 3)
	for rec.sessionsUp.Load() < want && time.Now().Before(deadline) {
		if !sleepCtx(ctx, 20*time.Millisecond) {
			return
		}
	}
	// Let the join notifies land first.
	if !sleepCtx(ctx, 200*time.Millisecond) {
		return
	}
	for n := 0; n < 1_000_000; n++ {
		rec.published(time.Now())
		if err := s.Publish(ctx, n); err != nil {
			if ctx.Err() == nil {
				rec.err("publish", err)
			}
			return
		}
		if !sleepCtx(ctx, s.PublishEvery) {
			return
		}
	}
}

// childMsg is one line a child writes on stdout.
type childMsg struct {
	Progress *progress `json:"progress,omitempty"`
	Report   *Report   `json:"report,omitempty"`
	Error    string    `json:"error,omitempty"`
}

// RunChild is the body of a child process: it reads a Scenario as JSON from
// in (at most 1 MiB), runs it in this process, and writes a progress line a
// second and then the report, each as one JSON line, to out.
func RunChild(ctx context.Context, in io.Reader, out io.Writer) error {
	var s Scenario
	dec := json.NewDecoder(io.LimitReader(in, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return fmt.Errorf("child: scenario: %w", err)
	}
	s.Procs = 1
	enc := json.NewEncoder(out)
	var mu sync.Mutex
	if err := s.Validate(); err != nil {
		_ = enc.Encode(childMsg{Error: err.Error()})
		return err
	}
	rep, err := runLocal(ctx, &s, func(p progress) {
		mu.Lock()
		_ = enc.Encode(childMsg{Progress: &p})
		mu.Unlock()
	})
	mu.Lock()
	defer mu.Unlock()
	if err != nil {
		_ = enc.Encode(childMsg{Error: err.Error()})
		return err
	}
	return enc.Encode(childMsg{Report: rep})
}

// runProcs starts n children of Executable, each with a shard of s, shows
// their summed progress and merges their reports.
func runProcs(ctx context.Context, s Scenario, n int) (*Report, error) {
	if s.Executable == "" {
		return nil, errors.New("loadgen: several processes needed but Scenario.Executable is empty")
	}
	if s.Publish != nil {
		return nil, errors.New("loadgen: the Publish hook works in one process only (set Procs to 1)")
	}
	// Children end on their own after Duration; the grace covers closing.
	ctx, cancel := context.WithTimeout(ctx, s.Duration+30*time.Second)
	defer cancel()
	type child struct {
		last progress
		rep  *Report
		err  error
	}
	children := make([]child, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range n {
		shard := s.shard(i, n)
		in, err := json.Marshal(shard)
		if err != nil {
			return nil, err
		}
		cmd := exec.CommandContext(ctx, s.Executable, "-child")
		cmd.Env = append(os.Environ(), ChildEnv+"=1")
		cmd.Stdin = bytes.NewReader(in)
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			cancel()
			wg.Wait()
			return nil, fmt.Errorf("loadgen: start child %d: %w", i, err)
		}
		wg.Go(func() {
			sc := bufio.NewScanner(stdout)
			sc.Buffer(make([]byte, 64<<10), 256<<20)
			for sc.Scan() {
				var m childMsg
				if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
					continue
				}
				mu.Lock()
				switch {
				case m.Progress != nil:
					children[i].last = *m.Progress
				case m.Report != nil:
					children[i].rep = m.Report
				case m.Error != "":
					children[i].err = errors.New(m.Error)
				}
				mu.Unlock()
			}
			err := cmd.Wait()
			mu.Lock()
			if children[i].rep == nil && children[i].err == nil {
				children[i].err = fmt.Errorf("child %d exited without a report: %v", i, err)
			}
			mu.Unlock()
		})
	}
	var server *ServerStats
	var aux sync.WaitGroup
	runCtx, stopAux := context.WithTimeout(ctx, s.Duration)
	if s.PID > 0 {
		aux.Go(func() { st := sampleProc(runCtx, s.PID); server = &st })
	}
	if s.Progress != nil {
		aux.Go(func() {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-runCtx.Done():
					return
				case <-t.C:
				}
				var sum progress
				mu.Lock()
				for _, c := range children {
					p := c.last
					sum.Elapsed = max(sum.Elapsed, p.Elapsed)
					sum.SessionsUp += p.SessionsUp
					sum.WorkersUp += p.WorkersUp
					sum.Submitted += p.Submitted
					sum.Accepted += p.Accepted
					sum.Rejected += p.Rejected
					sum.Notifies += p.Notifies
					sum.Errors += p.Errors
					sum.P50us = max(sum.P50us, p.P50us) // worst child
					sum.P99us = max(sum.P99us, p.P99us)
				}
				mu.Unlock()
				fmt.Fprintln(s.Progress, progressLine(&s, sum)+fmt.Sprintf("  (%d procs, worst-child latency)", n))
			}
		})
	}
	wg.Wait()
	stopAux()
	aux.Wait()
	var parts []*Report
	var errs []error
	for _, c := range children {
		if c.err != nil {
			errs = append(errs, c.err)
		} else {
			parts = append(parts, c.rep)
		}
	}
	if len(parts) == 0 {
		return nil, errors.Join(errs...)
	}
	rep := Merge(parts)
	rep.Scenario = s
	rep.Server = server
	for _, err := range errs {
		rep.ErrorCount++
		rep.Errors = append(rep.Errors, err.Error())
	}
	return rep, nil
}
