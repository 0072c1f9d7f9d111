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
