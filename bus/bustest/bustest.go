package bustest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashpool/hashpool/bus"
)

// Env is one fresh bus for one test.
type Env struct {
	// Bus is the bus under test. The suite closes it at the end of the test.
	Bus bus.Bus
	// Topics are the topic names the suite uses; all five must exist or be
	// created on first use. The suite writes to them freely.
	Topics bus.Topics
	// Break makes the bus unable to deliver records from then on (stops the
	// Kafka cluster, closes the in-memory bus). The suite calls it at most once.
	Break func()
	// DeliveryTimeout is what the suite sets in ProducerOptions when it expects
	// a delivery failure; the failure must be reported within a few times this.
	DeliveryTimeout time.Duration
}

// NewEnv makes a fresh Env for t and registers its cleanup with t.Cleanup.
type NewEnv func(t testing.TB) Env

// waitLimit bounds every wait in the suite, so that a broken implementation
// fails the test instead of hanging it.
const waitLimit = 30 * time.Second

// Run runs the conformance suite; each subtest gets its own Env.
func Run(t *testing.T, newEnv NewEnv) {
	tests := []struct {
		name string
		fn   func(t *testing.T, e Env)
	}{
		{"DefaultTopics", testDefaultTopics},
		{"PublishAck", testPublishAck},
		{"PublishSync", testPublishSync},
		{"Latest", testLatest},
		{"Tail", testTail},
		{"GroupResume", testGroupResume},
		{"GroupNewStartsAtTail", testGroupNewStartsAtTail},
		{"Ordering", testOrdering},
		{"CommitWithoutGroup", testCommitWithoutGroup},
		{"PollContext", testPollContext},
		{"CloseConsumer", testCloseConsumer},
		{"CloseProducer", testCloseProducer},
		{"DeliveryFailure", testDeliveryFailure},
		{"ConcurrentProducers", testConcurrentProducers},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			t.Cleanup(func() { e.Bus.Close() })
			tc.fn(t, e)
		})
	}
}

// ctx returns a context bounded by waitLimit.
func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	return c
}

