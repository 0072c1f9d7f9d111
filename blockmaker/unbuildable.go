package blockmaker

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/sha"
)

// maxUnbuildableValue bounds the message bytes copied into one unbuildable-share line (a solved
// share is well under 2 KB; anything longer is not one).
const maxUnbuildableValue = 64 << 10

// UnbuildableShare is one line of Options.UnbuildableFile: a solved share that could not become
// a block, with everything needed to rebuild the block by hand. ValueHex is the message exactly
// as it was on the solved-share topic: publishing it again (after the missing job and template
// are back on their topics) makes blkmaker try it again. The same share can appear twice when
// it was handled twice (a restart between the write and the commit).
type UnbuildableShare struct {
	Time      time.Time `json:"time"`
	Stage     string    `json:"stage"` // "decode", "lookup" (job or template unknown) or "assemble" (bad coinbase, merkle mismatch)
	Error     string    `json:"error"`
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	ValueHex  string    `json:"value_hex"`
	Truncated bool      `json:"truncated,omitempty"` // ValueHex holds only the first 64 KiB

	// Filled when the share could be decoded.
	JobID          uint64 `json:"job_id,omitempty"`
	Height         int32  `json:"height,omitempty"`
	BlockHash      string `json:"block_hash,omitempty"` // display hex
	HeaderHex      string `json:"header_hex,omitempty"`
	CoinbaseHex    string `json:"coinbase_hex,omitempty"`
	UserID         int32  `json:"user_id,omitempty"`
	WorkerID       int64  `json:"worker_id,omitempty"`
	WorkerFullName string `json:"worker_full_name,omitempty"`
	GbtHash        string `json:"gbthash,omitempty"` // the job's template, when the job was known
}

func newUnbuildable(stage string, err error, msg bus.Message, s *btcpool.SolvedShare, gbtHash string) *UnbuildableShare {
	v := msg.Value
	u := &UnbuildableShare{Time: time.Now().UTC(), Stage: stage, Error: err.Error(), Topic: msg.Topic,
		Partition: msg.Partition, Offset: msg.Offset, GbtHash: gbtHash}
	if len(v) > maxUnbuildableValue {
		v, u.Truncated = v[:maxUnbuildableValue], true
	}
	u.ValueHex = hex.EncodeToString(v)
	if s != nil {
		u.JobID, u.Height, u.UserID, u.WorkerID, u.WorkerFullName = s.JobID, s.Height, s.UserID, s.WorkerID, s.WorkerFullName
		u.BlockHash = sha.DisplayHex(sha.DoubleSHA256(s.Header[:]))
		u.HeaderHex = hex.EncodeToString(s.Header[:])
		u.CoinbaseHex = hex.EncodeToString(s.Coinbase)
	}
	return u
}

// unbuildableFile appends UnbuildableShare lines to one file, fsync'ing each.
type unbuildableFile struct {
	path string
	mu   sync.Mutex
}

func (f *unbuildableFile) append(u *UnbuildableShare) error {
	line, err := json.Marshal(u)
	if err != nil {
		return err
	}
	line = append(line, '\n')
	f.mu.Lock()
	defer f.mu.Unlock()
	dir := filepath.Dir(f.path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	_, statErr := os.Stat(f.path)
	fd, err := os.OpenFile(f.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := fd.Write(line); err != nil {
		fd.Close()
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	if err := fd.Sync(); err != nil {
		fd.Close()
		return fmt.Errorf("fsync %s: %w", f.path, err)
	}
	if err := fd.Close(); err != nil {
		return err
	}
	if os.IsNotExist(statErr) { // a new file: make its directory entry durable too
		if d, err := os.Open(dir); err == nil {
			err = d.Sync()
			d.Close()
			if err != nil {
				return fmt.Errorf("fsync %s: %w", dir, err)
			}
		}
	}
	return nil
}

// ReadUnbuildable reads the lines of an unbuildable-share file (for tools and tests). A torn
// last line (a crash during the write, before its share was committed) is skipped.
func ReadUnbuildable(path string) ([]UnbuildableShare, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []UnbuildableShare
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			break // torn last line
		}
		line := b[:i]
		b = b[i+1:]
		if len(line) == 0 {
			continue
		}
		var u UnbuildableShare
		if err := json.Unmarshal(line, &u); err != nil {
			return out, fmt.Errorf("blockmaker: %s: line %d: %w", path, len(out)+1, err)
		}
		out = append(out, u)
	}
	return out, nil
}
