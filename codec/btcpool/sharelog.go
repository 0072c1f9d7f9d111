package btcpool

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"strconv"
)

// MaxShareLogRecordSize is the largest protobuf length a share-log record may declare. Real
// records are under 200 bytes (MaxShareProtoSize); anything bigger means the stream is corrupt
// or not a share log, and is rejected before any buffer is sized from it.
const MaxShareLogRecordSize = 4096

// AppendShareLogRecord appends s as one share-log file record (spec §6.2): u32 LE length of
// the protobuf, then the protobuf (AppendShareProto; no version prefix inside files). Zero
// allocations when dst has 4+MaxShareProtoSize spare capacity.
func AppendShareLogRecord(dst []byte, s *Share) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = AppendShareProto(dst, s)
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// ErrRecordTooLarge is returned (wrapped) for a record length above MaxShareLogRecordSize.
// The stream cannot be resynchronised after it.
var ErrRecordTooLarge = errors.Join(ErrMalformed, errors.New("share log: record length exceeds MaxShareLogRecordSize"))

// DecodeShareLogRecord decodes the first record of b into s and returns its total size
// (4 + length). If b holds only part of a record it returns 0 and io.ErrUnexpectedEOF (0 and
// io.EOF when b is empty). A length above MaxShareLogRecordSize gives ErrRecordTooLarge; a
// record whose protobuf does not decode returns its size together with the error, so a caller
// may skip it.
func DecodeShareLogRecord(b []byte, s *Share) (int, error) {
	if len(b) == 0 {
		return 0, io.EOF
	}
	if len(b) < 4 {
		return 0, io.ErrUnexpectedEOF
	}
	n := binary.LittleEndian.Uint32(b)
	if n > MaxShareLogRecordSize {
		return 0, recordTooLarge(n)
	}
	total := 4 + int(n)
	if len(b) < total {
		return 0, io.ErrUnexpectedEOF
	}
	return total, DecodeShareProto(b[4:total], s)
}

func recordTooLarge(n uint32) error {
	return errors.Join(ErrRecordTooLarge, errors.New("declared length "+strconv.FormatUint(uint64(n), 10)))
}

// ShareLogReader reads share-log records from an uncompressed stream (the caller undoes the
// gzip members). Its buffer is fixed at creation; a declared length is checked against
// MaxShareLogRecordSize before any bytes are awaited for it.
//
// It suits tail-following a growing file: when Next returns io.EOF (clean record boundary) or
// io.ErrUnexpectedEOF (partial record at the end), nothing is consumed, and a later call
// continues once more data has been appended to the underlying reader.
type ShareLogReader struct {
	br  *bufio.Reader
	off int64
	err error
}

// NewShareLogReader returns a reader of share-log records from r.
func NewShareLogReader(r io.Reader) *ShareLogReader {
	return &ShareLogReader{br: bufio.NewReaderSize(r, 64<<10)}
}

// Next decodes the next record into s. Errors:
//   - io.EOF: no more data at a record boundary; io.ErrUnexpectedEOF: a partial record (both
//     retryable, see ShareLogReader);
//   - ErrRecordTooLarge: the stream is corrupt; this error is sticky;
//   - a decode error (wrapping ErrMalformed) for one bad record, which has been skipped: the
//     next call reads the following record;
//   - any other error from the underlying reader.
func (r *ShareLogReader) Next(s *Share) error {
	if r.err != nil {
		return r.err
	}
	hdr, err := r.br.Peek(4)
	if len(hdr) < 4 {
		return eofError(len(hdr), err)
	}
	n := binary.LittleEndian.Uint32(hdr)
	if n > MaxShareLogRecordSize {
		r.err = recordTooLarge(n)
		return r.err
	}
	total := 4 + int(n)
	rec, err := r.br.Peek(total)
	if len(rec) < total {
		return eofError(len(rec), err)
	}
	derr := DecodeShareProto(rec[4:], s)
	_, _ = r.br.Discard(total) // cannot fail: total bytes are buffered
	r.off += int64(total)
	return derr
}

func eofError(have int, err error) error {
	if err == io.EOF {
		if have == 0 {
			return io.EOF
		}
		return io.ErrUnexpectedEOF
	}
	if err == nil {
		// Peek returns fewer bytes only with an error; keep the contract anyway.
		return io.ErrUnexpectedEOF
	}
	return err
}

// Offset returns the number of bytes of complete records consumed so far (the resume point).
func (r *ShareLogReader) Offset() int64 { return r.off }

// Reset makes r read from src as a new stream (offset 0, no sticky error), keeping its buffer.
func (r *ShareLogReader) Reset(src io.Reader) {
	r.br.Reset(src)
	r.off = 0
	r.err = nil
}
