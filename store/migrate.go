package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// migrationsTable records which schema versions are applied. The prefix keeps
// it apart from anything in an existing btcpool database.
const migrationsTable = "hashpool_schema_migrations"

// migration is one schema version. Every statement is idempotent (IF NOT
// EXISTS), so a crash between a statement and the version row is repaired by
// the next start, and a btcpool database whose tables already exist is
// adopted as it is.
type migration struct {
	version int
	name    string
	sqlite  []string
	mysql   []string
}

// statsColumnsMySQL are the value columns every stats_* table shares (§7.3).
const statsColumnsMySQL = "`share_accept` bigint NOT NULL DEFAULT 0,\n" +
	"`share_stale` bigint NOT NULL DEFAULT 0,\n" +
	"`share_reject` bigint NOT NULL DEFAULT 0,\n" +
	"`reject_detail` varchar(255) NOT NULL DEFAULT '',\n" +
	"`reject_rate` double NOT NULL DEFAULT 0,\n" +
	"`score` decimal(35,25) NOT NULL DEFAULT 0,\n" +
	"`earn` decimal(35,0) NOT NULL DEFAULT 0,\n"

const statsColumnsSQLite = "share_accept INTEGER NOT NULL DEFAULT 0,\n" +
	"share_stale INTEGER NOT NULL DEFAULT 0,\n" +
	"share_reject INTEGER NOT NULL DEFAULT 0,\n" +
	"reject_detail TEXT NOT NULL DEFAULT '',\n" +
	"reject_rate REAL NOT NULL DEFAULT 0,\n" +
	"score REAL NOT NULL DEFAULT 0,\n" +
	"earn INTEGER NOT NULL DEFAULT 0,\n"

func statsTableMySQL(name, keyCols, extra, unique string) string {
	return "CREATE TABLE IF NOT EXISTS `" + name + "` (\n" +
		"`id` bigint NOT NULL AUTO_INCREMENT,\n" + keyCols + statsColumnsMySQL + extra +
		"`created_at` timestamp NULL DEFAULT NULL,\n" +
		"`updated_at` timestamp NULL DEFAULT NULL,\n" +
		"PRIMARY KEY (`id`),\n" + unique +
		"\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
}

func statsTableSQLite(name, keyCols, extra, unique string) string {
	return "CREATE TABLE IF NOT EXISTS " + name + " (\n" +
		"id INTEGER PRIMARY KEY AUTOINCREMENT,\n" + keyCols + statsColumnsSQLite + extra +
		"created_at DATETIME NULL DEFAULT NULL,\n" +
		"updated_at DATETIME NULL DEFAULT NULL,\n" + unique + "\n)"
}

