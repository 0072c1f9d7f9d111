package kafka_test

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/bus/kafka"
)

// committedOffset asks the cluster for group's committed offset of topic
// partition 0 (-1: none).
func committedOffset(t *testing.T, addr, group, topic string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = group
	rt := kmsg.NewOffsetFetchRequestTopic()
	rt.Topic = topic
	rt.Partitions = []int32{0}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, t0 := range resp.Topics {
		for _, p := range t0.Partitions {
			return p.Offset
		}
	}
	return -1
}

// pollUntil polls c (riding out transient errors) until it has read a record
// with value want, returning the errors Poll reported on the way.
func pollUntil(t *testing.T, c bus.Consumer, want string) (last []bus.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var inc bus.Incident
	for {
		msgs, err := bus.Poll(ctx, c, &inc)
		if err != nil {
			t.Fatalf("Poll waiting for %q: %v", want, err)
		}
		for _, m := range msgs {
			if string(m.Value) == want {
				return append([]bus.Message(nil), msgs...)
			}
		}
	}
}

// The errors a broker pause produced in production (the member dropped from
// the group: UNKNOWN_MEMBER_ID on its heartbeat; a commit of the old
// generation: ILLEGAL_GENERATION) are transient: the same Consumer rejoins,
// reads on, and commits newer offsets.
func TestGroupErrorsTransient(t *testing.T) {
	const topic, group = "G", "g"
	c := newCluster(t, 1, topic)
	addr := c.ListenAddrs()[0]
	b, err := kafka.New(kafka.Config{Brokers: []string{addr}, SessionTimeout: 6 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	p, err := b.NewProducer(bus.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cons, err := b.NewConsumer(topic, bus.Start{Group: group})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	if err := p.PublishSync(ctx, topic, nil, []byte("r0")); err != nil {
		t.Fatal(err)
	}
	msgs := pollUntil(t, cons, "r0")

	// A commit the broker answers ILLEGAL_GENERATION.
	c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.OffsetCommit}, Group: group, Err: kerr.IllegalGeneration})
	err = cons.Commit(ctx, msgs...)
	if !errors.Is(err, kerr.IllegalGeneration) || bus.IsPermanent(err) {
		t.Fatalf("Commit answered ILLEGAL_GENERATION: %v (permanent: %v), want a transient error", err, bus.IsPermanent(err))
	}

	// The member is told it is unknown: Poll reports it, transient.
	c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Heartbeat}, Group: group, Err: kerr.UnknownMemberID, TopLevel: true})
	pctx, pcancel := context.WithTimeout(ctx, 30*time.Second)
	_, err = cons.Poll(pctx)
	pcancel()
	if !errors.Is(err, kerr.UnknownMemberID) || bus.IsPermanent(err) {
		t.Fatalf("Poll after UNKNOWN_MEMBER_ID: %v (permanent: %v), want a transient error", err, bus.IsPermanent(err))
	}
	// Until the member owns the partition again, committing it is a
	// transient error too.
	if err := cons.Commit(ctx, msgs...); err != nil && bus.IsPermanent(err) {
		t.Fatalf("Commit while rejoining: %v is permanent", err)
	}

	// The same consumer reads on (r0 again, as it was never committed,
	// then r1) and commits r1 once it has rejoined.
	if err := p.PublishSync(ctx, topic, nil, []byte("r1")); err != nil {
		t.Fatal(err)
	}
	msgs = pollUntil(t, cons, "r1")
	inc := bus.Incident{}
	if err := bus.Commit(ctx, cons, &inc, time.Minute, msgs...); err != nil {
		t.Fatalf("Commit after rejoining: %v", err)
	}
	if got, want := committedOffset(t, addr, group, topic), msgs[len(msgs)-1].Offset+1; got != want {
		t.Fatalf("committed offset %d, want %d", got, want)
	}
}

