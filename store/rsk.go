package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// FoundRSKBlock is a row of found_rsk_blocks: a parent block header submitted to RSK as a
// merged-mined RSK block (mnr_submitBitcoinBlockPartialMerkle).
//
// btcpool's own table for RSK is unconfirmed (spec §7.3; btcpool HEAD's blkmaker writes RSK
// rows into its found_aux_block_table with chain_name "rsk"): hashpool keeps RSK in a table of
// its own, one row per submitted parent header (bitcoin_block_hash is the unique key, so
// handling a share twice is harmless), with the RSK work hash, the share's worker and the
// node's answer.
type FoundRSKBlock struct {
	ID               int64  // assigned by the database
	BitcoinBlockHash string // the parent header's hash, display hex
	RSKBlockHash     string // blockHashForMergedMining, 64 hex digits without 0x
	Height           int32  // the parent (Bitcoin) height of the job
	JobID            uint64
	PUID             int32
	WorkerID         int64
	WorkerFullName   string // cut to 50 characters
	FeesForMiner     string // mnr_getWork's feesPaidToMiner; cut to 80 characters
	IsOrphaned       bool
	SubmitResponse   string // the node's answer; cut to 255 characters
	CreatedAt        time.Time
}

const foundRSKColumns = "bitcoin_block_hash, rsk_block_hash, height, job_id, puid, worker_id, worker_full_name, fees_for_miner, is_orphaned, submit_response, created_at"

// InsertFoundRSKBlock records a submitted RSK block. A parent hash already recorded is left as
// it is and is not an error. Hashes are stored in lower case, the RSK hash without 0x.
func (s *Store) InsertFoundRSKBlock(ctx context.Context, b FoundRSKBlock) error {
	rsk := strings.TrimPrefix(strings.TrimPrefix(b.RSKBlockHash, "0x"), "0X")
	if !validHash(b.BitcoinBlockHash) || !validHash(rsk) {
		return fmt.Errorf("store: RSK block: hashes %q / %q must be 64 hex digits", bounded(b.BitcoinBlockHash, 80), bounded(b.RSKBlockHash, 80))
	}
	created := s.nowString()
	if !b.CreatedAt.IsZero() {
		created = formatTime(b.CreatedAt)
	}
	q := "INSERT INTO found_rsk_blocks (" + foundRSKColumns + ") VALUES " + placeholders(11)
	if s.dialect == dialectMySQL {
		q += " ON DUPLICATE KEY UPDATE id = id"
	} else {
		q += " ON CONFLICT (bitcoin_block_hash) DO NOTHING"
	}
	orphaned := 0
	if b.IsOrphaned {
		orphaned = 1
	}
	_, err := s.db.ExecContext(ctx, q, strings.ToLower(b.BitcoinBlockHash), strings.ToLower(rsk), b.Height, s.u64Arg(b.JobID),
		b.PUID, b.WorkerID, bounded(b.WorkerFullName, 50), bounded(b.FeesForMiner, 80), orphaned, bounded(b.SubmitResponse, 255), created)
	if err != nil {
		return fmt.Errorf("store: insert RSK block %s: %w", b.BitcoinBlockHash, err)
	}
	return nil
}

// FoundRSKBlocks returns up to limit RSK blocks, newest first.
func (s *Store) FoundRSKBlocks(ctx context.Context, limit int) ([]FoundRSKBlock, error) {
	if limit <= 0 || limit > maxRows {
		limit = maxRows
	}
	rows, err := s.db.QueryContext(ctx, "SELECT id, "+foundRSKColumns+" FROM found_rsk_blocks ORDER BY id DESC LIMIT ?", limit)
	if err != nil {
		return nil, fmt.Errorf("store: RSK blocks: %w", err)
	}
	defer rows.Close()
	var out []FoundRSKBlock
	for rows.Next() {
		var b FoundRSKBlock
		var orphaned int
		if err := rows.Scan(&b.ID, &b.BitcoinBlockHash, &b.RSKBlockHash, &b.Height, u64Value{&b.JobID}, &b.PUID, &b.WorkerID,
			&b.WorkerFullName, &b.FeesForMiner, &orphaned, &b.SubmitResponse, timeValue{&b.CreatedAt}); err != nil {
			return nil, fmt.Errorf("store: RSK blocks: %w", err)
		}
		b.IsOrphaned = orphaned != 0
		out = append(out, b)
	}
	return out, rows.Err()
}
