package slparser

import (
	"context"
	"time"

	"github.com/hashpool/hashpool/store"
)

// StatsStore is where the statistics go; *store.Store implements it.
type StatsStore interface {
	UpsertStatsPoolHour(ctx context.Context, rows []store.PoolHour) error
	UpsertStatsPoolDay(ctx context.Context, rows []store.PoolDay) error
	UpsertStatsUsersHour(ctx context.Context, rows []store.UserHour) error
	UpsertStatsUsersDay(ctx context.Context, rows []store.UserDay) error
	UpsertStatsWorkersHour(ctx context.Context, rows []store.WorkerHour) error
	UpsertStatsWorkersDay(ctx context.Context, rows []store.WorkerDay) error
}

// Flush writes every hour and day modified since the last successful flush to the stats_*
// tables (btcpool writes only modified hours too). Nothing is marked written unless every
// table was written.
func (d *Day) Flush(ctx context.Context, db StatsStore) (rows int, err error) {
	var (
		poolH  []store.PoolHour
		poolD  []store.PoolDay
		userH  []store.UserHour
		userD  []store.UserDay
		workH  []store.WorkerHour
		workD  []store.WorkerDay
		marked []*keyStats
	)
	dayNum := store.DayOf(d.date)
	for k, ks := range d.keys {
		if !ks.dayModified {
			continue
		}
		marked = append(marked, ks)
		for h := range 24 {
			if !ks.modified[h] {
				continue
			}
			hour := store.HourOf(d.date.Add(time.Duration(h) * time.Hour))
			st := ks.hours[h].Row()
			switch {
			case k == Key{}:
				poolH = append(poolH, store.PoolHour{Hour: hour, ShareStats: st})
			case k.WorkerID == 0:
				userH = append(userH, store.UserHour{PUID: k.PUID, Hour: hour, ShareStats: st})
			default:
				workH = append(workH, store.WorkerHour{PUID: k.PUID, WorkerID: k.WorkerID, Hour: hour, ShareStats: st})
			}
		}
		st := ks.day.Row()
		switch {
		case k == Key{}:
			poolD = append(poolD, store.PoolDay{Day: dayNum, ShareStats: st})
		case k.WorkerID == 0:
			userD = append(userD, store.UserDay{PUID: k.PUID, Day: dayNum, ShareStats: st})
		default:
			workD = append(workD, store.WorkerDay{PUID: k.PUID, WorkerID: k.WorkerID, Day: dayNum, ShareStats: st})
		}
	}
	steps := []func() error{
		func() error { return upsert(ctx, poolH, db.UpsertStatsPoolHour) },
		func() error { return upsert(ctx, poolD, db.UpsertStatsPoolDay) },
		func() error { return upsert(ctx, userH, db.UpsertStatsUsersHour) },
		func() error { return upsert(ctx, userD, db.UpsertStatsUsersDay) },
		func() error { return upsert(ctx, workH, db.UpsertStatsWorkersHour) },
		func() error { return upsert(ctx, workD, db.UpsertStatsWorkersDay) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return 0, err
		}
	}
	for _, ks := range marked {
		ks.modified = [24]bool{}
		ks.dayModified = false
	}
	return len(poolH) + len(poolD) + len(userH) + len(userD) + len(workH) + len(workD), nil
}

func upsert[T any](ctx context.Context, rows []T, fn func(context.Context, []T) error) error {
	if len(rows) == 0 {
		return nil
	}
	return fn(ctx, rows)
}