var migrations = []migration{{
	version: 1,
	name:    "btcpool tables (found_blocks, found_nmc_blocks, mining_workers, stats_*)",
	mysql: []string{
		"CREATE TABLE IF NOT EXISTS `found_blocks` (\n" +
			"`id` int NOT NULL AUTO_INCREMENT,\n" +
			"`puid` int NOT NULL,\n" +
			"`worker_id` bigint NOT NULL,\n" +
			"`worker_full_name` varchar(50) NOT NULL,\n" +
			"`job_id` bigint unsigned NOT NULL,\n" +
			"`height` int NOT NULL,\n" +
			"`is_orphaned` tinyint NOT NULL DEFAULT 0,\n" +
			"`hash` char(64) NOT NULL,\n" +
			"`rewards` bigint NOT NULL,\n" +
			"`size` int NOT NULL,\n" +
			"`prev_hash` char(64) NOT NULL,\n" +
			"`bits` int unsigned NOT NULL,\n" +
			"`version` int NOT NULL,\n" +
			"`created_at` datetime NULL DEFAULT NULL,\n" +
			"PRIMARY KEY (`id`),\n" +
			"UNIQUE KEY `hash` (`hash`),\n" +
			"KEY `height` (`height`)\n" +
			") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
		"CREATE TABLE IF NOT EXISTS `found_nmc_blocks` (\n" +
			"`id` int NOT NULL AUTO_INCREMENT,\n" +
			"`bitcoin_block_hash` char(64) NOT NULL,\n" +
			"`aux_block_hash` char(64) NOT NULL,\n" +
			"`aux_pow` text NOT NULL,\n" +
			"`is_orphaned` tinyint NOT NULL DEFAULT 0,\n" +
			"`chain_name` varchar(20) NOT NULL DEFAULT '',\n" +
			"`submit_response` varchar(255) NOT NULL DEFAULT '',\n" +
			"`created_at` datetime NOT NULL,\n" +
			"PRIMARY KEY (`id`),\n" +
			"UNIQUE KEY `aux_block_hash` (`aux_block_hash`)\n" +
			") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
		"CREATE TABLE IF NOT EXISTS `mining_workers` (\n" +
			"`worker_id` bigint NOT NULL,\n" +
			"`puid` int NOT NULL,\n" +
			"`group_id` int NOT NULL,\n" +
			"`worker_name` varchar(50) NULL DEFAULT NULL,\n" +
			"`accept_1m` bigint NOT NULL DEFAULT 0,\n" +
			"`accept_5m` bigint NOT NULL DEFAULT 0,\n" +
			"`accept_15m` bigint NOT NULL DEFAULT 0,\n" +
			"`stale_15m` bigint NOT NULL DEFAULT 0,\n" +
			"`reject_15m` bigint NOT NULL DEFAULT 0,\n" +
			"`reject_detail_15m` varchar(255) NOT NULL DEFAULT '',\n" +
			"`accept_1h` bigint NOT NULL DEFAULT 0,\n" +
			"`stale_1h` bigint NOT NULL DEFAULT 0,\n" +
			"`reject_1h` bigint NOT NULL DEFAULT 0,\n" +
			"`reject_detail_1h` varchar(255) NOT NULL DEFAULT '',\n" +
			"`accept_count` int NOT NULL DEFAULT 0,\n" +
			"`last_share_ip` char(16) NOT NULL DEFAULT '0.0.0.0',\n" +
			"`last_share_time` timestamp NOT NULL DEFAULT '1970-01-01 00:00:01',\n" +
			"`miner_agent` varchar(30) NULL DEFAULT NULL,\n" +
			"`created_at` timestamp NULL DEFAULT NULL,\n" +
			"`updated_at` timestamp NULL DEFAULT NULL,\n" +
			"UNIQUE KEY `puid_worker_id` (`puid`,`worker_id`),\n" +
			"KEY `puid_group_id` (`puid`,`group_id`),\n" +
			"KEY `puid_worker_name` (`puid`,`worker_name`)\n" +
			") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
		statsTableMySQL("stats_pool_hour", "`hour` int NOT NULL,\n", "", "UNIQUE KEY `hour` (`hour`)"),
		statsTableMySQL("stats_pool_day", "`day` int NOT NULL,\n", "`lucky` double NOT NULL DEFAULT 0,\n", "UNIQUE KEY `day` (`day`)"),
		statsTableMySQL("stats_users_hour", "`puid` int NOT NULL,\n`hour` int NOT NULL,\n", "", "UNIQUE KEY `puid_hour` (`puid`,`hour`)"),
		statsTableMySQL("stats_users_day", "`puid` int NOT NULL,\n`day` int NOT NULL,\n", "", "UNIQUE KEY `puid_day` (`puid`,`day`)"),
		statsTableMySQL("stats_workers_hour", "`puid` int NOT NULL,\n`worker_id` bigint NOT NULL,\n`hour` int NOT NULL,\n", "", "UNIQUE KEY `puid_worker_id_hour` (`puid`,`worker_id`,`hour`)"),
		statsTableMySQL("stats_workers_day", "`puid` int NOT NULL,\n`worker_id` bigint NOT NULL,\n`day` int NOT NULL,\n", "", "UNIQUE KEY `puid_worker_id_day` (`puid`,`worker_id`,`day`)"),
	},
	sqlite: []string{
		`CREATE TABLE IF NOT EXISTS found_blocks (
id INTEGER PRIMARY KEY AUTOINCREMENT,
puid INTEGER NOT NULL,
worker_id INTEGER NOT NULL,
worker_full_name TEXT NOT NULL,
job_id INTEGER NOT NULL,
height INTEGER NOT NULL,
is_orphaned INTEGER NOT NULL DEFAULT 0,
hash TEXT NOT NULL UNIQUE,
rewards INTEGER NOT NULL,
size INTEGER NOT NULL,
prev_hash TEXT NOT NULL,
bits INTEGER NOT NULL,
version INTEGER NOT NULL,
created_at DATETIME NULL DEFAULT NULL
)`,
		`CREATE INDEX IF NOT EXISTS found_blocks_height ON found_blocks (height)`,
		`CREATE TABLE IF NOT EXISTS found_nmc_blocks (
id INTEGER PRIMARY KEY AUTOINCREMENT,
bitcoin_block_hash TEXT NOT NULL,
aux_block_hash TEXT NOT NULL UNIQUE,
aux_pow TEXT NOT NULL,
is_orphaned INTEGER NOT NULL DEFAULT 0,
chain_name TEXT NOT NULL DEFAULT '',
submit_response TEXT NOT NULL DEFAULT '',
created_at DATETIME NOT NULL
)`,
		`CREATE TABLE IF NOT EXISTS mining_workers (
worker_id INTEGER NOT NULL,
puid INTEGER NOT NULL,
group_id INTEGER NOT NULL,
worker_name TEXT NULL DEFAULT NULL,
accept_1m INTEGER NOT NULL DEFAULT 0,
accept_5m INTEGER NOT NULL DEFAULT 0,
accept_15m INTEGER NOT NULL DEFAULT 0,
stale_15m INTEGER NOT NULL DEFAULT 0,
reject_15m INTEGER NOT NULL DEFAULT 0,
reject_detail_15m TEXT NOT NULL DEFAULT '',
accept_1h INTEGER NOT NULL DEFAULT 0,
stale_1h INTEGER NOT NULL DEFAULT 0,
reject_1h INTEGER NOT NULL DEFAULT 0,
reject_detail_1h TEXT NOT NULL DEFAULT '',
accept_count INTEGER NOT NULL DEFAULT 0,
last_share_ip TEXT NOT NULL DEFAULT '0.0.0.0',
last_share_time DATETIME NOT NULL DEFAULT '1970-01-01 00:00:01',
miner_agent TEXT NULL DEFAULT NULL,
created_at DATETIME NULL DEFAULT NULL,
updated_at DATETIME NULL DEFAULT NULL,
UNIQUE (puid, worker_id)
)`,
		`CREATE INDEX IF NOT EXISTS mining_workers_puid_group_id ON mining_workers (puid, group_id)`,
		`CREATE INDEX IF NOT EXISTS mining_workers_puid_worker_name ON mining_workers (puid, worker_name)`,
		statsTableSQLite("stats_pool_hour", "hour INTEGER NOT NULL,\n", "", "UNIQUE (hour)"),
		statsTableSQLite("stats_pool_day", "day INTEGER NOT NULL,\n", "lucky REAL NOT NULL DEFAULT 0,\n", "UNIQUE (day)"),
		statsTableSQLite("stats_users_hour", "puid INTEGER NOT NULL,\nhour INTEGER NOT NULL,\n", "", "UNIQUE (puid, hour)"),
		statsTableSQLite("stats_users_day", "puid INTEGER NOT NULL,\nday INTEGER NOT NULL,\n", "", "UNIQUE (puid, day)"),
		statsTableSQLite("stats_workers_hour", "puid INTEGER NOT NULL,\nworker_id INTEGER NOT NULL,\nhour INTEGER NOT NULL,\n", "", "UNIQUE (puid, worker_id, hour)"),
		statsTableSQLite("stats_workers_day", "puid INTEGER NOT NULL,\nworker_id INTEGER NOT NULL,\nday INTEGER NOT NULL,\n", "", "UNIQUE (puid, worker_id, day)"),
	},
}, {
	// btcpool's table for RSK is unconfirmed (spec §7.3): hashpool's own, one row per parent
	// header submitted to RSK (see FoundRSKBlock).
	version: 2,
	name:    "found_rsk_blocks (RSK merged mining)",
	mysql: []string{
		"CREATE TABLE IF NOT EXISTS `found_rsk_blocks` (\n" +
			"`id` int NOT NULL AUTO_INCREMENT,\n" +
			"`bitcoin_block_hash` char(64) NOT NULL,\n" +
			"`rsk_block_hash` char(64) NOT NULL,\n" +
			"`height` int NOT NULL,\n" +
			"`job_id` bigint unsigned NOT NULL,\n" +
			"`puid` int NOT NULL,\n" +
			"`worker_id` bigint NOT NULL,\n" +
			"`worker_full_name` varchar(50) NOT NULL,\n" +
			"`fees_for_miner` varchar(80) NOT NULL DEFAULT '',\n" +
			"`is_orphaned` tinyint NOT NULL DEFAULT 0,\n" +
			"`submit_response` varchar(255) NOT NULL DEFAULT '',\n" +
			"`created_at` datetime NOT NULL,\n" +
			"PRIMARY KEY (`id`),\n" +
			"UNIQUE KEY `bitcoin_block_hash` (`bitcoin_block_hash`),\n" +
			"KEY `rsk_block_hash` (`rsk_block_hash`)\n" +
			") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
	},
	sqlite: []string{
		`CREATE TABLE IF NOT EXISTS found_rsk_blocks (
id INTEGER PRIMARY KEY AUTOINCREMENT,
bitcoin_block_hash TEXT NOT NULL UNIQUE,
rsk_block_hash TEXT NOT NULL,
height INTEGER NOT NULL,
job_id INTEGER NOT NULL,
puid INTEGER NOT NULL,
worker_id INTEGER NOT NULL,
worker_full_name TEXT NOT NULL,
fees_for_miner TEXT NOT NULL DEFAULT '',
is_orphaned INTEGER NOT NULL DEFAULT 0,
submit_response TEXT NOT NULL DEFAULT '',
created_at DATETIME NOT NULL
)`,
		`CREATE INDEX IF NOT EXISTS found_rsk_blocks_rsk_hash ON found_rsk_blocks (rsk_block_hash)`,
	},
}}

