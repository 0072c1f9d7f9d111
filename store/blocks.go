package store

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strings"
	"time"
)

// FoundBlock is a row of found_blocks: a block the pool found (§7.2, §7.3).
type FoundBlock struct {
	ID             int64 // assigned by the database; ignored on insert
	PUID           int32
	WorkerID       int64
	WorkerFullName string // "user.worker"; cut to 50 characters
	JobID          uint64
	Height         int32
	IsOrphaned     bool
	Hash           string // block hash, 64 hex digits, display order
	Rewards        int64  // sum of the coinbase outputs, satoshi
	Size           int32  // serialized block size with witness data, bytes
	PrevHash       string // 64 hex digits, display order
	Bits           uint32
	Version        int32
	CreatedAt      time.Time // zero: the store's clock
}

const foundBlockColumns = "puid, worker_id, worker_full_name, job_id, height, is_orphaned, hash, rewards, size, prev_hash, bits, version, created_at"

// validHash reports whether h is 64 hex digits.
func validHash(h string) bool {
	if len(h) != 64 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// InsertFoundBlock records a found block. A block whose hash is already
// recorded is left as it is and is not an error, so re-processing a solved
// share is harmless. The hashes are stored in lower case.
func (s *Store) InsertFoundBlock(ctx context.Context, b FoundBlock) error {
	if !validHash(b.Hash) || !validHash(b.PrevHash) {
		return fmt.Errorf("store: found block: hash %q / prev_hash %q must be 64 hex digits", bounded(b.Hash, 80), bounded(b.PrevHash, 80))
	}
	if b.Height < 0 || b.Size < 0 {
		return fmt.Errorf("store: found block %s: negative height %d or size %d", b.Hash, b.Height, b.Size)
	}
	created := s.nowString()
	if !b.CreatedAt.IsZero() {
		created = formatTime(b.CreatedAt)
	}
	q := "INSERT INTO found_blocks (" + foundBlockColumns + ") VALUES " + placeholders(13)
	if s.dialect == dialectMySQL {
		q += " ON DUPLICATE KEY UPDATE id = id"
	} else {
		q += " ON CONFLICT (hash) DO NOTHING"
	}
	orphaned := 0
	if b.IsOrphaned {
		orphaned = 1
	}
	_, err := s.db.ExecContext(ctx, q, b.PUID, b.WorkerID, bounded(b.WorkerFullName, 50), s.u64Arg(b.JobID),
		b.Height, orphaned, strings.ToLower(b.Hash), b.Rewards, b.Size, strings.ToLower(b.PrevHash),
		int64(b.Bits), b.Version, created)
	if err != nil {
		return fmt.Errorf("store: insert found block %s: %w", b.Hash, err)
	}
	return nil
}

func scanFoundBlock(sc interface{ Scan(...any) error }) (FoundBlock, error) {
	var b FoundBlock
	var orphaned int
	var bits int64
	err := sc.Scan(&b.ID, &b.PUID, &b.WorkerID, &b.WorkerFullName, u64Value{&b.JobID}, &b.Height, &orphaned,
		&b.Hash, &b.Rewards, &b.Size, &b.PrevHash, &bits, &b.Version, timeValue{&b.CreatedAt})
	b.IsOrphaned = orphaned != 0
	b.Bits = uint32(bits)
	return b, err
}

// FoundBlockByHash returns the block with this hash; ok is false when there
// is none.
func (s *Store) FoundBlockByHash(ctx context.Context, hash string) (b FoundBlock, ok bool, err error) {
	if !validHash(hash) {
		return b, false, fmt.Errorf("store: block hash %q must be 64 hex digits", bounded(hash, 80))
	}
	row := s.db.QueryRowContext(ctx, "SELECT id, "+foundBlockColumns+" FROM found_blocks WHERE hash = ?", strings.ToLower(hash))
	b, err = scanFoundBlock(row)
	if err == sql.ErrNoRows {
		return FoundBlock{}, false, nil
	}
	if err != nil {
		return FoundBlock{}, false, fmt.Errorf("store: found block %s: %w", hash, err)
	}
	return b, true, nil
}

// maxRows bounds every list query.
const maxRows = 10000

// FoundBlocks returns up to limit found blocks, newest (highest id) first.
// limit is capped at 10,000.
func (s *Store) FoundBlocks(ctx context.Context, limit int) ([]FoundBlock, error) {
	if limit <= 0 || limit > maxRows {
		limit = maxRows
	}
	rows, err := s.db.QueryContext(ctx, "SELECT id, "+foundBlockColumns+" FROM found_blocks ORDER BY id DESC LIMIT ?", limit)
	if err != nil {
		return nil, fmt.Errorf("store: found blocks: %w", err)
	}
	defer rows.Close()
	var out []FoundBlock
	for rows.Next() {
		b, err := scanFoundBlock(rows)
		if err != nil {
			return nil, fmt.Errorf("store: found blocks: %w", err)
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// SetBlockOrphaned marks the block with this hash orphaned (or not). It
// reports whether such a block exists.
func (s *Store) SetBlockOrphaned(ctx context.Context, hash string, orphaned bool) (bool, error) {
	if !validHash(hash) {
		return false, fmt.Errorf("store: block hash %q must be 64 hex digits", bounded(hash, 80))
	}
	v := 0
	if orphaned {
		v = 1
	}
	if _, err := s.db.ExecContext(ctx, "UPDATE found_blocks SET is_orphaned = ? WHERE hash = ?", v, strings.ToLower(hash)); err != nil {
		return false, fmt.Errorf("store: orphan block %s: %w", hash, err)
	}
	// MySQL reports rows changed, not rows matched: look the block up instead.
	_, ok, err := s.FoundBlockByHash(ctx, hash)
	return ok, err
}

// FoundAuxBlock is a row of found_nmc_blocks: a merged-mined block (§9).
type FoundAuxBlock struct {
	ID               int64 // assigned by the database
	BitcoinBlockHash string
	AuxBlockHash     string
	AuxPow           string // hex; at most 64 KiB (MySQL text)
	IsOrphaned       bool
	ChainName        string // cut to 20 characters
	SubmitResponse   string // cut to 255 characters
	CreatedAt        time.Time
}

// InsertFoundAuxBlock records a merged-mined block. A duplicate aux block
// hash is left as it is and is not an error.
func (s *Store) InsertFoundAuxBlock(ctx context.Context, b FoundAuxBlock) error {
	if !validHash(b.AuxBlockHash) || !validHash(b.BitcoinBlockHash) {
		return fmt.Errorf("store: aux block: hashes %q / %q must be 64 hex digits", bounded(b.AuxBlockHash, 80), bounded(b.BitcoinBlockHash, 80))
	}
	if len(b.AuxPow) > math.MaxUint16 {
		return fmt.Errorf("store: aux block %s: aux_pow of %d bytes exceeds 65535", b.AuxBlockHash, len(b.AuxPow))
	}
	created := s.nowString()
	if !b.CreatedAt.IsZero() {
		created = formatTime(b.CreatedAt)
	}
	q := "INSERT INTO found_nmc_blocks (bitcoin_block_hash, aux_block_hash, aux_pow, is_orphaned, chain_name, submit_response, created_at) VALUES " + placeholders(7)
	if s.dialect == dialectMySQL {
		q += " ON DUPLICATE KEY UPDATE id = id"
	} else {
		q += " ON CONFLICT (aux_block_hash) DO NOTHING"
	}
	orphaned := 0
	if b.IsOrphaned {
		orphaned = 1
	}
	_, err := s.db.ExecContext(ctx, q, strings.ToLower(b.BitcoinBlockHash), strings.ToLower(b.AuxBlockHash),
		strings.ToValidUTF8(b.AuxPow, ""), orphaned, bounded(b.ChainName, 20), bounded(b.SubmitResponse, 255), created)
	if err != nil {
		return fmt.Errorf("store: insert aux block %s: %w", b.AuxBlockHash, err)
	}
	return nil
}

// FoundAuxBlocks returns up to limit merged-mined blocks, newest first.
func (s *Store) FoundAuxBlocks(ctx context.Context, limit int) ([]FoundAuxBlock, error) {
	if limit <= 0 || limit > maxRows {
		limit = maxRows
	}
	rows, err := s.db.QueryContext(ctx, "SELECT id, bitcoin_block_hash, aux_block_hash, aux_pow, is_orphaned, chain_name, submit_response, created_at FROM found_nmc_blocks ORDER BY id DESC LIMIT ?", limit)
	if err != nil {
		return nil, fmt.Errorf("store: aux blocks: %w", err)
	}
	defer rows.Close()
	var out []FoundAuxBlock
	for rows.Next() {
		var b FoundAuxBlock
		var orphaned int
		if err := rows.Scan(&b.ID, &b.BitcoinBlockHash, &b.AuxBlockHash, &b.AuxPow, &orphaned, &b.ChainName, &b.SubmitResponse, timeValue{&b.CreatedAt}); err != nil {
			return nil, fmt.Errorf("store: aux blocks: %w", err)
		}
		b.IsOrphaned = orphaned != 0
		out = append(out, b)
	}
	return out, rows.Err()
}
