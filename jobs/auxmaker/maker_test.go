package auxmaker

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/bus/mem"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/internal/namecoindtest"
	"github.com/hashpool/hashpool/jobs/fetchloop"
)

type env struct {
	t    *testing.T
	m    *Maker
	cons bus.Consumer
	done chan error
	// pending holds messages a Poll returned beyond the one asked for.
	pending []bus.Message
}

func startMaker(t *testing.T, o Options) *env {
	t.Helper()
	b := mem.New(mem.Options{})
	t.Cleanup(func() { b.Close() })
	prod, err := b.NewProducer(bus.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prod.Close() })
	topic := o.Topic
	if topic == "" {
		topic = DefaultTopic
	}
	cons, err := b.NewConsumer(topic, bus.Start{})
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
			t.Errorf("Run returned %v after cancel", err)
		}
	})
	return e
}

// next returns the next AuxRawGw on the bus with its key, checked as jobmaker reads it.
func (e *env) next(within time.Duration) (btcpool.AuxRawGw, string) {
	e.t.Helper()
	if len(e.pending) == 0 {
		ctx, cancel := context.WithTimeout(context.Background(), within)
		defer cancel()
		msgs, err := e.cons.Poll(ctx)
		if err != nil {
			select {
			case err := <-e.done:
				e.t.Fatalf("Run ended: %v", err)
			default:
			}
			e.t.Fatalf("no AuxRawGw within %v: %v", within, err)
		}
		for _, m := range msgs {
			e.pending = append(e.pending, bus.Message{Key: bytes.Clone(m.Key), Value: bytes.Clone(m.Value)})
		}
	}
	m := e.pending[0]
	e.pending = e.pending[1:]
	var msg btcpool.AuxRawGw
	if err := btcpool.DecodeAuxRawGw(m.Value, &msg); err != nil {
		e.t.Fatalf("AuxRawGw %s: %v", m.Value, err)
	}
	if string(btcpool.AppendAuxRawGw(nil, &msg)) != string(m.Value) {
		e.t.Fatalf("AuxRawGw is not btcpool's printf layout: %s", m.Value)
	}
	var generic map[string]any
	if err := json.Unmarshal(m.Value, &generic); err != nil || len(generic) != 9 {
		e.t.Fatalf("AuxRawGw is not the 9-key JSON consumers expect: %v %v", generic, err)
	}
	return msg, string(m.Key)
}

// TestNamecoindZMQ: the first work at startup, then new work on the aux node's ZMQ
// hashblock alone (the interval is an hour), with createauxblock's fields.
func TestNamecoindZMQ(t *testing.T) {
	n := namecoindtest.Start(t, namecoindtest.Options{})
	e := startMaker(t, Options{
		ChainName: "nmc", Node: n.ClientOptions(), CoinbaseAddress: n.Address,
		Timing: fetchloop.Timing{RPCInterval: time.Hour, ZMQAddr: n.ZMQAddr}, Topic: "NMCAuxBlock",
	})
	msg, key := e.next(60 * time.Second)
	if key != "nmc" || msg.Height != 2 || msg.ChainID != namecoindtest.ChainID || msg.Bits != "207fffff" ||
		msg.MerkleSize != 1 || msg.MerkleNonce != 0 || msg.RPCAddr != n.RPCURL || msg.RPCUserPass != n.RPCUser+":"+n.RPCPass {
		t.Fatalf("first work %+v key %q", msg, key)
	}
	if d := time.Since(time.Unix(int64(msg.CreatedAt), 0)); d < -2*time.Second || d > time.Minute {
		t.Fatalf("created_at_ts %d is %v from now", msg.CreatedAt, d)
	}
	// The ZMQ subscription may reach namecoind after the first block: mine until new work
	// for a higher height arrives (each block is announced at once).
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		n.MineBlocks(t, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		msgs, err := e.cons.Poll(ctx)
		cancel()
		if err != nil {
			continue
		}
		var last btcpool.AuxRawGw
		if err := btcpool.DecodeAuxRawGw(msgs[len(msgs)-1].Value, &last); err != nil {
			t.Fatal(err)
		}
		if last.Height > msg.Height {
			if s := e.m.Stats(); !s.UsesCreate || s.Height != int64(last.Height) || s.Published < 2 {
				t.Fatalf("stats %+v", s)
			}
			return
		}
	}
	t.Fatal("no new aux work after blocks were mined (ZMQ hashblock path)")
}

