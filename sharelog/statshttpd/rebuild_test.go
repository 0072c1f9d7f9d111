package statshttpd

import (
	"context"
	"fmt"
	"math/rand"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/bus/mem"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/sharelog/logfile"
	"github.com/hashpool/hashpool/sharelog/logger"
)

// rebuildShares are n shares of 5 users × 4 workers over the 50 minutes before now, mostly
// accepted, some stale and rejected, each worker with its own IP.
func rebuildShares(now time.Time, n int) []*btcpool.Share {
	rng := rand.New(rand.NewSource(1))
	out := make([]*btcpool.Share, n)
	for i := range out {
		w := rng.Intn(20)
		st := btcpool.StatusAccept
		switch rng.Intn(20) {
		case 0:
			st = btcpool.StatusStaleShare
		case 1:
			st = btcpool.StatusLowDifficulty
		}
		ts := now.Unix() - 3000 + int64(i)*3000/int64(n)
		s := share(int32(w/4+1), int64(w+100), st, uint64(1024<<(w%3)), ts)
		s.IP = netip.AddrFrom4([4]byte{10, 0, byte(w), 1})
		s.Nonce = uint32(i)
		out[i] = s
	}
	return out
}

// snapshotJSON is what statshttpd shows for every worker and user and for the pool: the
// /worker_status answers (both per worker and merged) and the windows of "/" (without its
// uptime and request counters).
func snapshotJSON(t *testing.T, s *Server) string {
	t.Helper()
	var b strings.Builder
	for puid := 1; puid <= 5; puid++ {
		ids := []string{"0"}
		for w := (puid - 1) * 4; w < puid*4; w++ {
			ids = append(ids, fmt.Sprint(w+100))
		}
		q := fmt.Sprintf("/worker_status?user_id=%d&worker_id=%s", puid, strings.Join(ids, ","))
		b.WriteString(httptestRecorder(t, s.Handler(), q) + "\n")
		b.WriteString(httptestRecorder(t, s.Handler(), q+"&is_merge=T") + "\n")
	}
	snap, workers, users := s.Stats().Pool()
	b.WriteString(string(appendWindows(nil, &snap)) + fmt.Sprintf(" workers=%d users=%d\n", workers, users))
	rows := s.Stats().Rows()
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].PUID != rows[j].PUID {
			return rows[i].PUID < rows[j].PUID
		}
		return rows[i].WorkerID < rows[j].WorkerID
	})
	for _, r := range rows {
		fmt.Fprintf(&b, "%+v\n", r)
	}
	return b.String()
}

