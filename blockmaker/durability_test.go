package blockmaker

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcsuite/btcd/txscript/v2"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/bus/mem"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/internal/btcdtest"
	"github.com/hashpool/hashpool/internal/mariadbtest"
	"github.com/hashpool/hashpool/node"
	"github.com/hashpool/hashpool/store"
)

func TestMain(m *testing.M) { os.Exit(mariadbtest.Main(m)) }

// chain is a btcd regtest node with one template and a job on it, as jobmaker would publish.
type chain struct {
	n     *btcdtest.Node
	tmpl  *node.Template
	raw   btcpool.RawGbt
	job   btcpool.StratumJob
	start int64 // block count before any share
}

func newChain(t *testing.T, ctx context.Context) *chain {
	t.Helper()
	n := btcdtest.Start(t, btcdtest.Options{})
	tmpl, err := n.Client().GetBlockTemplate(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	start, err := n.Client().GetBlockCount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	raw := btcpool.NewRawGbt(tmpl.Raw, uint32(time.Now().Unix()))
	job := btcpool.StratumJob{JobID: uint64(time.Now().Unix())<<32 | 1, GbtHash: raw.GbtHash, Height: int32(tmpl.Height),
		PrevHash: tmpl.PreviousBlockHash, PrevHashBeStr: tmpl.PreviousBlockHash, Coinbase1: "00", Coinbase2: "00",
		NVersion: int32(tmpl.Version), NTime: uint32(tmpl.CurTime), MinTime: uint32(tmpl.MinTime), CoinbaseValue: tmpl.CoinbaseValue}
	return &chain{n: n, tmpl: tmpl, raw: raw, job: job, start: start}
}

// share solves a block on the chain's template whose coinbase pays script: distinct scripts give
// distinct (sibling) blocks.
func (c *chain) share(t *testing.T, script []byte) []byte {
	t.Helper()
	s := solve(t, c.tmpl, c.job.JobID, script)
	return btcpool.AppendSolvedShare(nil, &s)
}

// scripts are distinct coinbase output scripts for sibling blocks.
var scripts = [][]byte{{txscript.OP_TRUE}, {txscript.OP_2}, {txscript.OP_3}, {txscript.OP_4}}

// publishAll publishes the chain's template and job, then values on the solved-share topic.
func publishAll(t *testing.T, ctx context.Context, b bus.Bus, c *chain, shares ...[]byte) {
	t.Helper()
	prod, err := b.NewProducer(bus.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	topics := bus.DefaultTopics()
	if c != nil {
		if err := prod.PublishSync(ctx, topics.RawGbt, nil, btcpool.AppendRawGbt(nil, &c.raw)); err != nil {
			t.Fatal(err)
		}
		if err := prod.PublishSync(ctx, topics.Job, nil, btcpool.AppendStratumJob(nil, &c.job)); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range shares {
		if err := prod.PublishSync(ctx, topics.SolvedShare, nil, v); err != nil {
			t.Fatal(err)
		}
	}
}

// watchBus wraps a bus: its consumers fail Poll and Commit with a transient error as often as
// the counters say, and every successful commit on the solved-share topic is recorded.
type watchBus struct {
	bus.Bus
	pollFails   atomic.Int64 // remaining Poll failures, shared by every consumer
	commitFails atomic.Int64 // remaining Commit failures
	permanent   atomic.Bool  // the next Poll of the solved-share topic fails permanently

	mu        sync.Mutex
	commits   []int64 // offsets committed on the solved-share topic, in order
	onCommit  func()
	pollCalls atomic.Int64
}

var errTransient = errors.New("test: broker not available (transient)")

func (w *watchBus) NewConsumer(topic string, start bus.Start) (bus.Consumer, error) {
	c, err := w.Bus.NewConsumer(topic, start)
	if err != nil {
		return nil, err
	}
	return &watchConsumer{Consumer: c, w: w, topic: topic}, nil
}

func (w *watchBus) committed() []int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]int64(nil), w.commits...)
}

type watchConsumer struct {
	bus.Consumer
	w     *watchBus
	topic string
}

// take decrements n if it is positive and reports whether it did.
func take(n *atomic.Int64) bool {
	for {
		v := n.Load()
		if v <= 0 {
			return false
		}
		if n.CompareAndSwap(v, v-1) {
			return true
		}
	}
}

