package kafka_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/bus/bustest"
	"github.com/hashpool/hashpool/bus/kafka"
)

// newCluster starts an in-process Kafka cluster on 127.0.0.1 with the given
// topics (one partition each), closed at the end of the test.
func newCluster(t testing.TB, partitions int32, topics ...string) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...))
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func newEnv(t testing.TB) bustest.Env {
	topics := bus.DefaultTopics()
	c := newCluster(t, 1, topics.All()...)
	b, err := kafka.New(kafka.Config{Brokers: c.ListenAddrs()})
	if err != nil {
		t.Fatalf("kafka.New: %v", err)
	}
	return bustest.Env{
		Bus:             b,
		Topics:          topics,
		Break:           c.Close,
		DeliveryTimeout: time.Second,
	}
}

func TestConformance(t *testing.T) { bustest.Run(t, newEnv) }

// BenchmarkPublish batches like the share-record producer (btcpool lingers up
// to 1 s; 5 ms is enough to fill batches at benchmark rates).
func BenchmarkPublish(b *testing.B) { bustest.BenchPublish(b, newEnv, 5*time.Millisecond) }

func BenchmarkLatency(b *testing.B) { bustest.BenchLatency(b, newEnv) }
