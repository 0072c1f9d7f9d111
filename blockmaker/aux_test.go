package blockmaker

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashpool/hashpool/auxpow"
	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/bus/mem"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/internal/namecoindtest"
	"github.com/hashpool/hashpool/node"
	"github.com/hashpool/hashpool/sha"
	"github.com/hashpool/hashpool/store"
)

// lockedBuf is a log sink tests read while the maker writes.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// auxShare mines (on the CPU, regtest target) a parent share whose coinbase commits to the
// aux tree of works, and returns the AuxSolvedShare of chain 0, as the engine publishes it.
func auxShare(t *testing.T, works []auxpow.Work, rpcAddr string) btcpool.AuxSolvedShare {
	t.Helper()
	merged, err := auxpow.Merge(works, auxpow.TreeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	script := append([]byte{0x03, 0x39, 0x30, 0x00}, "/hashpool/"...)
	script = merged.AppendCommitment(script)
	cb1 := binary.LittleEndian.AppendUint32(nil, 2)
	cb1 = append(cb1, 1)
	cb1 = append(cb1, make([]byte, 32)...)
	cb1 = append(cb1, 0xff, 0xff, 0xff, 0xff, byte(len(script)+12))
	cb1 = append(cb1, script...)
	cb2 := []byte{0xff, 0xff, 0xff, 0xff, 1}
	cb2 = binary.LittleEndian.AppendUint64(cb2, 50_0000_0000)
	cb2 = append(cb2, 1, 0x51)
	cb2 = binary.LittleEndian.AppendUint32(cb2, 0)
	branch := sha.MerkleBranch([][32]byte{{1}, {2}, {3}})
	job := sha.NewJob(cb1, cb2, branch, 0x20000000, [32]byte{7}, 0x1d00ffff)
	var h sha.Hasher
	en1, en2 := []byte{0, 0, 0, 1}, make([]byte, 8)
	ntime := uint32(time.Now().Unix())
	for nonce := uint32(0); nonce < 1_000_000; nonce++ {
		hash := h.ShareHash(job, en1, en2, ntime, nonce, 0)
		if merged.Targets.Check(&hash)&1 != 0 {
			return btcpool.AuxSolvedShare{JobID: 1, AuxBlockHash: sha.DisplayHex(works[0].Hash),
				BlockHeader: h.ShareHeader(job, en1, en2, ntime, nonce, 0), CoinbaseTx: job.AppendCoinbase(nil, en1, en2),
				RPCAddr: rpcAddr, ChainName: works[0].Name, ChainID: works[0].ChainID,
				AuxBranch: merged.Branch(0), AuxIndex: merged.Slot(0), CoinbaseBranch: branch, HasCoinbaseBranch: true}
		}
	}
	t.Fatal("no share met the aux target")
	return btcpool.AuxSolvedShare{}
}

// TestAuxBlockOnNamecoind: an AuxSolvedShare (namecoind's block in a tree of three chains)
// published while namecoind is stopped (SIGSTOP) is retried until namecoind answers, accepted
// by namecoind (its block count rises), recorded once in found_nmc_blocks, and committed; the
// same share again leaves one row and the chain where it was.
func TestAuxBlockOnNamecoind(t *testing.T) {
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
	other1, _ := auxpow.NewWork("fake3", 3, strings.Repeat("33", 32), "1d00ffff", 10)
	other2, _ := auxpow.NewWork("doge", 98, strings.Repeat("98", 32), "1b0404cb", 20)
	share := auxShare(t, []auxpow.Work{nmc, other1, other2}, "")
	before, err := c.GetBlockCount(ctx)
	if err != nil {
		t.Fatal(err)
	}

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
	auxOpts := n.ClientOptions()
	auxOpts.Timeout = time.Second
	results := make(chan AuxResult, 4)
	logs := &lockedBuf{}
	m, err := New(Options{
		Nodes:         []node.Options{{URL: "http://127.0.0.1:1"}}, // no parent blocks in this test
		Topics:        topics,
		AuxNodes:      map[string]node.Options{"nmc": auxOpts},
		RetryDelay:    50 * time.Millisecond,
		MaxRetryDelay: 200 * time.Millisecond,
		AlarmInterval: time.Millisecond,
		OnAuxBlock:    func(r AuxResult) { results <- r },
		Logger:        slog.New(slog.NewTextHandler(logs, nil)),
	}, b, db)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- m.Run(runCtx) }()
	drained := false
	defer func() {
		stop()
		if drained {
			return
		}
		if err := <-runErr; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	// The aux node is down when the share comes: the maker retries until it is back.
	if err := syscall.Kill(n.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := true
	defer func() {
		if stopped {
			syscall.Kill(n.Pid, syscall.SIGCONT)
		}
	}()
	value := btcpool.AppendAuxSolvedShare(nil, &share)
	if err := prod.PublishSync(ctx, topics.AuxSolvedShare, nil, value); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(logs.String(), "AUX BLOCK NOT YET SUBMITTED"); {
		if time.Now().After(deadline) {
			t.Fatalf("no retry while namecoind is stopped:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := syscall.Kill(n.Pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	stopped = false
	var r AuxResult
	select {
	case r = <-results:
	case <-ctx.Done():
		t.Fatalf("no aux result:\n%s", logs.String())
	}
	if r.Err != nil || !r.Accepted || !r.Stored || r.Block.ChainName != "nmc" {
		t.Fatalf("aux result %+v\n%s", r, n.LogTail())
	}
	after, err := c.GetBlockCount(ctx)
	if err != nil || after != before+1 {
		t.Fatalf("namecoind block count %d (%v), want %d", after, err, before+1)
	}
	// The same share again (a redelivery): namecoind answers it (true: a block it has), the
	// chain does not move and the row stays one.
	if err := prod.PublishSync(ctx, topics.AuxSolvedShare, nil, value); err != nil {
		t.Fatal(err)
	}
	if r2 := <-results; r2.Err != nil || !r2.Stored {
		t.Fatalf("redelivered aux share: %+v", r2)
	}
	if again, _ := c.GetBlockCount(ctx); again != after {
		t.Fatalf("namecoind block count %d after the redelivery, want %d", again, after)
	}
	rows, err := db.FoundAuxBlocks(ctx, 10)
	if err != nil || len(rows) != 1 {
		t.Fatalf("found_nmc_blocks %+v %v", rows, err)
	}
	row := rows[0]
	hdr := share.BlockHeader
	if row.AuxBlockHash != blk.Hash || row.ChainName != "nmc" || row.SubmitResponse != "true" ||
		row.BitcoinBlockHash != sha.DisplayHex(sha.DoubleSHA256(hdr[:])) || row.AuxPow != r.Block.AuxPow {
		t.Fatalf("row %+v", row)
	}
	var ap auxpow.AuxPow
	if err := auxpow.DecodeAuxPow(mustDecodeHex(t, row.AuxPow), &ap); err != nil || ap.ChainIndex != share.AuxIndex {
		t.Fatalf("stored auxpow: %v (index %d)", err, ap.ChainIndex)
	}

	// Drain: a share published just before is handled (and committed) before Run returns.
	if err := prod.PublishSync(ctx, topics.AuxSolvedShare, nil, value); err != nil {
		t.Fatal(err)
	}
	m.Drain()
	drained = true
	select {
	case err := <-runErr:
		if err != nil {
			t.Fatalf("Run after Drain: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Run did not return after Drain")
	}
	select {
	case r3 := <-results:
		if r3.Err != nil || !r3.Stored {
			t.Fatalf("drained aux share %+v", r3)
		}
	default:
		t.Fatal("Run returned after Drain without handling the aux share on the topic")
	}
}

func mustDecodeHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