// SchemaVersion is the schema version this build migrates to.
func SchemaVersion() int { return migrations[len(migrations)-1].version }

// migrate applies every missing migration, then checks that each table has
// the columns the store uses (an old btcpool schema, e.g. with `uid` instead
// of `puid`, fails here with a clear message instead of at the first write).
func (s *Store) migrate(ctx context.Context) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	defer conn.Close()
	if s.dialect == dialectMySQL {
		// Serialise concurrent starters of the same database.
		var got sql.NullInt64
		if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK('hashpool_store_migrate', 60)").Scan(&got); err != nil {
			return fmt.Errorf("store: migrate lock: %w", err)
		}
		if got.Int64 != 1 {
			return fmt.Errorf("store: migrate lock not obtained within 60 s (another process migrating?)")
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT RELEASE_LOCK('hashpool_store_migrate')")
	}
	create := "CREATE TABLE IF NOT EXISTS " + migrationsTable +
		" (version INTEGER NOT NULL PRIMARY KEY, name VARCHAR(200) NOT NULL, applied_at DATETIME NOT NULL)"
	if _, err := conn.ExecContext(ctx, create); err != nil {
		return fmt.Errorf("store: migrate: create %s: %w", migrationsTable, err)
	}
	applied := map[int]bool{}
	rows, err := conn.QueryContext(ctx, "SELECT version FROM "+migrationsTable)
	if err != nil {
		return fmt.Errorf("store: migrate: read versions: %w", err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return err
		}
		applied[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, m := range migrations {
		if applied[m.version] {
			continue
		}
		stmts := m.sqlite
		if s.dialect == dialectMySQL {
			stmts = m.mysql
		}
		for _, q := range stmts {
			if _, err := conn.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("store: migration %d (%s): %w\n%s", m.version, m.name, err, firstLine(q))
			}
		}
		ins := "INSERT INTO " + migrationsTable + " (version, name, applied_at) VALUES (?, ?, ?)"
		if s.dialect == dialectMySQL {
			ins += " ON DUPLICATE KEY UPDATE version = version"
		} else {
			ins += " ON CONFLICT (version) DO NOTHING"
		}
		if _, err := conn.ExecContext(ctx, ins, m.version, m.name, s.nowString()); err != nil {
			return fmt.Errorf("store: migration %d: record version: %w", m.version, err)
		}
		s.log.Info("store: schema migrated", "version", m.version, "name", m.name, "driver", s.Driver())
	}
	return s.verifySchema(ctx, conn)
}