// startServer runs a statshttpd over dir on b and waits until it is ready.
func startServer(t *testing.T, ctx context.Context, b bus.Bus, dir string, durable bool, now func() time.Time) (*Server, func()) {
	t.Helper()
	srv, err := New(Options{ExpectedOnlineWorkers: 100, ShareLogDir: dir, DurableOffsets: durable, Now: now}, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Run(rctx) }()
	for !srv.Ready() {
		if ctx.Err() != nil {
			t.Fatal("statshttpd never became ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return srv, func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("statshttpd Run: %v", err)
		}
	}
}

// TestRestartRebuildsFromShareLog runs the sharelogger and statshttpd on one bus as `hashpool
// run` does, then restarts statshttpd over the same share-log directory: on a new in-process
// bus (a restart of the process), on the same bus that replays every share also in the files,
// and on a bus with durable offsets (Kafka, which replays its tail). Every restart must show
// the same /worker_status answers, windows, accept counts and last share time and IP.
func TestRestartRebuildsFromShareLog(t *testing.T) {
	for _, durable := range []bool{false, true} {
		t.Run(fmt.Sprintf("durable=%v", durable), func(t *testing.T) { testRestartRebuilds(t, durable) })
	}
}

func testRestartRebuilds(t *testing.T, durable bool) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	fixed := time.Now().Truncate(time.Second)
	now := func() time.Time { return fixed }
	shares := rebuildShares(fixed, 3000)

	b := mem.New(mem.Options{})
	defer b.Close()
	lg, err := logger.New(b, logger.Options{Dir: dir, FlushInterval: 50 * time.Millisecond, DurableOffsets: durable})
	if err != nil {
		t.Fatal(err)
	}
	lctx, lstop := context.WithCancel(ctx)
	ldone := make(chan error, 1)
	go func() { ldone <- lg.Run(lctx) }()
	first, stopFirst := startServer(t, ctx, b, dir, durable, now)

	prod, err := b.NewProducer(bus.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range shares {
		prod.Publish(bus.DefaultTopics().Share, nil, btcpool.AppendShareMessage(nil, s), nil)
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	prod.Close()
	for lg.Stats().Written < int64(len(shares)) || lg.Stats().Committed < int64(len(shares)) {
		if ctx.Err() != nil {
			t.Fatalf("sharelogger wrote %+v", lg.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	var want string
	for {
		want = snapshotJSON(t, first)
		if p, _, _ := first.Stats().Pool(); p.AcceptCount > 0 && want == snapshotJSON(t, first) && first.ignored.Load() == 0 {
			// every share counted once the pool's accept count stops moving
			n := int64(0)
			for _, s := range shares {
				if s.Status == btcpool.StatusAccept {
					n++
				}
			}
			if p.AcceptCount == n {
				break
			}
		}
		if ctx.Err() != nil {
			t.Fatal("first statshttpd never counted every share")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopFirst()
	lstop()
	if err := <-ldone; err != nil {
		t.Fatal(err)
	}

	// A restart of the whole process: a new, empty in-process bus (with durable offsets
	// the new bus would be Kafka's, which keeps the topic; that case is the next one).
	if !durable {
		nb := mem.New(mem.Options{})
		srv, stop := startServer(t, ctx, nb, dir, durable, now)
		if got := snapshotJSON(t, srv); got != want {
			t.Errorf("after a restart on a new bus:\n got %s\nwant %s", got, want)
		}
		if srv.Rebuilt() != int64(len(shares)) || srv.Replayed() != 0 {
			t.Errorf("new bus: rebuilt %d replayed %d", srv.Rebuilt(), srv.Replayed())
		}
		stop()
		nb.Close()
	}

	// The same bus, which replays all its shares (the tail), all of them also in the files.
	srv, stop := startServer(t, ctx, b, dir, durable, now)
	if got := snapshotJSON(t, srv); got != want {
		t.Errorf("after a restart on the same bus:\n got %s\nwant %s", got, want)
	}
	if srv.Rebuilt() != int64(len(shares)) || srv.Replayed() != int64(len(shares)) {
		t.Errorf("same bus: rebuilt %d replayed %d, want %d each", srv.Rebuilt(), srv.Replayed(), len(shares))
	}
	// Shares published after the restart count once: they are not in the files read.
	more := rebuildShares(fixed, 10)
	prod, err = b.NewProducer(bus.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range more {
		s.Nonce += 1 << 20
		prod.Publish(bus.DefaultTopics().Share, nil, btcpool.AppendShareMessage(nil, s), nil)
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	prod.Close()
	before, _, _ := first.Stats().Pool()
	for {
		p, _, _ := srv.Stats().Pool()
		added := int64(0)
		for _, s := range more {
			if s.Status == btcpool.StatusAccept {
				added++
			}
		}
		if p.AcceptCount == before.AcceptCount+added {
			break
		}
		if p.AcceptCount > before.AcceptCount+added || ctx.Err() != nil {
			t.Fatalf("accept count %d, want %d", p.AcceptCount, before.AcceptCount+added)
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
}

// TestRebuildWithoutShareLog: an empty share-log directory rebuilds nothing and the server
// still becomes ready.
func TestRebuildWithoutShareLog(t *testing.T) {
	srv, stop := startServer(t, context.Background(), mem.New(mem.Options{}), t.TempDir(), false, time.Now)
	defer stop()
	if srv.Rebuilt() != 0 {
		t.Fatalf("rebuilt %d from an empty directory", srv.Rebuilt())
	}
}

// TestDrainReturnsOnceTheTopicIsExhausted: after Drain, Run counts what is on the topic and
// returns nil by itself.
func TestDrainReturnsOnceTheTopicIsExhausted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b := mem.New(mem.Options{})
	defer b.Close()
	srv, err := New(Options{ExpectedOnlineWorkers: 100, DrainIdle: 100 * time.Millisecond}, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	shares := rebuildShares(time.Now(), 200)
	prod, err := b.NewProducer(bus.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range shares {
		prod.Publish(bus.DefaultTopics().Share, nil, btcpool.AppendShareMessage(nil, s), nil)
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	prod.Close()
	srv.Drain()
	if err := srv.Run(ctx); err != nil {
		t.Fatal(err)
	}
	p, _, _ := srv.Stats().Pool()
	var want int64
	for _, s := range shares {
		if s.Status == btcpool.StatusAccept {
			want++
		}
	}
	if p.AcceptCount != want {
		t.Fatalf("accept count %d, want %d", p.AcceptCount, want)
	}
}

// BenchmarkRebuild measures the start-up rebuild at 23:00 UTC from a day file (gzip,
// btcpool's format) holding b.N shares spread over the day so far, flushed every 2,000
// shares: the checkpoint's marks let it decompress about the last hour only. shares/s is
// the day's shares per second of rebuild.
func BenchmarkRebuild(b *testing.B) {
	dir := b.TempDir()
	day := time.Now().Unix() - time.Now().Unix()%86400
	now := time.Unix(day+23*3600, 0)
	w, err := logfile.OpenWriter(logfile.WriterOptions{Dir: dir, Checkpoint: true})
	if err != nil {
		b.Fatal(err)
	}
	shares := rebuildShares(now, b.N)
	var buf []byte
	inWindow := int64(0)
	for i, s := range shares {
		s.Timestamp = day + int64(i)*23*3600/int64(b.N)
		if s.Timestamp >= now.Unix()-MaxShareAge {
			inWindow++
		}
		buf = btcpool.AppendShareProto(buf[:0], s)
		if err := w.Append(s.Timestamp, buf); err != nil {
			b.Fatal(err)
		}
		if i%2000 == 1999 {
			if err := w.Flush(); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	srv, err := New(Options{ShareLogDir: dir, Now: func() time.Time { return now }}, mem.New(mem.Options{}), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	_, n := srv.rebuild()
	b.StopTimer()
	if n != inWindow {
		b.Fatalf("rebuilt %d, want the %d of the last hour", n, inWindow)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "shares/s")
}
