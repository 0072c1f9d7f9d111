package logfile

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// ReaderOptions configure a Reader.
type ReaderOptions struct {
	// Follow reads a file that is still growing: at the end of the data,
	// and at an incomplete last segment, Next returns io.EOF and a later
	// call continues once more has been appended. Without Follow an
	// incomplete last segment is ErrTorn.
	Follow bool
	// Offset is where to start: 0 or a value from Reader.Offset.
	Offset int64
	// MaxSegmentSize bounds one segment's decompressed size (default
	// DefaultMaxSegmentSize).
	MaxSegmentSize int
	// Limit, when positive, is where the file ends for this reader: bytes
	// after it are not read (a snapshot at a checkpointed length). Without
	// it the reader shows only what the directory's checkpoint (see
	// Checkpoint) says is durable: a listed file up to its listed length,
	// an unlisted or uncheckpointed file whole. So it never returns a
	// record that a restarting writer would cut off and write again.
	Limit int64
}

// ErrTorn reports a file whose last segment is incomplete (a crash while it
// was written, or a writer that is still writing it).
var ErrTorn = errors.New("share log: torn last segment")

// Reader reads the records of one share-log file (gzip members, zstd
// frames, or a mix), segment by segment. It is not safe for concurrent use.
type Reader struct {
	f      source
	opts   ReaderOptions
	seg    *segmentReader
	next   int64  // file offset of the next segment to decode
	resume int64  // offset from which no returned record is repeated
	data   []byte // decoded records not yet returned: carry + segment
	pos    int
	err    error // sticky corruption error

	cpPath    string // the directory's checkpoint ("" when the name is not a day file's)
	base      string // the file's base name in the checkpoint
	committed int64  // bytes known to be durable and final up to here
}

// OpenReader opens path for reading records.
func OpenReader(path string, opts ReaderOptions) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("logfile: %w", err)
	}
	if opts.Offset < 0 {
		f.Close()
		return nil, fmt.Errorf("logfile: negative offset %d", opts.Offset)
	}
	r := newReader(f, opts)
	r.cpPath = checkpointOf(path)
	r.base = filepath.Base(path)
	return r, nil
}

// source is what a Reader reads: an *os.File, or an in-memory file in tests (the fuzz target
// must not touch the disk on every input). Stat's size is taken anew at each segment.
type source interface {
	io.ReaderAt
	io.Closer
	Stat() (os.FileInfo, error)
}

func newReader(f source, opts ReaderOptions) *Reader {
	return &Reader{f: f, opts: opts, seg: newSegmentReader(opts.MaxSegmentSize), next: opts.Offset, resume: opts.Offset}
}

// Close closes the file.
func (r *Reader) Close() error {
	r.seg.close()
	return r.f.Close()
}

// Offset is a segment boundary from which a new Reader (ReaderOptions.Offset)
// continues without losing a record: every record after it has not been
// returned yet, or belongs to the segment being read now, whose records are
// returned again.
func (r *Reader) Offset() int64 { return r.resume }

// Next returns the payload of the next record (without its length prefix).
// The slice is valid until the next call. At the end of the data it returns
// io.EOF; a torn last segment is ErrTorn (io.EOF in Follow mode); damaged
// data is an error wrapping ErrCorrupt, and stays so.
func (r *Reader) Next() ([]byte, error) {
	if r.err != nil {
		return nil, r.err
	}
	// Each pass either returns or decodes one more segment, moving r.next
	// forward, so the loop is bounded by the file size.
	for {
		if rec, ok, err := r.record(); ok || err != nil {
			return rec, err
		}
		size, err := r.size()
		if err != nil {
			return nil, err
		}
		data, end, err := r.seg.read(r.f, r.next, size)
		switch {
		case err == io.EOF:
			if r.pos < len(r.data) && !r.opts.Follow {
				r.err = fmt.Errorf("%w: %d bytes of a record at the end of the file", ErrCorrupt, len(r.data)-r.pos)
				return nil, r.err
			}
			return nil, io.EOF
		case err == errIncomplete:
			if r.opts.Follow {
				return nil, io.EOF
			}
			return nil, fmt.Errorf("%w at offset %d", ErrTorn, r.next)
		case err != nil:
			r.err = err
			return nil, err
		}
		// Keep a record cut between two segments (the format allows it).
		carry := len(r.data) - r.pos
		if carry == 0 {
			r.resume = r.next
		}
		r.data = append(r.data[:copy(r.data, r.data[r.pos:])], data...)
		r.pos = 0
		r.next = end
	}
}

// size is how much of the file the reader may read now.
func (r *Reader) size() (int64, error) {
	st, err := r.f.Stat()
	if err != nil {
		return 0, fmt.Errorf("logfile: %w", err)
	}
	size := st.Size()
	if r.opts.Limit > 0 {
		return min(size, r.opts.Limit), nil
	}
	if r.cpPath == "" || size <= r.committed {
		return size, nil
	}
	// The checkpoint is read after the stat: a file it does not list was final
	// when stat saw it, since a writer lists a file before writing to it.
	cp, ok, err := readCheckpointFile(r.cpPath)
	if err != nil {
		return 0, err
	}
	if n, listed := cp.Files[r.base]; ok && listed {
		size = min(size, n)
	}
	r.committed = max(r.committed, size)
	return size, nil
}

// record returns the next whole record of r.data, if any.
func (r *Reader) record() ([]byte, bool, error) {
	b := r.data[r.pos:]
	if len(b) < 4 {
		return nil, false, nil
	}
	n := binary.LittleEndian.Uint32(b)
	if n > MaxRecordSize {
		r.err = fmt.Errorf("%w: record length %d exceeds %d (segment before offset %d)", ErrCorrupt, n, MaxRecordSize, r.next)
		return nil, false, r.err
	}
	if len(b) < 4+int(n) {
		return nil, false, nil
	}
	r.pos += 4 + int(n)
	if r.pos == len(r.data) {
		r.resume = r.next
	}
	return b[4 : 4+n], true, nil
}

// WaitNext is Next for Follow mode: it polls the file every interval until
// a record arrives, an error other than io.EOF occurs, or ctx ends.
func (r *Reader) WaitNext(ctx context.Context, interval time.Duration) ([]byte, error) {
	if interval <= 0 {
		interval = 200 * time.Millisecond
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		rec, err := r.Next()
		if err != io.EOF {
			return rec, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}
