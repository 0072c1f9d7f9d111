package btcdtest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStartMineAndWitnessTx(t *testing.T) {
	n := Start(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := n.Client()

	if !strings.HasPrefix(n.MiningAddress(), "bcrt1q") {
		t.Fatalf("mining address %q is not a regtest P2WPKH address", n.MiningAddress())
	}
	hashes := n.MineBlocks(t, 3)
	best, err := c.GetBestBlockHash(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if best != hashes[2] {
		t.Fatalf("best block %s, want the last mined %s", best, hashes[2])
	}

	wtx := n.AddWitnessTx(t)
	if wtx.TxID == wtx.WTxID {
		t.Fatalf("txid equals wtxid (%s): the transaction carries no witness", wtx.TxID)
	}
	count, err := c.GetBlockCount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if count < coinbaseMaturity {
		t.Fatalf("block count %d: AddWitnessTx should have matured a coinbase", count)
	}

	tmpl, err := c.GetBlockTemplate(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(tmpl.Transactions) != 1 || tmpl.Transactions[0].TxID != wtx.TxID || tmpl.Transactions[0].Data != wtx.Hex {
		t.Fatalf("template transactions %+v, want exactly %v", tmpl.Transactions, wtx)
	}
	if tmpl.Transactions[0].Fee != WitnessFee {
		t.Fatalf("template fee %d, want %d", tmpl.Transactions[0].Fee, WitnessFee)
	}
	if len(tmpl.DefaultWitnessCommitment) != 64 {
		t.Fatalf("default_witness_commitment %q: btcd should send the bare 32-byte hash", tmpl.DefaultWitnessCommitment)
	}
	if tmpl.Height != count+1 {
		t.Fatalf("template height %d, want %d", tmpl.Height, count+1)
	}

	// The next coinbase matures one block later: AddWitnessTx mines exactly that block, which
	// also confirms the first transaction.
	wtx2 := n.AddWitnessTx(t)
	if count2, _ := c.GetBlockCount(ctx); count2 != count+1 {
		t.Fatalf("second AddWitnessTx: block count %d -> %d, want one block mined", count, count2)
	}
	tmpl, err = c.GetBlockTemplate(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(tmpl.Transactions) != 1 || tmpl.Transactions[0].TxID != wtx2.TxID {
		t.Fatalf("template transactions %+v, want only %v", tmpl.Transactions, wtx2)
	}
	n.MineBlocks(t, 1)
	tmpl, err = c.GetBlockTemplate(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(tmpl.Transactions) != 0 || tmpl.DefaultWitnessCommitment != "" {
		t.Fatalf("mempool not emptied by mining: %d txs left", len(tmpl.Transactions))
	}
}

func TestStopLeavesNoProcess(t *testing.T) {
	n := Start(t, Options{})
	n.Stop()
	if n.Alive() {
		t.Fatal("btcd still running after Stop")
	}
	n.Stop() // idempotent
}

func TestLaunchStopRemovesDataDir(t *testing.T) {
	dir := t.TempDir()
	n, err := Launch(context.Background(), Options{Binary: Binary(t), Dir: dir, NoTxIndex: true})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	if !strings.HasPrefix(n.DataDir, dir+string(os.PathSeparator)) {
		t.Fatalf("data dir %q is not under %q", n.DataDir, dir)
	}
	if _, err := os.Stat(filepath.Join(n.DataDir, "btcd.out")); err != nil {
		t.Fatalf("no btcd log: %v", err)
	}
	n.MineBlocks(t, 1)
	n.Stop()
	if n.Alive() {
		t.Fatal("btcd still running after Stop")
	}
	if _, err := os.Stat(n.DataDir); !os.IsNotExist(err) {
		t.Fatalf("data dir after Stop: %v, want it removed", err)
	}
}

func TestLaunchFailureReturnsLogAndCleansUp(t *testing.T) {
	dir := t.TempDir()
	n, err := Launch(context.Background(), Options{Binary: Binary(t), Dir: dir, ExtraArgs: []string{"--nosuchflag"}})
	if err == nil {
		n.Stop()
		t.Fatal("Launch with an unknown btcd flag succeeded")
	}
	if msg := err.Error(); !strings.Contains(msg, "--- btcd output ---") || !strings.Contains(msg, "nosuchflag") {
		t.Fatalf("error %q does not carry btcd's output", msg)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("%d data dirs left behind in %s", len(left), dir)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if n, err := Launch(ctx, Options{Binary: Binary(t), Dir: dir}); err == nil {
		n.Stop()
		t.Fatal("Launch with an ended context succeeded")
	}
}

func TestTwoNodesRelayBlocks(t *testing.T) {
	a := Start(t, Options{})
	b := Start(t, Options{Peers: []string{a.P2PAddr}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Wait for the peer connection first, so that the blocks are announced to b.
	for {
		var conns int
		if err := b.Client().Call(ctx, "getconnectioncount", nil, &conns); err != nil {
			t.Fatalf("node b: %v", err)
		}
		if conns > 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("node b never connected to node a\n--- node b ---\n%s", b.LogTail())
		case <-time.After(20 * time.Millisecond):
		}
	}
	hashes := a.MineBlocks(t, 2)
	for {
		best, err := b.Client().GetBestBlockHash(ctx)
		if err != nil {
			t.Fatalf("node b: %v", err)
		}
		if best == hashes[1] {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("node b did not receive block %s from node a (best %s)\n--- node a ---\n%s\n--- node b ---\n%s",
				hashes[1], best, a.LogTail(), b.LogTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
