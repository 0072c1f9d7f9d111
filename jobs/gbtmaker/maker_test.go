package gbtmaker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/bus/mem"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/internal/btcdtest"
	"github.com/hashpool/hashpool/jobs/fetchloop"
	"github.com/hashpool/hashpool/node"
	"github.com/hashpool/hashpool/sha"
)

// env is a maker wired to an in-memory bus, with a consumer on its topic.
type env struct {
	t    *testing.T
	m    *Maker
	cons bus.Consumer
	done chan error
	stop context.CancelFunc
	// pending holds values a Poll returned beyond the one asked for.
	pending [][]byte
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
	topic := o.RawGbtTopic
	if topic == "" {
		topic = DefaultRawGbtTopic
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
	e := &env{t: t, m: m, cons: cons, done: make(chan error, 1), stop: cancel}
	go func() { e.done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-e.done; err != nil {
			t.Errorf("Run returned %v after cancel", err)
		}
	})
	return e
}

// next returns the next RawGbt on the bus, its raw value and the decoded template text.
func (e *env) next(within time.Duration) (btcpool.RawGbt, []byte, *node.Template) {
	e.t.Helper()
	if len(e.pending) == 0 {
		ctx, cancel := context.WithTimeout(context.Background(), within)
		defer cancel()
		msgs, err := e.cons.Poll(ctx)
		if err != nil {
			e.t.Fatalf("no RawGbt within %v: %v", within, err)
		}
		for _, m := range msgs {
			e.pending = append(e.pending, bytes.Clone(m.Value))
		}
	}
	value := e.pending[0]
	e.pending = e.pending[1:]
	return e.decode(value)
}

// decode checks a RawGbt value the way jobmaker and blockmaker read it.
func (e *env) decode(value []byte) (btcpool.RawGbt, []byte, *node.Template) {
	e.t.Helper()
	var msg btcpool.RawGbt
	if err := btcpool.DecodeRawGbt(value, &msg); err != nil {
		e.t.Fatalf("RawGbt %s: %v", value, err)
	}
	if !bytes.HasPrefix(value, []byte(`{"created_at_ts":`)) {
		e.t.Fatalf("RawGbt key order: %.60s", value)
	}
	// Generic JSON decoding agrees too (three keys, right types).
	var generic struct {
		CreatedAt *uint32 `json:"created_at_ts"`
		B64       *string `json:"block_template_base64"`
		Hash      *string `json:"gbthash"`
	}
	if err := json.Unmarshal(value, &generic); err != nil || generic.CreatedAt == nil || generic.B64 == nil || generic.Hash == nil {
		e.t.Fatalf("RawGbt is not the JSON consumers expect: %v", err)
	}
	text, err := base64.StdEncoding.DecodeString(msg.BlockTemplateBase64)
	if err != nil {
		e.t.Fatal(err)
	}
	if want := sha.DisplayHex(sha.DoubleSHA256(text)); msg.GbtHash != want {
		e.t.Fatalf("gbthash %s, want dSHA of the template text %s", msg.GbtHash, want)
	}
	tm, err := node.ParseTemplate(text)
	if err != nil {
		e.t.Fatalf("published template does not parse: %v", err)
	}
	return msg, value, tm
}

// untilHeight reads RawGbt messages until one has height h.
func (e *env) untilHeight(h int64, within time.Duration) *node.Template {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			e.t.Fatalf("no RawGbt at height %d within %v", h, within)
		}
		if _, _, tm := e.next(left); tm.Height == h {
			return tm
		}
	}
}