// verifySchema selects every column the store uses from every table.
func (s *Store) verifySchema(ctx context.Context, conn *sql.Conn) error {
	for _, t := range allTables {
		q := "SELECT " + strings.Join(t.columns, ", ") + " FROM " + t.name + " WHERE 1 = 0"
		rows, err := conn.QueryContext(ctx, q)
		if err != nil {
			return fmt.Errorf("store: table %s lacks columns this version needs (%s): %w; an old btcpool schema must be upgraded first",
				t.name, strings.Join(t.columns, ","), err)
		}
		rows.Close()
	}
	for _, u := range uniqueKeys {
		ok, err := s.hasUniqueKey(ctx, conn, u.table, u.column)
		if err != nil {
			return fmt.Errorf("store: checking the unique key on %s.%s: %w", u.table, u.column, err)
		}
		if !ok {
			return fmt.Errorf("store: table %s has no unique key on %s alone; recording a block twice (normal after a restart) would "+
				"duplicate its row. Add it: ALTER TABLE %s ADD UNIQUE KEY %s (%s) (after deleting duplicate rows)",
				u.table, u.column, u.table, u.column, u.column)
		}
	}
	return nil
}

// uniqueKeys are the single-column unique keys idempotent inserts rely on (ON DUPLICATE KEY /
// ON CONFLICT do nothing without them). btcpool's schema has both; a hand-made table may not.
var uniqueKeys = []struct{ table, column string }{
	{"found_blocks", "hash"},
	{"found_nmc_blocks", "aux_block_hash"},
	{"found_rsk_blocks", "bitcoin_block_hash"},
}

