package kafka_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/bus/kafka"
)

// TestHeldOverrulesACommitAhead: a group member whose caller holds records up to an offset
// (the share log's checkpoint) resumes right after it when the group's commit is ahead, so
// nothing between them is skipped; a commit behind it, or a partition the caller does not
// hold, resumes at the commit.
func TestHeldOverrulesACommitAhead(t *testing.T) {
	const topic, group = "HeldShares", "held_group"
	c := newCluster(t, 1, topic)
	b, err := kafka.New(kafka.Config{Brokers: c.ListenAddrs()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	prod, err := b.NewProducer(bus.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var failed atomic.Int64
	for i := range 100 {
		prod.Publish(topic, nil, []byte(strconv.Itoa(i)), func(err error) {
			if err != nil {
				failed.Add(1)
			}
		})
	}
	if err := prod.Flush(ctx); err != nil || failed.Load() != 0 {
		t.Fatalf("flush: %v, %d failed", err, failed.Load())
	}
	prod.Close()

	// first polls a new member of the group and returns the offset of the first record it gets.
	first := func(held func(int32, int64) (int64, bool)) int64 {
		t.Helper()
		cons, err := b.NewConsumer(topic, bus.Start{Group: group, Tail: 100, Held: held})
		if err != nil {
			t.Fatal(err)
		}
		defer cons.Close()
		for {
			msgs, err := cons.Poll(ctx)
			if err != nil {
				t.Fatalf("poll: %v", err)
			}
			if len(msgs) > 0 {
				return msgs[0].Offset
			}
		}
	}
	// The group commits offset 80 (records 0..79 done).
	cons, err := b.NewConsumer(topic, bus.Start{Group: group, Tail: 100})
	if err != nil {
		t.Fatal(err)
	}
	var last bus.Message
	for last.Offset < 79 {
		msgs, err := cons.Poll(ctx)
		if err != nil {
			t.Fatalf("poll: %v", err)
		}
		for _, m := range msgs {
			if m.Offset == 79 {
				last = m
			}
		}
	}
	last.Key, last.Value = nil, nil
	if err := cons.Commit(ctx, last); err != nil {
		t.Fatalf("commit: %v", err)
	}
	cons.Close()

	var seen atomic.Int64
	seen.Store(-2)
	if got := first(func(p int32, committed int64) (int64, bool) { seen.Store(committed); return 49, true }); got != 50 {
		t.Fatalf("commit 80 ahead of held 49: first record %d, want 50", got)
	}
	if seen.Load() != 80 {
		t.Fatalf("Held was told the commit is %d, want 80", seen.Load())
	}
	if got := first(func(int32, int64) (int64, bool) { return 89, true }); got != 80 {
		t.Fatalf("commit 80 behind held 89: first record %d, want 80 (the caller skips what it holds)", got)
	}
	if got := first(func(int32, int64) (int64, bool) { return 0, false }); got != 80 {
		t.Fatalf("partition not held: first record %d, want the commit 80", got)
	}
}