func TestPublishesAndLongPollsBtcd(t *testing.T) {
	n := btcdtest.Start(t, btcdtest.Options{})
	n.MineBlocks(t, 1)
	// rpcinterval of an hour: after the first template only long polling can publish.
	e := startMaker(t, Options{Node: n.ClientOptions(), Timing: fetchloop.Timing{RPCInterval: time.Hour}})

	msg, _, tm := e.next(30 * time.Second)
	if tm.Height != 2 {
		t.Fatalf("first template height %d, want 2", tm.Height)
	}
	if d := time.Now().Unix() - int64(msg.CreatedAt); d < 0 || d > 60 {
		t.Fatalf("created_at_ts %d is %d s from now", msg.CreatedAt, d)
	}
	mined := n.MineBlocks(t, 1)
	tm = e.untilHeight(3, 30*time.Second)
	if tm.PreviousBlockHash != mined[0] {
		t.Fatalf("long-poll template builds on %s, want %s", tm.PreviousBlockHash, mined[0])
	}
	if s := e.m.Stats(); s.Published < 2 || s.Height != 3 || s.PublishErrors != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestTimedPollingBtcd(t *testing.T) {
	n := btcdtest.Start(t, btcdtest.Options{})
	e := startMaker(t, Options{Node: n.ClientOptions(), Timing: fetchloop.Timing{RPCInterval: time.Second, Tick: 50 * time.Millisecond}, DisableLongPoll: true})
	// Nothing changes on the chain, yet a template is published every rpcinterval.
	for i := 0; i < 3; i++ {
		if _, _, tm := e.next(30 * time.Second); tm.Height != 1 {
			t.Fatalf("template %d height %d, want 1", i, tm.Height)
		}
	}
}

func TestWitnessTemplateBtcd(t *testing.T) {
	n := btcdtest.Start(t, btcdtest.Options{})
	wtx := n.AddWitnessTx(t)
	e := startMaker(t, Options{Node: n.ClientOptions(), Timing: fetchloop.Timing{RPCInterval: time.Hour}})
	_, _, tm := e.next(30 * time.Second)
	if len(tm.Transactions) != 1 || tm.Transactions[0].TxID != wtx.TxID || tm.WitnessCommitmentScript() == "" {
		t.Fatalf("published template: %d txs, commitment %q; want %s", len(tm.Transactions), tm.DefaultWitnessCommitment, wtx.TxID)
	}
}

// TestZMQTriggersBtcd: btcd has no ZMQ, so a zmq4 PUB in the test plays bitcoind's
// hashblock publisher. With long polling off and an hour's rpcinterval, only the hashblock
// can make the maker publish the new height.
func TestZMQTriggersBtcd(t *testing.T) {
	n := btcdtest.Start(t, btcdtest.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pub := zmq4.NewPub(ctx)
	if err := pub.Listen("tcp://127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	addr := "tcp://" + pub.Addr().(*net.TCPAddr).String()
	e := startMaker(t, Options{Node: n.ClientOptions(), Timing: fetchloop.Timing{RPCInterval: time.Hour, ZMQAddr: addr}, DisableLongPoll: true})
	if _, _, tm := e.next(30 * time.Second); tm.Height != 1 {
		t.Fatalf("first template height %d", tm.Height)
	}
	mined := n.MineBlocks(t, 1)
	hash, err := hexDisplay(mined[0])
	if err != nil {
		t.Fatal(err)
	}
	// PUB drops messages until the subscription has reached it: repeat the notification
	// until a template arrives (bounded).
	for seq := uint32(0); ; seq++ {
		if seq == 400 {
			t.Fatal("no template after 400 hashblock messages")
		}
		var s [4]byte
		binary.LittleEndian.PutUint32(s[:], seq)
		if err := pub.SendMulti(zmq4.NewMsgFrom([]byte("hashblock"), hash, s[:])); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		msgs, err := e.cons.Poll(ctx)
		cancel()
		if err == nil {
			_, _, tm := e.decode(bytes.Clone(msgs[0].Value))
			if tm.Height != 2 || tm.PreviousBlockHash != mined[0] {
				t.Fatalf("template after hashblock: height %d on %s", tm.Height, tm.PreviousBlockHash)
			}
			return
		}
	}
}

func hexDisplay(s string) ([]byte, error) {
	h, err := sha.ParseDisplayHex(s)
	if err != nil {
		return nil, err
	}
	// bitcoind's hashblock body is the hash in display order, i.e. reversed memory order.
	out := make([]byte, 32)
	for i := range h {
		out[31-i] = h[i]
	}
	return out, nil
}

// scriptedNode is an HTTP server answering getnetworkinfo and getblocktemplate with fixed
// texts, for byte-exact and failure tests.
func scriptedNode(t *testing.T, gbt func() string, netinfo string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		switch {
		case bytes.Contains(b, []byte(`"getnetworkinfo"`)):
			io.WriteString(w, netinfo)
		case bytes.Contains(b, []byte(`"longpollid"`)):
			<-r.Context().Done() // never changes
		case bytes.Contains(b, []byte(`"getblocktemplate"`)):
			io.WriteString(w, gbt())
		default:
			w.WriteHeader(404)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// coreGbt is a Bitcoin Core style response text, trailing newline included: the gbthash
// covers every byte.
const coreGbt = `{"result":{"capabilities":["proposal"],"version":536870912,"rules":["csv","!segwit","taproot"],"vbavailable":{},"vbrequired":0,` +
	`"previousblockhash":"000000000000000000013e8a4fb3a1d2c8a4c9b1a0f0e0d0c0b0a09080706050","transactions":[],"coinbaseaux":{},` +
	`"coinbasevalue":312500000,"longpollid":"000000000000000000013e8a4fb3a1d2c8a4c9b1a0f0e0d0c0b0a0908070605012",` +
	`"target":"00000000000000000002f1280000000000000000000000000000000000000000","mintime":1763890000,"mutable":["time","transactions","prevblock"],` +
	`"noncerange":"00000000ffffffff","sigoplimit":80000,"sizelimit":4000000,"weightlimit":4000000,"curtime":1763894000,"bits":"17028f12","height":925000,` +
	`"default_witness_commitment":"6a24aa21a9ede2f61c3f71d1defd3fa999dfa36953755c690689799962b48bebd836974e8cf9"},"error":null,"id":"1"}` + "\n"

func TestRawGbtGolden(t *testing.T) {
	url := scriptedNode(t, func() string { return coreGbt }, `{"result":{"version":270000,"connections":8},"error":null,"id":"1"}`)
	fixed := time.Unix(1763894001, 0)
	e := startMaker(t, Options{Node: node.Options{URL: url}, Timing: fetchloop.Timing{RPCInterval: time.Hour, Now: func() time.Time { return fixed }}})
	_, value, tm := e.next(30 * time.Second)
	if tm.Height != 925000 {
		t.Fatalf("height %d", tm.Height)
	}
	want := `{"created_at_ts":1763894001,"block_template_base64":"` + base64.StdEncoding.EncodeToString([]byte(coreGbt)) +
		`","gbthash":"` + refGbtHash(coreGbt) + `"}`
	if string(value) != want {
		t.Fatalf("RawGbt\n got %s\nwant %s", value, want)
	}
}

// refGbtHash is the gbthash computed independently of sha and codec: SHA-256 twice with the
// standard library, bytes reversed, hex.
func refGbtHash(text string) string {
	h := sha256Sum(sha256Sum([]byte(text)))
	var sb strings.Builder
	for i := 31; i >= 0; i-- {
		sb.WriteString(strconv.FormatUint(uint64(h[i])>>4, 16))
		sb.WriteString(strconv.FormatUint(uint64(h[i])&15, 16))
	}
	return sb.String()
}

func TestBadTemplatesAreNotPublished(t *testing.T) {
	bad := []string{
		strings.Replace(coreGbt, `"height":925000`, `"height":"925000"`, 1),
		strings.Replace(coreGbt, `"bits":"17028f12",`, ``, 1),
		`{"result":null,"error":{"code":-10,"message":"Bitcoin Core is in initial sync and waiting for blocks..."},"id":"1"}`,
		`<html>`,
	}
	i := 0
	url := scriptedNode(t, func() string { s := bad[i%len(bad)]; i++; return s }, `{"result":{"connections":0},"error":null,"id":"1"}`)
	e := startMaker(t, Options{Node: node.Options{URL: url}, Timing: fetchloop.Timing{RPCInterval: time.Second, Tick: 10 * time.Millisecond}})
	deadline := time.Now().Add(30 * time.Second)
	for e.m.Stats().FetchErrors < uint64(2*len(bad)) {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v: the bad templates were not fetched", e.m.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if msgs, err := e.cons.Poll(ctx); err == nil {
		t.Fatalf("a bad template was published: %s", msgs[0].Value)
	}
	if s := e.m.Stats(); s.Published != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestNodeCheck(t *testing.T) {
	for _, tc := range []struct {
		name, netinfo, want string
	}{
		{"connections not an integer", `{"result":{"connections":"8"},"error":null,"id":"1"}`, "connections"},
		{"rpc error", `{"result":null,"error":{"code":-28,"message":"Loading"},"id":"1"}`, "Loading"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := scriptedNode(t, func() string { return coreGbt }, tc.netinfo)
			prod := mem.New(mem.Options{})
			defer prod.Close()
			p, err := prod.NewProducer(bus.ProducerOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			m, err := New(Options{Node: node.Options{URL: url}}, p)
			if err != nil {
				t.Fatal(err)
			}
			err = m.Run(context.Background())
			if err == nil || !strings.Contains(err.Error(), "getnetworkinfo") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run = %v", err)
			}
		})
	}
	// Nothing listening.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	l.Close()
	b := mem.New(mem.Options{})
	defer b.Close()
	p, _ := b.NewProducer(bus.ProducerOptions{})
	defer p.Close()
	m, err := New(Options{Node: node.Options{URL: url}}, p)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "getnetworkinfo") || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("Run against a closed port = %v", err)
	}
}

func TestOptions(t *testing.T) {
	o := Options{Node: node.Options{URL: "127.0.0.1:8332"}}.WithDefaults()
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if o.RPCInterval != 10*time.Second || o.Tick != time.Second || o.ZMQTimeout != 1200*time.Second || o.RawGbtTopic != "BtcRawGbt" {
		t.Fatalf("defaults %+v", o)
	}
	for _, tc := range []struct {
		name string
		o    Options
		want []string
	}{
		{"no node", Options{}, []string{"URL is empty"}},
		{"everything wrong", Options{Node: node.Options{URL: "x:1"}, Timing: fetchloop.Timing{RPCInterval: time.Millisecond, Tick: -1, ZMQAddr: "127.0.0.1:28332",
			ZMQTimeout: time.Millisecond, PublishTimeout: -1}, RawGbtTopic: ""},
			[]string{"rpcinterval 1ms", "tick", "zmq_addr", "zmq_timeout", "publish timeout"}},
		{"no fast signal", Options{Node: node.Options{URL: "x:1"}, DisableLongPoll: true, Timing: fetchloop.Timing{RPCInterval: time.Hour}}, []string{"stale block"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.WithDefaults().Validate()
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %v, want mention of %q", err, w)
				}
			}
		})
	}
	if _, err := New(Options{Node: node.Options{URL: "x:1"}}, nil); err == nil {
		t.Fatal("New accepted a nil producer")
	}
}

func sha256Sum(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}

// BenchmarkPublish measures the work per template after the RPC: validation, base64, gbthash,
// JSON and an acknowledged publish on the in-memory bus.
func BenchmarkPublish(b *testing.B) {
	for _, tc := range []struct {
		name string
		txs  int
	}{{"empty", 0}, {"3000tx", 3000}} {
		b.Run(tc.name, func(b *testing.B) {
			cut := strings.Index(coreGbt, `"transactions":[]`) + len(`"transactions":[`)
			var sb strings.Builder
			sb.WriteString(coreGbt[:cut])
			for i := 0; i < tc.txs; i++ {
				if i > 0 {
					sb.WriteByte(',')
				}
				sb.WriteString(`{"data":"` + strings.Repeat("0a", 250) + `","txid":"` + strings.Repeat("1b", 32) + `","fee":1,"weight":1000}`)
			}
			sb.WriteString(coreGbt[cut:])
			raw := []byte(sb.String())
			bb := mem.New(mem.Options{Retention: mem.Retention{MaxRecords: 4}})
			defer bb.Close()
			prod, err := bb.NewProducer(bus.ProducerOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer prod.Close()
			m, err := New(Options{Node: node.Options{URL: "127.0.0.1:1"}}, prod)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				tm, err := node.ParseTemplate(raw)
				if err != nil {
					b.Fatal(err)
				}
				m.publish(ctx, tm, "bench")
			}
			if m.Stats().Published == 0 {
				b.Fatal("nothing published")
			}
		})
	}
}