func producer(t testing.TB, e Env, opts bus.ProducerOptions) bus.Producer {
	t.Helper()
	p, err := e.Bus.NewProducer(opts)
	if err != nil {
		t.Fatalf("NewProducer: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func consumer(t testing.TB, e Env, topic string, start bus.Start) bus.Consumer {
	t.Helper()
	c, err := e.Bus.NewConsumer(topic, start)
	if err != nil {
		t.Fatalf("NewConsumer(%q, %+v): %v", topic, start, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// got is a message copied out of a Poll result.
type got struct {
	partition int32
	offset    int64
	key       string
	value     string
}

// collect polls c until it has n messages, copying them.
func collect(t testing.TB, c bus.Consumer, n int) []got {
	t.Helper()
	cx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	var out []got
	for len(out) < n {
		msgs, err := c.Poll(cx)
		if err != nil {
			t.Fatalf("Poll after %d of %d messages: %v", len(out), n, err)
		}
		if len(msgs) == 0 {
			t.Fatalf("Poll returned no messages and no error")
		}
		for _, m := range msgs {
			out = append(out, got{m.Partition, m.Offset, string(m.Key), string(m.Value)})
		}
	}
	if len(out) > n {
		t.Fatalf("got %d messages, want %d: extra %+v", len(out), n, out[n:])
	}
	return out
}

// expectNothing checks that c yields no message within a short time.
func expectNothing(t testing.TB, c bus.Consumer, d time.Duration) {
	t.Helper()
	cx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	msgs, err := c.Poll(cx)
	if err == nil {
		t.Fatalf("Poll returned %d unexpected messages, first %q", len(msgs), msgs[0].Value)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Poll: %v, want context.DeadlineExceeded", err)
	}
}

func values(gs []got) []string {
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = g.value
	}
	return out
}

func wantValues(t testing.TB, gs []got, want ...string) {
	t.Helper()
	v := values(gs)
	if fmt.Sprint(v) != fmt.Sprint(want) {
		t.Fatalf("values %q, want %q", v, want)
	}
}

// publishSync publishes values one by one with PublishSync.
func publishSync(t testing.TB, p bus.Producer, topic string, vals ...string) {
	t.Helper()
	for _, v := range vals {
		if err := p.PublishSync(ctx(t), topic, nil, []byte(v)); err != nil {
			t.Fatalf("PublishSync(%q): %v", v, err)
		}
	}
}

func seq(prefix string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s%d", prefix, i))
	}
	return out
}

func testDefaultTopics(t *testing.T, e Env) {
	d := bus.DefaultTopics()
	want := []string{"BtcRawGbt", "BtcJob", "BtcShare", "BtcSolvedShare", "BtcCommonEvents"}
	if fmt.Sprint(d.All()) != fmt.Sprint(want) {
		t.Fatalf("DefaultTopics().All() = %q, want %q", d.All(), want)
	}
	if err := d.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if err := (bus.Topics{Job: "x"}).Validate(); err == nil {
		t.Fatal("Validate accepted empty topics")
	}
	// Every configured topic carries records.
	p := producer(t, e, bus.ProducerOptions{})
	for _, topic := range e.Topics.All() {
		c := consumer(t, e, topic, bus.Start{})
		publishSync(t, p, topic, "on-"+topic)
		wantValues(t, collect(t, c, 1), "on-"+topic)
	}
}

func testPublishAck(t *testing.T, e Env) {
	topic := e.Topics.Share
	p := producer(t, e, bus.ProducerOptions{Linger: 20 * time.Millisecond})
	const n = 100
	var calls [n]atomic.Int32
	var failed atomic.Int32
	for i := range n {
		p.Publish(topic, []byte(fmt.Sprint("k", i)), []byte(fmt.Sprint("v", i)), func(err error) {
			if err != nil {
				failed.Add(1)
			}
			calls[i].Add(1)
		})
	}
	if err := p.Flush(ctx(t)); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	for i := range n {
		if c := calls[i].Load(); c != 1 {
			t.Fatalf("done of record %d called %d times after Flush, want 1", i, c)
		}
	}
	if f := failed.Load(); f != 0 {
		t.Fatalf("%d deliveries failed", f)
	}
	c := consumer(t, e, topic, bus.Start{Tail: n})
	gs := collect(t, c, n)
	wantValues(t, gs, seq("v", 0, n)...)
	for i, g := range gs {
		if g.key != fmt.Sprint("k", i) {
			t.Fatalf("message %d key %q, want k%d", i, g.key, i)
		}
	}
}

func testPublishSync(t *testing.T, e Env) {
	topic := e.Topics.SolvedShare
	c := consumer(t, e, topic, bus.Start{})
	p := producer(t, e, bus.ProducerOptions{})
	publishSync(t, p, topic, "block")
	wantValues(t, collect(t, c, 1), "block")
	// A done context reports its error, whatever became of the record.
	cx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.PublishSync(cx, topic, nil, []byte("late")); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("PublishSync with canceled ctx: %v", err)
	}
}

func testLatest(t *testing.T, e Env) {
	topic := e.Topics.Job
	p := producer(t, e, bus.ProducerOptions{})
	publishSync(t, p, topic, seq("old", 0, 5)...)
	c := consumer(t, e, topic, bus.Start{})
	publishSync(t, p, topic, seq("new", 0, 3)...)
	gs := collect(t, c, 3)
	wantValues(t, gs, seq("new", 0, 3)...)
	if gs[1].offset != gs[0].offset+1 || gs[2].offset != gs[1].offset+1 {
		t.Fatalf("offsets not consecutive: %+v", gs)
	}
}

func testTail(t *testing.T, e Env) {
	topic := e.Topics.RawGbt
	p := producer(t, e, bus.ProducerOptions{})
	// Tail on an empty topic reads nothing old.
	c0 := consumer(t, e, topic, bus.Start{Tail: 5})
	publishSync(t, p, topic, seq("r", 0, 10)...)
	wantValues(t, collect(t, c0, 10), seq("r", 0, 10)...)

	for _, tc := range []struct {
		tail int64
		want []string
	}{
		{1, seq("r", 9, 10)},
		{3, seq("r", 7, 10)},
		{10, seq("r", 0, 10)},
		{100, seq("r", 0, 10)},
	} {
		c := consumer(t, e, topic, bus.Start{Tail: tc.tail})
		wantValues(t, collect(t, c, len(tc.want)), tc.want...)
		expectNothing(t, c, 50*time.Millisecond)
	}
	// A tail consumer goes on with new records after the old ones.
	c := consumer(t, e, topic, bus.Start{Tail: 1})
	publishSync(t, p, topic, "r10")
	wantValues(t, collect(t, c, 2), "r9", "r10")
}

func testGroupResume(t *testing.T, e Env) {
	topic := e.Topics.Share
	const group = "sharelog_write_btc"
	p := producer(t, e, bus.ProducerOptions{})
	c1 := consumer(t, e, topic, bus.Start{Group: group})
	publishSync(t, p, topic, seq("s", 0, 10)...)

	cx := ctx(t)
	var first []bus.Message
	for len(first) < 10 {
		msgs, err := c1.Poll(cx)
		if err != nil {
			t.Fatalf("Poll: %v", err)
		}
		for _, m := range msgs {
			m.Key, m.Value = append([]byte(nil), m.Key...), append([]byte(nil), m.Value...)
			first = append(first, m)
		}
	}
	wantValues(t, gotOf(first), seq("s", 0, 10)...)
	// The side effect of s0..s5 is durable: commit them, in two calls and out
	// of order, which must not move the offset back.
	if err := c1.Commit(cx, first[3:6]...); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if err := c1.Commit(cx, first[0:2]...); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if err := c1.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	// Reconnect: the group resumes after s5, whatever Tail says.
	c2 := consumer(t, e, topic, bus.Start{Group: group, Tail: 100})
	gs := collect(t, c2, 4)
	wantValues(t, gs, seq("s", 6, 10)...)
	msgs := make([]bus.Message, len(gs))
	for i, g := range gs {
		msgs[i] = bus.Message{Topic: topic, Partition: g.partition, Offset: g.offset}
	}
	if err := c2.Commit(cx, msgs...); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if err := c2.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	// Everything committed: a new member sees only new records.
	c3 := consumer(t, e, topic, bus.Start{Group: group, Tail: 100})
	publishSync(t, p, topic, "s10")
	wantValues(t, collect(t, c3, 1), "s10")

	// Another group is independent of the first.
	c4 := consumer(t, e, topic, bus.Start{Group: "other", Tail: 2})
	wantValues(t, collect(t, c4, 2), "s9", "s10")
}

func gotOf(msgs []bus.Message) []got {
	out := make([]got, len(msgs))
	for i, m := range msgs {
		out[i] = got{m.Partition, m.Offset, string(m.Key), string(m.Value)}
	}
	return out
}

func testGroupNewStartsAtTail(t *testing.T, e Env) {
	topic := e.Topics.CommonEvents
	p := producer(t, e, bus.ProducerOptions{})
	publishSync(t, p, topic, seq("e", 0, 5)...)
	// The start is fixed when NewConsumer returns, before the first Poll.
	c := consumer(t, e, topic, bus.Start{Group: "statshttpd", Tail: 2})
	publishSync(t, p, topic, "e5")
	wantValues(t, collect(t, c, 3), "e3", "e4", "e5")
}

func testOrdering(t *testing.T, e Env) {
	topic := e.Topics.Share
	c := consumer(t, e, topic, bus.Start{})
	p := producer(t, e, bus.ProducerOptions{Linger: 5 * time.Millisecond})
	const n = 2000
	for i := range n {
		p.Publish(topic, nil, fmt.Appendf(nil, "o%d", i), nil)
		if i%500 == 0 {
			if err := p.Flush(ctx(t)); err != nil {
				t.Fatalf("Flush: %v", err)
			}
		}
	}
	if err := p.Flush(ctx(t)); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	gs := collect(t, c, n)
	wantValues(t, gs, seq("o", 0, n)...)
	for i := 1; i < n; i++ {
		if gs[i].offset <= gs[i-1].offset {
			t.Fatalf("offset %d after %d", gs[i].offset, gs[i-1].offset)
		}
	}
}

func testCommitWithoutGroup(t *testing.T, e Env) {
	topic := e.Topics.Job
	c := consumer(t, e, topic, bus.Start{})
	p := producer(t, e, bus.ProducerOptions{})
	publishSync(t, p, topic, "j")
	gs := collect(t, c, 1)
	if err := c.Commit(ctx(t), bus.Message{Topic: topic, Partition: gs[0].partition, Offset: gs[0].offset}); err != nil {
		t.Fatalf("Commit without group: %v", err)
	}
}

func testPollContext(t *testing.T, e Env) {
	c := consumer(t, e, e.Topics.Job, bus.Start{})
	expectNothing(t, c, 20*time.Millisecond)
	cx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Poll(cx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Poll with canceled ctx: %v, want context.Canceled", err)
	}
}

func testCloseConsumer(t *testing.T, e Env) {
	c := consumer(t, e, e.Topics.Job, bus.Start{})
	res := make(chan error, 1)
	go func() {
		_, err := c.Poll(ctx(t))
		res <- err
	}()
	time.Sleep(20 * time.Millisecond) // let Poll block; either order must work
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-res:
		if !errors.Is(err, bus.ErrClosed) {
			t.Fatalf("blocked Poll after Close: %v, want ErrClosed", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Close did not wake a blocked Poll")
	}
	if _, err := c.Poll(ctx(t)); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("Poll after Close: %v, want ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func testCloseProducer(t *testing.T, e Env) {
	topic := e.Topics.Share
	c := consumer(t, e, topic, bus.Start{})
	p := producer(t, e, bus.ProducerOptions{Linger: 200 * time.Millisecond})
	const n = 50
	var ok, bad atomic.Int32
	for i := range n {
		p.Publish(topic, nil, fmt.Appendf(nil, "c%d", i), func(err error) {
			if err == nil {
				ok.Add(1)
			} else {
				bad.Add(1)
			}
		})
	}
	// Close delivers what is queued (or reports it) before returning.
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if o, b := ok.Load(), bad.Load(); o+b != n || o != n {
		t.Fatalf("after Close: %d delivered, %d failed, want %d delivered", o, b, n)
	}
	wantValues(t, collect(t, c, n), seq("c", 0, n)...)

	res := make(chan error, 1)
	p.Publish(topic, nil, []byte("after"), func(err error) { res <- err })
	select {
	case err := <-res:
		if !errors.Is(err, bus.ErrClosed) {
			t.Fatalf("Publish after Close: done(%v), want ErrClosed", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Publish after Close never called done")
	}
	if err := p.PublishSync(ctx(t), topic, nil, []byte("after")); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("PublishSync after Close: %v, want ErrClosed", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func testDeliveryFailure(t *testing.T, e Env) {
	topic := e.Topics.SolvedShare
	p := producer(t, e, bus.ProducerOptions{DeliveryTimeout: e.DeliveryTimeout})
	publishSync(t, p, topic, "before")
	e.Break()
	res := make(chan error, 1)
	start := time.Now()
	p.Publish(topic, nil, []byte("lost?"), func(err error) { res <- err })
	select {
	case err := <-res:
		if err == nil {
			t.Fatal("record published on a broken bus reported as delivered")
		}
		t.Logf("delivery failure reported after %v: %v", time.Since(start).Round(time.Millisecond), err)
	case <-time.After(waitLimit):
		t.Fatalf("no delivery result %v after the bus broke (DeliveryTimeout %v)", waitLimit, e.DeliveryTimeout)
	}
	cx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := p.PublishSync(cx, topic, nil, []byte("lost?")); err == nil {
		t.Fatal("PublishSync on a broken bus returned nil")
	}
}

func testConcurrentProducers(t *testing.T, e Env) {
	topic := e.Topics.Share
	c := consumer(t, e, topic, bus.Start{})
	const producers, writers, each = 3, 4, 200
	var delivered, failed atomic.Int64
	var wg sync.WaitGroup
	ps := make([]bus.Producer, producers)
	for i := range ps {
		ps[i] = producer(t, e, bus.ProducerOptions{Linger: time.Duration(i) * time.Millisecond})
	}
	for pi, p := range ps {
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					v := make([]byte, 12)
					binary.BigEndian.PutUint32(v[0:], uint32(pi))
					binary.BigEndian.PutUint32(v[4:], uint32(w))
					binary.BigEndian.PutUint32(v[8:], uint32(i))
					p.Publish(topic, nil, v, func(err error) {
						if err != nil {
							failed.Add(1)
						} else {
							delivered.Add(1)
						}
					})
				}
			}()
		}
	}
	wg.Wait()
	for _, p := range ps {
		if err := p.Flush(ctx(t)); err != nil {
			t.Fatalf("Flush: %v", err)
		}
	}
	const total = producers * writers * each
	if d, f := delivered.Load(), failed.Load(); d != total || f != 0 {
		t.Fatalf("%d delivered, %d failed, want %d delivered", d, f, total)
	}
	// Every record arrives once, and each writer's records in its order.
	next := make(map[[2]uint32]uint32)
	for _, g := range collect(t, c, total) {
		v := []byte(g.value)
		k := [2]uint32{binary.BigEndian.Uint32(v[0:]), binary.BigEndian.Uint32(v[4:])}
		i := binary.BigEndian.Uint32(v[8:])
		if i != next[k] {
			t.Fatalf("writer %v: record %d, want %d", k, i, next[k])
		}
		next[k]++
	}
}
