package slparser

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/sha"
	"github.com/hashpool/hashpool/store"
)

var day0 = time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)

// mainBits is a main-net-like nBits: network difficulty about 1.1e14.
const mainBits = 0x17034219

func share(puid int32, worker int64, st btcpool.Status, diff uint64, at time.Time) *btcpool.Share {
	return &btcpool.Share{Version: btcpool.CurrentShareVersion, UserID: puid, WorkerHashID: worker, Status: st, ShareDiff: diff,
		Timestamp: at.Unix(), JobID: 9, Height: 900000, BlkBits: mainBits, IP: netip.MustParseAddr("10.1.2.3")}
}

func TestDayAggregatesPerHourAndDay(t *testing.T) {
	d := NewDay(day0.Add(5*time.Hour), 210000, false)
	h1, h2 := day0.Add(1*time.Hour+10*time.Minute), day0.Add(2*time.Hour+59*time.Minute)
	for _, s := range []*btcpool.Share{
		share(3, 30, btcpool.StatusAccept, 1<<20, h1),
		share(3, 30, btcpool.StatusSolved, 1<<20, h1),
		share(3, 30, btcpool.StatusStaleShare, 1<<20, h2),
		share(3, 30, btcpool.StatusLowDifficulty, 1<<30, h2), // worker-level capped at 4 × 2^20
		share(3, 31, btcpool.StatusDuplicateShare, 100, h2),
		share(4, 40, btcpool.StatusAccept, 500, h2),
	} {
		if !d.Add(s) {
			t.Fatalf("share %+v ignored", s)
		}
	}
	if d.Add(share(3, 30, btcpool.StatusAccept, 1, day0.Add(-time.Second))) || d.Add(share(3, 30, btcpool.StatusAccept, 1, day0.Add(24*time.Hour))) {
		t.Fatal("share of another day counted")
	}
	if d.Add(&btcpool.Share{}) || d.Ignored() != 3 || d.Shares() != 6 {
		t.Fatalf("shares %d ignored %d", d.Shares(), d.Ignored())
	}

	nd := sha.BitsToDifficulty(mainBits)
	score := float64(1<<20) / nd
	w1, _ := d.Hour(Key{3, 30}, 1)
	if w1.Accept != 2<<20 || math.Abs(w1.Score-2*score) > 1e-20 || math.Abs(w1.Earn-2*score*3.125e8) > 1e-6 {
		t.Fatalf("worker hour 1 %+v", w1)
	}
	w2, _ := d.Hour(Key{3, 30}, 2)
	if w2.Stale != 1<<20 || w2.Reject != 4<<20 || len(w2.Rejects) != 1 || w2.Rejects[0] != (StatusDiff{btcpool.StatusLowDifficulty, 4 << 20}) {
		t.Fatalf("worker hour 2 %+v", w2)
	}
	u, _ := d.Hour(Key{3, 0}, 24)
	if u.Accept != 2<<20 || u.Stale != 1<<20 || u.Reject != 1<<30+100 {
		t.Fatalf("user day %+v", u)
	}
	if got := string(u.AppendRejectDetail(nil)); got != `{"22":100,"23":1073741824}` {
		t.Fatalf("reject detail %s", got)
	}
	if rr := u.RejectRate(); math.Abs(rr-float64(1<<30+100)/float64(2<<20+1<<30+100)) > 1e-12 {
		t.Fatalf("reject rate %v", rr)
	}
	p, _ := d.Hour(Key{}, 24)
	if p.Accept != 2<<20+500 {
		t.Fatalf("pool day %+v", p)
	}
}

func TestSubsidyAndScore(t *testing.T) {
	for _, tt := range []struct {
		height uint32
		want   float64
	}{{0, 50e8}, {209999, 50e8}, {210000, 25e8}, {840000, 3.125e8}, {64 * 210000, 0}} {
		if got := Subsidy(tt.height, 210000); got != tt.want {
			t.Errorf("Subsidy(%d) = %v, want %v", tt.height, got, tt.want)
		}
	}
	if Subsidy(150, 150) != 25e8 {
		t.Error("regtest halving")
	}
	if s := Score(1<<62, 0x207fffff); s != 1 {
		t.Errorf("score above 1: %v", s)
	}
	if Score(0, mainBits) != 0 || Score(5, 0) != 0 {
		t.Error("zero inputs")
	}
}

