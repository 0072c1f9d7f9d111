package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/bus/kafka"
	"github.com/hashpool/hashpool/bus/mem"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/jobs/gbtmaker"
	"github.com/hashpool/hashpool/jobs/jobmaker"
	"github.com/hashpool/hashpool/node"
)

// Bus implementations measured.
const (
	busMem   = "mem"
	busKafka = "kafka (kfake)"
)

// Template signals measured.
const (
	modeLongPoll = "long poll"
	modePoll     = "poll, rpcinterval 1 s"
)

// pollInterval is gbtmaker's rpcinterval in poll mode (its minimum). The main
// loop's tick stays at gbtmaker's default (1 s).
const pollInterval = time.Second

// jobWait bounds the wait for one job (poll mode needs up to about 2 s).
const jobWait = 15 * time.Second

// combo is one measured combination.
type combo struct {
	Bus  string
	Mode string
}

// combos are the four combinations, in the order they are run and reported.
var combos = []combo{
	{busMem, modeLongPoll}, {busKafka, modeLongPoll},
	{busMem, modePoll}, {busKafka, modePoll},
}

// config is what one measurement needs.
type config struct {
	Node     node.Options // a btcd (regtest) whose `generate` pays Payout
	Payout   string
	Blocks   int           // blocks mined, one sample each
	MaxPause time.Duration // random pause in [0, MaxPause] before each block, long poll
	// PollMaxPause is MaxPause in poll mode. The previous job came right
	// after a poll, so the next block is at a uniformly random phase of the
	// polling cycle only if the pause spans a whole cycle (about 2 s, see
	// the report); a 1 s pause would time blocks only in its second half.
	PollMaxPause time.Duration
	Rand         *rand.Rand
	Progress     io.Writer // one line per combination; nil for none
}

// sample is one block.
type sample struct {
	Height   int64         // height of the mined block; the job is for Height+1
	Latency  time.Duration // generate returned → job for Height+1 received (negative if it came first)
	FromCall time.Duration // generate called → job received (upper bound of the true latency)
	Generate time.Duration // duration of the generate RPC
}

// result is one combination's samples.
type result struct {
	combo
	Samples   []sample
	Elapsed   time.Duration // from the first block's pause to the last job
	Templates uint64        // RawGbt messages gbtmaker published during Elapsed
}

// seenJob is a StratumJob as the Job topic consumer received it.
type seenJob struct {
	height int64
	at     time.Time // when Poll returned it
}

// measure runs gbtmaker and jobmaker for c on a fresh bus against cfg.Node,
// mines cfg.Blocks blocks one at a time with `generate 1`, and times each
// block until the job for the next height arrives on the Job topic.
func measure(ctx context.Context, c combo, cfg config) (res result, err error) {
	res.combo = c
	b, closeBus, err := newBus(c.Bus)
	if err != nil {
		return res, err
	}
	defer closeBus()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var errs []error
	defer func() { err = errors.Join(append([]error{err}, errs...)...) }()

	// The job consumer starts at the end of the topic, before the jobmaker
	// publishes anything.
	cons, err := b.NewConsumer(jobmaker.DefaultJobTopic, bus.Start{})
	if err != nil {
		return res, err
	}
	jobs := &jobStream{jobs: make(chan seenJob, 256), done: make(chan struct{})}
	go jobs.read(ctx, cons)
	defer func() {
		cons.Close()
		<-jobs.done
		if jobs.err != nil && !errors.Is(jobs.err, bus.ErrClosed) && ctx.Err() == nil {
			errs = append(errs, jobs.err)
		}
	}()

	jm, err := jobmaker.New(b, jobmaker.Options{ID: 1, Network: "regtest", PayoutAddress: cfg.Payout,
		CoinbaseInfo: "/hashpool-bench/"})
	if err != nil {
		return res, err
	}
	jmDone := make(chan error, 1)
	go func() { jmDone <- jm.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-jmDone; err != nil {
			errs = append(errs, fmt.Errorf("jobmaker: %w", err))
		}
	}()

	prod, err := b.NewProducer(bus.ProducerOptions{})
	if err != nil {
		return res, err
	}
	defer prod.Close()
	opts := gbtmaker.Options{Node: cfg.Node}
	if c.Mode == modePoll {
		opts.RPCInterval, opts.DisableLongPoll = pollInterval, true
	}
	// Long-poll mode keeps btcpool's rpcinterval (10 s), so nearly every
	// block is seen by the long poll alone.
	gm, err := gbtmaker.New(opts, prod)
	if err != nil {
		return res, err
	}
	gmDone := make(chan error, 1)
	go func() { gmDone <- gm.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-gmDone; err != nil {
			errs = append(errs, fmt.Errorf("gbtmaker: %w", err))
		}
	}()

	client, err := node.NewClient(cfg.Node)
	if err != nil {
		return res, err
	}
	defer client.Close()
	tip, err := client.GetBlockCount(ctx)
	if err != nil {
		return res, err
	}
	// The first job comes from gbtmaker's startup template.
	if _, err := jobs.wait(ctx, tip+1); err != nil {
		return res, fmt.Errorf("first job: %w", err)
	}

	maxPause := cfg.MaxPause
	if c.Mode == modePoll {
		maxPause = cfg.PollMaxPause
	}
	start, published := time.Now(), gm.Stats().Published
	for range cfg.Blocks {
		if !node.Sleep(ctx, time.Duration(cfg.Rand.Int64N(int64(maxPause)+1))) {
			return res, ctx.Err()
		}
		called := time.Now()
		hashes, err := client.Generate(ctx, 1)
		returned := time.Now()
		if err != nil {
			return res, fmt.Errorf("generate: %w", err)
		}
		if len(hashes) != 1 {
			return res, fmt.Errorf("generate 1 returned %d hashes", len(hashes))
		}
		tip++
		at, err := jobs.wait(ctx, tip+1)
		if err != nil {
			return res, fmt.Errorf("block %d: %w", tip, err)
		}
		res.Samples = append(res.Samples, sample{Height: tip, Latency: at.Sub(returned),
			FromCall: at.Sub(called), Generate: returned.Sub(called)})
	}
	res.Elapsed = time.Since(start)
	res.Templates = gm.Stats().Published - published
	if got, err := client.GetBlockCount(ctx); err != nil || got != tip {
		return res, fmt.Errorf("node at height %d (%v), want %d: someone else mined", got, err, tip)
	}
	if cfg.Progress != nil {
		s := summarize(latencies(res.Samples))
		fmt.Fprintf(cfg.Progress, "%-14s %-22s %d blocks  median %s  p99 %s\n", c.Bus, c.Mode, len(res.Samples),
			formatDuration(s.Median), formatDuration(s.P99))
	}
	return res, nil
}

