package bustest

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashpool/hashpool/bus"
)

// recordSize is about the size of a btcpool share record value.
const recordSize = 100

// BenchPublish measures publish throughput of share-sized records with done
// callbacks, each iteration one record, until every consumer has read every
// record: records/s is end to end. Sub-benchmarks vary the number of
// consumers draining the topic.
func BenchPublish(b *testing.B, newEnv NewEnv, linger time.Duration) {
	for _, consumers := range []int{0, 4} {
		b.Run("consumers="+strconv.Itoa(consumers), func(b *testing.B) {
			e := newEnv(b)
			defer e.Bus.Close()
			topic := e.Topics.Share
			p, err := e.Bus.NewProducer(bus.ProducerOptions{Linger: linger})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			var wg sync.WaitGroup
			counts := make([]atomic.Int64, consumers)
			for i := range consumers {
				c, err := e.Bus.NewConsumer(topic, bus.Start{})
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				wg.Add(1)
				go func() {
					defer wg.Done()
					for counts[i].Load() < int64(b.N) {
						msgs, err := c.Poll(ctx)
						if err != nil {
							return
						}
						counts[i].Add(int64(len(msgs)))
					}
				}()
			}
			value := make([]byte, recordSize)
			var failed atomic.Int64
			done := func(err error) {
				if err != nil {
					failed.Add(1)
				}
			}
			b.SetBytes(recordSize)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				p.Publish(topic, nil, value, done)
			}
			if err := p.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if f := failed.Load(); f != 0 {
				b.Fatalf("%d deliveries failed", f)
			}
			for i := range counts {
				if n := counts[i].Load(); n < int64(b.N) {
					b.Fatalf("consumer %d read %d of %d records", i, n, b.N)
				}
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
		})
	}
}

// BenchLatency measures publish → consume latency: one record at a time,
// published with Linger 0 and read by a consumer that was waiting in Poll.
// It reports the median and 99th percentile in microseconds.
func BenchLatency(b *testing.B, newEnv NewEnv) {
	e := newEnv(b)
	defer e.Bus.Close()
	topic := e.Topics.SolvedShare
	p, err := e.Bus.NewProducer(bus.ProducerOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	c, err := e.Bus.NewConsumer(topic, bus.Start{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	value := make([]byte, recordSize)
	samples := make([]time.Duration, 0, b.N)
	arrived := make(chan time.Time)
	go func() {
		defer close(arrived)
		for {
			msgs, err := c.Poll(ctx)
			if err != nil {
				return
			}
			for range msgs {
				arrived <- time.Now()
			}
		}
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		p.Publish(topic, nil, value, nil)
		t1, ok := <-arrived
		if !ok {
			b.Fatal("consumer stopped")
		}
		samples = append(samples, t1.Sub(t0))
	}
	b.StopTimer()
	slices.Sort(samples)
	b.ReportMetric(float64(samples[len(samples)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(samples[len(samples)*99/100].Nanoseconds())/1e3, "p99-µs")
}
