package blockmaker

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/bus/mem"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/internal/btcdtest"
	"github.com/hashpool/hashpool/node"
	"github.com/hashpool/hashpool/sha"
	"github.com/hashpool/hashpool/store"
)

// testWriter sends log lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// solve builds a coinbase for tmpl paying script (then the extra outputs), grinds the header to the template's target
// and returns the solved share as the engine would publish it.
func solve(t *testing.T, tmpl *node.Template, jobID uint64, script []byte, extra ...*wire.TxOut) btcpool.SolvedShare {
	t.Helper()
	sig, err := txscript.NewScriptBuilder().AddInt64(tmpl.Height).AddData([]byte("hashpool-test")).Script()
	if err != nil {
		t.Fatal(err)
	}
	cb := wire.NewMsgTx(2)
	cb.AddTxIn(wire.NewTxIn(&wire.OutPoint{Index: 0xffffffff}, sig, nil))
	cb.AddTxOut(wire.NewTxOut(tmpl.CoinbaseValue, script))
	if c := tmpl.WitnessCommitmentScript(); c != "" {
		pk, err := hex.DecodeString(c)
		if err != nil {
			t.Fatal(err)
		}
		cb.AddTxOut(wire.NewTxOut(0, pk))
	}
	for _, o := range extra {
		cb.AddTxOut(o)
	}
	var buf bytes.Buffer
	if err := cb.SerializeNoWitness(&buf); err != nil {
		t.Fatal(err)
	}
	coinbase := buf.Bytes()

	txids := make([][32]byte, len(tmpl.Transactions))
	for i, tx := range tmpl.Transactions {
		if txids[i], err = sha.ParseDisplayHex(tx.TxID); err != nil {
			t.Fatal(err)
		}
	}
	root := sha.MerkleRoot(sha.DoubleSHA256(coinbase), sha.MerkleBranch(txids))
	prev, err := sha.ParseDisplayHex(tmpl.PreviousBlockHash)
	if err != nil {
		t.Fatal(err)
	}
	bits64, err := strconv.ParseUint(tmpl.Bits, 16, 32)
	if err != nil {
		t.Fatal(err)
	}
	bits := uint32(bits64)
	target := sha.CompactToTarget(bits)
	var header [80]byte
	for nonce := uint32(0); ; nonce++ {
		if nonce > 1<<20 {
			t.Fatal("no nonce meets the regtest target")
		}
		copy(header[:], sha.AppendHeader(nil, uint32(tmpl.Version), &prev, &root, uint32(tmpl.CurTime), bits, nonce))
		h := sha.DoubleSHA256(header[:])
		if sha.HashMeetsTarget(&h, &target) {
			break
		}
	}
	return btcpool.SolvedShare{JobID: jobID, WorkerID: 77, UserID: 5, Height: int32(tmpl.Height), Header: header,
		WorkerFullName: "alice.rig1", Coinbase: coinbase}
}