// hasUniqueKey reports whether table has a unique index on exactly column. table and column
// come from uniqueKeys only.
func (s *Store) hasUniqueKey(ctx context.Context, conn *sql.Conn, table, column string) (bool, error) {
	if s.dialect == dialectMySQL {
		var n int
		err := conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.statistics s WHERE s.table_schema = DATABASE() "+
			"AND s.table_name = ? AND s.non_unique = 0 AND s.column_name = ? AND s.seq_in_index = 1 "+
			"AND NOT EXISTS (SELECT 1 FROM information_schema.statistics o WHERE o.table_schema = s.table_schema "+
			"AND o.table_name = s.table_name AND o.index_name = s.index_name AND o.seq_in_index > 1)", table, column).Scan(&n)
		return n > 0, err
	}
	rows, err := conn.QueryContext(ctx, "SELECT name FROM pragma_index_list(?) WHERE \"unique\" = 1", table)
	if err != nil {
		return false, err
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return false, err
		}
		names = append(names, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, err
	}
	for _, name := range names {
		var cols []string
		r, err := conn.QueryContext(ctx, "SELECT name FROM pragma_index_info(?)", name)
		if err != nil {
			return false, err
		}
		for r.Next() {
			var c string
			if err := r.Scan(&c); err != nil {
				r.Close()
				return false, err
			}
			cols = append(cols, c)
		}
		r.Close()
		if err := r.Err(); err != nil {
			return false, err
		}
		if len(cols) == 1 && strings.EqualFold(cols[0], column) {
			return true, nil
		}
	}
	return false, nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
