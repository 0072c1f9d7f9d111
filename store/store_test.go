package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hashpool/hashpool/internal/mariadbtest"
)

func TestMain(m *testing.M) { os.Exit(mariadbtest.Main(m)) }

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

var t0 = time.Date(2024, 3, 9, 14, 30, 5, 0, time.UTC)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// engines runs fn once on a fresh SQLite file and once on a fresh MariaDB
// database: the same suite for both engines.
func engines(t *testing.T, fn func(t *testing.T, s *Store, clk *clock, cfg Config)) {
	t.Run("sqlite", func(t *testing.T) {
		clk := &clock{t: t0}
		cfg := Config{Driver: DriverSQLite, Path: filepath.Join(t.TempDir(), "pool.db"), Now: clk.Now}
		fn(t, openTest(t, cfg), clk, cfg)
	})
	t.Run("mariadb", func(t *testing.T) {
		clk := &clock{t: t0}
		cfg := Config{Driver: DriverMySQL, DSN: mariadbtest.NewDatabase(t), Now: clk.Now}
		fn(t, openTest(t, cfg), clk, cfg)
	})
}

func openTest(t *testing.T, cfg Config) *Store {
	t.Helper()
	s, err := OpenConfig(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func count(t *testing.T, s *Store, table string) int {
	t.Helper()
	var n int
	if err := s.DB().QueryRowContext(testCtx(t), "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestMigrationsIdempotent(t *testing.T) {
	engines(t, func(t *testing.T, s *Store, clk *clock, cfg Config) {
		// A second and third start on the same database change nothing.
		for i := 0; i < 2; i++ {
			s2 := openTest(t, cfg)
			s2.Close()
		}
		if n := count(t, s, migrationsTable); n != SchemaVersion() {
			t.Fatalf("%d migration rows, want %d", n, SchemaVersion())
		}
		for _, tb := range allTables {
			if n := count(t, s, tb.name); n != 0 {
				t.Fatalf("%s has %d rows", tb.name, n)
			}
		}
	})
}

func TestOldBtcpoolSchemaIsRefused(t *testing.T) {
	engines(t, func(t *testing.T, s *Store, clk *clock, cfg Config) {
		ctx := testCtx(t)
		// The 2016 schema named the user column uid.
		for _, q := range []string{"DROP TABLE mining_workers", "CREATE TABLE mining_workers (worker_id bigint NOT NULL, uid int NOT NULL)"} {
			if _, err := s.DB().ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		s.Close()
		_, err := OpenConfig(ctx, cfg)
		if err == nil || !strings.Contains(err.Error(), "mining_workers lacks columns") {
			t.Fatalf("open with an old mining_workers: err = %v", err)
		}
	})
}

func hashOf(b byte) string { return strings.Repeat(fmt.Sprintf("%02x", b), 32) }

func TestFoundBlocks(t *testing.T) {
	engines(t, func(t *testing.T, s *Store, clk *clock, cfg Config) {
		ctx := testCtx(t)
		longName := "user." + strings.Repeat("é", 60) // 65 characters, 125 bytes
		b := FoundBlock{
			PUID: 7, WorkerID: -5547397417233785862, WorkerFullName: longName,
			JobID: 1<<63 | 0x65ec7b1500000001, Height: 840000, Hash: strings.ToUpper(hashOf(0xab)),
			Rewards: 625000000 + 12345, Size: 1999999, PrevHash: hashOf(0x01), Bits: 0xffffffff, Version: 0x20000000,
		}
		if err := s.InsertFoundBlock(ctx, b); err != nil {
			t.Fatal(err)
		}
		// Re-processing the same solved share: no error, no second row,
		// first row unchanged.
		clk.Set(t0.Add(time.Hour))
		dup := b
		dup.Height = 1
		if err := s.InsertFoundBlock(ctx, dup); err != nil {
			t.Fatalf("duplicate insert: %v", err)
		}
		if n := count(t, s, "found_blocks"); n != 1 {
			t.Fatalf("%d rows after duplicate insert, want 1", n)
		}
		got, ok, err := s.FoundBlockByHash(ctx, hashOf(0xab))
		if err != nil || !ok {
			t.Fatalf("FoundBlockByHash: ok=%v err=%v", ok, err)
		}
		want := b
		want.ID = got.ID
		want.Hash = hashOf(0xab)
		want.WorkerFullName = "user." + strings.Repeat("é", 45)
		want.CreatedAt = t0
		if got != want {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
		}

		b2 := b
		b2.Hash, b2.Height, b2.CreatedAt = hashOf(0xcd), 840001, t0.Add(10*time.Minute)
		if err := s.InsertFoundBlock(ctx, b2); err != nil {
			t.Fatal(err)
		}
		list, err := s.FoundBlocks(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].Hash != hashOf(0xcd) || list[1].Hash != hashOf(0xab) || !list[0].CreatedAt.Equal(t0.Add(10*time.Minute)) {
			t.Fatalf("FoundBlocks = %+v", list)
		}
		if ok, err := s.SetBlockOrphaned(ctx, hashOf(0xcd), true); err != nil || !ok {
			t.Fatalf("SetBlockOrphaned: %v %v", ok, err)
		}
		if ok, err := s.SetBlockOrphaned(ctx, hashOf(0xee), true); err != nil || ok {
			t.Fatalf("SetBlockOrphaned(unknown) = %v %v, want false nil", ok, err)
		}
		got, _, _ = s.FoundBlockByHash(ctx, hashOf(0xcd))
		if !got.IsOrphaned {
			t.Fatal("block not orphaned")
		}
		if _, ok, err := s.FoundBlockByHash(ctx, hashOf(0x99)); ok || err != nil {
			t.Fatalf("unknown hash: ok=%v err=%v", ok, err)
		}
	})
}

func TestFoundBlockRejectsBadInput(t *testing.T) {
	engines(t, func(t *testing.T, s *Store, clk *clock, cfg Config) {
		ctx := testCtx(t)
		good := FoundBlock{Hash: hashOf(1), PrevHash: hashOf(2), Height: 1}
		for name, mod := range map[string]func(*FoundBlock){
			"short hash":    func(b *FoundBlock) { b.Hash = "abcd" },
			"non-hex hash":  func(b *FoundBlock) { b.Hash = strings.Repeat("g", 64) },
			"sql in hash":   func(b *FoundBlock) { b.PrevHash = "'; DROP TABLE found_blocks; --" + strings.Repeat("0", 34) },
			"negative size": func(b *FoundBlock) { b.Size = -1 },
		} {
			b := good
			mod(&b)
			if err := s.InsertFoundBlock(ctx, b); err == nil {
				t.Errorf("%s: no error", name)
			}
		}
		if _, _, err := s.FoundBlockByHash(ctx, "x"); err == nil {
			t.Error("FoundBlockByHash(bad) no error")
		}
		if n := count(t, s, "found_blocks"); n != 0 {
			t.Fatalf("%d rows written from bad input", n)
		}
	})
}

func TestFoundAuxBlocks(t *testing.T) {
	engines(t, func(t *testing.T, s *Store, clk *clock, cfg Config) {
		ctx := testCtx(t)
		a := FoundAuxBlock{BitcoinBlockHash: hashOf(1), AuxBlockHash: hashOf(2), AuxPow: "0100ff",
			ChainName: "namecoin-with-a-very-long-name", SubmitResponse: "null"}
		for i := 0; i < 2; i++ {
			if err := s.InsertFoundAuxBlock(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		list, err := s.FoundAuxBlocks(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 {
			t.Fatalf("%d aux rows, want 1", len(list))
		}
		want := a
		want.ID, want.ChainName, want.CreatedAt = list[0].ID, "namecoin-with-a-very", t0
		if list[0] != want {
			t.Fatalf("got %+v\nwant %+v", list[0], want)
		}
		a.AuxPow = strings.Repeat("a", 70000)
		if err := s.InsertFoundAuxBlock(ctx, a); err == nil {
			t.Fatal("oversized aux_pow accepted")
		}
	})
}

func TestMiningWorkers(t *testing.T) {
	engines(t, func(t *testing.T, s *Store, clk *clock, cfg Config) {
		ctx := testCtx(t)
		// The name arrives first (common event), then statistics.
		if err := s.UpdateWorkerName(ctx, WorkerName{PUID: 3, WorkerID: 11, WorkerName: "rig-01", MinerAgent: "cgminer/4.10"}); err != nil {
			t.Fatal(err)
		}
		last := time.Date(2024, 3, 9, 14, 29, 59, 0, time.UTC)
		ws := []MiningWorker{
			{PUID: 3, WorkerID: 11, Accept1m: 9, Accept5m: 100, Accept15m: 300, Stale15m: 4, Reject15m: 8,
				RejectDetail15m: `{"22":8}`, Accept1h: 1200, Stale1h: 5, Reject1h: 9, RejectDetail1h: `{"22":9}`,
				AcceptCount: 77, LastShareIP: "10.0.0.1", LastShareTime: last},
			{PUID: 3, WorkerID: 0, Accept5m: 100, LastShareTime: last},
			{PUID: 4, WorkerID: 12, LastShareTime: time.Time{}},                                 // never shared
			{PUID: 4, WorkerID: 13, LastShareTime: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)}, // clamped
		}
		if err := s.UpsertMiningWorkers(ctx, ws); err != nil {
			t.Fatal(err)
		}
		w, ok, err := s.MiningWorker(ctx, 3, 11)
		if err != nil || !ok {
			t.Fatalf("MiningWorker: %v %v", ok, err)
		}
		want := ws[0]
		want.GroupID, want.WorkerName, want.MinerAgent = -3, "rig-01", "cgminer/4.10"
		want.Accept1m = 0 // an existing row keeps accept_1m, as btcpool does
		want.CreatedAt, want.UpdatedAt = t0, t0
		if w != want {
			t.Fatalf("worker 3/11:\n got %+v\nwant %+v", w, want)
		}
		w, _, _ = s.MiningWorker(ctx, 4, 12)
		if w.LastShareIP != "0.0.0.0" || !w.LastShareTime.Equal(minTimestamp) || w.GroupID != -4 || w.WorkerName != "" {
			t.Fatalf("worker 4/12 defaults: %+v", w)
		}
		w, _, _ = s.MiningWorker(ctx, 4, 13)
		if !w.LastShareTime.Equal(maxTimestamp) {
			t.Fatalf("worker 4/13 time %v, want clamped to %v", w.LastShareTime, maxTimestamp)
		}

		// A later flush overwrites the windows and updated_at only.
		clk.Set(t0.Add(15 * time.Second))
		ws[0].Accept5m, ws[0].AcceptCount = 101, 78
		if err := s.UpsertMiningWorkers(ctx, ws[:1]); err != nil {
			t.Fatal(err)
		}
		w, _, _ = s.MiningWorker(ctx, 3, 11)
		if w.Accept5m != 101 || w.AcceptCount != 78 || !w.CreatedAt.Equal(t0) || !w.UpdatedAt.Equal(t0.Add(15*time.Second)) || w.WorkerName != "rig-01" {
			t.Fatalf("after second flush: %+v", w)
		}

		// A rename keeps the statistics; a row with group 0 gets -puid.
		if _, err := s.DB().ExecContext(ctx, "UPDATE mining_workers SET group_id = 0 WHERE puid = 3 AND worker_id = 0"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DB().ExecContext(ctx, "UPDATE mining_workers SET group_id = 55 WHERE puid = 3 AND worker_id = 11"); err != nil {
			t.Fatal(err)
		}
		for _, n := range []WorkerName{
			{PUID: 3, WorkerID: 11, WorkerName: strings.Repeat("x", 80), MinerAgent: strings.Repeat("a", 40) + "\xff"},
			{PUID: 3, WorkerID: 0, WorkerName: "__default__"},
		} {
			if err := s.UpdateWorkerName(ctx, n); err != nil {
				t.Fatal(err)
			}
		}
		w, _, _ = s.MiningWorker(ctx, 3, 11)
		if w.WorkerName != strings.Repeat("x", 50) || w.MinerAgent != strings.Repeat("a", 30) || w.GroupID != 55 || w.Accept5m != 101 {
			t.Fatalf("after rename: %+v", w)
		}
		w, _, _ = s.MiningWorker(ctx, 3, 0)
		if w.GroupID != -3 || w.WorkerName != "__default__" {
			t.Fatalf("group 0 row after rename: %+v", w)
		}

		list, err := s.MiningWorkers(ctx, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].WorkerID != 0 || list[1].WorkerID != 11 {
			t.Fatalf("MiningWorkers(3) = %+v", list)
		}
	})
}

// TestMiningWorkersBatch crosses the rows-per-statement boundary and repeats
// a key inside one call (last one wins on both engines).
func TestMiningWorkersBatch(t *testing.T) {
	engines(t, func(t *testing.T, s *Store, clk *clock, cfg Config) {
		ctx := testCtx(t)
		const n = 1234
		ws := make([]MiningWorker, 0, n+1)
		for i := 0; i < n; i++ {
			ws = append(ws, MiningWorker{PUID: 9, WorkerID: int64(i + 1), Accept5m: int64(i), LastShareTime: t0})
		}
		ws = append(ws, MiningWorker{PUID: 9, WorkerID: 1, Accept5m: 999999, LastShareTime: t0})
		if err := s.UpsertMiningWorkers(ctx, ws); err != nil {
			t.Fatal(err)
		}
		if c := count(t, s, "mining_workers"); c != n {
			t.Fatalf("%d rows, want %d", c, n)
		}
		w, _, _ := s.MiningWorker(ctx, 9, 1)
		if w.Accept5m != 999999 {
			t.Fatalf("repeated key: accept_5m %d, want the last row's 999999", w.Accept5m)
		}
		w, _, _ = s.MiningWorker(ctx, 9, n)
		if w.Accept5m != n-1 {
			t.Fatalf("last row accept_5m %d", w.Accept5m)
		}
	})
}

func stats(accept int64, score float64) ShareStats {
	return ShareStats{Accept: accept, Stale: accept / 10, Reject: accept / 20, RejectDetail: `{"23":5}`,
		RejectRate: 0.047619047619047616, Score: score, Earn: accept * 3}
}

func TestStatsTables(t *testing.T) {
	engines(t, func(t *testing.T, s *Store, clk *clock, cfg Config) {
		ctx := testCtx(t)
		check := func(what string, got, want any) {
			t.Helper()
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
			}
		}
		stamp := func(st ShareStats, created, updated time.Time) ShareStats {
			st.CreatedAt, st.UpdatedAt = created, updated
			return st
		}
		// The score must survive decimal(35,25) with float64 precision.
		const score = 0.000123456789012345
		ph := []PoolHour{{2024030913, stats(100, score)}, {2024030914, stats(200, 1.5)}}
		pd := []PoolDay{{20240309, stats(300, 2), 0}}
		uh := []UserHour{{3, 2024030914, stats(10, 0.25)}, {4, 2024030914, stats(20, 0.5)}}
		ud := []UserDay{{3, 20240309, stats(10, 0.25)}}
		wh := []WorkerHour{{3, -77, 2024030914, stats(5, 0.125)}, {3, 78, 2024030914, stats(5, 0.125)}}
		wd := []WorkerDay{{3, -77, 20240309, stats(5, 0.125)}}
		for _, err := range []error{
			s.UpsertStatsPoolHour(ctx, ph), s.UpsertStatsPoolDay(ctx, pd), s.UpsertStatsUsersHour(ctx, uh),
			s.UpsertStatsUsersDay(ctx, ud), s.UpsertStatsWorkersHour(ctx, wh), s.UpsertStatsWorkersDay(ctx, wd),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
		// Update one hour later: values and updated_at change, created_at stays.
		t1 := t0.Add(time.Hour)
		clk.Set(t1)
		ph[1].ShareStats = stats(250, 1.75)
		if err := s.UpsertStatsPoolHour(ctx, ph[1:]); err != nil {
			t.Fatal(err)
		}

		gotPH, err := s.StatsPoolHours(ctx, 2024030900, 2024030923)
		if err != nil {
			t.Fatal(err)
		}
		check("pool hours", gotPH, []PoolHour{{2024030913, stamp(ph[0].ShareStats, t0, t0)}, {2024030914, stamp(ph[1].ShareStats, t0, t1)}})
		if gotPH[0].Score != score {
			t.Fatalf("score %.20g, want %.20g", gotPH[0].Score, score)
		}
		gotPD, err := s.StatsPoolDays(ctx, 20240301, 20240331)
		if err != nil {
			t.Fatal(err)
		}
		check("pool days", gotPD, []PoolDay{{20240309, stamp(pd[0].ShareStats, t0, t0), 0}})
		gotUH, err := s.StatsUserHours(ctx, 4, 2024030900, 2024030923)
		if err != nil {
			t.Fatal(err)
		}
		check("user hours", gotUH, []UserHour{{4, 2024030914, stamp(uh[1].ShareStats, t0, t0)}})
		gotUD, err := s.StatsUserDays(ctx, 3, 20240309, 20240309)
		if err != nil {
			t.Fatal(err)
		}
		check("user days", gotUD, []UserDay{{3, 20240309, stamp(ud[0].ShareStats, t0, t0)}})
		gotWH, err := s.StatsWorkerHours(ctx, 3, -77, 2024030914, 2024030914)
		if err != nil {
			t.Fatal(err)
		}
		check("worker hours", gotWH, []WorkerHour{{3, -77, 2024030914, stamp(wh[0].ShareStats, t0, t0)}})
		gotWD, err := s.StatsWorkerDays(ctx, 3, -77, 20240101, 20241231)
		if err != nil {
			t.Fatal(err)
		}
		check("worker days", gotWD, []WorkerDay{{3, -77, 20240309, stamp(wd[0].ShareStats, t0, t0)}})
		if out, err := s.StatsPoolHours(ctx, 2024031000, 2024031023); err != nil || len(out) != 0 {
			t.Fatalf("empty range: %v %v", out, err)
		}
	})
}

func TestStatsRejectBadRows(t *testing.T) {
	engines(t, func(t *testing.T, s *Store, clk *clock, cfg Config) {
		ctx := testCtx(t)
		for name, err := range map[string]error{
			"hour 24":      s.UpsertStatsPoolHour(ctx, []PoolHour{{2024030900, stats(1, 0)}, {2024030924, stats(1, 0)}}),
			"feb 30":       s.UpsertStatsPoolDay(ctx, []PoolDay{{Day: 20240230}}),
			"day as hour":  s.UpsertStatsUsersHour(ctx, []UserHour{{PUID: 1, Hour: 20240309}}),
			"NaN score":    s.UpsertStatsWorkersDay(ctx, []WorkerDay{{1, 1, 20240309, ShareStats{Score: nan()}}}),
			"huge score":   s.UpsertStatsUsersDay(ctx, []UserDay{{1, 20240309, ShareStats{Score: 1e10}}}),
			"negative hr":  s.UpsertStatsWorkersHour(ctx, []WorkerHour{{1, 1, -1, ShareStats{}}}),
			"min int puid": s.UpsertMiningWorkers(ctx, []MiningWorker{{PUID: -1 << 31}}),
		} {
			if err == nil {
				t.Errorf("%s: accepted", name)
			}
		}
		for _, tb := range allTables {
			if n := count(t, s, tb.name); n != 0 {
				t.Fatalf("%s: %d rows written from a rejected batch", tb.name, n)
			}
		}
	})
}

func nan() float64 { var z float64; return z / z }

func TestDeleteOlder(t *testing.T) {
	engines(t, func(t *testing.T, s *Store, clk *clock, cfg Config) {
		ctx := testCtx(t)
		now := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
		// now - 72 h = 2024-05-29 12h; now - 720 h = 2024-05-02 12h; now - 90 d = 2024-03-03.
		wh := []WorkerHour{{1, 1, 2024052911, ShareStats{}}, {1, 1, 2024052912, ShareStats{}}, {1, 1, 2024060112, ShareStats{}}}
		wd := []WorkerDay{{1, 1, 20240302, ShareStats{}}, {1, 1, 20240303, ShareStats{}}}
		uh := []UserHour{{1, 2024050211, ShareStats{}}, {1, 2024050212, ShareStats{}}}
		ud := []UserDay{{1, 19990101, ShareStats{}}}
		ph := []PoolHour{{1999010100, ShareStats{}}}
		for _, err := range []error{s.UpsertStatsWorkersHour(ctx, wh), s.UpsertStatsWorkersDay(ctx, wd),
			s.UpsertStatsUsersHour(ctx, uh), s.UpsertStatsUsersDay(ctx, ud), s.UpsertStatsPoolHour(ctx, ph)} {
			if err != nil {
				t.Fatal(err)
			}
		}
		if n, err := s.DeleteOlder(ctx, now, Retention{}); err != nil || n != 0 {
			t.Fatalf("zero retention deleted %d (%v)", n, err)
		}
		n, err := s.DeleteOlder(ctx, now, DefaultRetention)
		if err != nil {
			t.Fatal(err)
		}
		if n != 3 {
			t.Fatalf("deleted %d rows, want 3", n)
		}
		for table, want := range map[string]int{"stats_workers_hour": 2, "stats_workers_day": 1, "stats_users_hour": 1,
			"stats_users_day": 1, "stats_pool_hour": 1} {
			if got := count(t, s, table); got != want {
				t.Errorf("%s: %d rows left, want %d", table, got, want)
			}
		}
		got, _ := s.StatsWorkerHours(ctx, 1, 1, 0, 2099123123)
		if len(got) != 2 || got[0].Hour != 2024052912 {
			t.Fatalf("kept worker hours %+v", got)
		}
	})
}

func TestParseDSN(t *testing.T) {
	for _, c := range []struct {
		dsn  string
		want Config
		bad  bool
	}{
		{dsn: "sqlite:///var/lib/hashpool/pool.db", want: Config{Driver: DriverSQLite, Path: "/var/lib/hashpool/pool.db"}},
		{dsn: "sqlite://pool.db", want: Config{Driver: DriverSQLite, Path: "pool.db"}},
		{dsn: "sqlite://:memory:", want: Config{Driver: DriverSQLite, Path: ":memory:"}},
		{dsn: "mysql://pool:secret@tcp(127.0.0.1:3306)/bpool_local_db", want: Config{Driver: DriverMySQL, DSN: "pool:secret@tcp(127.0.0.1:3306)/bpool_local_db"}},
		{dsn: "postgres://x", bad: true},
		{dsn: "/tmp/pool.db", bad: true},
	} {
		got, err := ParseDSN(c.dsn)
		if c.bad {
			if err == nil {
				t.Errorf("ParseDSN(%q) accepted", c.dsn)
			}
			continue
		}
		if err != nil || got.Driver != c.want.Driver || got.Path != c.want.Path || got.DSN != c.want.DSN {
			t.Errorf("ParseDSN(%q) = %+v, %v; want %+v", c.dsn, got, err, c.want)
		}
		if err := got.Validate(); err != nil {
			t.Errorf("Validate(%q): %v", c.dsn, err)
		}
	}
	if _, err := ParseDSN("postgres://u:hunter2@host/db"); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error leaks the password: %v", err)
	}
}

func TestConfigValidateReportsAll(t *testing.T) {
	err := Config{Driver: "oracle", MaxOpenConns: -1}.Validate()
	if err == nil || !strings.Contains(err.Error(), "oracle") || !strings.Contains(err.Error(), "MaxOpenConns") {
		t.Fatalf("Validate = %v, want both problems", err)
	}
	if err := (Config{Driver: DriverSQLite, Path: "a?b"}).Validate(); err == nil {
		t.Fatal("path with '?' accepted")
	}
	if err := (Config{Driver: DriverMySQL, DSN: "nonsense@@"}).Validate(); err == nil {
		t.Fatal("bad mysql DSN accepted")
	}
}

func TestOpenMemoryDSN(t *testing.T) {
	s, err := Open(testCtx(t), "sqlite://:memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.InsertFoundBlock(testCtx(t), FoundBlock{Hash: hashOf(3), PrevHash: hashOf(4)}); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, "found_blocks"); n != 1 || s.Driver() != DriverSQLite {
		t.Fatalf("rows %d driver %s", n, s.Driver())
	}
}

func TestValidHourDay(t *testing.T) {
	for _, c := range []struct {
		v    int32
		hour bool
		want bool
	}{
		{2024030914, true, true}, {2024030924, true, false}, {2024022923, true, true}, {2023022900, true, false},
		{20240309, false, true}, {20241301, false, false}, {20240431, false, false}, {19691231, false, false}, {0, false, false},
	} {
		got := ValidDay(c.v)
		if c.hour {
			got = ValidHour(c.v)
		}
		if got != c.want {
			t.Errorf("valid(%d, hour=%v) = %v", c.v, c.hour, got)
		}
	}
	tm := time.Date(2024, 3, 9, 23, 59, 59, 0, time.FixedZone("x", 3600))
	if HourOf(tm) != 2024030922 || DayOf(tm) != 20240309 {
		t.Fatalf("HourOf %d DayOf %d", HourOf(tm), DayOf(tm))
	}
}

func FuzzBounded(f *testing.F) {
	f.Add("user.worker", 50)
	f.Add("é\xff\xfeabc", 2)
	f.Add("", 0)
	f.Fuzz(func(t *testing.T, s string, max int) {
		if max < 0 || max > 300 {
			return
		}
		got := bounded(s, max)
		if !utf8.ValidString(got) || utf8.RuneCountInString(got) > max {
			t.Fatalf("bounded(%q, %d) = %q", s, max, got)
		}
		if utf8.ValidString(s) && utf8.RuneCountInString(s) <= max && got != s {
			t.Fatalf("bounded changed a short valid string %q -> %q", s, got)
		}
	})
}

func BenchmarkUpsertStatsWorkersHour(b *testing.B) {
	for _, size := range []int{100, 1000} {
		b.Run(fmt.Sprintf("sqlite/rows=%d", size), func(b *testing.B) {
			s, err := OpenConfig(context.Background(), Config{Driver: DriverSQLite, Path: filepath.Join(b.TempDir(), "b.db")})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			rows := make([]WorkerHour, size)
			for i := range rows {
				rows[i] = WorkerHour{PUID: int32(i % 50), WorkerID: int64(i), Hour: 2024030914, ShareStats: stats(int64(i), 0.5)}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := s.UpsertStatsWorkersHour(context.Background(), rows); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/row")
		})
	}
}

// TestFoundBlocksWithoutUniqueHashIsRefused: an existing found_blocks without the unique key
// on hash would get a second row whenever a solved share is handled twice; Open refuses it
// and says how to fix it.
func TestFoundBlocksWithoutUniqueHashIsRefused(t *testing.T) {
	engines(t, func(t *testing.T, s *Store, clk *clock, cfg Config) {
		ctx := testCtx(t)
		q := "CREATE TABLE found_blocks_copy AS SELECT * FROM found_blocks"
		for _, q := range []string{q, "DROP TABLE found_blocks", "ALTER TABLE found_blocks_copy RENAME TO found_blocks"} {
			if _, err := s.DB().ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		s.Close()
		_, err := OpenConfig(ctx, cfg)
		if err == nil || !strings.Contains(err.Error(), "no unique key on hash") {
			t.Fatalf("open with found_blocks lacking UNIQUE(hash): err = %v", err)
		}
	})
}

// TestConcurrentInsertsOneRow: many writers inserting the same block at once (two blkmakers
// handling one share) leave one row and no error.
func TestConcurrentInsertsOneRow(t *testing.T) {
	engines(t, func(t *testing.T, s *Store, clk *clock, cfg Config) {
		ctx := testCtx(t)
		b := FoundBlock{PUID: 1, WorkerID: 2, WorkerFullName: "a.b", JobID: 3, Height: 4, Hash: hashOf(0x42),
			Rewards: 5, Size: 6, PrevHash: hashOf(0x01), Bits: 7, Version: 8}
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for range 16 {
			wg.Go(func() { errs <- s.InsertFoundBlock(ctx, b) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if n := count(t, s, "found_blocks"); n != 1 {
			t.Fatalf("%d rows, want 1", n)
		}
	})
}
