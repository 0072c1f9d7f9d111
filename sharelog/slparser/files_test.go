package slparser

import (
	"context"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/sharelog/logfile"
)

// TestFollowCountsEachShareOnceAcrossWriterCrash: the parser follows a day file while the
// sharelogger flushes a segment and dies before checkpointing it (simulated by putting the
// earlier checkpoint back); the restarted sharelogger cuts that segment and writes its shares
// again. The parser, which kept following, must count every share once.
func TestFollowCountsEachShareOnceAcrossWriterCrash(t *testing.T) {
	for _, c := range []logfile.Compression{logfile.Gzip, logfile.Zstd} {
		t.Run(c.String(), func(t *testing.T) { testFollowAcrossCrash(t, c) })
	}
}

func testFollowAcrossCrash(t *testing.T, c logfile.Compression) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	now := day0.Add(12 * time.Hour)
	open, suffix := FollowFiles(c)
	p, err := New(Options{DataDir: dir, FileSuffix: suffix, Open: open, Now: func() time.Time { return now }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	shareAt := func(i int) *btcpool.Share {
		return &btcpool.Share{Version: btcpool.CurrentShareVersion, UserID: 1, WorkerHashID: 7, Status: btcpool.StatusAccept,
			ShareDiff: 100, Timestamp: now.Unix() - 60 + int64(i%60), JobID: 1, Height: 1, BlkBits: 0x207fffff,
			IP: netip.MustParseAddr("10.0.0.1"), Nonce: uint32(i)}
	}
	wopts := logfile.WriterOptions{Dir: dir, Compression: c, Checkpoint: true}
	w, err := logfile.OpenWriter(wopts)
	if err != nil {
		t.Fatal(err)
	}
	write := func(w *logfile.Writer, from, to int) {
		for i := from; i < to; i++ {
			s := shareAt(i)
			if err := w.Append(s.Timestamp, btcpool.AppendShareProto(nil, s)); err != nil {
				t.Fatal(err)
			}
			w.Advance(0, int64(i))
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	write(w, 0, 100)
	cp, err := os.ReadFile(logfile.CheckpointPath(dir, "BTC"))
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(rctx) }()
	count := func() uint64 {
		today, _, _ := p.poolBuckets(now)
		return today.Accept
	}
	waitAccept := func(want uint64) {
		t.Helper()
		for count() != want {
			if ctx.Err() != nil {
				t.Fatalf("accepted difficulty %d, want %d", count(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitAccept(100 * 100)
	// The crash: shares 100..149 flushed, their checkpoint lost.
	write(w, 100, 150)
	if err := w.Close(); err != nil { // releases the lock; writes nothing more
		t.Fatal(err)
	}
	if err := os.WriteFile(logfile.CheckpointPath(dir, "BTC"), cp, 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * pollInterval)
	if got := count(); got != 100*100 {
		t.Fatalf("the parser counted unconfirmed shares: %d", got)
	}
	w2, err := logfile.OpenWriter(wopts)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	write(w2, 100, 200) // 100..149 again from the bus, then new ones
	waitAccept(200 * 100)
	time.Sleep(3 * pollInterval)
	if got := count(); got != 200*100 {
		t.Fatalf("accepted difficulty %d after the restart, want %d", got, 200*100)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
