package store

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"
)

// ShareStats are the value columns of every stats_* table, as slparser
// computes them (§8.1).
type ShareStats struct {
	Accept       int64   // share_accept: sum of accepted share difficulty
	Stale        int64   // share_stale
	Reject       int64   // share_reject
	RejectDetail string  // JSON object {"<status>":<diff>,...}; cut to 255 characters
	RejectRate   float64 // reject / (accept + reject)
	Score        float64 // decimal(35,25) in MySQL: finite, 0 <= score < 1e10
	Earn         int64   // satoshi, decimal(35,0) in MySQL

	CreatedAt time.Time // read only
	UpdatedAt time.Time // read only
}

// PoolHour is a row of stats_pool_hour; Hour is YYYYMMDDHH (UTC).
type PoolHour struct {
	Hour int32
	ShareStats
}

// PoolDay is a row of stats_pool_day; Day is YYYYMMDD (UTC). Lucky is only
// read: slparser does not write it.
type PoolDay struct {
	Day int32
	ShareStats
	Lucky float64
}

// UserHour is a row of stats_users_hour.
type UserHour struct {
	PUID int32
	Hour int32
	ShareStats
}

// UserDay is a row of stats_users_day.
type UserDay struct {
	PUID int32
	Day  int32
	ShareStats
}

// WorkerHour is a row of stats_workers_hour.
type WorkerHour struct {
	PUID     int32
	WorkerID int64
	Hour     int32
	ShareStats
}

// WorkerDay is a row of stats_workers_day.
type WorkerDay struct {
	PUID     int32
	WorkerID int64
	Day      int32
	ShareStats
}

// statsTable is one stats_* table: its key columns, the last being the period.
type statsTable struct {
	name   string
	keys   []string // e.g. puid, worker_id, hour
	hourly bool
	up     upsert
}

var statsValueColumns = []string{"share_accept", "share_stale", "share_reject", "reject_detail", "reject_rate", "score", "earn"}

func newStatsTable(name string, hourly bool, keys ...string) *statsTable {
	t := &statsTable{name: name, keys: keys, hourly: hourly}
	t.up = upsert{
		table:    name,
		insert:   append(append(append([]string{}, keys...), statsValueColumns...), "created_at", "updated_at"),
		conflict: keys,
		update:   append(append([]string{}, statsValueColumns...), "updated_at"),
	}
	return t
}

func (t *statsTable) allColumns() []string {
	return append([]string{"id"}, t.up.insert...)
}

var (
	statsPoolHour    = newStatsTable("stats_pool_hour", true, "hour")
	statsPoolDay     = newStatsTable("stats_pool_day", false, "day")
	statsUsersHour   = newStatsTable("stats_users_hour", true, "puid", "hour")
	statsUsersDay    = newStatsTable("stats_users_day", false, "puid", "day")
	statsWorkersHour = newStatsTable("stats_workers_hour", true, "puid", "worker_id", "hour")
	statsWorkersDay  = newStatsTable("stats_workers_day", false, "puid", "worker_id", "day")
)

// ValidHour reports whether h is a real UTC hour written YYYYMMDDHH.
func ValidHour(h int32) bool {
	return h >= 0 && h%100 < 24 && ValidDay(h/100)
}

// ValidDay reports whether d is a real date written YYYYMMDD, years 1970..9999.
func ValidDay(d int32) bool {
	y, m, day := int(d/10000), time.Month(d/100%100), int(d%100)
	if y < 1970 || y > 9999 || m < 1 || m > 12 || day < 1 {
		return false
	}
	return time.Date(y, m, day, 0, 0, 0, 0, time.UTC).Day() == day
}

// HourOf is the YYYYMMDDHH of t in UTC.
func HourOf(t time.Time) int32 {
	t = t.UTC()
	return int32(t.Year()*1000000 + int(t.Month())*10000 + t.Day()*100 + t.Hour())
}

// DayOf is the YYYYMMDD of t in UTC.
func DayOf(t time.Time) int32 { return HourOf(t) / 100 }

func (st *ShareStats) check() error {
	if math.IsNaN(st.Score) || st.Score < 0 || st.Score >= 1e10 {
		return fmt.Errorf("score %v out of range [0, 1e10)", st.Score)
	}
	if math.IsNaN(st.RejectRate) || math.IsInf(st.RejectRate, 0) {
		return fmt.Errorf("reject rate %v", st.RejectRate)
	}
	return nil
}

// upsertStats writes rows into t. key returns row i's key values (as in
// t.keys) and its statistics.
func (s *Store) upsertStats(ctx context.Context, t *statsTable, n int, key func(i int) ([]int64, *ShareStats)) error {
	for i := 0; i < n; i++ {
		k, st := key(i)
		period := int32(k[len(k)-1])
		if t.hourly && !ValidHour(period) || !t.hourly && !ValidDay(period) {
			return fmt.Errorf("store: %s row %d: bad %s %d", t.name, i, t.keys[len(t.keys)-1], period)
		}
		if err := st.check(); err != nil {
			return fmt.Errorf("store: %s row %d: %v", t.name, i, err)
		}
	}
	now := s.nowString()
	return s.run(ctx, &t.up, n, func(i int, dst []any) []any {
		k, st := key(i)
		for _, v := range k {
			dst = append(dst, v)
		}
		return append(dst, st.Accept, st.Stale, st.Reject, bounded(st.RejectDetail, 255), st.RejectRate, st.Score, st.Earn, now, now)
	})
}

