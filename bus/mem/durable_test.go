package mem_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/bus/bustest"
	"github.com/hashpool/hashpool/bus/mem"
)

func openDurable(t testing.TB, opts mem.Options) *mem.Bus {
	t.Helper()
	b, err := mem.Open(opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", opts.Dir, err)
	}
	return b
}

func newDurableEnv(t testing.TB) bustest.Env {
	b := openDurable(t, mem.Options{Dir: t.TempDir(), SegmentBytes: 64 << 10})
	return bustest.Env{
		Bus:             b,
		Topics:          bus.DefaultTopics(),
		Break:           func() { b.Close() },
		DeliveryTimeout: time.Second,
	}
}

// The durable bus passes the same conformance suite as the memory-only one
// and Kafka (small segments, so that the suite crosses segment boundaries).
func TestDurableConformance(t *testing.T) { bustest.Run(t, newDurableEnv) }

// The conformance suite again, with a bus reopened between publishing and
// consuming.
func TestDurableReopenConformance(t *testing.T) {
	bustest.RunReopen(t, func(t testing.TB, dir string) bus.Bus {
		return openDurable(t, mem.Options{Dir: dir, SegmentBytes: 4096})
	})
}

func wctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// readAll reads every retained record of topic from a fresh consumer.
func readAll(t testing.TB, b *mem.Bus, topic string) []bus.Message {
	t.Helper()
	end := b.End(topic)
	c, err := b.NewConsumer(topic, bus.Start{Tail: 1 << 62})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out []bus.Message
	next := b.Oldest(topic)
	for next < end {
		msgs, err := c.Poll(wctx(t))
		if err != nil {
			t.Fatalf("Poll at %d of [%d,%d): %v", next, b.Oldest(topic), end, err)
		}
		for _, m := range msgs {
			if m.Offset != next {
				t.Fatalf("offset %d, want %d", m.Offset, next)
			}
			m.Key = bytes.Clone(m.Key)
			m.Value = bytes.Clone(m.Value)
			out = append(out, m)
			next++
		}
	}
	return out
}

func bigValue(i, size int) []byte {
	v := make([]byte, size)
	x := uint32(i*2654435761 + 1)
	for j := range v {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		v[j] = byte(x)
	}
	copy(v, fmt.Sprintf("rec-%d-", i))
	return v
}

// Records, offsets, group offsets and Tail survive Close and Open; new
// records continue the offsets.
func TestReopen(t *testing.T) {
	dir := t.TempDir()
	opts := mem.Options{Dir: dir, SegmentBytes: 8192}
	b := openDurable(t, opts)
	p, _ := b.NewProducer(bus.ProducerOptions{})
	var want [][]byte
	for i := range 200 {
		size := 50
		if i%20 == 0 {
			size = 20000 // larger than a segment
		}
		v := bigValue(i, size)
		want = append(want, v)
		if err := p.PublishSync(wctx(t), "tpl", []byte(fmt.Sprint("k", i)), v); err != nil {
			t.Fatal(err)
		}
	}
	c, _ := b.NewConsumer("tpl", bus.Start{Group: "g", Tail: 1000})
	var msgs []bus.Message // only their offsets are used: Values point into buffers the next Poll reuses
	var err error
	for len(msgs) < 5 { // records no consumer had taken are read from the files, a segment per Poll
		m, err := c.Poll(wctx(t))
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m...)
	}
	if err := c.Commit(wctx(t), msgs[4]); err != nil {
		t.Fatal(err)
	}
	c.Close()
	p.Close()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b = openDurable(t, opts)
	defer b.Close()
	if got := b.End("tpl"); got != 200 {
		t.Fatalf("End after reopen = %d, want 200", got)
	}
	got := readAll(t, b, "tpl")
	if len(got) != 200 {
		t.Fatalf("read %d records after reopen, want 200", len(got))
	}
	for i, m := range got {
		if !bytes.Equal(m.Value, want[i]) || string(m.Key) != fmt.Sprint("k", i) {
			t.Fatalf("record %d differs after reopen", i)
		}
		if m.Time.IsZero() || time.Since(m.Time) > time.Hour {
			t.Fatalf("record %d time %v", i, m.Time)
		}
	}
	if off, ok := b.Committed("g", "tpl"); !ok || off != 5 {
		t.Fatalf("committed offset after reopen = %d, %v; want 5", off, ok)
	}
	// The group resumes after its commit, whatever Tail says.
	c, _ = b.NewConsumer("tpl", bus.Start{Group: "g"})
	msgs, err = c.Poll(wctx(t))
	if err != nil || msgs[0].Offset != 5 || !bytes.Equal(msgs[0].Value, want[5]) {
		t.Fatalf("group resumed at %d (%v), want 5", msgs[0].Offset, err)
	}
	c.Close()
	// Tail N reads the last N records that survived.
	c, _ = b.NewConsumer("tpl", bus.Start{Tail: 3})
	msgs, err = c.Poll(wctx(t))
	if err != nil || len(msgs) != 3 || msgs[0].Offset != 197 || !bytes.Equal(msgs[2].Value, want[199]) {
		t.Fatalf("Tail 3 after reopen: %d messages from %d, %v", len(msgs), msgs[0].Offset, err)
	}
	// New records continue the offsets.
	p, _ = b.NewProducer(bus.ProducerOptions{})
	defer p.Close()
	if err := p.PublishSync(wctx(t), "tpl", nil, []byte("after")); err != nil {
		t.Fatal(err)
	}
	msgs, err = c.Poll(wctx(t))
	if err != nil || msgs[0].Offset != 200 || string(msgs[0].Value) != "after" {
		t.Fatalf("record after reopen: %+v, %v", msgs, err)
	}
	c.Close()
}