func (c *watchConsumer) Poll(ctx context.Context) ([]bus.Message, error) {
	c.w.pollCalls.Add(1)
	if c.topic == bus.DefaultTopics().SolvedShare && c.w.permanent.Load() {
		return nil, bus.Permanent(errors.New("test: topic authorization failed"))
	}
	if take(&c.w.pollFails) {
		return nil, errTransient
	}
	return c.Consumer.Poll(ctx)
}

func (c *watchConsumer) Commit(ctx context.Context, msgs ...bus.Message) error {
	if take(&c.w.commitFails) {
		return errTransient
	}
	if err := c.Consumer.Commit(ctx, msgs...); err != nil {
		return err
	}
	if c.topic == bus.DefaultTopics().SolvedShare {
		c.w.mu.Lock()
		for _, m := range msgs {
			c.w.commits = append(c.w.commits, m.Offset)
		}
		f := c.w.onCommit
		c.w.mu.Unlock()
		if f != nil {
			f()
		}
	}
	return nil
}

// gate is a node's RPC port that can be closed (connections refused, as when the node is
// stopped) and opened again on the same address, forwarding to the real node.
type gate struct {
	t      *testing.T
	addr   string
	target *url.URL
	mu     sync.Mutex
	srv    *http.Server
	up     atomic.Bool
}

func newGate(t *testing.T, target string) *gate {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{t: t, addr: ln.Addr().String(), target: u}
	ln.Close() // starts closed: the port refuses connections
	t.Cleanup(g.close)
	return g
}

func (g *gate) url() string { return "http://" + g.addr }

func (g *gate) open() {
	g.t.Helper()
	var ln net.Listener
	var err error
	for range 100 { // the port was ours a moment ago; retry briefly if the kernel lags
		if ln, err = net.Listen("tcp", g.addr); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		g.t.Fatalf("reopen %s: %v", g.addr, err)
	}
	srv := &http.Server{Handler: httputil.NewSingleHostReverseProxy(g.target)}
	g.mu.Lock()
	g.srv = srv
	g.mu.Unlock()
	g.up.Store(true)
	go srv.Serve(ln)
}

func (g *gate) close() {
	g.up.Store(false)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.srv != nil {
		g.srv.Close()
		g.srv = nil
	}
}

// logCount counts log records whose message contains match, passing every record on.
type logCount struct {
	next  slog.Handler
	match string
	n     *atomic.Int64
}

func (h logCount) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }
func (h logCount) Handle(ctx context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.match) {
		h.n.Add(1)
	}
	return h.next.Handle(ctx, r)
}
func (h logCount) WithAttrs(a []slog.Attr) slog.Handler {
	return logCount{next: h.next.WithAttrs(a), match: h.match, n: h.n}
}
func (h logCount) WithGroup(name string) slog.Handler {
	return logCount{next: h.next.WithGroup(name), match: h.match, n: h.n}
}

func testLogger(t *testing.T) *slog.Logger { return slog.New(slog.NewTextHandler(testWriter{t}, nil)) }

// waitFor polls cond until it holds or ctx ends (no fixed sleeps decide a test's outcome).
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("never happened: %s", what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func startRun(ctx context.Context, m *Maker) (stop func() error) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	return func() error { cancel(); return <-done }
}

