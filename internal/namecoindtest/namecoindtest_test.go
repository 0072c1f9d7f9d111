package namecoindtest

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestStartAndStop(t *testing.T) {
	n := Start(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h, err := n.Client().GetBlockCount(ctx)
	if err != nil || h != 1 {
		t.Fatalf("height %d, %v; want the first block mined", h, err)
	}
	if _, err := n.Client().CreateAuxBlock(ctx, n.Address); err != nil {
		t.Fatalf("createauxblock after the first block: %v", err)
	}
	pid, dir := n.Pid, n.DataDir
	n.Stop()
	if err := syscall.Kill(pid, 0); err == nil {
		t.Fatalf("namecoind pid %d still runs after Stop", pid)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("data dir %s left behind (%v)", dir, err)
	}
	n.Stop() // idempotent
}

func TestBinaryMissing(t *testing.T) {
	t.Setenv("NAMECOIND", "/nonexistent/namecoind")
	if _, err := findBinary(); err == nil {
		t.Fatal("want an error for a missing $NAMECOIND")
	}
}