// A second Open of a Dir in use fails with a clear error; after Close it
// succeeds.
func TestLock(t *testing.T) {
	dir := t.TempDir()
	b := openDurable(t, mem.Options{Dir: dir})
	_, err := mem.Open(mem.Options{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Open: %v, want an in-use error", err)
	}
	b.Close()
	b = openDurable(t, mem.Options{Dir: dir})
	b.Close()
}

// A new group's starting offset is durable at once: a restart before the
// first Commit resumes there rather than at the new end.
func TestGroupStartDurable(t *testing.T) {
	dir := t.TempDir()
	b := openDurable(t, mem.Options{Dir: dir})
	c, err := b.NewConsumer("solved", bus.Start{Group: "blkmaker"})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := b.NewProducer(bus.ProducerOptions{})
	if err := p.PublishSync(wctx(t), "solved", nil, []byte("block")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	p.Close()
	b.Close()
	b = openDurable(t, mem.Options{Dir: dir})
	defer b.Close()
	c, _ = b.NewConsumer("solved", bus.Start{Group: "blkmaker"})
	defer c.Close()
	msgs, err := c.Poll(wctx(t))
	if err != nil || len(msgs) != 1 || string(msgs[0].Value) != "block" {
		t.Fatalf("after restart: %d messages, %v", len(msgs), err)
	}
}

// A committed offset beyond the topic's end (its tail was cut) is clamped at
// open.
func TestCommittedClamped(t *testing.T) {
	dir := t.TempDir()
	b := openDurable(t, mem.Options{Dir: dir})
	p, _ := b.NewProducer(bus.ProducerOptions{})
	for i := range 10 {
		p.PublishSync(wctx(t), "s", nil, fmt.Appendf(nil, "v%d", i))
	}
	c, _ := b.NewConsumer("s", bus.Start{Group: "g", Tail: 10})
	msgs, _ := c.Poll(wctx(t))
	if err := c.Commit(wctx(t), msgs[9]); err != nil {
		t.Fatal(err)
	}
	c.Close()
	p.Close()
	b.Close()
	// Cut the last three records.
	seg := filepath.Join(dir, "s", fmt.Sprintf("%020d.seg", 0))
	fi, _ := os.Stat(seg)
	rec := int64(mem.FrameOverhead + 2)
	if err := os.Truncate(seg, fi.Size()-3*rec); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	b = openDurable(t, mem.Options{Dir: dir, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	defer b.Close()
	if b.End("s") != 7 {
		t.Fatalf("End = %d, want 7", b.End("s"))
	}
	if off, _ := b.Committed("g", "s"); off != 7 {
		t.Fatalf("committed = %d, want clamped to 7", off)
	}
	if !strings.Contains(logs.String(), "clamped") {
		t.Fatalf("clamp not logged: %s", logs.String())
	}
}

// An acknowledgement covers every record published before it on any topic:
// callbacks run in Publish order across producers and topics.
func TestAckCoversEarlierRecords(t *testing.T) {
	b := openDurable(t, mem.Options{Dir: t.TempDir()})
	defer b.Close()
	pt, _ := b.NewProducer(bus.ProducerOptions{})
	ps, _ := b.NewProducer(bus.ProducerOptions{})
	defer pt.Close()
	defer ps.Close()
	const rounds = 50
	for i := range rounds {
		var tplDone atomic.Bool
		pt.Publish("tpl", nil, bigValue(i, 100000), func(err error) {
			if err == nil {
				tplDone.Store(true)
			}
		})
		pt.Publish("job", nil, bigValue(i, 300), nil)
		if err := ps.PublishSync(wctx(t), "solved", nil, []byte("share")); err != nil {
			t.Fatal(err)
		}
		if !tplDone.Load() {
			t.Fatalf("round %d: solved share acknowledged before the template published earlier", i)
		}
	}
	st := b.Stats()
	if st.RecordsWritten != 3*rounds || st.Fsyncs == 0 || st.WriteErrors != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// Close writes what was published before it; Publish after Close fails.
func TestCloseFlushes(t *testing.T) {
	dir := t.TempDir()
	b := openDurable(t, mem.Options{Dir: dir})
	p, _ := b.NewProducer(bus.ProducerOptions{})
	var ok, failed atomic.Int32
	for i := range 1000 {
		p.Publish("s", nil, fmt.Appendf(nil, "v%d", i), func(err error) {
			if err == nil {
				ok.Add(1)
			} else {
				failed.Add(1)
			}
		})
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	res := make(chan error, 1)
	p.Publish("s", nil, []byte("late"), func(err error) { res <- err })
	if err := <-res; !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("Publish after Close: %v", err)
	}
	p.Close()
	if ok.Load()+failed.Load() != 1000 {
		t.Fatalf("%d callbacks ran, want 1000", ok.Load()+failed.Load())
	}
	b = openDurable(t, mem.Options{Dir: dir})
	defer b.Close()
	if got := b.End("s"); got != int64(ok.Load()) {
		t.Fatalf("%d records on disk, %d acknowledged", got, ok.Load())
	}
}

func TestTopicNames(t *testing.T) {
	b := openDurable(t, mem.Options{Dir: t.TempDir()})
	defer b.Close()
	for _, name := range []string{"", "a/b", "..", "LOCK", "groups.log", strings.Repeat("x", 250), "sp ace"} {
		if _, err := b.NewConsumer(name, bus.Start{}); err == nil {
			t.Errorf("NewConsumer(%q) accepted", name)
		}
		p, _ := b.NewProducer(bus.ProducerOptions{})
		if err := p.PublishSync(wctx(t), name, nil, []byte("x")); err == nil {
			t.Errorf("Publish(%q) accepted", name)
		}
		p.Close()
	}
	if err := (mem.Options{Dir: "x", Topics: map[string]mem.Retention{"a b": {}}}).Validate(); err == nil {
		t.Error("Validate accepted a bad topic name with a Dir")
	}
}

// Retention deletes whole old segments, never the active one, and consumers
// behind it skip to the oldest retained record.
func TestDiskRetention(t *testing.T) {
	dir := t.TempDir()
	opts := mem.Options{Dir: dir, SegmentBytes: 4096, CacheBytes: 1,
		Topics: map[string]mem.Retention{"r": {MaxRecords: 100}, "b": {MaxBytes: 3 * 4096}}}
	b := openDurable(t, opts)
	p, _ := b.NewProducer(bus.ProducerOptions{})
	lag, _ := b.NewConsumer("r", bus.Start{})
	for i := range 1000 {
		p.Publish("r", nil, bigValue(i, 100), nil)
		p.Publish("b", nil, bigValue(i, 100), nil)
	}
	if err := p.Flush(wctx(t)); err != nil {
		t.Fatal(err)
	}
	p.Close()
	for _, tc := range []struct {
		topic    string
		min, max int64
	}{{"r", 100, 100 + 4096/128 + 1}, {"b", 3 * 4096 / 128, 4 * 4096 / 128}} {
		kept := b.End(tc.topic) - b.Oldest(tc.topic)
		if kept < tc.min || kept > tc.max {
			t.Errorf("%s keeps %d records, want %d..%d", tc.topic, kept, tc.min, tc.max)
		}
		files, _ := filepath.Glob(filepath.Join(dir, tc.topic, "*.seg"))
		var st mem.TopicStats
		for _, s := range b.Stats().Topics {
			if s.Name == tc.topic {
				st = s
			}
		}
		if len(files) != st.Segments || st.Oldest != b.Oldest(tc.topic) {
			t.Errorf("%s: %d files, stats %+v", tc.topic, len(files), st)
		}
	}
	msgs, err := lag.Poll(wctx(t))
	if err != nil || msgs[0].Offset != b.Oldest("r") {
		t.Fatalf("lagging consumer resumed at %d, oldest %d (%v)", msgs[0].Offset, b.Oldest("r"), err)
	}
	if !bytes.Equal(msgs[0].Value, bigValue(int(msgs[0].Offset), 100)) {
		t.Fatal("lagging consumer read a wrong value")
	}
	lag.Close()
	oldest := b.Oldest("r")
	b.Close()
	b = openDurable(t, opts)
	defer b.Close()
	if b.Oldest("r") != oldest || b.End("r") != 1000 {
		t.Fatalf("after reopen [%d,%d), want [%d,1000)", b.Oldest("r"), b.End("r"), oldest)
	}
}

// Age retention deletes segments whose newest record is old.
func TestDiskRetentionAge(t *testing.T) {
	b := openDurable(t, mem.Options{Dir: t.TempDir(), SegmentBytes: 4096,
		Retention: mem.Retention{MaxAge: time.Second}})
	defer b.Close()
	p, _ := b.NewProducer(bus.ProducerOptions{})
	defer p.Close()
	start := time.Now()
	for i := range 100 {
		p.Publish("a", nil, bigValue(i, 100), nil)
	}
	p.Flush(wctx(t))
	if b.Oldest("a") != 0 && time.Since(start) < time.Second {
		t.Fatalf("records deleted before their age: oldest %d", b.Oldest("a"))
	}
	time.Sleep(1100 * time.Millisecond) // the records must age; nothing to wait on
	if err := p.PublishSync(wctx(t), "a", nil, []byte("new")); err != nil {
		t.Fatal(err)
	}
	if o := b.Oldest("a"); o < 90 {
		t.Fatalf("old segments not deleted by age: oldest %d of %d", o, b.End("a"))
	}
}

// Many consumers read concurrently from disk and cache while the writer
// appends and retention deletes.
func TestConcurrentReaders(t *testing.T) {
	b := openDurable(t, mem.Options{Dir: t.TempDir(), SegmentBytes: 16 << 10, CacheBytes: 8 << 10, MaxPoll: 37,
		Retention: mem.Retention{MaxBytes: 8 << 20}})
	defer b.Close()
	p, _ := b.NewProducer(bus.ProducerOptions{MaxBufferedRecords: 500})
	defer p.Close()
	const n = 5000
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for r := range 4 {
		c, _ := b.NewConsumer("c", bus.Start{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			next := int64(0)
			for next < n {
				msgs, err := c.Poll(wctx(t))
				if err != nil {
					errs <- err
					return
				}
				for _, m := range msgs {
					if m.Offset != next || !bytes.Equal(m.Value, bigValue(int(next), 200)) {
						errs <- fmt.Errorf("reader %d: offset %d (want %d) or value differs", r, m.Offset, next)
						return
					}
					next++
				}
				if r%2 == 1 {
					time.Sleep(time.Millisecond) // a slow reader falls behind the cache
				}
			}
		}()
	}
	for i := range n {
		p.Publish("c", nil, bigValue(i, 200), nil)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
