package rskmaker

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/bus/mem"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/internal/rsktest"
	"github.com/hashpool/hashpool/jobs/fetchloop"
	"github.com/hashpool/hashpool/node"
)

type env struct {
	t       *testing.T
	m       *Maker
	cons    bus.Consumer
	done    chan error
	pending [][]byte
}

func start(t *testing.T, o Options) *env {
	t.Helper()
	b := mem.New(mem.Options{})
	t.Cleanup(func() { b.Close() })
	prod, err := b.NewProducer(bus.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prod.Close() })
	cons, err := b.NewConsumer(DefaultTopic, bus.Start{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cons.Close() })
	m, err := New(o, prod)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &env{t: t, m: m, cons: cons, done: make(chan error, 1)}
	go func() { e.done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-e.done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return e
}

// next returns the next RskRawGw, checked to be btcpool's layout byte for byte.
func (e *env) next(within time.Duration) btcpool.RskRawGw {
	e.t.Helper()
	if len(e.pending) == 0 {
		ctx, cancel := context.WithTimeout(context.Background(), within)
		defer cancel()
		msgs, err := e.cons.Poll(ctx)
		if err != nil {
			e.t.Fatalf("no RskRawGw within %v: %v", within, err)
		}
		for _, m := range msgs {
			e.pending = append(e.pending, bytes.Clone(m.Value))
		}
	}
	v := e.pending[0]
	e.pending = e.pending[1:]
	var msg btcpool.RskRawGw
	if err := btcpool.DecodeRskRawGw(v, &msg); err != nil {
		e.t.Fatalf("RskRawGw %s: %v", v, err)
	}
	if string(btcpool.AppendRskRawGw(nil, &msg)) != string(v) {
		e.t.Fatalf("not btcpool's layout: %s", v)
	}
	return msg
}

// TestPollsRSK: work every interval with the node's fields and btcpool's layout, new work
// with notify, and the node going down and coming back.
func TestPollsRSK(t *testing.T) {
	s := rsktest.Start(t, rsktest.Options{Target: "00ff"})
	e := start(t, Options{Node: node.Options{URL: s.URL, User: s.User, Password: s.Password},
		Timing: fetchloop.Timing{RPCInterval: time.Second, Tick: 50 * time.Millisecond}})
	first := e.next(30 * time.Second)
	want := fmt.Sprintf(`{"created_at_ts":%d,"chainType":"RSK","rskdRpcAddress":"%s","rskdRpcUserPwd":"user:pass",`+
		`"target":"0x%064s","parentBlockHash":"%s","blockHashForMergedMining":"%s","feesPaidToMiner":"0","notify":"true"}`,
		first.CreatedAt, s.URL, "00ff", first.ParentBlockHash, s.Work())
	if got := string(btcpool.AppendRskRawGw(nil, &first)); got != want {
		t.Fatalf("first work\n%s\nwant\n%s", got, want)
	}
	if d := time.Since(time.Unix(int64(first.CreatedAt), 0)); d < -2*time.Second || d > time.Minute {
		t.Fatalf("created_at_ts %v from now", d)
	}
	second := e.next(30 * time.Second)
	if second.BlockHashForMergedMining != first.BlockHashForMergedMining || second.Notify {
		t.Fatalf("same work again: %+v", second)
	}
	h := s.NewWork()
	for deadline := time.Now().Add(30 * time.Second); ; {
		w := e.next(30 * time.Second)
		if w.BlockHashForMergedMining == h {
			if !w.Notify {
				t.Fatalf("new work without notify: %+v", w)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("new work never published")
		}
	}
	s.SetDown(true)
	for deadline := time.Now().Add(30 * time.Second); e.m.Stats().FetchErrors == 0; {
		if time.Now().After(deadline) {
			t.Fatal("no fetch error while the node is down")
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.pending = nil
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	for {
		if _, err := e.cons.Poll(ctx); err != nil {
			break
		}
	}
	cancel()
	s.SetDown(false)
	if w := e.next(30 * time.Second); w.BlockHashForMergedMining != h {
		t.Fatalf("after the outage: %+v", w)
	}
	if st := e.m.Stats(); st.Hash != h || st.Published < 4 {
		t.Fatalf("stats %+v", st)
	}
}

func TestOptionsValidate(t *testing.T) {
	err := Options{Timing: fetchloop.Timing{RPCInterval: time.Minute, ZMQAddr: "tcp://x:1"}, RPCAddress: strings.Repeat("a", 80)}.WithDefaults().Validate()
	for _, w := range []string{"URL is empty", "no ZMQ", "stale", "79 bytes"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q: %v", w, err)
		}
	}
	o := Options{Node: node.Options{URL: "127.0.0.1:4444", User: "u", Password: "p"}}.WithDefaults()
	if err := o.Validate(); err != nil || o.RPCAddress != "http://127.0.0.1:4444" || o.RPCUserPwd != "u:p" || o.RPCInterval != 2*time.Second || o.Topic != "RskRawGw" {
		t.Fatalf("defaults %+v, %v", o, err)
	}
	if _, err := New(o, nil); err == nil {
		t.Fatal("nil producer accepted")
	}
}
