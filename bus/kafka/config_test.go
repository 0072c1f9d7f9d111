package kafka_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/bus/kafka"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  kafka.Config
		want []string // substrings of the error; none: valid
	}{
		{"minimal", kafka.Config{Brokers: []string{"127.0.0.1:9092"}}, nil},
		{"no brokers", kafka.Config{}, []string{"no Brokers"}},
		{"everything wrong", kafka.Config{Brokers: []string{""}, TopicPartitions: -1, DeliveryTimeout: time.Millisecond,
			MaxBufferedRecords: -1, FetchMaxWait: -1, MaxPoll: -1, RequestTimeout: -1, DialTimeout: -1, SessionTimeout: -1},
			[]string{"empty broker", "TopicPartitions", "DeliveryTimeout", "MaxBufferedRecords", "FetchMaxWait", "MaxPoll", "RequestTimeout", "DialTimeout", "SessionTimeout"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if _, err := kafka.New(tc.cfg); err == nil {
				t.Error("New accepted it")
			}
		})
	}
}

func TestProducerOptionsRejected(t *testing.T) {
	c := newCluster(t, 1, "x")
	b, err := kafka.New(kafka.Config{Brokers: c.ListenAddrs()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, o := range []bus.ProducerOptions{{Linger: -1}, {DeliveryTimeout: 10 * time.Millisecond}, {MaxBufferedRecords: -1}} {
		if p, err := b.NewProducer(o); err == nil {
			p.Close()
			t.Errorf("NewProducer(%+v) accepted", o)
		}
	}
}

// Without CreateTopics a consumer of a missing topic is an error naming the
// topic; with it, the topic is created (so are Config.Topics at New).
func TestCreateTopics(t *testing.T) {
	c := newCluster(t, 1)
	addrs := c.ListenAddrs()

	b, err := kafka.New(kafka.Config{Brokers: addrs})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.NewConsumer("Missing", bus.Start{}); err == nil || !strings.Contains(err.Error(), "Missing") {
		t.Fatalf("consumer of a missing topic: %v", err)
	}

	topics := bus.DefaultTopics()
	bc, err := kafka.New(kafka.Config{Brokers: addrs, CreateTopics: true, Topics: topics, TopicPartitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer bc.Close()
	// Already created at New: a second New is fine too.
	bc2, err := kafka.New(kafka.Config{Brokers: addrs, CreateTopics: true, Topics: topics})
	if err != nil {
		t.Fatalf("New with existing topics: %v", err)
	}
	bc2.Close()

	for _, topic := range append(topics.All(), "Other") {
		cons, err := bc.NewConsumer(topic, bus.Start{})
		if err != nil {
			t.Fatalf("NewConsumer(%q): %v", topic, err)
		}
		p, err := bc.NewProducer(bus.ProducerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		if err := p.PublishSync(ctx, topic, nil, []byte("x")); err != nil {
			t.Fatalf("PublishSync(%q): %v", topic, err)
		}
		msgs, err := cons.Poll(ctx)
		if err != nil || len(msgs) != 1 || msgs[0].Partition != 0 {
			t.Fatalf("Poll(%q): %v %+v", topic, err, msgs)
		}
		cancel()
		p.Close()
		cons.Close()
	}
}

// Default layout (btcpool's): everything on partition 0, direct consumers
// read partition 0 only. AllPartitions: keyed records spread over the
// partitions, direct consumers and Tail cover every partition.
func TestPartitions(t *testing.T) {
	const topic, parts, n = "P", 3, 60
	for _, all := range []bool{false, true} {
		t.Run(fmt.Sprint("AllPartitions=", all), func(t *testing.T) {
			c := newCluster(t, parts, topic)
			b, err := kafka.New(kafka.Config{Brokers: c.ListenAddrs(), AllPartitions: all})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			p, err := b.NewProducer(bus.ProducerOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			for i := range n {
				p.Publish(topic, fmt.Appendf(nil, "key%d", i), fmt.Appendf(nil, "%d", i), nil)
			}
			if err := p.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			cons, err := b.NewConsumer(topic, bus.Start{Tail: n})
			if err != nil {
				t.Fatal(err)
			}
			defer cons.Close()
			seen := map[int32]int{}
			total := 0
			for total < n {
				msgs, err := cons.Poll(ctx)
				if err != nil {
					t.Fatalf("Poll after %d: %v", total, err)
				}
				for _, m := range msgs {
					seen[m.Partition]++
				}
				total += len(msgs)
			}
			if !all && (len(seen) != 1 || seen[0] != n) {
				t.Fatalf("default layout: records per partition %v, want all %d on 0", seen, n)
			}
			if all && len(seen) < 2 {
				t.Fatalf("AllPartitions: records per partition %v, want spread", seen)
			}
			// Tail applies per partition.
			tail, err := b.NewConsumer(topic, bus.Start{Tail: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer tail.Close()
			got := 0
			for got < len(seen) {
				msgs, err := tail.Poll(ctx)
				if err != nil {
					t.Fatal(err)
				}
				got += len(msgs)
			}
			if got != len(seen) {
				t.Fatalf("Tail 1 over %d used partitions read %d records", len(seen), got)
			}
		})
	}
}

// Close on a producer whose cluster is gone still calls every done callback,
// with an error, within the delivery timeout.
func TestCloseFailsQueued(t *testing.T) {
	c := newCluster(t, 1, "q")
	b, err := kafka.New(kafka.Config{Brokers: c.ListenAddrs()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	p, err := b.NewProducer(bus.ProducerOptions{DeliveryTimeout: time.Second, Linger: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.PublishSync(ctx, "q", nil, []byte("warm")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	const n = 20
	res := make(chan error, n)
	for range n {
		p.Publish("q", nil, []byte("x"), func(err error) { res <- err })
	}
	p.Close()
	for i := range n {
		select {
		case err := <-res:
			if err == nil {
				t.Fatalf("record %d reported delivered to a stopped cluster", i)
			}
		case <-ctx.Done():
			t.Fatalf("%d of %d done callbacks never called", n-i, n)
		}
	}
	if err := p.PublishSync(ctx, "q", nil, []byte("y")); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("PublishSync after Close: %v", err)
	}
}

// A full main-net template (a RawGbt of several MB) must pass through topics this bus creates:
// franz-go's and Kafka's defaults stop at about 1 MB.
func TestLargeRecord(t *testing.T) {
	c := newCluster(t, 1)
	b, err := kafka.New(kafka.Config{Brokers: c.ListenAddrs(), CreateTopics: true, Topics: bus.DefaultTopics()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	topic := bus.DefaultTopics().RawGbt
	cons, err := b.NewConsumer(topic, bus.Start{})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	p, err := b.NewProducer(bus.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	big := make([]byte, 8<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.PublishSync(ctx, topic, nil, bytes.Clone(big)); err != nil {
		t.Fatalf("publishing an 8 MiB record: %v", err)
	}
	msgs, err := cons.Poll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || !bytes.Equal(msgs[0].Value, big) {
		t.Fatalf("got %d records", len(msgs))
	}
	if _, err := kafka.New(kafka.Config{Brokers: c.ListenAddrs(), MaxMessageBytes: 1 << 30}); err == nil {
		t.Fatal("a 1 GiB MaxMessageBytes was accepted")
	}
}
