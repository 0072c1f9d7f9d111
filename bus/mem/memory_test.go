package mem

import (
	"context"
	"encoding/binary"
	"runtime"
	"testing"
	"time"

	"github.com/hashpool/hashpool/bus"
)

// Memory stays bounded on a durable bus however far a consumer lags: only
// the cache (CacheBytes) and the producer's queue (MaxBufferedRecords) hold
// records; a consumer behind the cache reads the files, and still gets
// every record.
func TestDurableMemoryBounded(t *testing.T) {
	n := 2_000_000
	if raceEnabled {
		n = 300_000 // the race detector makes each record ~10x slower; still 3x the cache
	}
	const heapBound = 64 << 20
	b, err := Open(Options{Dir: t.TempDir(), Retention: Retention{MaxBytes: 4 << 30}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := b.NewConsumer("share", bus.Start{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := make(chan struct{})
	res := make(chan error, 1)
	go func() {
		<-start // the slow consumer: far behind the cache when it begins
		next := int64(0)
		for next < int64(n) {
			msgs, err := c.Poll(ctx)
			if err != nil {
				res <- err
				return
			}
			for _, m := range msgs {
				if m.Offset != next || len(m.Value) != 100 || binary.BigEndian.Uint64(m.Value) != uint64(next) {
					t.Errorf("offset %d: got offset %d, value %x", next, m.Offset, m.Value[:8])
					res <- nil
					return
				}
				next++
			}
		}
		res <- nil
	}()
	p, _ := b.NewProducer(bus.ProducerOptions{MaxBufferedRecords: 10000})
	defer p.Close()
	var maxHeap uint64
	sample := func() {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		maxHeap = max(maxHeap, ms.HeapAlloc)
	}
	for i := range n {
		v := make([]byte, 100)
		binary.BigEndian.PutUint64(v, uint64(i))
		p.Publish("share", nil, v, nil)
		if i == n/2 {
			close(start)
		}
		if i%(n/10) == n/10-1 {
			sample()
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-res; err != nil {
		t.Fatal(err)
	}
	sample()
	st := b.Stats()
	t.Logf("%d records, max live heap after GC %.1f MiB (bound %d MiB), %d fsyncs, cache %d records / %.1f MiB, on disk %.1f MiB",
		n, float64(maxHeap)/(1<<20), heapBound>>20, st.Fsyncs, st.Topics[0].CachedRecords,
		float64(st.Topics[0].CachedBytes)/(1<<20), float64(st.Topics[0].RetainedBytes)/(1<<20))
	if maxHeap > heapBound {
		t.Fatalf("live heap reached %d MiB, bound %d MiB", maxHeap>>20, heapBound>>20)
	}
}

// A consumer that keeps up costs the durable bus no memory: once it took a
// record, the cache drops it (the record is on disk), so the live heap is
// flat over a sustained share stream. Count-bounded: 100 rounds of 10,000
// 100-byte records, each round flushed and read to the end before the next.
func TestDurableCacheKeepsOnlyUntaken(t *testing.T) {
	rounds, per := 100, 10_000
	if raceEnabled {
		rounds = 20
	}
	b, err := Open(Options{Dir: t.TempDir(), Retention: Retention{MaxBytes: 4 << 30}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := b.NewConsumer("share", bus.Start{Group: "sharelogger"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p, _ := b.NewProducer(bus.ProducerOptions{MaxBufferedRecords: 10000})
	defer p.Close()
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	var first, peak uint64
	next := int64(0)
	for r := range rounds {
		publishNumbered(t, ctx, p, r*per, per)
		next = readNumbered(t, ctx, c, next, int64((r+1)*per))
		st := b.Stats().Topics[0]
		if st.CachedRecords != 0 || st.CachedBytes != 0 || st.CacheDropped != 0 {
			t.Fatalf("round %d: every record taken, yet the cache holds %d records / %d bytes (dropped %d)",
				r, st.CachedRecords, st.CachedBytes, st.CacheDropped)
		}
		if r == 1 {
			first = heap()
		} else if r%10 == 9 {
			peak = max(peak, heap())
		}
	}
	// 100 rounds put 100 MB of values through the bus; a cache that kept
	// them (as before) would hold 16 MiB of them at the end.
	const slack = 4 << 20
	t.Logf("%d records: live heap after GC %.1f MiB after round 2, at most %.1f MiB later", rounds*per,
		float64(first)/(1<<20), float64(peak)/(1<<20))
	if peak > first+slack {
		t.Fatalf("live heap grew from %d to %d bytes over the stream (slack %d)", first, peak, slack)
	}
}

// The memory bound drops records a reader has not taken and counts them;
// with a Dir the reader still gets them, from the files.
func TestCacheDroppedCounted(t *testing.T) {
	b, err := Open(Options{Dir: t.TempDir(), CacheBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := b.NewConsumer("share", bus.Start{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p, _ := b.NewProducer(bus.ProducerOptions{})
	defer p.Close()
	const n = 5000 // 5000 * (100+64) bytes: about 12x the cache
	publishNumbered(t, ctx, p, 0, n)
	st := b.Stats().Topics[0]
	if st.CacheDropped == 0 || st.CachedBytes > 64<<10 {
		t.Fatalf("cache %d bytes, dropped %d: want the bound held and the drops counted", st.CachedBytes, st.CacheDropped)
	}
	readNumbered(t, ctx, c, 0, n)
	if st := b.Stats().Topics[0]; st.CachedRecords != 0 {
		t.Fatalf("all taken, cache still holds %d records", st.CachedRecords)
	}

	// Without a Dir the bound is the retention: records the reader had not
	// taken are gone, and counted.
	m := New(Options{Retention: Retention{MaxRecords: 100}})
	defer m.Close()
	mc, _ := m.NewConsumer("share", bus.Start{})
	defer mc.Close()
	mp, _ := m.NewProducer(bus.ProducerOptions{})
	defer mp.Close()
	for range 250 {
		mp.Publish("share", nil, []byte("x"), nil)
	}
	if st := m.Stats().Topics[0]; st.CacheDropped != 150 || st.CachedRecords != 100 {
		t.Fatalf("memory-only: dropped %d, cached %d; want 150, 100", st.CacheDropped, st.CachedRecords)
	}
}

// publishNumbered publishes n 100-byte records numbered from first on topic
// "share" and waits until they are written.
func publishNumbered(t *testing.T, ctx context.Context, p bus.Producer, first, n int) {
	t.Helper()
	for i := range n {
		v := make([]byte, 100)
		binary.BigEndian.PutUint64(v, uint64(first+i))
		p.Publish("share", nil, v, nil)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// readNumbered polls c from offset next up to end, checking each record is
// the one publishNumbered numbered so, committing as it goes; it returns end.
func readNumbered(t *testing.T, ctx context.Context, c bus.Consumer, next, end int64) int64 {
	t.Helper()
	for next < end {
		msgs, err := c.Poll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if m.Offset != next || binary.BigEndian.Uint64(m.Value) != uint64(next) {
				t.Fatalf("offset %d: got offset %d", next, m.Offset)
			}
			next++
		}
		if err := c.Commit(ctx, msgs[len(msgs)-1]); err != nil {
			t.Fatal(err)
		}
	}
	return next
}