// UpsertStatsPoolHour writes pool hour rows (one transaction).
func (s *Store) UpsertStatsPoolHour(ctx context.Context, rows []PoolHour) error {
	return s.upsertStats(ctx, statsPoolHour, len(rows), func(i int) ([]int64, *ShareStats) {
		return []int64{int64(rows[i].Hour)}, &rows[i].ShareStats
	})
}

// UpsertStatsPoolDay writes pool day rows (one transaction).
func (s *Store) UpsertStatsPoolDay(ctx context.Context, rows []PoolDay) error {
	return s.upsertStats(ctx, statsPoolDay, len(rows), func(i int) ([]int64, *ShareStats) {
		return []int64{int64(rows[i].Day)}, &rows[i].ShareStats
	})
}

// UpsertStatsUsersHour writes user hour rows (one transaction).
func (s *Store) UpsertStatsUsersHour(ctx context.Context, rows []UserHour) error {
	return s.upsertStats(ctx, statsUsersHour, len(rows), func(i int) ([]int64, *ShareStats) {
		return []int64{int64(rows[i].PUID), int64(rows[i].Hour)}, &rows[i].ShareStats
	})
}

// UpsertStatsUsersDay writes user day rows (one transaction).
func (s *Store) UpsertStatsUsersDay(ctx context.Context, rows []UserDay) error {
	return s.upsertStats(ctx, statsUsersDay, len(rows), func(i int) ([]int64, *ShareStats) {
		return []int64{int64(rows[i].PUID), int64(rows[i].Day)}, &rows[i].ShareStats
	})
}

// UpsertStatsWorkersHour writes worker hour rows (one transaction).
func (s *Store) UpsertStatsWorkersHour(ctx context.Context, rows []WorkerHour) error {
	return s.upsertStats(ctx, statsWorkersHour, len(rows), func(i int) ([]int64, *ShareStats) {
		return []int64{int64(rows[i].PUID), rows[i].WorkerID, int64(rows[i].Hour)}, &rows[i].ShareStats
	})
}

// UpsertStatsWorkersDay writes worker day rows (one transaction).
func (s *Store) UpsertStatsWorkersDay(ctx context.Context, rows []WorkerDay) error {
	return s.upsertStats(ctx, statsWorkersDay, len(rows), func(i int) ([]int64, *ShareStats) {
		return []int64{int64(rows[i].PUID), rows[i].WorkerID, int64(rows[i].Day)}, &rows[i].ShareStats
	})
}

// queryStats reads rows of t whose leading keys equal prefix and whose period
// is in [from, to], ordered by period. scan receives the key values and stats.
func (s *Store) queryStats(ctx context.Context, t *statsTable, prefix []int64, from, to int32, extra string,
	scan func(keys []int64, st ShareStats, extra float64)) error {
	period := t.keys[len(t.keys)-1]
	var where strings.Builder
	args := make([]any, 0, len(prefix)+3)
	for i, v := range prefix {
		fmt.Fprintf(&where, "%s = ? AND ", t.keys[i])
		args = append(args, v)
	}
	where.WriteString(period + " >= ? AND " + period + " <= ?")
	args = append(args, from, to, maxRows)
	cols := strings.Join(t.keys, ", ") + ", " + strings.Join(statsValueColumns, ", ") + ", created_at, updated_at"
	if extra != "" {
		cols += ", " + extra
	}
	rows, err := s.db.QueryContext(ctx, "SELECT "+cols+" FROM "+t.name+" WHERE "+where.String()+" ORDER BY "+period+" LIMIT ?", args...)
	if err != nil {
		return fmt.Errorf("store: %s: %w", t.name, err)
	}
	defer rows.Close()
	keys := make([]int64, len(t.keys))
	for rows.Next() {
		var st ShareStats
		var x float64
		dst := make([]any, 0, len(keys)+10)
		for i := range keys {
			dst = append(dst, &keys[i])
		}
		dst = append(dst, &st.Accept, &st.Stale, &st.Reject, &st.RejectDetail, &st.RejectRate, &st.Score, &st.Earn,
			timeValue{&st.CreatedAt}, timeValue{&st.UpdatedAt})
		if extra != "" {
			dst = append(dst, &x)
		}
		if err := rows.Scan(dst...); err != nil {
			return fmt.Errorf("store: %s: %w", t.name, err)
		}
		scan(keys, st, x)
	}
	return rows.Err()
}

// StatsPoolHours returns the pool's hours in [from, to] (YYYYMMDDHH), oldest first.
func (s *Store) StatsPoolHours(ctx context.Context, from, to int32) ([]PoolHour, error) {
	var out []PoolHour
	err := s.queryStats(ctx, statsPoolHour, nil, from, to, "", func(k []int64, st ShareStats, _ float64) {
		out = append(out, PoolHour{Hour: int32(k[0]), ShareStats: st})
	})
	return out, err
}

