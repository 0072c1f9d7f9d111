package store

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strings"
	"time"
)

// MiningWorker is a row of mining_workers: one worker's live statistics as
// statshttpd computes them (§8.2). WorkerID 0 is the user's aggregate row.
type MiningWorker struct {
	WorkerID int64
	PUID     int32
	// GroupID is -PUID for a new row; only read here.
	GroupID int32
	// WorkerName and MinerAgent are set by UpdateWorkerName; only read here.
	WorkerName string
	MinerAgent string

	Accept1m        int64
	Accept5m        int64
	Accept15m       int64
	Stale15m        int64
	Reject15m       int64
	RejectDetail15m string // JSON object; cut to 255 characters
	Accept1h        int64
	Stale1h         int64
	Reject1h        int64
	RejectDetail1h  string // JSON object; cut to 255 characters
	AcceptCount     int32
	LastShareIP     string    // dotted IPv4; cut to 16 characters
	LastShareTime   time.Time // clamped to the timestamp range 1970-01-01 00:00:01 .. 2038-01-19 03:14:07

	CreatedAt time.Time // read only
	UpdatedAt time.Time // read only
}

var miningWorkerColumns = []string{
	"worker_id", "puid", "group_id", "worker_name", "accept_1m", "accept_5m", "accept_15m", "stale_15m",
	"reject_15m", "reject_detail_15m", "accept_1h", "stale_1h", "reject_1h", "reject_detail_1h",
	"accept_count", "last_share_ip", "last_share_time", "miner_agent", "created_at", "updated_at",
}

// upsertMiningWorkers is btcpool's flush of statshttpd (StatsHttpd::flushWorkersToDB).
var upsertMiningWorkers = upsert{
	table: "mining_workers",
	insert: []string{"worker_id", "puid", "group_id", "accept_1m", "accept_5m", "accept_15m", "stale_15m",
		"reject_15m", "reject_detail_15m", "accept_1h", "stale_1h", "reject_1h", "reject_detail_1h",
		"accept_count", "last_share_ip", "last_share_time", "created_at", "updated_at"},
	conflict: []string{"puid", "worker_id"},
	update: []string{"accept_5m", "accept_15m", "stale_15m", "reject_15m", "reject_detail_15m",
		"accept_1h", "stale_1h", "reject_1h", "reject_detail_1h", "accept_count", "last_share_ip",
		"last_share_time", "updated_at"},
}

// The range of a MySQL TIMESTAMP column.
var (
	minTimestamp = time.Date(1970, 1, 1, 0, 0, 1, 0, time.UTC)
	maxTimestamp = time.Date(2038, 1, 19, 3, 14, 7, 0, time.UTC)
)

func clampTimestamp(t time.Time) string {
	switch {
	case t.Before(minTimestamp):
		t = minTimestamp
	case t.After(maxTimestamp):
		t = maxTimestamp
	}
	return formatTime(t)
}

// UpsertMiningWorkers writes the statistics of these workers: new rows get
// group_id -puid and created_at now; existing rows get their window columns
// and updated_at overwritten (accept_1m, names and group are left alone, as
// btcpool does). All rows are written in one transaction or none is.
func (s *Store) UpsertMiningWorkers(ctx context.Context, workers []MiningWorker) error {
	now := s.nowString()
	for i := range workers {
		if workers[i].PUID == math.MinInt32 {
			return fmt.Errorf("store: mining worker %d: puid %d has no group id -puid", workers[i].WorkerID, workers[i].PUID)
		}
	}
	return s.run(ctx, &upsertMiningWorkers, len(workers), func(i int, dst []any) []any {
		w := &workers[i]
		ip := w.LastShareIP
		if ip == "" {
			ip = "0.0.0.0"
		}
		return append(dst, w.WorkerID, w.PUID, -w.PUID, w.Accept1m, w.Accept5m, w.Accept15m, w.Stale15m,
			w.Reject15m, bounded(w.RejectDetail15m, 255), w.Accept1h, w.Stale1h, w.Reject1h,
			bounded(w.RejectDetail1h, 255), w.AcceptCount, bounded(ip, 16), clampTimestamp(w.LastShareTime), now, now)
	})
}