func TestSolvedShareBecomesBlockOnBtcd(t *testing.T) {
	n := btcdtest.Start(t, btcdtest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	n.AddWitnessTx(t)
	tmpl, err := n.Client().GetBlockTemplate(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.DefaultWitnessCommitment == "" || len(tmpl.Transactions) == 0 {
		t.Fatalf("template without witness transactions: %d txs", len(tmpl.Transactions))
	}
	startHeight, err := n.Client().GetBlockCount(ctx)
	if err != nil {
		t.Fatal(err)
	}

	b := mem.New(mem.Options{})
	defer b.Close()
	topics := bus.DefaultTopics()
	prod, err := b.NewProducer(bus.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()

	results := make(chan Result, 4)
	db, err := store.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "pool.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	m, err := New(Options{
		Nodes:          []node.Options{n.ClientOptions()},
		Topics:         topics,
		UnknownJobWait: 500 * time.Millisecond,
		RetryDelay:     50 * time.Millisecond,
		OnBlock:        func(r Result) { results <- r },
		Logger:         slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	}, b, db)
	if err != nil {
		t.Fatal(err)
	}
	runErr := make(chan error, 1)
	runCtx, stop := context.WithCancel(ctx)
	go func() { runErr <- m.Run(runCtx) }()

	raw := btcpool.NewRawGbt(tmpl.Raw, uint32(time.Now().Unix()))
	job := btcpool.StratumJob{JobID: uint64(time.Now().Unix())<<32 | 1, GbtHash: raw.GbtHash, Height: int32(tmpl.Height),
		PrevHash: tmpl.PreviousBlockHash, PrevHashBeStr: tmpl.PreviousBlockHash, Coinbase1: "00", Coinbase2: "00",
		NVersion: int32(tmpl.Version), NTime: uint32(tmpl.CurTime), MinTime: uint32(tmpl.MinTime), CoinbaseValue: tmpl.CoinbaseValue}
	share := solve(t, tmpl, job.JobID, n.MiningScript())
	publish := func(topic string, v []byte) {
		t.Helper()
		if err := prod.PublishSync(ctx, topic, nil, v); err != nil {
			t.Fatal(err)
		}
	}
	// The share overtakes its job and template: the maker must wait for them.
	publish(topics.SolvedShare, btcpool.AppendSolvedShare(nil, &share))
	publish(topics.RawGbt, btcpool.AppendRawGbt(nil, &raw))
	publish(topics.Job, btcpool.AppendStratumJob(nil, &job))

	r := <-results
	if r.Err != nil {
		t.Fatalf("result error: %v", r.Err)
	}
	if len(r.Nodes) != 1 || r.Nodes[0].Err != nil || r.Nodes[0].Submit.Status != node.SubmitAccepted {
		t.Fatalf("node results %+v", r.Nodes)
	}
	if !r.OnTip || !r.Stored {
		t.Fatalf("on tip %v, stored %v", r.OnTip, r.Stored)
	}
	height, err := n.Client().GetBlockCount(ctx)
	if err != nil || height != startHeight+1 {
		t.Fatalf("height %d (%v), want %d", height, err, startHeight+1)
	}
	fb, ok, err := db.FoundBlockByHash(ctx, r.Block.Hash)
	if err != nil || !ok {
		t.Fatalf("found_blocks row: %v %v", ok, err)
	}
	if int64(fb.Height) != tmpl.Height || fb.Rewards != tmpl.CoinbaseValue || fb.WorkerFullName != "alice.rig1" || fb.PrevHash != tmpl.PreviousBlockHash || fb.Size < 300 {
		t.Fatalf("found block row %+v", fb)
	}

	// The same share again (a restart re-processing it): a duplicate, one row only.
	publish(topics.SolvedShare, btcpool.AppendSolvedShare(nil, &share))
	r = <-results
	if r.Nodes[0].Err != nil || r.Nodes[0].Submit.Status != node.SubmitDuplicate {
		t.Fatalf("second submit: %+v", r.Nodes[0])
	}
	// A share of a job nobody knows is reported, not retried forever.
	lost := share
	lost.JobID = 12345
	publish(topics.SolvedShare, btcpool.AppendSolvedShare(nil, &lost))
	r = <-results
	if r.Err == nil {
		t.Fatal("unknown job: no error")
	}
	if rows, err := db.FoundBlocks(ctx, 10); err != nil || len(rows) != 1 {
		t.Fatalf("%d found_blocks rows (%v), want 1", len(rows), err)
	}
	if m.Submitted() != 3 || m.Accepted() != 2 {
		t.Fatalf("submitted %d accepted %d", m.Submitted(), m.Accepted())
	}
	stop()
	if err := <-runErr; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// flakyNode is a reverse proxy in front of a real node that answers HTTP 503 (no JSON-RPC
// answer) to its first failures requests, as a node that is restarting or warming up does.
type flakyNode struct {
	srv      *httptest.Server
	failures int64
	calls    atomic.Int64
}

func newFlakyNode(t *testing.T, target string, failures int64) *flakyNode {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	f := &flakyNode{failures: failures}
	proxy := httputil.NewSingleHostReverseProxy(u)
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.calls.Add(1) <= f.failures {
			http.Error(w, "node restarting", http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// TestSubmitRetriesWhileNoNodeAnswers: a block found while every node is unreachable for longer
// than SubmitAttempts × RetryDelay must still reach the chain once a node comes back, rather
// than being given up after three quick attempts.
func TestSubmitRetriesWhileNoNodeAnswers(t *testing.T) {
	n := btcdtest.Start(t, btcdtest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tmpl, err := n.Client().GetBlockTemplate(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	startHeight, err := n.Client().GetBlockCount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	opts := n.ClientOptions()
	flaky := newFlakyNode(t, opts.URL, 8) // more failures than SubmitAttempts
	opts.URL = flaky.srv.URL

	b := mem.New(mem.Options{})
	defer b.Close()
	topics := bus.DefaultTopics()
	prod, err := b.NewProducer(bus.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	results := make(chan Result, 1)
	m, err := New(Options{
		Nodes:          []node.Options{opts},
		Topics:         topics,
		SubmitAttempts: 3,
		RetryDelay:     10 * time.Millisecond,
		OnBlock:        func(r Result) { results <- r },
		Logger:         slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	}, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- m.Run(runCtx) }()

	raw := btcpool.NewRawGbt(tmpl.Raw, uint32(time.Now().Unix()))
	job := btcpool.StratumJob{JobID: uint64(time.Now().Unix())<<32 | 1, GbtHash: raw.GbtHash, Height: int32(tmpl.Height),
		PrevHash: tmpl.PreviousBlockHash, PrevHashBeStr: tmpl.PreviousBlockHash, Coinbase1: "00", Coinbase2: "00",
		NVersion: int32(tmpl.Version), NTime: uint32(tmpl.CurTime), MinTime: uint32(tmpl.MinTime), CoinbaseValue: tmpl.CoinbaseValue}
	share := solve(t, tmpl, job.JobID, n.MiningScript())
	for _, msg := range []struct {
		topic string
		v     []byte
	}{
		{topics.RawGbt, btcpool.AppendRawGbt(nil, &raw)},
		{topics.Job, btcpool.AppendStratumJob(nil, &job)},
		{topics.SolvedShare, btcpool.AppendSolvedShare(nil, &share)},
	} {
		if err := prod.PublishSync(ctx, msg.topic, nil, msg.v); err != nil {
			t.Fatal(err)
		}
	}
	var r Result
	select {
	case r = <-results:
	case <-ctx.Done():
		t.Fatal("no result")
	}
	if len(r.Nodes) != 1 || r.Nodes[0].Err != nil || r.Nodes[0].Submit.Status != node.SubmitAccepted {
		t.Fatalf("node results %+v (after %d calls)", r.Nodes, flaky.calls.Load())
	}
	if height, err := n.Client().GetBlockCount(ctx); err != nil || height != startHeight+1 {
		t.Fatalf("height %d (%v), want %d", height, err, startHeight+1)
	}
	stop()
	if err := <-runErr; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// outageRecorder is the real store behind a database that is down until released: every insert
// fails until then.
type outageRecorder struct {
	db       *store.Store
	released chan struct{}
	failed   atomic.Int64
}

func (o *outageRecorder) InsertFoundBlock(ctx context.Context, b store.FoundBlock) error {
	select {
	case <-o.released:
		return o.db.InsertFoundBlock(ctx, b)
	default:
		o.failed.Add(1)
		return errors.New("database unreachable")
	}
}

// TestDatabaseOutageDoesNotDelaySubmission: while the found_blocks insert of one block keeps
// failing, a second solved share must still be submitted to the node (btcpool inserts in a thread
// of its own); both rows are written once the database is back, and only then committed.
func TestDatabaseOutageDoesNotDelaySubmission(t *testing.T) {
	n := btcdtest.Start(t, btcdtest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tmpl, err := n.Client().GetBlockTemplate(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "pool.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rec := &outageRecorder{db: db, released: make(chan struct{})}

	// The database comes back only once the node has received two blocks.
	opts := n.ClientOptions()
	target, err := url.Parse(opts.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	var submits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if bytes.Contains(body, []byte(`"submitblock"`)) && submits.Add(1) == 2 {
			close(rec.released)
		}
		proxy.ServeHTTP(w, r)
	}))
	defer srv.Close()
	opts.URL = srv.URL

	b := mem.New(mem.Options{})
	defer b.Close()
	topics := bus.DefaultTopics()
	prod, err := b.NewProducer(bus.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	results := make(chan Result, 2)
	m, err := New(Options{
		Nodes:      []node.Options{opts},
		Topics:     topics,
		RetryDelay: 10 * time.Millisecond,
		OnBlock:    func(r Result) { results <- r },
		Logger:     slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}, b, rec)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- m.Run(runCtx) }()

	raw := btcpool.NewRawGbt(tmpl.Raw, uint32(time.Now().Unix()))
	job := btcpool.StratumJob{JobID: uint64(time.Now().Unix())<<32 | 1, GbtHash: raw.GbtHash, Height: int32(tmpl.Height),
		PrevHash: tmpl.PreviousBlockHash, PrevHashBeStr: tmpl.PreviousBlockHash, Coinbase1: "00", Coinbase2: "00",
		NVersion: int32(tmpl.Version), NTime: uint32(tmpl.CurTime), MinTime: uint32(tmpl.MinTime), CoinbaseValue: tmpl.CoinbaseValue}
	// Two different blocks on the same template (the second is a sibling of the first).
	first := solve(t, tmpl, job.JobID, n.MiningScript())
	second := solve(t, tmpl, job.JobID, []byte{txscript.OP_TRUE})
	for _, msg := range []struct {
		topic string
		v     []byte
	}{
		{topics.RawGbt, btcpool.AppendRawGbt(nil, &raw)},
		{topics.Job, btcpool.AppendStratumJob(nil, &job)},
		{topics.SolvedShare, btcpool.AppendSolvedShare(nil, &first)},
		{topics.SolvedShare, btcpool.AppendSolvedShare(nil, &second)},
	} {
		if err := prod.PublishSync(ctx, msg.topic, nil, msg.v); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 {
		select {
		case r := <-results:
			if r.Err != nil || !r.Stored || len(r.Nodes) != 1 || r.Nodes[0].Err != nil {
				t.Fatalf("result %d: err %v, stored %v, nodes %+v", i, r.Err, r.Stored, r.Nodes)
			}
		case <-ctx.Done():
			t.Fatalf("result %d never came: %d submitblock calls, %d failed inserts", i, submits.Load(), rec.failed.Load())
		}
	}
	if rec.failed.Load() == 0 {
		t.Fatal("the outage was never seen")
	}
	if rows, err := db.FoundBlocks(ctx, 10); err != nil || len(rows) != 2 {
		t.Fatalf("%d found_blocks rows (%v), want 2", len(rows), err)
	}
	stop()
	if err := <-runErr; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// TestTemplateKeyedByItsHash: a job finds its template by the dSHA of the template text (what
// jobmaker writes in gbtHash) even when the RawGbt spells its gbthash in upper case, and a job
// that spells it in upper case finds it too.
func TestTemplateKeyedByItsHash(t *testing.T) {
	b := mem.New(mem.Options{})
	defer b.Close()
	m, err := New(Options{Nodes: []node.Options{{URL: "http://127.0.0.1:1"}}, UnknownJobWait: time.Millisecond}, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.rawC.Close()
	defer m.jobC.Close()
	defer m.solvedC.Close()
	text := []byte(`{"result":{"height":7,"previousblockhash":"` + strings.Repeat("00", 32) + `","transactions":[]},"error":null,"id":"1"}`)
	raw := btcpool.NewRawGbt(text, 1)
	lower := raw.GbtHash
	raw.GbtHash = strings.ToUpper(raw.GbtHash)
	m.addRawGbt(btcpool.AppendRawGbt(nil, &raw))
	for i, jobHash := range []string{lower, strings.ToUpper(lower)} {
		job := btcpool.StratumJob{JobID: uint64(i + 1), GbtHash: jobHash, PrevHash: strings.Repeat("00", 32),
			PrevHashBeStr: strings.Repeat("00", 32), Height: 7, Coinbase1: "00", Coinbase2: "00"}
		m.addJob(btcpool.AppendStratumJob(nil, &job))
		tmpl, _, err := m.lookup(context.Background(), job.JobID)
		if err != nil || tmpl.Height != 7 {
			t.Fatalf("job %d with gbtHash %s: %v", job.JobID, jobHash, err)
		}
	}
}
