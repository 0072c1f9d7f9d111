package mem

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashpool/hashpool/bus"
)

func poll(t *testing.T, c bus.Consumer) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs, err := c.Poll(ctx)
	if err != nil {
		t.Fatalf("Poll: %v", err)
	}
	var out []string
	for _, m := range msgs {
		out = append(out, string(m.Value))
	}
	return out
}

func publishN(b *Bus, topic string, from, to int, size int) {
	p, _ := b.NewProducer(bus.ProducerOptions{})
	defer p.Close()
	for i := from; i < to; i++ {
		v := fmt.Sprintf("%0*d", size, i)
		p.Publish(topic, nil, []byte(v), nil)
	}
}

func TestRetention(t *testing.T) {
	tests := []struct {
		name        string
		opts        Options
		topic       string
		n, size     int
		wantOldest  int64
		wantRecords int
	}{
		{"records", Options{Retention: Retention{MaxRecords: 10}}, "a", 25, 4, 15, 10},
		{"bytes", Options{Retention: Retention{MaxBytes: 40}}, "a", 25, 4, 15, 10},
		{"both, bytes bind", Options{Retention: Retention{MaxRecords: 10, MaxBytes: 20}}, "a", 25, 4, 20, 5},
		{"per topic", Options{Retention: Retention{MaxRecords: 10}, Topics: map[string]Retention{"b": {MaxRecords: 3}}}, "b", 25, 4, 22, 3},
		{"record over MaxBytes kept", Options{Retention: Retention{MaxBytes: 2}}, "a", 5, 4, 4, 1},
		{"defaults", Options{}, "a", 1000, 4, 0, 1000},
		{"compaction cycles", Options{Retention: Retention{MaxRecords: 7}}, "a", 10000, 6, 9993, 7},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := New(tc.opts)
			defer b.Close()
			publishN(b, tc.topic, 0, tc.n, tc.size)
			if got := b.Oldest(tc.topic); got != tc.wantOldest {
				t.Fatalf("Oldest = %d, want %d", got, tc.wantOldest)
			}
			if got := b.End(tc.topic); got != int64(tc.n) {
				t.Fatalf("End = %d, want %d", got, tc.n)
			}
			c, err := b.NewConsumer(tc.topic, bus.Start{Tail: 1 << 40})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var got []string
			for len(got) < tc.wantRecords {
				got = append(got, poll(t, c)...)
			}
			if len(got) != tc.wantRecords || got[0] != fmt.Sprintf("%0*d", tc.size, tc.wantOldest) {
				t.Fatalf("read %d records from %q, want %d from offset %d", len(got), got[0], tc.wantRecords, tc.wantOldest)
			}
		})
	}
}

// A consumer that falls behind retention skips to the oldest retained record;
// publishers never wait for it.
func TestSlowConsumerSkipsAhead(t *testing.T) {
	b := New(Options{Retention: Retention{MaxRecords: 5}, MaxPoll: 2})
	defer b.Close()
	c, err := b.NewConsumer("s", bus.Start{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	publishN(b, "s", 0, 3, 1)
	if got := poll(t, c); strings.Join(got, ",") != "0,1" {
		t.Fatalf("first poll %q", got)
	}
	publishN(b, "s", 3, 10, 1)
	if got := poll(t, c); strings.Join(got, ",") != "5,6" {
		t.Fatalf("after falling behind: %q, want 5,6", got)
	}
}

// A second member of a group waits while the first owns the partition, then
// takes over at the committed offset when the first closes.
func TestGroupTakeover(t *testing.T) {
	b := New(Options{})
	defer b.Close()
	c1, _ := b.NewConsumer("g", bus.Start{Group: "grp"})
	c2, _ := b.NewConsumer("g", bus.Start{Group: "grp"})
	defer c2.Close()
	publishN(b, "g", 0, 4, 1)
	ctx := context.Background()
	msgs, err := c1.Poll(ctx)
	if err != nil || len(msgs) != 4 {
		t.Fatalf("c1 Poll: %d, %v", len(msgs), err)
	}
	if err := c1.Commit(ctx, msgs[1]); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := c2.Poll(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("standby member polled: %v", err)
	}
	if err := c2.Commit(ctx, msgs[3]); err == nil {
		t.Fatal("standby member's commit accepted")
	}
	res := make(chan []string, 1)
	go func() { res <- poll(t, c2) }()
	c1.Close()
	if err := c1.Commit(ctx, msgs[3]); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("Commit after Close: %v", err)
	}
	select {
	case got := <-res:
		if strings.Join(got, ",") != "2,3" {
			t.Fatalf("takeover read %q, want 2,3", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("standby member never took over")
	}
}

func TestValidate(t *testing.T) {
	if err := (Options{}).Validate(); err != nil {
		t.Fatalf("zero Options: %v", err)
	}
	err := Options{Retention: Retention{MaxRecords: -1, MaxBytes: -2}, MaxPoll: -3,
		Topics: map[string]Retention{"x": {MaxRecords: -4}}}.Validate()
	for _, want := range []string{"Retention MaxRecords", "Retention MaxBytes", "MaxPoll", "Topics[x] MaxRecords"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error %v does not mention %q", err, want)
		}
	}
	// New never panics: bad values take defaults.
	b := New(Options{Retention: Retention{MaxRecords: -1}, MaxPoll: -1})
	defer b.Close()
	publishN(b, "v", 0, 3, 1)
	if b.Oldest("v") != 0 {
		t.Fatal("negative MaxRecords dropped records")
	}
}

func TestClosedBus(t *testing.T) {
	b := New(Options{})
	b.Close()
	if _, err := b.NewProducer(bus.ProducerOptions{}); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("NewProducer on closed bus: %v", err)
	}
	if _, err := b.NewConsumer("x", bus.Start{}); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("NewConsumer on closed bus: %v", err)
	}
	if _, err := New(Options{}).NewConsumer("x", bus.Start{Tail: -1}); err == nil {
		t.Fatal("negative Tail accepted")
	}
}

// Publish with a steady-state log (retention reached, compaction reusing the
// slice) allocates nothing, with or without a done callback.
func TestPublishZeroAlloc(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	b := New(Options{Retention: Retention{MaxRecords: 256}})
	defer b.Close()
	p, _ := b.NewProducer(bus.ProducerOptions{})
	defer p.Close()
	value := []byte("share")
	done := func(error) {}
	for range 10000 {
		p.Publish("z", nil, value, done)
	}
	ctx := context.Background()
	p.Flush(ctx)
	if n := testing.AllocsPerRun(1000, func() { p.Publish("z", nil, value, nil) }); n != 0 {
		t.Errorf("Publish without done: %v allocs", n)
	}
	if n := testing.AllocsPerRun(1000, func() { p.Publish("z", nil, value, done) }); n > 0.01 {
		t.Errorf("Publish with done: %v allocs", n)
	}
}
