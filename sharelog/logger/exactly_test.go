package logger

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/bus/mem"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/sharelog/logfile"
)

// failingBus wraps a bus whose consumers' commits fail while fail is set (a broker that
// answers ILLEGAL_GENERATION, as in issue 10).
type failingBus struct {
	bus.Bus
	fail    atomic.Bool
	commits atomic.Int64
}

type failingConsumer struct {
	bus.Consumer
	b *failingBus
}

func (f *failingBus) NewConsumer(topic string, s bus.Start) (bus.Consumer, error) {
	c, err := f.Bus.NewConsumer(topic, s)
	return &failingConsumer{c, f}, err
}

func (c *failingConsumer) Commit(ctx context.Context, msgs ...bus.Message) error {
	if c.b.fail.Load() {
		return errors.New("kafka: commit: ILLEGAL_GENERATION: Specified group generation id is not valid")
	}
	c.b.commits.Add(1)
	return c.Consumer.Commit(ctx, msgs...)
}

func shareValues(seed int64, n int) ([][]byte, []btcpool.Share) {
	rng := rand.New(rand.NewSource(seed))
	var vs [][]byte
	var all []btcpool.Share
	for i := 0; i < n; i++ {
		s := realisticShare(rng, i, int64(day0+i))
		all = append(all, s)
		vs = append(vs, btcpool.AppendShareMessage(nil, &s))
	}
	return vs, all
}

// TestCommitFailuresAreNotFatalAndNotDuplicated: while every group commit fails the logger
// keeps writing; a logger that then restarts from the stale group offset (here: none, so the
// whole topic) skips every share the checkpoint says the files hold.
func TestCommitFailuresAreNotFatalAndNotDuplicated(t *testing.T) {
	for _, durable := range []bool{false, true} {
		t.Run(fmt.Sprintf("durable=%v", durable), func(t *testing.T) {
			dir := t.TempDir()
			mb := mem.New(mem.Options{})
			defer mb.Close()
			fb := &failingBus{Bus: mb}
			fb.fail.Store(true)
			values, all := shareValues(3, 300)
			publish(t, mb, values[:200])
			opts := Options{Dir: dir, FlushInterval: 20 * time.Millisecond, CommitTimeout: 50 * time.Millisecond, DurableOffsets: durable}
			l, err := New(fb, opts)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- l.Run(ctx) }()
			waitFor(t, func() bool { return l.Stats().Written == 200 && l.Stats().CommitFailures >= 2 })
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("Run after failing commits: %v", err)
			}
			if fb.commits.Load() != 0 {
				t.Fatal("a commit went through")
			}
			// The restart: the group has no offset, the topic is read from its start.
			fb.fail.Store(false)
			publish(t, mb, values[200:])
			l2, err := New(fb, opts)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel = context.WithCancel(context.Background())
			defer cancel()
			go func() { done <- l2.Run(ctx) }()
			waitFor(t, func() bool { return l2.Stats().Committed == 300 })
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if st := l2.Stats(); st.Skipped != 200 || st.Written != 100 {
				t.Fatalf("restart stats %+v, want 200 skipped, 100 written", st)
			}
			got := readDir(t, dir)["sharelogBTC-2020-09-14.bin"]
			if fmt.Sprint(got) != fmt.Sprint(all) {
				t.Fatalf("%d shares on disk, want the %d published, once each, in order", len(got), len(all))
			}
		})
	}
}

// TestDrainWritesEverythingPublished: after Drain, Run returns by itself once the topic is
// exhausted, with every published share on disk and committed.
func TestDrainWritesEverythingPublished(t *testing.T) {
	dir := t.TempDir()
	mb := mem.New(mem.Options{})
	defer mb.Close()
	values, all := shareValues(4, 500)
	// A long flush interval: only the drain makes the last flush.
	l, err := New(mb, Options{Dir: dir, FlushInterval: time.Hour, DrainIdle: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	publish(t, mb, values)
	l.Drain()
	l.Drain() // twice is fine
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("Run did not return after Drain")
	}
	if st := l.Stats(); st.Written != 500 || st.Committed != 500 {
		t.Fatalf("stats %+v", st)
	}
	got := readDir(t, dir)["sharelogBTC-2020-09-14.bin"]
	if fmt.Sprint(got) != fmt.Sprint(all) {
		t.Fatalf("%d shares on disk, want %d", len(got), len(all))
	}
}

// TestSecondLoggerOnOneDirectoryFails: two loggers misconfigured onto one directory.
func TestSecondLoggerOnOneDirectoryFails(t *testing.T) {
	dir := t.TempDir()
	mb := mem.New(mem.Options{})
	defer mb.Close()
	l1, _ := New(mb, Options{Dir: dir})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l1.Run(ctx) }()
	publish(t, mb, [][]byte{btcpool.AppendShareMessage(nil, &btcpool.Share{})})
	waitFor(t, func() bool { return l1.Stats().Messages == 1 })
	l2, _ := New(mb, Options{Dir: dir, Group: "other"})
	if err := l2.Run(context.Background()); err == nil || !errorsIsLocked(err) {
		t.Fatalf("second logger: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func errorsIsLocked(err error) bool { return errors.Is(err, logfile.ErrLocked) }