// WorkerName is a common event's worker_update (§4.15): the names a worker
// logged in with.
type WorkerName struct {
	PUID       int32
	WorkerID   int64
	WorkerName string // cut to 50 characters
	MinerAgent string // cut to 30 characters
}

// UpdateWorkerName records a worker's name and miner agent, creating the row
// (group -puid) if it does not exist and giving an existing row with group 0
// the group -puid, as statshttpd does.
func (s *Store) UpdateWorkerName(ctx context.Context, w WorkerName) error {
	if w.PUID == math.MinInt32 {
		return fmt.Errorf("store: worker name: puid %d has no group id -puid", w.PUID)
	}
	now := s.nowString()
	q := "INSERT INTO mining_workers (puid, worker_id, group_id, worker_name, miner_agent, created_at, updated_at) VALUES " + placeholders(7)
	if s.dialect == dialectMySQL {
		q += " ON DUPLICATE KEY UPDATE worker_name = VALUES(worker_name), miner_agent = VALUES(miner_agent)," +
			" group_id = IF(group_id = 0, VALUES(group_id), group_id), updated_at = VALUES(updated_at)"
	} else {
		q += " ON CONFLICT (puid, worker_id) DO UPDATE SET worker_name = excluded.worker_name, miner_agent = excluded.miner_agent," +
			" group_id = CASE WHEN group_id = 0 THEN excluded.group_id ELSE group_id END, updated_at = excluded.updated_at"
	}
	_, err := s.db.ExecContext(ctx, q, w.PUID, w.WorkerID, -w.PUID, bounded(w.WorkerName, 50), bounded(w.MinerAgent, 30), now, now)
	if err != nil {
		return fmt.Errorf("store: worker name %d/%d: %w", w.PUID, w.WorkerID, err)
	}
	return nil
}

func scanMiningWorker(sc interface{ Scan(...any) error }) (MiningWorker, error) {
	var w MiningWorker
	var name, agent sql.NullString
	err := sc.Scan(&w.WorkerID, &w.PUID, &w.GroupID, &name, &w.Accept1m, &w.Accept5m, &w.Accept15m, &w.Stale15m,
		&w.Reject15m, &w.RejectDetail15m, &w.Accept1h, &w.Stale1h, &w.Reject1h, &w.RejectDetail1h,
		&w.AcceptCount, &w.LastShareIP, timeValue{&w.LastShareTime}, &agent, timeValue{&w.CreatedAt}, timeValue{&w.UpdatedAt})
	w.WorkerName, w.MinerAgent = name.String, agent.String
	w.LastShareIP = strings.TrimRight(w.LastShareIP, " ")
	return w, err
}

var selectMiningWorkers = "SELECT " + strings.Join(miningWorkerColumns, ", ") + " FROM mining_workers"

// MiningWorker returns one worker's row; ok is false when there is none.
func (s *Store) MiningWorker(ctx context.Context, puid int32, workerID int64) (w MiningWorker, ok bool, err error) {
	row := s.db.QueryRowContext(ctx, selectMiningWorkers+" WHERE puid = ? AND worker_id = ?", puid, workerID)
	w, err = scanMiningWorker(row)
	if err == sql.ErrNoRows {
		return MiningWorker{}, false, nil
	}
	if err != nil {
		return MiningWorker{}, false, fmt.Errorf("store: mining worker %d/%d: %w", puid, workerID, err)
	}
	return w, true, nil
}

// MiningWorkers returns a user's rows ordered by worker id, at most 10,000.
func (s *Store) MiningWorkers(ctx context.Context, puid int32) ([]MiningWorker, error) {
	rows, err := s.db.QueryContext(ctx, selectMiningWorkers+" WHERE puid = ? ORDER BY worker_id LIMIT ?", puid, maxRows)
	if err != nil {
		return nil, fmt.Errorf("store: mining workers of %d: %w", puid, err)
	}
	defer rows.Close()
	var out []MiningWorker
	for rows.Next() {
		w, err := scanMiningWorker(rows)
		if err != nil {
			return nil, fmt.Errorf("store: mining workers of %d: %w", puid, err)
		}
		out = append(out, w)
	}
	return out, rows.Err()
}
