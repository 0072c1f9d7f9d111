package blockmaker

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"github.com/hashpool/hashpool/auxpow"
	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/bus/mem"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/internal/rsktest"
	"github.com/hashpool/hashpool/node"
	"github.com/hashpool/hashpool/sha"
	"github.com/hashpool/hashpool/store"
)

// TestRSKBlockSubmitted: an RskSolvedShare on btcd regtest's template, published while the RSK
// node is down, is retried until the node answers, verified and imported by the RSK server
// (header, coinbase tag, partial merkle proof, target), recorded once in found_rsk_blocks and
// committed; the same share again is refused by the node as already imported and leaves one
// row.
func TestRSKBlockSubmitted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := newChain(t, ctx)
	rsk := rsktest.Start(t, rsktest.Options{})
	rsk.SetDown(true)
	work := rsk.Work()
	hash, err := auxpow.ParseRSKHash(work)
	if err != nil {
		t.Fatal(err)
	}
	solved := solve(t, c.tmpl, c.job.JobID, []byte{txscript.OP_TRUE}, wire.NewTxOut(0, auxpow.AppendRSKScript(nil, &hash)))
	share := btcpool.RskSolvedShare{JobID: solved.JobID, WorkerID: 77, UserID: 5, Height: solved.Height, Header: solved.Header,
		FeesForMiner: "0", WorkerFullName: "alice.rig1", Coinbase: solved.Coinbase}
	value := btcpool.AppendRskSolvedShare(nil, &share)

	b := mem.New(mem.Options{})
	defer b.Close()
	topics := bus.DefaultTopics().WithRSK()
	db, err := store.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "pool.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	results := make(chan RSKResult, 4)
	logs := &lockedBuf{}
	m, err := New(Options{
		Nodes:         []node.Options{{URL: "http://127.0.0.1:1"}},
		Topics:        topics,
		RSK:           true,
		RSKNode:       node.Options{URL: rsk.URL, User: rsk.User, Password: rsk.Password, Timeout: time.Second},
		RetryDelay:    50 * time.Millisecond,
		MaxRetryDelay: 200 * time.Millisecond,
		AlarmInterval: time.Millisecond,
		OnRSKBlock:    func(r RSKResult) { results <- r },
		Logger:        slog.New(slog.NewTextHandler(logs, nil)),
	}, b, db)
	if err != nil {
		t.Fatal(err)
	}
	stop := startRun(ctx, m)
	publishAll(t, ctx, b, c)
	prod, err := b.NewProducer(bus.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	if err := prod.PublishSync(ctx, topics.RskSolvedShare, nil, value); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the RSK alarm while the node is down", func() bool {
		return strings.Contains(logs.String(), "RSK BLOCK NOT YET SUBMITTED")
	})
	rsk.SetDown(false)
	var r RSKResult
	select {
	case r = <-results:
	case <-ctx.Done():
		t.Fatalf("no RSK result; log:\n%s", logs.String())
	}
	parent := sha.DisplayHex(sha.DoubleSHA256(solved.Header[:]))
	subs := rsk.Submissions()
	if !r.Accepted || !r.Stored || r.Err != nil || len(subs) != 1 || subs[0].BitcoinBlockHash != parent || subs[0].BlockHashForMergedMining != work {
		t.Fatalf("result %+v submissions %+v refused %v", r, subs, rsk.Refused())
	}
	if r.Params[4] != "1" || len(strings.Fields(r.Params[3])) != 1 {
		t.Fatalf("params %q", r.Params)
	}
	rows, err := db.FoundRSKBlocks(ctx, 10)
	if err != nil || len(rows) != 1 || rows[0].BitcoinBlockHash != parent || "0x"+rows[0].RSKBlockHash != work ||
		rows[0].WorkerFullName != "alice.rig1" || rows[0].PUID != 5 || rows[0].JobID != c.job.JobID ||
		!strings.Contains(rows[0].SubmitResponse, "IMPORTED_BEST") {
		t.Fatalf("rows %+v %v", rows, err)
	}
	// The same share again: the node's verdict (already imported) is recorded, still one row.
	if err := prod.PublishSync(ctx, topics.RskSolvedShare, nil, value); err != nil {
		t.Fatal(err)
	}
	select {
	case r = <-results:
	case <-ctx.Done():
		t.Fatal("no second result")
	}
	if r.Accepted || r.Block.BitcoinBlockHash != parent {
		t.Fatalf("second result %+v", r)
	}
	if rows, _ := db.FoundRSKBlocks(ctx, 10); len(rows) != 1 {
		t.Fatalf("%d rows after the same share twice", len(rows))
	}
	// A share whose coinbase has no RSK tag is not submitted, and committed.
	bad := share
	bad.Coinbase = solve(t, c.tmpl, c.job.JobID, []byte{txscript.OP_2}).Coinbase
	if err := prod.PublishSync(ctx, topics.RskSolvedShare, nil, btcpool.AppendRskSolvedShare(nil, &bad)); err != nil {
		t.Fatal(err)
	}
	select {
	case r = <-results:
	case <-ctx.Done():
		t.Fatal("no third result")
	}
	if r.Err == nil || len(rsk.Submissions()) != 1 {
		t.Fatalf("share without a tag: %+v", r)
	}
	m.Drain()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
