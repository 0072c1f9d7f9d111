package kafka_test

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/bus/kafka"
	"github.com/hashpool/hashpool/internal/kafkatest"
)

// A broker replaced by a new, empty one on the same address (kfake without
// persistence; a real cluster restored without its data): what it held is
// gone, but the same producer and consumer go on with it.
func TestBrokerReplaced(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a broker process")
	}
	t.Parallel()
	const topic = "Replaced"
	srv := kafkatest.StartServer(t, kafkatest.Options{Topics: []string{topic}})
	b, err := kafka.New(kafka.Config{Brokers: []string{srv.Addr}, SessionTimeout: 6 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	prod, err := b.NewProducer(bus.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	cons, err := b.NewConsumer(topic, bus.Start{Group: "replaced"})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := range 100 {
		prod.Publish(topic, nil, fmt.Appendf(nil, "before %d", i), nil)
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	pollUntil(t, cons, "before 99")
	srv.Restart()
	restarted := time.Now()

	// Publish until the consumer reads a record published after the
	// restart: its fetch offset (100) is past the new log's end, so it
	// starts over at the new log's first record.
	read := make(chan string, 1)
	go func() {
		var inc bus.Incident
		for {
			msgs, err := bus.Poll(ctx, cons, &inc)
			if err != nil {
				read <- "error: " + err.Error()
				return
			}
			for _, m := range msgs {
				if bytes.HasPrefix(m.Value, []byte("after")) {
					read <- string(m.Value)
					return
				}
			}
			if err := bus.Commit(ctx, cons, &inc, 5*time.Second, msgs...); bus.IsPermanent(err) {
				read <- "error: " + err.Error()
				return
			}
		}
	}()
	var failed atomic.Int64
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case got := <-read:
			if !bytes.HasPrefix([]byte(got), []byte("after")) {
				t.Fatal(got)
			}
			t.Logf("read %q %v after the restart (%d deliveries failed on the way)", got, time.Since(restarted).Round(time.Millisecond), failed.Load())
			return
		case <-ctx.Done():
			t.Fatalf("no record published after the restart was read (%d deliveries failed)", failed.Load())
		case <-tick.C:
			prod.Publish(topic, nil, fmt.Appendf(nil, "after %d", i), func(err error) {
				if err != nil {
					failed.Add(1)
					if bus.IsPermanent(err) {
						t.Errorf("delivery after the restart: %v is permanent", err)
					}
				}
			})
		}
	}
}
