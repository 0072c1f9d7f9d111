// Package store owns the pool's database: the schema of btcpool's tables
// (found_blocks, found_nmc_blocks, mining_workers, stats_{pool,users,workers}_{hour,day};
// spec §7.3), its versioned migrations, and typed reads and writes of those
// tables on two engines, and hashpool's found_rsk_blocks (migration 2: RSK merged mining,
// one row per parent header submitted to RSK; btcpool's own RSK table is unconfirmed):
//
//   - SQLite through modernc.org/sqlite (pure Go), the embedded default;
//   - MySQL/MariaDB through go-sql-driver/mysql, with btcpool's column types,
//     so an existing btcpool deployment's database can be used as it is.
//
// Writes follow btcpool: statistics and worker rows are upserted in bulk
// (MySQL: CREATE TEMPORARY TABLE ... LIKE, multi-row INSERT, then INSERT ...
// SELECT ... ON DUPLICATE KEY UPDATE; SQLite: INSERT ... ON CONFLICT DO
// UPDATE), found blocks are inserted once per hash so re-processing a solved
// share is harmless (concurrently too: the unique key on hash decides, and Open
// refuses an existing found_blocks or found_nmc_blocks without that key), and retention deletes old statistics like slparser does.
//
// All times are UTC and stored as "YYYY-MM-DD HH:MM:SS" (MySQL sessions run
// with time_zone '+00:00'). Every string written is bounded to its column's
// width and made valid UTF-8 first; values that cannot be stored faithfully
// (a malformed block hash, a row whose key is out of range) are errors.
//
// The store must never decide pool policy (what a share is worth, when a
// worker expires): components compute, the store persists. It must never
// build SQL from input strings; values always go through placeholders, and
// table names come from this package's constants only.
package store