func openSQLite(t *testing.T, ctx context.Context, path string) *store.Store {
	t.Helper()
	db, err := store.Open(ctx, "sqlite://"+path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestNodeDownUntilBack: every node refuses connections for far more attempts than the old
// submit window allowed (it gave up after SubmitWindow and committed the share; at this scale
// of RetryDelay that window would have been ~100 ms). The block must be submitted once the node
// is back, and the share committed only then.
func TestNodeDownUntilBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := newChain(t, ctx)
	g := newGate(t, c.n.ClientOptions().URL)
	opts := c.n.ClientOptions()
	opts.URL = g.url()

	wb := &watchBus{Bus: mem.New(mem.Options{})}
	defer wb.Close()
	var commitWhileDown atomic.Bool
	wb.onCommit = func() {
		if !g.up.Load() {
			commitWhileDown.Store(true)
		}
	}
	var alarms atomic.Int64
	results := make(chan Result, 1)
	m, err := New(Options{
		Nodes:         []node.Options{opts},
		RetryDelay:    2 * time.Millisecond,
		MaxRetryDelay: 10 * time.Millisecond,
		AlarmInterval: time.Nanosecond, // every attempt after the first three logs the alarm
		OnBlock:       func(r Result) { results <- r },
		Logger:        slog.New(logCount{next: slog.NewTextHandler(testWriter{t}, nil), match: "BLOCK NOT YET SUBMITTED", n: &alarms}),
	}, wb, openSQLite(t, ctx, filepath.Join(t.TempDir(), "pool.db")))
	if err != nil {
		t.Fatal(err)
	}
	stop := startRun(ctx, m)
	publishAll(t, ctx, wb, c, c.share(t, scripts[0]))

	waitFor(t, ctx, "100 refused submit attempts", func() bool { return alarms.Load() >= 100 })
	select {
	case r := <-results:
		t.Fatalf("share handled while no node answered: %+v", r)
	default:
	}
	if n := len(wb.committed()); n != 0 {
		t.Fatalf("%d commits while every node is down", n)
	}

	g.open()
	var r Result
	select {
	case r = <-results:
	case <-ctx.Done():
		t.Fatal("no result after the node came back")
	}
	if r.Err != nil || len(r.Nodes) != 1 || r.Nodes[0].Err != nil || r.Nodes[0].Submit.Status != node.SubmitAccepted || !r.Stored {
		t.Fatalf("result %+v", r)
	}
	if h, err := c.n.Client().GetBlockCount(ctx); err != nil || h != c.start+1 {
		t.Fatalf("height %d (%v), want %d", h, err, c.start+1)
	}
	waitFor(t, ctx, "the commit", func() bool { return len(wb.committed()) == 1 })
	if commitWhileDown.Load() {
		t.Fatal("committed while the node was down")
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// TestRestartRebuildsEarlierShares: a maker stopped while its node is down leaves its share
// uncommitted; a share published while no maker runs waits on the topic. A new Maker on the
// same bus reads the templates and jobs back from the topics' tails and builds both blocks.
func TestRestartRebuildsEarlierShares(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := newChain(t, ctx)
	g := newGate(t, c.n.ClientOptions().URL)
	opts := c.n.ClientOptions()
	opts.URL = g.url()
	wb := &watchBus{Bus: mem.New(mem.Options{})}
	defer wb.Close()
	db := openSQLite(t, ctx, filepath.Join(t.TempDir(), "pool.db"))

	var attempts atomic.Int64
	first, err := New(Options{
		Nodes: []node.Options{opts}, RetryDelay: 5 * time.Millisecond, MaxRetryDelay: 20 * time.Millisecond,
		Logger: slog.New(logCount{next: slog.NewTextHandler(testWriter{t}, nil), match: "no answer", n: &attempts}),
	}, wb, db)
	if err != nil {
		t.Fatal(err)
	}
	stop := startRun(ctx, first)
	publishAll(t, ctx, wb, c, c.share(t, scripts[0]))
	waitFor(t, ctx, "the first maker trying the node", func() bool { return attempts.Load() >= 2 })
	if err := stop(); err != nil { // SIGTERM mid-submit
		t.Fatalf("first Run: %v", err)
	}
	if n := len(wb.committed()); n != 0 {
		t.Fatalf("%d commits by the stopped maker", n)
	}
	publishAll(t, ctx, wb, nil, c.share(t, scripts[1])) // while no maker runs

	g.open()
	results := make(chan Result, 2)
	second, err := New(Options{Nodes: []node.Options{opts}, RetryDelay: 5 * time.Millisecond,
		OnBlock: func(r Result) { results <- r }, Logger: testLogger(t)}, wb, db)
	if err != nil {
		t.Fatal(err)
	}
	stop = startRun(ctx, second)
	for i := range 2 {
		select {
		case r := <-results:
			if r.Err != nil || !r.Stored || r.Nodes[0].Err != nil || r.Nodes[0].Submit.Status == node.SubmitRejected {
				t.Fatalf("result %d: %+v", i, r)
			}
		case <-ctx.Done():
			t.Fatalf("result %d never came", i)
		}
	}
	if rows, err := db.FoundBlocks(ctx, 10); err != nil || len(rows) != 2 {
		t.Fatalf("%d found_blocks rows (%v), want 2", len(rows), err)
	}
	if h, err := c.n.Client().GetBlockCount(ctx); err != nil || h != c.start+1 {
		t.Fatalf("height %d (%v), want %d (two siblings)", h, err, c.start+1)
	}
	waitFor(t, ctx, "both commits", func() bool { return len(wb.committed()) == 2 })
	if err := stop(); err != nil {
		t.Fatalf("second Run: %v", err)
	}
}

// TestOneRowPerBlock: the same solved share handled twice by one maker, and concurrently by two
// makers (two journals republishing it, two consumer groups) writing through separate
// connections to one database, leaves exactly one found_blocks row, on SQLite and on MariaDB.
func TestOneRowPerBlock(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := newChain(t, ctx)
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		open func(t *testing.T) (*store.Store, *store.Store)
	}{
		{"sqlite", func(t *testing.T) (*store.Store, *store.Store) {
			p := filepath.Join(dir, "pool.db")
			return openSQLite(t, ctx, p), openSQLite(t, ctx, p)
		}},
		{"mariadb", func(t *testing.T) (*store.Store, *store.Store) {
			dsn := mariadbtest.NewDatabase(t)
			var dbs [2]*store.Store
			for i := range dbs {
				db, err := store.OpenConfig(ctx, store.Config{Driver: store.DriverMySQL, DSN: dsn})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				dbs[i] = db
			}
			return dbs[0], dbs[1]
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dbA, dbB := tc.open(t)
			b := mem.New(mem.Options{})
			defer b.Close()
			results := make(chan Result, 8)
			var makers []*Maker
			for i, db := range []*store.Store{dbA, dbB} {
				m, err := New(Options{Nodes: []node.Options{c.n.ClientOptions()}, Group: "blkmaker_" + string(rune('a'+i)),
					OnBlock: func(r Result) { results <- r }, Logger: testLogger(t)}, b, db)
				if err != nil {
					t.Fatal(err)
				}
				makers = append(makers, m)
			}
			var stops []func() error
			for _, m := range makers {
				stops = append(stops, startRun(ctx, m))
			}
			share := c.share(t, []byte(tc.name))   // a block of its own per engine
			publishAll(t, ctx, b, c, share, share) // each maker handles it twice
			var hash string
			for i := range 4 {
				select {
				case r := <-results:
					if r.Err != nil || !r.Stored {
						t.Fatalf("result %d: %+v", i, r)
					}
					if hash != "" && r.Block.Hash != hash {
						t.Fatalf("two hashes %s %s", hash, r.Block.Hash)
					}
					hash = r.Block.Hash
				case <-ctx.Done():
					t.Fatalf("result %d never came", i)
				}
			}
			var n int
			if err := dbA.DB().QueryRowContext(ctx, "SELECT COUNT(*) FROM found_blocks WHERE hash = ?", hash).Scan(&n); err != nil || n != 1 {
				t.Fatalf("%d rows for %s (%v), want 1", n, hash, err)
			}
			for _, stop := range stops {
				if err := stop(); err != nil {
					t.Fatalf("Run: %v", err)
				}
			}
		})
	}
}

// TestTransientBusErrors: Poll and Commit failing with transient errors on every topic do not
// stop Run; the block is still submitted, recorded and committed. A permanent error does stop it.
func TestTransientBusErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := newChain(t, ctx)
	wb := &watchBus{Bus: mem.New(mem.Options{})}
	defer wb.Close()
	wb.pollFails.Store(12)
	wb.commitFails.Store(2)
	results := make(chan Result, 1)
	m, err := New(Options{Nodes: []node.Options{c.n.ClientOptions()}, RetryDelay: 5 * time.Millisecond,
		CommitLimit: time.Millisecond,
		OnBlock:     func(r Result) { results <- r }, Logger: testLogger(t)}, wb, openSQLite(t, ctx, filepath.Join(t.TempDir(), "pool.db")))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	done := make(chan error, 1)
	go func() { done <- m.Run(runCtx) }()
	publishAll(t, ctx, wb, c, c.share(t, scripts[0]), c.share(t, scripts[1]))
	for i := range 2 {
		select {
		case r := <-results:
			if r.Err != nil || !r.Stored || r.Nodes[0].Err != nil {
				t.Fatalf("result %d: %+v", i, r)
			}
		case err := <-done:
			t.Fatalf("Run stopped on a transient error: %v", err)
		case <-ctx.Done():
			t.Fatalf("result %d never came", i)
		}
	}
	if wb.pollFails.Load() != 0 {
		t.Fatalf("%d poll failures left unused", wb.pollFails.Load())
	}
	// Each commit gives up after its first failure or two (CommitLimit): logged, not fatal. Once
	// the failures are used up, the next share's commit goes through.
	waitFor(t, ctx, "the commit failures used up", func() bool { return wb.commitFails.Load() == 0 })
	publishAll(t, ctx, wb, nil, c.share(t, scripts[2]))
	select {
	case r := <-results:
		if r.Err != nil || !r.Stored {
			t.Fatalf("third result: %+v", r)
		}
	case err := <-done:
		t.Fatalf("Run stopped on a transient error: %v", err)
	case <-ctx.Done():
		t.Fatal("third result never came")
	}
	waitFor(t, ctx, "the third share committed", func() bool {
		cs := wb.committed()
		return len(cs) > 0 && cs[len(cs)-1] == 2
	})

	wb.permanent.Store(true)
	publishAll(t, ctx, wb, nil, c.share(t, scripts[3])) // ends the poll under way; the next one fails
	select {
	case err := <-done:
		if err == nil || !bus.IsPermanent(err) {
			t.Fatalf("Run after a permanent error: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Run did not stop on a permanent error")
	}
}

// TestDrain: after Drain, Run returns once every solved share published before is submitted,
// recorded and committed.
func TestDrain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := newChain(t, ctx)
	wb := &watchBus{Bus: mem.New(mem.Options{})}
	defer wb.Close()
	db := openSQLite(t, ctx, filepath.Join(t.TempDir(), "pool.db"))
	var handledN atomic.Int64
	m, err := New(Options{Nodes: []node.Options{c.n.ClientOptions()}, OnBlock: func(Result) { handledN.Add(1) },
		Logger: testLogger(t), DrainIdle: 200 * time.Millisecond}, wb, db)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	// A block handled before Drain, then three more on the topic when Drain is called.
	publishAll(t, ctx, wb, c, c.share(t, scripts[0]))
	waitFor(t, ctx, "the first block", func() bool { return handledN.Load() == 1 })
	publishAll(t, ctx, wb, nil, c.share(t, scripts[1]), c.share(t, scripts[2]), c.share(t, scripts[3]))
	m.Drain()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after Drain: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Run did not return after Drain")
	}
	if handledN.Load() != 4 {
		t.Fatalf("%d shares handled, want 4", handledN.Load())
	}
	cs := wb.committed()
	if len(cs) != 4 || cs[3] != 3 {
		t.Fatalf("commits %v, want offsets 0..3", cs)
	}
	if rows, err := db.FoundBlocks(ctx, 10); err != nil || len(rows) != 4 {
		t.Fatalf("%d found_blocks rows (%v), want 4", len(rows), err)
	}
}

