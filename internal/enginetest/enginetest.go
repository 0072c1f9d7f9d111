package enginetest

import (
	"context"
	"encoding/hex"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/bus/mem"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/engine"
	"github.com/hashpool/hashpool/engine/userlist"
)

// DifficultyExp is the exponent of the engine's share difficulty: 2^-20,
// about 4096 hashes per share, so tests find passing and failing nonces
// quickly.
const DifficultyExp = -20

// Difficulty is the engine's minimum and default share difficulty.
var Difficulty = math.Ldexp(1, DifficultyExp)

// FirstHeight is the height of the first job Publish adds.
const FirstHeight = 101

// Engine is a real engine.Server on 127.0.0.1 with an in-memory bus.
type Engine struct {
	Server *engine.Server
	Users  *userlist.Embedded
	Addr   string // the address the engine listens on

	// Shares and Solved read the share and solved-share topics from the
	// moment the engine started.
	Shares bus.Consumer
	Solved bus.Consumer

	t        testing.TB
	height   atomic.Int32
	cancel   context.CancelFunc
	done     chan error
	stopOnce sync.Once
}

// Start runs an engine with the package's test options, changed by tweak
// when it is not nil, and waits until it is ready. The engine stops when the
// test ends.
func Start(t testing.TB, tweak func(*engine.Options)) *Engine {
	t.Helper()
	o := engine.NewOptions()
	o.Listen = "127.0.0.1:0"
	o.ReusePort = false
	o.EventLoops = 1
	o.DataDir = t.TempDir()
	o.MinDifficulty = Difficulty
	o.DefaultDifficulty = Difficulty
	o.VersionMask = 0x1fffe000
	// Agents on the harness grind at the fractional test difficulty
	// (production agents are told at least 1).
	o.AgentFractionalDifficulty = true
	if tweak != nil {
		tweak(&o)
	}
	b := mem.New(mem.Options{})
	prod, err := b.NewProducer(bus.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prod.Close(); b.Close() })
	users, err := userlist.OpenEmbedded(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { users.Close() })
	e := &Engine{Users: users, t: t, done: make(chan error, 1)}
	if e.Shares, err = b.NewConsumer(o.Topics.Share, bus.Start{}); err != nil {
		t.Fatal(err)
	}
	if e.Solved, err = b.NewConsumer(o.Topics.SolvedShare, bus.Start{}); err != nil {
		t.Fatal(err)
	}
	if e.Server, err = engine.New(o, engine.Deps{Producer: prod, Users: users}); err != nil {
		t.Fatal(err)
	}
	e.height.Store(FirstHeight - 1)
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	go func() { e.done <- e.Server.Serve(ctx) }()
	select {
	case <-e.Server.Ready():
	case err := <-e.done:
		cancel()
		t.Fatalf("engine Serve: %v", err)
	case <-time.After(10 * time.Second):
		t.Cleanup(e.Stop)
		t.Fatal("engine not ready")
	}
	// Registered after the bus's cleanup, so it runs before it.
	t.Cleanup(e.Stop)
	e.Addr = e.Server.Addr().String()
	return e
}

// Stop stops the engine and waits for Serve to return; later calls do
// nothing. Addr stays set, so a test can start another engine there.
func (e *Engine) Stop() {
	e.stopOnce.Do(func() {
		e.cancel()
		select {
		case <-e.done:
		case <-time.After(30 * time.Second):
			e.t.Error("engine did not stop")
		}
	})
}

// Publish adds a new clean job at the next height, as the jobmaker would on
// a new block. Mainnet-like bits make no share a block; regtest bits
// (0x207fffff) make every valid share one. It does not touch the test, so
// it may be called from any goroutine.
func (e *Engine) Publish(regtest bool) (*engine.JobParams, error) {
	h := e.height.Add(1)
	now := time.Now()
	jp := &engine.JobParams{
		ID: uint64(now.Unix())<<32 | uint64(h), Height: h,
		Coinbase1: mustHex("02000000010000000000000000000000000000000000000000000000000000000000000000ffffffff1e03" + fmt.Sprintf("%06x", h)),
		Coinbase2: mustHex("ffffffff0100f2052a010000001976a914000000000000000000000000000000000000000088ac00000000"),
		Version:   0x20000000, Bits: 0x1d00ffff, Time: uint32(now.Unix()), MinTime: uint32(now.Unix()) - 3600,
		Branch: [][32]byte{{1, 2, 3}, {4, 5, 6}, {7, 8, 9}},
	}
	if regtest {
		jp.Bits = 0x207fffff
	}
	jp.PrevHash[0], jp.PrevHash[31] = byte(h), 0x11
	return jp, e.Server.AddJob(jp)
}

// AddJob is Publish for the test's own goroutine: it fails the test on an
// error.
func (e *Engine) AddJob(regtest bool) *engine.JobParams {
	e.t.Helper()
	jp, err := e.Publish(regtest)
	if err != nil {
		e.t.Fatal(err)
	}
	return jp
}

// NextShare waits up to 10 s for the next share record and fails the test
// unless exactly one arrives.
func (e *Engine) NextShare() btcpool.Share {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs, err := e.Shares.Poll(ctx)
	if err != nil || len(msgs) == 0 {
		e.t.Fatalf("share topic: %v", err)
	}
	var s btcpool.Share
	if err := btcpool.DecodeShareMessage(msgs[0].Value, &s); err != nil {
		e.t.Fatal(err)
	}
	if len(msgs) > 1 {
		e.t.Fatalf("%d share records at once, want 1", len(msgs))
	}
	return s
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}