func TestFlushWritesOnlyModifiedHours(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	d := NewDay(day0, 210000, false)
	d.Add(share(3, 30, btcpool.StatusAccept, 1000, day0.Add(time.Hour)))
	d.Add(share(3, 30, btcpool.StatusLowDifficulty, 10, day0.Add(time.Hour)))
	n, err := d.Flush(ctx, db)
	if err != nil || n != 6 { // pool, user, worker × (hour, day)
		t.Fatalf("flush: %d rows, %v", n, err)
	}
	if n, err := d.Flush(ctx, db); err != nil || n != 0 {
		t.Fatalf("second flush with nothing new: %d rows, %v", n, err)
	}
	d.Add(share(3, 30, btcpool.StatusAccept, 1000, day0.Add(3*time.Hour)))
	if n, err := d.Flush(ctx, db); err != nil || n != 6 {
		t.Fatalf("third flush: %d rows, %v", n, err)
	}
	hours, err := db.StatsWorkerHours(ctx, 3, 30, 2026112300, 2026112323)
	if err != nil || len(hours) != 2 {
		t.Fatalf("worker hours %+v %v", hours, err)
	}
	if hours[0].Hour != 2026112301 || hours[0].Accept != 1000 || hours[0].Reject != 10 || hours[0].RejectDetail != `{"23":10}` {
		t.Fatalf("hour row %+v", hours[0])
	}
	days, err := db.StatsPoolDays(ctx, 20261123, 20261123)
	if err != nil || len(days) != 1 || days[0].Accept != 2000 || days[0].Reject != 10 {
		t.Fatalf("pool day %+v %v", days, err)
	}
}

func TestHTTPShapes(t *testing.T) {
	now := day0.Add(2*time.Hour + 30*time.Minute)
	p, err := New(Options{DataDir: t.TempDir(), Open: func(string) (RecordReader, error) { return nil, nil }, Now: func() time.Time { return now }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.day.Add(share(3, 30, btcpool.StatusAccept, 1<<32, day0.Add(2*time.Hour)))
	p.day.Add(share(3, 30, btcpool.StatusLowDifficulty, 8, day0.Add(time.Hour)))
	get := func(target string) string {
		rec := httptest.NewRecorder()
		p.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		return rec.Body.String()
	}
	root := get("/")
	// 2^32 difficulty over 9000 s since midnight: 2^64/9000/1e12 TH/s.
	if !strings.Contains(root, `"today":{"hashrate_t":2049.638230,"accept":4294967296,"stale":0,"reject":8,"reject_detail":{"23":8},`) ||
		!strings.Contains(root, `"curr_hour":{"hashrate_t":10248.191152,"accept":4294967296,"stale":0,"reject":0,"reject_detail":{},"reject_rate":0,`) {
		t.Fatalf("root %s", root)
	}
	got := get("/share_stats?user_id=3&worker_id=30,0&hour=24,0,-1")
	if !strings.HasPrefix(got, `{"err_no":0,"err_msg":"","data":{"30":[{"hour":24,"accept":4294967296,"stale":0,"reject":8,"reject_detail":{"23":8},"reject_rate":`) ||
		!strings.Contains(got, `{"hour":-1,"accept":0,"stale":0,"reject":8,"reject_detail":{"23":8},"reject_rate":1,"earn":0}]`) ||
		!strings.Contains(got, `"0":[{"hour":24,`) {
		t.Fatalf("share_stats %s", got)
	}
	if got := get("/share_stats?user_id=3&hour=24"); got != `{"err_no":1,"err_msg":"invalid args"}` {
		t.Fatalf("missing worker_id: %s", got)
	}
}

// Every worker of the day has a keyStats, so an hour's bucket is made only
// when the hour has a share (24 inline buckets were 1.7 KB per worker); an
// hour without one reads as zero.
func TestHourBucketsMadeOnFirstShare(t *testing.T) {
	d := NewDay(day0, 210000, false)
	if !d.Add(share(3, 30, btcpool.StatusAccept, 1000, day0.Add(7*time.Hour+5*time.Minute))) {
		t.Fatal("share ignored")
	}
	ks := d.keys[Key{3, 30}]
	made := 0
	for _, b := range ks.hours {
		if b != nil {
			made++
		}
	}
	if made != 1 || ks.hours[7] == nil {
		t.Fatalf("%d hour buckets made, want only hour 7's", made)
	}
	if b, ok := d.Hour(Key{3, 30}, 8); !ok || b.Accept != 0 || b.Rejects != nil {
		t.Fatalf("hour 8: %+v %v", b, ok)
	}
	if b, _ := d.Hour(Key{3, 30}, 7); b.Accept != 1000 {
		t.Fatalf("hour 7: %+v", b)
	}
}
