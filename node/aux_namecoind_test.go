package node_test

import (
	"context"
	"testing"
	"time"

	"github.com/hashpool/hashpool/internal/namecoindtest"
	"github.com/hashpool/hashpool/node"
)

// TestNamecoindAuxRPCs runs the aux RPCs and the ZMQ hashblock subscriber against a real
// namecoind (Bitcoin Core's ZMQ, which btcd lacks).
func TestNamecoindAuxRPCs(t *testing.T) {
	n := namecoindtest.Start(t, namecoindtest.Options{})
	c := n.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	m, err := c.GetAuxMethods(ctx)
	if err != nil || !m.UseCreate() {
		t.Fatalf("GetAuxMethods = %+v, %v", m, err)
	}
	blk, err := c.CreateAuxBlock(ctx, n.Address)
	if err != nil {
		t.Fatal(err)
	}
	if blk.ChainID != namecoindtest.ChainID || blk.Bits != "207fffff" || blk.Height != 2 || blk.Target == "" || blk.CoinbaseValue <= 0 {
		t.Fatalf("createauxblock = %+v", blk)
	}
	// An auxpow that does not prove anything is refused (false or an RPC error), never accepted.
	if ok, _ := c.SubmitAuxBlock(ctx, blk.Hash, "00"); ok {
		t.Fatal("namecoind accepted a one-byte auxpow")
	}

	sub, err := node.NewHashBlockSubscriber(node.ZMQOptions{Addr: n.ZMQAddr})
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan node.HashBlockEvent, 16)
	sctx, scancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = sub.Run(sctx, func(ev node.HashBlockEvent) {
			select {
			case events <- ev:
			default:
			}
		})
	}()
	defer func() { scancel(); <-done }()
	// A ZMQ subscription takes a moment to reach the publisher: mine until one of our
	// blocks is announced.
	mined := map[string]bool{}
	deadline := time.After(60 * time.Second)
	for {
		for _, h := range n.MineBlocks(t, 1) {
			mined[h] = true
		}
		wait := time.After(2 * time.Second)
	drain:
		for {
			select {
			case ev := <-events:
				if mined[ev.Hash] {
					return
				}
			case <-wait:
				break drain
			case <-deadline:
				t.Fatal("no ZMQ hashblock from namecoind within 60 s")
			}
		}
	}
}
