package kafkatest_test

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/bus/kafka"
	"github.com/hashpool/hashpool/internal/kafkatest"
)

// topicsOf lists the cluster's topics and their partition counts with a metadata request.
func topicsOf(t *testing.T, brokers string) map[string]int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest() // no topics: all of them
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, rt := range resp.Topics {
		if rt.Topic != nil {
			out[*rt.Topic] = len(rt.Partitions)
		}
	}
	return out
}

// TestRoundTrip publishes on every btcpool topic through the pool's Kafka bus (which creates no
// topics) and reads each record back, from another client of the server process.
func TestRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	brokers := kafkatest.Start(t)
	topics := bus.DefaultTopics()
	got := topicsOf(t, brokers)
	for _, name := range topics.All() {
		if got[name] != 1 {
			t.Fatalf("topics %v: want %s with 1 partition", got, name)
		}
	}
	b, err := kafka.New(kafka.Config{Brokers: []string{brokers}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	prod, err := b.NewProducer(bus.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, name := range topics.All() {
		if err := prod.PublishSync(ctx, name, nil, []byte("hello "+name)); err != nil {
			t.Fatalf("publish %s: %v", name, err)
		}
		c, err := b.NewConsumer(name, bus.Start{Tail: 1})
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := c.Poll(ctx)
		c.Close()
		if err != nil {
			t.Fatalf("poll %s: %v", name, err)
		}
		if len(msgs) != 1 || string(msgs[0].Value) != "hello "+name || msgs[0].Offset != 0 {
			t.Fatalf("%s: read %+v", name, msgs)
		}
	}
}

// TestTopicsAndStop seeds chosen topics only, and checks the server is gone once the test that
// started it has ended.
func TestTopicsAndStop(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	var addr string
	t.Run("start", func(t *testing.T) {
		addr = kafkatest.Start(t, "A", "B")
		got := topicsOf(t, addr)
		names := make([]string, 0, len(got))
		for n := range got {
			names = append(names, n)
		}
		slices.Sort(names)
		if !slices.Equal(names, []string{"A", "B"}) {
			t.Fatalf("topics %v, want [A B]", got)
		}
		// A second server is a separate cluster on its own port.
		if other := kafkatest.Start(t); other == addr {
			t.Fatalf("two servers on %s", addr)
		}
	})
	if addr == "" {
		t.Fatal("no server started")
	}
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after its test ended", addr)
	}
}

// endOffset asks brokers for the end offset of topic partition 0, within limit.
func endOffset(brokers, topic string, limit time.Duration) (int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.RequestTimeoutOverhead(limit))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp, rp.CurrentLeaderEpoch = -1, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, err
	}
	return resp.Topics[0].Partitions[0].Offset, nil
}

// A paused server answers nothing and answers again once resumed; a restarted one is on the same
// port, with its records when persisted and empty otherwise.
func TestPauseAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	for _, persist := range []bool{true, false} {
		srv := kafkatest.StartServer(t, kafkatest.Options{Topics: []string{"T"}, Persist: persist})
		cl, err := kgo.NewClient(kgo.SeedBrokers(srv.Addr), kgo.DefaultProduceTopic("T"))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		for range 3 {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		cancel()
		cl.Close()

		srv.Pause()
		if _, err := endOffset(srv.Addr, "T", time.Second); err == nil {
			t.Fatal("a paused server answered")
		}
		srv.Resume()
		if end, err := endOffset(srv.Addr, "T", 30*time.Second); err != nil || end != 3 {
			t.Fatalf("after Resume: end offset %d, %v; want 3", end, err)
		}
		pid := srv.Pid()
		srv.Restart()
		if srv.Pid() == pid {
			t.Fatal("Restart kept the process")
		}
		want := int64(0)
		if persist {
			want = 3
		}
		if end, err := endOffset(srv.Addr, "T", 30*time.Second); err != nil || end != want {
			t.Fatalf("persist %v, after Restart: end offset %d, %v; want %d", persist, end, err, want)
		}
		srv.Kill()
		if c, err := net.DialTimeout("tcp", srv.Addr, time.Second); err == nil {
			c.Close()
			t.Fatal("a killed server accepts connections")
		}
	}
}
