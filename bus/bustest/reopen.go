package bustest

import (
	"testing"
	"time"

	"github.com/hashpool/hashpool/bus"
)

// OpenDir opens a durable bus on dir. The suite closes each bus it opens
// before opening the next on the same dir.
type OpenDir func(t testing.TB, dir string) bus.Bus

// RunReopen checks what a durable bus promises across a restart: records
// keep their offsets, keys and values, new records continue the offsets, a
// group resumes after its committed offset, and Tail N reads the last N
// records that survived.
func RunReopen(t *testing.T, open OpenDir) {
	topics := bus.DefaultTopics()
	t.Run("RecordsAndOffsets", func(t *testing.T) {
		dir := t.TempDir()
		b := open(t, dir)
		p := producer(t, Env{Bus: b}, bus.ProducerOptions{})
		for _, topic := range topics.All() {
			publishSync(t, p, topic, seq(topic+"-", 0, 30)...)
		}
		p.Close()
		b.Close()

		b = open(t, dir)
		t.Cleanup(func() { b.Close() })
		e := Env{Bus: b}
		p = producer(t, e, bus.ProducerOptions{})
		for _, topic := range topics.All() {
			c := consumer(t, e, topic, bus.Start{Tail: 1000})
			publishSync(t, p, topic, topic+"-30")
			gs := collect(t, c, 31)
			wantValues(t, gs, seq(topic+"-", 0, 31)...)
			for i, g := range gs {
				if g.offset != gs[0].offset+int64(i) {
					t.Fatalf("%s: offset %d at position %d after reopen", topic, g.offset, i)
				}
			}
		}
	})
	t.Run("GroupResume", func(t *testing.T) {
		dir := t.TempDir()
		b := open(t, dir)
		e := Env{Bus: b}
		c := consumer(t, e, topics.Share, bus.Start{Group: "sharelog"})
		p := producer(t, e, bus.ProducerOptions{})
		publishSync(t, p, topics.Share, seq("s", 0, 10)...)
		gs := collect(t, c, 10)
		if err := c.Commit(ctx(t), bus.Message{Topic: topics.Share, Partition: gs[6].partition, Offset: gs[6].offset}); err != nil {
			t.Fatalf("Commit: %v", err)
		}
		c.Close()
		p.Close()
		b.Close()

		b = open(t, dir)
		t.Cleanup(func() { b.Close() })
		e = Env{Bus: b}
		c = consumer(t, e, topics.Share, bus.Start{Group: "sharelog", Tail: 100})
		wantValues(t, collect(t, c, 3), "s7", "s8", "s9")
		// A group never seen before starts as Tail says.
		c2 := consumer(t, e, topics.Share, bus.Start{Group: "other", Tail: 2})
		wantValues(t, collect(t, c2, 2), "s8", "s9")
	})
	t.Run("Tail", func(t *testing.T) {
		dir := t.TempDir()
		b := open(t, dir)
		p := producer(t, Env{Bus: b}, bus.ProducerOptions{})
		publishSync(t, p, topics.RawGbt, seq("gbt", 0, 120)...)
		p.Close()
		b.Close()
		b = open(t, dir)
		t.Cleanup(func() { b.Close() })
		e := Env{Bus: b}
		for _, tail := range []int64{1, 100, 500} {
			c := consumer(t, e, topics.RawGbt, bus.Start{Tail: tail})
			n := int(min(tail, 120))
			wantValues(t, collect(t, c, n), seq("gbt", 120-n, 120)...)
			c.Close()
		}
		c := consumer(t, e, topics.RawGbt, bus.Start{})
		expectNothing(t, c, 50*time.Millisecond)
	})
}