// jobStream is the Job topic as a consumer reads it.
type jobStream struct {
	jobs chan seenJob
	done chan struct{} // closed when read returns; err is set then
	err  error
}

// read decodes every StratumJob on cons and sends its height with the time
// Poll returned it, until ctx ends or cons is closed.
func (s *jobStream) read(ctx context.Context, cons bus.Consumer) {
	defer close(s.done)
	for {
		msgs, err := cons.Poll(ctx)
		at := time.Now()
		if err != nil {
			s.err = err
			return
		}
		for _, m := range msgs {
			var j btcpool.StratumJob
			if err := btcpool.DecodeStratumJob(m.Value, &j); err != nil {
				s.err = fmt.Errorf("job at offset %d does not decode: %w", m.Offset, err)
				return
			}
			select {
			case s.jobs <- seenJob{height: int64(j.Height), at: at}:
			case <-ctx.Done():
				s.err = ctx.Err()
				return
			}
		}
	}
}

// wait returns when the first job for height arrived. Jobs for lower
// heights (periodic refreshes) are skipped; a higher height is an error.
func (s *jobStream) wait(ctx context.Context, height int64) (time.Time, error) {
	timer := time.NewTimer(jobWait)
	defer timer.Stop()
	for {
		select {
		case j := <-s.jobs:
			switch {
			case j.height == height:
				return j.at, nil
			case j.height > height:
				return time.Time{}, fmt.Errorf("job for height %d while waiting for %d", j.height, height)
			}
		case <-s.done:
			return time.Time{}, fmt.Errorf("job consumer stopped: %w", s.err)
		case <-timer.C:
			return time.Time{}, fmt.Errorf("no job for height %d within %v", height, jobWait)
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}

// newBus returns a fresh bus of the named kind and a function that closes
// it. Kafka runs on franz-go's in-process cluster (kfake) on 127.0.0.1.
func newBus(kind string) (bus.Bus, func(), error) {
	switch kind {
	case busMem:
		b := mem.New(mem.Options{})
		return b, func() { b.Close() }, nil
	case busKafka:
		c, err := kfake.NewCluster(kfake.NumBrokers(1), // kfake listens on 127.0.0.1
			kfake.SeedTopics(1, jobmaker.DefaultRawGbtTopic, jobmaker.DefaultJobTopic))
		if err != nil {
			return nil, nil, err
		}
		b, err := kafka.New(kafka.Config{Brokers: c.ListenAddrs()})
		if err != nil {
			c.Close()
			return nil, nil, err
		}
		return b, func() { b.Close(); c.Close() }, nil
	}
	return nil, nil, fmt.Errorf("unknown bus %q", kind)
}
