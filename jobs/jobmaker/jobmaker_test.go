package jobmaker

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcsuite/btcd/wire/v2"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/bus/mem"
	"github.com/hashpool/hashpool/codec/btcpool"
)

// jobReader reads StratumJob messages from a bus topic.
type jobReader struct {
	t    testing.TB
	cons bus.Consumer
	buf  []btcpool.StratumJob
}

func newJobReader(t testing.TB, b bus.Bus, topic string) *jobReader {
	t.Helper()
	c, err := b.NewConsumer(topic, bus.Start{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &jobReader{t: t, cons: c}
}

// next returns the next job, failing the test if none comes within wait.
func (r *jobReader) next(wait time.Duration) btcpool.StratumJob {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for len(r.buf) == 0 {
		msgs, err := r.cons.Poll(ctx)
		if err != nil {
			r.t.Fatalf("no job within %v: %v", wait, err)
		}
		for _, m := range msgs {
			var j btcpool.StratumJob
			if err := btcpool.DecodeStratumJob(m.Value, &j); err != nil {
				r.t.Fatalf("job message does not decode: %v\n%s", err, m.Value)
			}
			r.buf = append(r.buf, j)
		}
	}
	j := r.buf[0]
	r.buf = r.buf[1:]
	return j
}

func publish(t testing.TB, b bus.Bus, topic string, value []byte) {
	t.Helper()
	p, err := b.NewProducer(bus.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.PublishSync(ctx, topic, nil, value); err != nil {
		t.Fatal(err)
	}
}

// startJobMaker runs a JobMaker on b until the test ends.
func startJobMaker(t *testing.T, b bus.Bus, opts Options) *JobMaker {
	t.Helper()
	jm, err := New(b, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- jm.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return jm
}

func TestRunOnMemBus(t *testing.T) {
	b := mem.New(mem.Options{})
	t.Cleanup(func() { b.Close() })
	jobs := newJobReader(t, b, DefaultJobTopic)
	lastJobFile := filepath.Join(t.TempDir(), "last_job_time")
	startJobMaker(t, b, Options{ID: 3, PayoutAddress: "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa",
		CoinbaseInfo: "/hashpool/", JobInterval: time.Second, LastJobTimeFile: lastJobFile})

	now := uint32(time.Now().Unix())
	empty := gbt{height: 300, curtime: now}.text(t)
	publish(t, b, DefaultRawGbtTopic, rawGbtValue(empty, now))
	j := jobs.next(10 * time.Second)
	if j.Height != 300 || j.MerkleBranch != "" || j.JobID&0xff != 3 || j.GbtHash != btcpool.GbtHash(empty) {
		t.Errorf("first job %+v", j)
	}

	// A full template at the same height makes a job at once.
	full := gbt{height: 300, curtime: now, txs: []*wire.MsgTx{testTx(1)},
		commitment: strings.ReplaceAll(emptyCommitment, " ", "")}.text(t)
	publish(t, b, DefaultRawGbtTopic, rawGbtValue(full, now))
	j = jobs.next(10 * time.Second)
	if j.Height != 300 || len(j.MerkleBranch) != 64 || j.GbtHash != btcpool.GbtHash(full) ||
		j.WitnessCommitment != strings.ReplaceAll(emptyCommitment, " ", "") {
		t.Errorf("full job %+v", j)
	}

	// Garbage on the topic is skipped.
	publish(t, b, DefaultRawGbtTopic, []byte("not json"))

	// With no new template, the timer loop refreshes the job every
	// job_interval (1 s here).
	j2 := jobs.next(10 * time.Second)
	if j2.GbtHash != j.GbtHash || j2.JobID <= j.JobID {
		t.Errorf("refresh job %+v after %+v", j2, j)
	}

	// A new height.
	next := gbt{height: 301, curtime: uint32(time.Now().Unix()), prev: strings.Repeat("1", 64)}.text(t)
	publish(t, b, DefaultRawGbtTopic, rawGbtValue(next, uint32(time.Now().Unix())))
	for range 5 {
		if j = jobs.next(10 * time.Second); j.Height == 301 {
			break
		}
	}
	if j.Height != 301 || j.PrevHash != strings.Repeat("1", 64) {
		t.Errorf("no job for height 301: %+v", j)
	}
	// file_last_job_time holds a recent unix time.
	b2, err := os.ReadFile(lastJobFile)
	if err != nil {
		t.Fatal(err)
	}
	if ts, err := strconv.ParseInt(string(b2), 10, 64); err != nil || ts < int64(now) || ts > time.Now().Unix() {
		t.Errorf("file_last_job_time %q, want a time in [%d, now]", b2, now)
	}
}

func TestRunStartsFromTheLastTemplate(t *testing.T) {
	b := mem.New(mem.Options{})
	t.Cleanup(func() { b.Close() })
	now := uint32(time.Now().Unix())
	for h := int32(10); h < 13; h++ {
		publish(t, b, DefaultRawGbtTopic, rawGbtValue(gbt{height: h, curtime: now}.text(t), now))
	}
	jobs := newJobReader(t, b, "jobs")
	startJobMaker(t, b, Options{ID: 1, PayoutAddress: "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", JobTopic: "jobs"})
	if j := jobs.next(10 * time.Second); j.Height != 12 {
		t.Errorf("first job at height %d, want 12 (the last template on the topic)", j.Height)
	}
}

func TestNewAndRunErrors(t *testing.T) {
	if _, err := New(nil, Options{ID: 1, PayoutAddress: "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"}); err == nil {
		t.Error("nil bus accepted")
	}
	b := mem.New(mem.Options{})
	if _, err := New(b, Options{}); err == nil {
		t.Error("zero options accepted")
	}
	jm, err := New(b, Options{ID: 1, PayoutAddress: "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"})
	if err != nil {
		t.Fatal(err)
	}
	// A closed bus is an error, not a hang.
	b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := jm.Run(ctx); err == nil || ctx.Err() != nil {
		t.Errorf("Run on a closed bus: %v", err)
	}
	if err := jm.Run(ctx); err == nil || errors.Is(err, bus.ErrClosed) {
		t.Errorf("second Run: %v", err)
	}
}

// failingBus wraps a real bus and makes the first failures publishes on topic fail, as a Kafka
// outage reports them (the done callback gets an error).
type failingBus struct {
	bus.Bus
	topic    string
	failures atomic.Int32
}

func (f *failingBus) NewProducer(o bus.ProducerOptions) (bus.Producer, error) {
	p, err := f.Bus.NewProducer(o)
	return &failingProducer{Producer: p, b: f}, err
}

type failingProducer struct {
	bus.Producer
	b *failingBus
}

func (p *failingProducer) Publish(topic string, key, value []byte, done func(error)) {
	if topic == p.b.topic && p.b.failures.Add(-1) >= 0 {
		go done(errors.New("injected delivery failure"))
		return
	}
	p.Producer.Publish(topic, key, value, done)
}

// A new-height job the bus fails to deliver is published again, not left for the next
// periodic job.
func TestUndeliveredJobIsPublishedAgain(t *testing.T) {
	m := mem.New(mem.Options{})
	t.Cleanup(func() { m.Close() })
	b := &failingBus{Bus: m, topic: DefaultJobTopic}
	b.failures.Store(1)
	jobs := newJobReader(t, m, DefaultJobTopic)
	startJobMaker(t, b, Options{ID: 3, PayoutAddress: "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", JobInterval: time.Minute})
	now := uint32(time.Now().Unix())
	publish(t, m, DefaultRawGbtTopic, rawGbtValue(gbt{height: 300, curtime: now}.text(t), now))
	// job_interval is a minute: a job within 10 s can only be the resend.
	j := jobs.next(10 * time.Second)
	if j.Height != 300 || b.failures.Load() >= 0 {
		t.Fatalf("job %+v, failures left %d", j, b.failures.Load())
	}
}

// pollFailBus wraps a real bus: its consumers' Poll fails transiently while fails is positive,
// and permanently once permanent is set.
type pollFailBus struct {
	bus.Bus
	fails     atomic.Int32
	permanent atomic.Bool
}

func (f *pollFailBus) NewConsumer(topic string, start bus.Start) (bus.Consumer, error) {
	c, err := f.Bus.NewConsumer(topic, start)
	if err != nil {
		return nil, err
	}
	return &pollFailConsumer{Consumer: c, f: f}, nil
}

type pollFailConsumer struct {
	bus.Consumer
	f *pollFailBus
}

func (c *pollFailConsumer) Poll(ctx context.Context) ([]bus.Message, error) {
	if c.f.permanent.Load() {
		return nil, bus.Permanent(errors.New("injected: topic authorization failed"))
	}
	if c.f.fails.Add(-1) >= 0 {
		return nil, errors.New("injected: broker not available")
	}
	return c.Consumer.Poll(ctx)
}

// TestRunRidesOutPollErrors: transient Poll errors (a broker pause, a rebalance) do not stop
// Run; a template published meanwhile still makes a job. A permanent error stops Run.
func TestRunRidesOutPollErrors(t *testing.T) {
	m := mem.New(mem.Options{})
	t.Cleanup(func() { m.Close() })
	b := &pollFailBus{Bus: m}
	b.fails.Store(6)
	jobs := newJobReader(t, m, DefaultJobTopic)
	jm, err := New(b, Options{ID: 1, PayoutAddress: "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", JobInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- jm.Run(ctx) }()
	now := uint32(time.Now().Unix())
	publish(t, m, DefaultRawGbtTopic, rawGbtValue(gbt{height: 500, curtime: now}.text(t), now))
	if j := jobs.next(30 * time.Second); j.Height != 500 {
		t.Fatalf("job %+v", j)
	}
	if b.fails.Load() >= 0 {
		t.Fatalf("%d injected failures never seen", b.fails.Load()+1)
	}
	select {
	case err := <-done:
		t.Fatalf("Run stopped on transient errors: %v", err)
	default:
	}
	b.permanent.Store(true)
	publish(t, m, DefaultRawGbtTopic, rawGbtValue(gbt{height: 501, curtime: now}.text(t), now)) // ends the poll under way
	select {
	case err := <-done:
		if !bus.IsPermanent(err) {
			t.Fatalf("Run: %v, want the permanent error", err)
		}
	case <-ctx.Done():
		t.Fatal("Run did not stop on a permanent error")
	}
}

// TestRestartInTheSameSecondKeepsIDsIncreasing: a jobmaker restarted within
// the second of its last job (`hashpool run` after a kill -9 comes back in
// well under a second) makes ids above the jobs already on the topic, never
// a repeat (the sservers drop it as a duplicate) nor a lower one.
func TestRestartInTheSameSecondKeepsIDsIncreasing(t *testing.T) {
	b := mem.New(mem.Options{})
	t.Cleanup(func() { b.Close() })
	now := time.Unix(1_763_000_000, 0)
	clock := func() time.Time { return now }
	opts := Options{ID: 7, PayoutAddress: "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", JobInterval: time.Hour, Now: clock}
	jobs := newJobReader(t, b, DefaultJobTopic)
	var last uint64
	for run := range 3 {
		jm, err := New(b, opts)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- jm.Run(ctx) }()
		ts := uint32(now.Unix())
		publish(t, b, DefaultRawGbtTopic, rawGbtValue(gbt{height: int32(100 + run), curtime: ts}.text(t), ts))
		j := jobs.next(10 * time.Second)
		if j.JobID <= last || j.JobID>>32 != uint64(ts) || j.JobID&0xff != 7 {
			t.Fatalf("run %d: job id %#x after %#x", run, j.JobID, last)
		}
		last = j.JobID
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
