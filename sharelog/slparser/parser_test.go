package slparser

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/sharelog/logfile"
	"github.com/hashpool/hashpool/store"
)

// logReader reads share-log files for the parser, as cmd/hashpool wires it.
type logReader struct{ r *logfile.Reader }

func (l logReader) Next(s *btcpool.Share) error {
	rec, err := l.r.Next()
	if err != nil {
		return err
	}
	return btcpool.DecodeShareProto(rec, s)
}

func (l logReader) Close() error { return l.r.Close() }

func openFollow(path string) (RecordReader, error) {
	r, err := logfile.OpenReader(path, logfile.ReaderOptions{Follow: true})
	if err != nil {
		return nil, err
	}
	return logReader{r}, nil
}

// TestRunFollowsTheFileAcrossMidnight writes shares while the parser follows the day's file,
// then crosses midnight: the old day must be complete in the tables before the new day starts.
func TestRunFollowsTheFileAcrossMidnight(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	db, err := store.Open(ctx, "sqlite://"+filepath.Join(dir, "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var now atomic.Int64
	now.Store(day0.Add(23*time.Hour + 59*time.Minute).Unix())
	clock := func() time.Time { return time.Unix(now.Load(), 0) }

	w, err := logfile.OpenWriter(logfile.WriterOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	write := func(s *btcpool.Share) {
		t.Helper()
		if err := w.Append(s.Timestamp, btcpool.AppendShareProto(nil, s)); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	write(share(3, 30, btcpool.StatusAccept, 100, day0.Add(23*time.Hour)))

	p, err := New(Options{DataDir: dir, Open: openFollow, FlushInterval: time.Second, Now: clock}, db)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()

	wait := func(what string, f func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !f(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	dayAccept := func(day int32) int64 {
		rows, err := db.StatsPoolDays(ctx, day, day)
		if err != nil || len(rows) == 0 {
			return -1
		}
		return rows[0].Accept
	}
	wait("the first share in stats_pool_day", func() bool { return dayAccept(20261123) == 100 })
	write(share(3, 30, btcpool.StatusAccept, 50, day0.Add(23*time.Hour+59*time.Minute)))
	wait("the appended share", func() bool { return dayAccept(20261123) == 150 })

	// Midnight: a late share of the old day, then the new day's file.
	now.Store(day0.Add(24*time.Hour + 10*time.Second).Unix())
	write(share(3, 30, btcpool.StatusAccept, 7, day0.Add(23*time.Hour+59*time.Minute+59*time.Second)))
	write(share(3, 30, btcpool.StatusAccept, 1000, day0.Add(24*time.Hour+time.Second)))
	wait("the new day", func() bool { return dayAccept(20261124) == 1000 })
	if got := dayAccept(20261123); got != 157 {
		t.Fatalf("old day accept %d, want 157 (the late share included)", got)
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("Run: %v", err)
	}
}
