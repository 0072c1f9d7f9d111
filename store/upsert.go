package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// table names a table and every column the store reads or writes in it; the
// list is checked against the database at start (verifySchema).
type table struct {
	name    string
	columns []string
}

var allTables = []table{
	{"found_blocks", append([]string{"id"}, strings.Split(foundBlockColumns, ", ")...)},
	{"found_nmc_blocks", []string{"id", "bitcoin_block_hash", "aux_block_hash", "aux_pow", "is_orphaned", "chain_name", "submit_response", "created_at"}},
	{"found_rsk_blocks", append([]string{"id"}, strings.Split(foundRSKColumns, ", ")...)},
	{"mining_workers", miningWorkerColumns},
	{statsPoolHour.name, statsPoolHour.allColumns()},
	{statsPoolDay.name, append(statsPoolDay.allColumns(), "lucky")},
	{statsUsersHour.name, statsUsersHour.allColumns()},
	{statsUsersDay.name, statsUsersDay.allColumns()},
	{statsWorkersHour.name, statsWorkersHour.allColumns()},
	{statsWorkersDay.name, statsWorkersDay.allColumns()},
}

// upsert describes a bulk insert-or-update of one table.
type upsert struct {
	table    string
	insert   []string // columns given for each row, in argument order
	conflict []string // the unique key (SQLite ON CONFLICT target)
	update   []string // columns overwritten when the key exists
}

// rowsPerStatement keeps a multi-row INSERT well under both engines' limits
// on placeholders (MySQL 65,535; SQLite 32,766) and packet sizes.
func (u *upsert) rowsPerStatement() int {
	n := 30000 / len(u.insert)
	if n > 500 {
		n = 500
	}
	return n
}

// run writes n rows; args appends row i's values (len(u.insert) of them) to
// dst. It is all or nothing: one transaction. Several rows with the same key
// in one call: the last one wins.
//
// MySQL does it like btcpool: rows go into a temporary copy of the table
// (CREATE TEMPORARY TABLE ... LIKE), then one INSERT ... SELECT ... ON
// DUPLICATE KEY UPDATE merges them, so the real table is locked for one
// statement only. SQLite uses INSERT ... ON CONFLICT DO UPDATE directly.
func (s *Store) run(ctx context.Context, u *upsert, n int, args func(i int, dst []any) []any) error {
	if n == 0 {
		return nil
	}
	cols := strings.Join(u.insert, ", ")
	var set strings.Builder
	for i, c := range u.update {
		if i > 0 {
			set.WriteString(", ")
		}
		if s.dialect == dialectMySQL {
			fmt.Fprintf(&set, "%s = VALUES(%s)", c, c)
		} else {
			fmt.Fprintf(&set, "%s = excluded.%s", c, c)
		}
	}
	target := u.table
	var tail string
	if s.dialect == dialectMySQL {
		target = u.table + "_tmp"
		tail = " ON DUPLICATE KEY UPDATE " + set.String()
	} else {
		tail = " ON CONFLICT (" + strings.Join(u.conflict, ", ") + ") DO UPDATE SET " + set.String()
	}
	row := placeholders(len(u.insert))
	per := u.rowsPerStatement()

	return s.inTx(ctx, func(tx *sql.Tx) error {
		if s.dialect == dialectMySQL {
			// Temporary tables belong to the connection; the transaction
			// pins one. A leftover from a failed call on the same
			// connection is dropped first.
			for _, q := range []string{
				"DROP TEMPORARY TABLE IF EXISTS " + target,
				"CREATE TEMPORARY TABLE " + target + " LIKE " + u.table,
			} {
				if _, err := tx.ExecContext(ctx, q); err != nil {
					return fmt.Errorf("store: %s: %w", u.table, err)
				}
			}
		}
		vals := make([]any, 0, per*len(u.insert))
		for start := 0; start < n; start += per {
			end := min(start+per, n)
			vals = vals[:0]
			var q strings.Builder
			q.WriteString("INSERT INTO " + target + " (" + cols + ") VALUES ")
			for i := start; i < end; i++ {
				if i > start {
					q.WriteByte(',')
				}
				q.WriteString(row)
				vals = args(i, vals)
			}
			if len(vals) != (end-start)*len(u.insert) {
				return fmt.Errorf("store: %s: internal error: %d values for %d rows", u.table, len(vals), end-start)
			}
			q.WriteString(tail)
			if _, err := tx.ExecContext(ctx, q.String(), vals...); err != nil {
				return fmt.Errorf("store: upsert %s: %w", u.table, err)
			}
		}
		if s.dialect == dialectMySQL {
			merge := "INSERT INTO " + u.table + " (" + cols + ") SELECT " + cols + " FROM " + target + tail
			if _, err := tx.ExecContext(ctx, merge); err != nil {
				return fmt.Errorf("store: merge %s: %w", u.table, err)
			}
			if _, err := tx.ExecContext(ctx, "DROP TEMPORARY TABLE "+target); err != nil {
				return fmt.Errorf("store: %s: %w", u.table, err)
			}
		}
		return nil
	})
}