// TestUnbuildableShareIsFiled: a share whose job never arrives, and one that is not a solved
// share at all, are written to the unbuildable file with what recovery needs, before commit.
func TestUnbuildableShareIsFiled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b := mem.New(mem.Options{})
	defer b.Close()
	path := filepath.Join(t.TempDir(), "blkmaker", "unbuildable-blocks.jsonl")
	results := make(chan Result, 2)
	m, err := New(Options{Nodes: []node.Options{{URL: "http://127.0.0.1:1"}}, UnknownJobWait: 50 * time.Millisecond,
		UnbuildableFile: path, OnBlock: func(r Result) { results <- r }, Logger: testLogger(t)}, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := startRun(ctx, m)
	lost := btcpool.SolvedShare{JobID: 42, Height: 7, UserID: 5, WorkerID: 9, WorkerFullName: "bob.rig", Coinbase: []byte{1, 2, 3}}
	lost.Header[0] = 0x20
	value := btcpool.AppendSolvedShare(nil, &lost)
	publishAll(t, ctx, b, nil, value, []byte("not a share"))
	for range 2 {
		select {
		case r := <-results:
			if r.Err == nil {
				t.Fatalf("no error for %+v", r)
			}
		case <-ctx.Done():
			t.Fatal("no result")
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	got, err := ReadUnbuildable(path)
	if err != nil || len(got) != 2 {
		t.Fatalf("%d lines (%v), want 2", len(got), err)
	}
	u := got[0]
	if u.Stage != "lookup" || u.JobID != 42 || u.WorkerFullName != "bob.rig" || u.CoinbaseHex != "010203" ||
		u.ValueHex == "" || !strings.Contains(u.Error, "job 42 is unknown") || len(u.HeaderHex) != 160 || u.Offset != 0 {
		t.Fatalf("line 1: %+v", u)
	}
	if got[1].Stage != "decode" || got[1].ValueHex != "6e6f742061207368617265" || got[1].Offset != 1 {
		t.Fatalf("line 2: %+v", got[1])
	}
}
