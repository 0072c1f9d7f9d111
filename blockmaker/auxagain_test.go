package blockmaker

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashpool/hashpool/auxpow"
	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/bus/mem"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/internal/namecoindtest"
	"github.com/hashpool/hashpool/node"
	"github.com/hashpool/hashpool/store"
)

// TestAuxShareHandledAgainAfterTheNodeMovedOn is the crash between submitauxblock and the
// commit as the restarted maker sees it: the share comes again after namecoind accepted its
// block and moved on (the auxmaker's next createauxblock forgets the old work, so the
// resubmit is refused as an unknown hash). The row must still say accepted, once, and the
// counters count both deliveries; a share whose block namecoind never had keeps the refusal.
func TestAuxShareHandledAgainAfterTheNodeMovedOn(t *testing.T) {
	n := namecoindtest.Start(t, namecoindtest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := n.Client()
	blk, err := c.CreateAuxBlock(ctx, n.Address)
	if err != nil {
		t.Fatal(err)
	}
	nmc, err := auxpow.NewWork("nmc", blk.ChainID, blk.Hash, blk.Bits, int32(blk.Height))
	if err != nil {
		t.Fatal(err)
	}
	share := auxShare(t, []auxpow.Work{nmc}, "")

	b := mem.New(mem.Options{})
	defer b.Close()
	topics := bus.DefaultTopics().WithAux()
	prod, err := b.NewProducer(bus.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	db, err := store.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "pool.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var counters AuxCounters
	results := make(chan AuxResult, 4)
	logs := &lockedBuf{}
	m, err := New(Options{
		Nodes:      []node.Options{{URL: "http://127.0.0.1:1"}}, // no parent blocks in this test
		Topics:     topics,
		AuxNodes:   map[string]node.Options{"nmc": n.ClientOptions()},
		RetryDelay: 50 * time.Millisecond,
		OnAuxBlock: func(r AuxResult) { counters.Count(r); results <- r },
		Logger:     slog.New(slog.NewTextHandler(logs, nil)),
	}, b, db)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- m.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-runErr; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	handle := func(s btcpool.AuxSolvedShare) AuxResult {
		t.Helper()
		if err := prod.PublishSync(ctx, topics.AuxSolvedShare, nil, btcpool.AppendAuxSolvedShare(nil, &s)); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-results:
			return r
		case <-ctx.Done():
			t.Fatalf("no aux result:\n%s", logs.String())
			return AuxResult{}
		}
	}

	first := handle(share)
	if first.Err != nil || !first.Accepted || !first.Stored || first.Block.SubmitResponse != "true" {
		t.Fatalf("first delivery %+v\n%s", first, logs.String())
	}
	// namecoind moves on: its next work forgets the block just accepted.
	next, err := c.CreateAuxBlock(ctx, n.Address)
	if err != nil || next.Hash == blk.Hash {
		t.Fatalf("createauxblock after the block: %+v %v", next, err)
	}
	var refused bool
	if _, err := c.SubmitAuxBlock(ctx, blk.Hash, first.Block.AuxPow); err != nil {
		refused = true // what the maker meets now; without it the test would prove nothing
	}
	if !refused {
		t.Fatal("namecoind accepted a resubmit of a block it has: this test's premise changed")
	}
	again := handle(share)
	if again.Err != nil || !again.Accepted || again.Block.SubmitResponse != "true" {
		t.Fatalf("share handled again: %+v\n%s", again, logs.String())
	}
	if !strings.Contains(logs.String(), "already in the aux chain") {
		t.Fatalf("no log line for the block already in the chain:\n%s", logs.String())
	}

	// A block namecoind never had (work it forgot before any submit): refused, and the row
	// keeps the refusal.
	forgotten, err := auxpow.NewWork("nmc", blk.ChainID, strings.Repeat("42", 32), blk.Bits, int32(blk.Height))
	if err != nil {
		t.Fatal(err)
	}
	lost := handle(auxShare(t, []auxpow.Work{forgotten}, ""))
	if lost.Err != nil || lost.Accepted || !lost.Stored || lost.Block.SubmitResponse == "true" || lost.Block.SubmitResponse == "" {
		t.Fatalf("unknown aux block: %+v", lost)
	}

	rows, err := db.FoundAuxBlocks(ctx, 10)
	if err != nil || len(rows) != 2 {
		t.Fatalf("found_nmc_blocks %+v %v", rows, err)
	}
	for _, r := range rows {
		want := "true"
		if r.AuxBlockHash != blk.Hash {
			want = lost.Block.SubmitResponse
		}
		if r.SubmitResponse != want {
			t.Fatalf("row %s: response %q, want %q", r.AuxBlockHash, r.SubmitResponse, want)
		}
	}
	if s, a, r, u := counters.Submitted.Load(), counters.Accepted.Load(), counters.Recorded.Load(), counters.Unsubmitted.Load(); s != 3 || a != 2 || r != 3 || u != 0 {
		t.Fatalf("counters submitted %d accepted %d recorded %d unsubmitted %d, want 3 2 3 0", s, a, r, u)
	}
	if len(counters.All()) != 4 {
		t.Fatal("All does not list every counter")
	}
}
