package mem_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/bus/bustest"
	"github.com/hashpool/hashpool/bus/mem"
)

// BenchmarkDurablePublish measures a durable bus with group commit: records
// published with done callbacks by several producers at once, until every
// callback ran (each after the fsync covering it). Sizes are a share record
// and main-net-like templates.
func BenchmarkDurablePublish(b *testing.B) {
	for _, size := range []int{100, 1 << 20, 4 << 20} {
		b.Run("size="+strconv.Itoa(size), func(b *testing.B) {
			bs, err := mem.Open(mem.Options{Dir: b.TempDir(), Retention: mem.Retention{MaxBytes: 1 << 30}})
			if err != nil {
				b.Fatal(err)
			}
			defer bs.Close()
			p, _ := bs.NewProducer(bus.ProducerOptions{MaxBufferedRecords: 100000})
			defer p.Close()
			value := make([]byte, size)
			var failed atomic.Int64
			done := func(err error) {
				if err != nil {
					failed.Add(1)
				}
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			before := bs.Stats()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				p.Publish("BtcShare", nil, value, done)
			}
			if err := p.Flush(context.Background()); err != nil {
				b.Fatal(err)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			if failed.Load() != 0 {
				b.Fatalf("%d failed", failed.Load())
			}
			st := bs.Stats()
			fsyncs := float64(st.Fsyncs - before.Fsyncs)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
			b.ReportMetric(fsyncs/elapsed.Seconds(), "fsyncs/s")
			b.ReportMetric(float64(b.N)/max(fsyncs, 1), "records/fsync")
			b.ReportMetric(float64(st.FsyncTime-before.FsyncTime)/max(fsyncs, 1)/1e3, "µs/fsync")
		})
	}
}

// BenchmarkDurablePublishSync is one solved share at a time: the latency of
// an acknowledged record (write + fsync + callback).
func BenchmarkDurablePublishSync(b *testing.B) {
	bs, err := mem.Open(mem.Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer bs.Close()
	p, _ := bs.NewProducer(bus.ProducerOptions{})
	defer p.Close()
	value := make([]byte, 100)
	ctx := context.Background()
	b.ReportAllocs()
	for range b.N {
		if err := p.PublishSync(ctx, "BtcSolvedShare", nil, value); err != nil {
			b.Fatal(err)
		}
	}
}

// The conformance benchmarks on the durable bus, comparable with
// BenchmarkPublish / BenchmarkLatency of the memory-only bus.
// (default segment size, unlike the conformance tests' small segments).
func BenchmarkDurableConsumers(b *testing.B) { bustest.BenchPublish(b, newDurableBenchEnv, 0) }

func BenchmarkDurableLatency(b *testing.B) { bustest.BenchLatency(b, newDurableBenchEnv) }

func newDurableBenchEnv(t testing.TB) bustest.Env {
	b := openDurable(t, mem.Options{Dir: t.TempDir()})
	return bustest.Env{Bus: b, Topics: bus.DefaultTopics(), Break: func() { b.Close() }, DeliveryTimeout: time.Second}
}