// TestNamecoindInterval: without ZMQ, work is published every rpcinterval.
func TestNamecoindInterval(t *testing.T) {
	n := namecoindtest.Start(t, namecoindtest.Options{})
	e := startMaker(t, Options{
		ChainName: "nmc", Node: n.ClientOptions(), CoinbaseAddress: n.Address,
		Timing: fetchloop.Timing{RPCInterval: time.Second, Tick: 100 * time.Millisecond},
	})
	first, _ := e.next(60 * time.Second)
	second, _ := e.next(30 * time.Second)
	if first.Hash != second.Hash || first.Height != second.Height {
		t.Fatalf("same tip, different work: %+v %+v", first, second)
	}
}

// fakeOldNode answers help with getauxblock only, and getauxblock with work, like an aux
// node with a wallet but without createauxblock.
func fakeOldNode(t *testing.T, calls *atomic.Int64) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		switch {
		case strings.Contains(string(b), `"method":"help"`):
			io.WriteString(w, `{"result":"== Mining ==\ngetauxblock (\"hash\" \"auxpow\")\n","error":null,"id":"1"}`)
		case strings.Contains(string(b), `"method":"getauxblock","params":[]`):
			calls.Add(1)
			io.WriteString(w, `{"result":{"hash":"`+strings.Repeat("ab", 32)+`","chainid":98,"bits":"1b0404cb","height":7},"error":null,"id":"1"}`)
		default:
			io.WriteString(w, `{"result":null,"error":{"code":-32601,"message":"Method not found"},"id":"1"}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestGetAuxBlockFallback(t *testing.T) {
	var calls atomic.Int64
	srv := fakeOldNode(t, &calls)
	e := startMaker(t, Options{ChainName: "doge", Node: nodeOpts(srv.URL), CoinbaseAddress: "Dxyz", RPCAddr: "http://10.0.0.2:22555", RPCUserPass: "a:b"})
	msg, key := e.next(30 * time.Second)
	if key != "doge" || msg.ChainID != 98 || msg.Height != 7 || msg.Bits != "1b0404cb" || msg.RPCAddr != "http://10.0.0.2:22555" || msg.RPCUserPass != "a:b" {
		t.Fatalf("work %+v", msg)
	}
	if calls.Load() == 0 || e.m.Stats().UsesCreate {
		t.Fatal("getauxblock was not used")
	}
}

func TestRunFailsWithoutUsableRPC(t *testing.T) {
	// createauxblock offered, no wallet (no getauxblock), no address configured.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"result":"createauxblock \"address\"\nsubmitauxblock \"hash\" \"auxpow\"\n","error":null,"id":"1"}`)
	}))
	defer srv.Close()
	b := mem.New(mem.Options{})
	defer b.Close()
	prod, _ := b.NewProducer(bus.ProducerOptions{})
	defer prod.Close()
	m, err := New(Options{ChainName: "nmc", Node: nodeOpts(srv.URL)}, prod)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.Run(ctx); err == nil || !strings.Contains(err.Error(), "coinbase address") {
		t.Fatalf("Run = %v, want an error asking for a coinbase address", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	err := Options{
		ChainName: "a name with spaces that is long", CoinbaseAddress: "x y",
		Timing: fetchloop.Timing{RPCInterval: 2 * time.Minute, Tick: -1, ZMQAddr: "localhost:1", ZMQTimeout: time.Millisecond, PublishTimeout: -1},
	}.WithDefaults().Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"chain name", "URL is empty", "coinbase address", "tick", "zmq_addr", "zmq_timeout", "publish timeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	if err := (Options{Node: nodeOpts("127.0.0.1:1")}).WithDefaults().Validate(); err == nil || !strings.Contains(err.Error(), "chain name is empty") {
		t.Fatalf("missing chain name: %v", err)
	}
	if err := (Options{ChainName: "nmc", Node: nodeOpts("127.0.0.1:1"), Timing: fetchloop.Timing{RPCInterval: 5 * time.Minute}}).WithDefaults().Validate(); err == nil {
		t.Fatal("no ZMQ and a 5 min interval: want an error")
	}
	o := Options{ChainName: "nmc", Node: nodeOpts("127.0.0.1:8336")}.WithDefaults()
	if err := o.Validate(); err != nil || o.RPCAddr != "http://127.0.0.1:8336" || o.RPCUserPass != "u:p" || o.Topic != "AuxRawGw" {
		t.Fatalf("defaults %+v, %v", o, err)
	}
}