// Configuration and authorization errors are bus.Permanent, so that a
// component stops with them instead of retrying forever.
func TestPermanentErrors(t *testing.T) {
	const topic, group = "P", "g"
	newCtx := func(t *testing.T) context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		t.Cleanup(cancel)
		return ctx
	}

	t.Run("missing topic", func(t *testing.T) {
		c := newCluster(t, 1)
		b, err := kafka.New(kafka.Config{Brokers: c.ListenAddrs()})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		for _, start := range []bus.Start{{}, {Group: group}} {
			if _, err := b.NewConsumer("Missing", start); !bus.IsPermanent(err) {
				t.Errorf("NewConsumer(Missing, %+v): %v, want permanent", start, err)
			}
		}
	})

	// The broker's group.max.session.timeout.ms is below ours.
	t.Run("session timeout refused", func(t *testing.T) {
		ctx := newCtx(t)
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic), kfake.GroupMaxSessionTimeout(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		b, err := kafka.New(kafka.Config{Brokers: c.ListenAddrs(), SessionTimeout: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		cons, err := b.NewConsumer(topic, bus.Start{Group: group})
		if err != nil {
			t.Fatal(err)
		}
		defer cons.Close()
		_, err = bus.Poll(ctx, cons, &bus.Incident{})
		if !bus.IsPermanent(err) || !errors.Is(err, kerr.InvalidSessionTimeout) {
			t.Fatalf("Poll: %v, want a permanent INVALID_SESSION_TIMEOUT", err)
		}
	})

	t.Run("group authorization", func(t *testing.T) {
		ctx := newCtx(t)
		c := newCluster(t, 1, topic)
		b, err := kafka.New(kafka.Config{Brokers: c.ListenAddrs()})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		// Before the consumer starts joining.
		c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.JoinGroup}, Group: group, Err: kerr.GroupAuthorizationFailed, Count: -1})
		cons, err := b.NewConsumer(topic, bus.Start{Group: group})
		if err != nil {
			t.Fatal(err)
		}
		defer cons.Close()
		_, err = bus.Poll(ctx, cons, &bus.Incident{})
		if !bus.IsPermanent(err) || !errors.Is(err, kerr.GroupAuthorizationFailed) {
			t.Fatalf("Poll: %v, want a permanent GROUP_AUTHORIZATION_FAILED", err)
		}
	})

	t.Run("commit authorization", func(t *testing.T) {
		ctx := newCtx(t)
		c := newCluster(t, 1, topic)
		b, err := kafka.New(kafka.Config{Brokers: c.ListenAddrs()})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		p, err := b.NewProducer(bus.ProducerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		cons, err := b.NewConsumer(topic, bus.Start{Group: group})
		if err != nil {
			t.Fatal(err)
		}
		defer cons.Close()
		if err := p.PublishSync(ctx, topic, nil, []byte("x")); err != nil {
			t.Fatal(err)
		}
		msgs := pollUntil(t, cons, "x")
		c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.OffsetCommit}, Group: group, Err: kerr.GroupAuthorizationFailed, Count: -1})
		err = bus.Commit(ctx, cons, &bus.Incident{}, 0, msgs...)
		if !bus.IsPermanent(err) || !errors.Is(err, kerr.GroupAuthorizationFailed) {
			t.Fatalf("Commit: %v, want a permanent GROUP_AUTHORIZATION_FAILED", err)
		}
	})

	// A record over the broker's message.max.bytes (kfake's default,
	// about 1 MB) can never be delivered.
	t.Run("record too large", func(t *testing.T) {
		ctx := newCtx(t)
		c := newCluster(t, 1, topic)
		b, err := kafka.New(kafka.Config{Brokers: c.ListenAddrs()})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		p, err := b.NewProducer(bus.ProducerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		big := make([]byte, 2<<20) // incompressible, so the batch stays over 1 MB
		rand.Read(big)
		err = p.PublishSync(ctx, topic, nil, big)
		if !bus.IsPermanent(err) || !errors.Is(err, kerr.MessageTooLarge) {
			t.Fatalf("PublishSync of 2 MiB: %v, want a permanent MESSAGE_TOO_LARGE", err)
		}
	})
}