// StatsPoolDays returns the pool's days in [from, to] (YYYYMMDD), oldest first.
func (s *Store) StatsPoolDays(ctx context.Context, from, to int32) ([]PoolDay, error) {
	var out []PoolDay
	err := s.queryStats(ctx, statsPoolDay, nil, from, to, "lucky", func(k []int64, st ShareStats, lucky float64) {
		out = append(out, PoolDay{Day: int32(k[0]), ShareStats: st, Lucky: lucky})
	})
	return out, err
}

// StatsUserHours returns a user's hours in [from, to], oldest first.
func (s *Store) StatsUserHours(ctx context.Context, puid int32, from, to int32) ([]UserHour, error) {
	var out []UserHour
	err := s.queryStats(ctx, statsUsersHour, []int64{int64(puid)}, from, to, "", func(k []int64, st ShareStats, _ float64) {
		out = append(out, UserHour{PUID: int32(k[0]), Hour: int32(k[1]), ShareStats: st})
	})
	return out, err
}

// StatsUserDays returns a user's days in [from, to], oldest first.
func (s *Store) StatsUserDays(ctx context.Context, puid int32, from, to int32) ([]UserDay, error) {
	var out []UserDay
	err := s.queryStats(ctx, statsUsersDay, []int64{int64(puid)}, from, to, "", func(k []int64, st ShareStats, _ float64) {
		out = append(out, UserDay{PUID: int32(k[0]), Day: int32(k[1]), ShareStats: st})
	})
	return out, err
}

// StatsWorkerHours returns a worker's hours in [from, to], oldest first.
func (s *Store) StatsWorkerHours(ctx context.Context, puid int32, workerID int64, from, to int32) ([]WorkerHour, error) {
	var out []WorkerHour
	err := s.queryStats(ctx, statsWorkersHour, []int64{int64(puid), workerID}, from, to, "", func(k []int64, st ShareStats, _ float64) {
		out = append(out, WorkerHour{PUID: int32(k[0]), WorkerID: k[1], Hour: int32(k[2]), ShareStats: st})
	})
	return out, err
}

// StatsWorkerDays returns a worker's days in [from, to], oldest first.
func (s *Store) StatsWorkerDays(ctx context.Context, puid int32, workerID int64, from, to int32) ([]WorkerDay, error) {
	var out []WorkerDay
	err := s.queryStats(ctx, statsWorkersDay, []int64{int64(puid), workerID}, from, to, "", func(k []int64, st ShareStats, _ float64) {
		out = append(out, WorkerDay{PUID: int32(k[0]), WorkerID: k[1], Day: int32(k[2]), ShareStats: st})
	})
	return out, err
}

// Retention says how long slparser keeps detailed statistics; zero keeps
// forever. Pool and user day tables are always kept.
type Retention struct {
	WorkersDay  time.Duration // stats_workers_day
	WorkersHour time.Duration // stats_workers_hour
	UsersHour   time.Duration // stats_users_hour
}

// DefaultRetention is btcpool's: worker days 90 days, worker hours 72 hours,
// user hours 720 hours.
var DefaultRetention = Retention{
	WorkersDay:  90 * 24 * time.Hour,
	WorkersHour: 72 * time.Hour,
	UsersHour:   720 * time.Hour,
}

// deleteBatch bounds one DELETE on MySQL so a large purge does not hold
// locks for long; maxDeleteBatches bounds the loop.
const (
	deleteBatch      = 10000
	maxDeleteBatches = 100000
)

// DeleteOlder removes the statistics that retention r no longer keeps at
// time now (rows whose period is before now minus the retention), and
// returns how many rows it deleted.
func (s *Store) DeleteOlder(ctx context.Context, now time.Time, r Retention) (int64, error) {
	var total int64
	for _, d := range []struct {
		t    *statsTable
		keep time.Duration
	}{{statsWorkersDay, r.WorkersDay}, {statsWorkersHour, r.WorkersHour}, {statsUsersHour, r.UsersHour}} {
		if d.keep <= 0 {
			continue
		}
		cut := now.Add(-d.keep)
		col, bound := "day", DayOf(cut)
		if d.t.hourly {
			col, bound = "hour", HourOf(cut)
		}
		q := "DELETE FROM " + d.t.name + " WHERE " + col + " < ?"
		if s.dialect == dialectMySQL {
			q += fmt.Sprintf(" LIMIT %d", deleteBatch)
		}
		for i := 0; i < maxDeleteBatches; i++ {
			res, err := s.db.ExecContext(ctx, q, bound)
			if err != nil {
				return total, fmt.Errorf("store: retention %s: %w", d.t.name, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return total, fmt.Errorf("store: retention %s: %w", d.t.name, err)
			}
			total += n
			if s.dialect != dialectMySQL || n < deleteBatch {
				break
			}
		}
	}
	return total, nil
}
