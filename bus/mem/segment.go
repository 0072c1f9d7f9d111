package mem

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// On-disk format of a topic (Dir/<topic>/<base>.seg, base = offset of the
// segment's first record, 20 decimal digits):
//
//	segment header (20 bytes): magic "hpbusseg" | base int64 | crc32c(magic, base)
//	record frame: size uint32 | crc32c(body) uint32 | body
//	body (size bytes): offset int64 | publish time (Unix ns) int64 | key length uint32 | key | value
//
// All integers are big-endian. Offsets inside a segment are consecutive from
// base; a frame that is short, has a bad CRC, a size out of bounds or an
// unexpected offset ends the valid part of the segment (a torn tail).

const (
	segMagic        = "hpbusseg"
	segHeaderSize   = 20
	frameHeaderSize = 8
	bodyFixedSize   = 20
	// FrameOverhead is the bytes a record takes on disk besides its key and
	// value.
	FrameOverhead = frameHeaderSize + bodyFixedSize

	// MaxRecordBytes bounds key+value of one record (templates are 3–11 MB on
	// main net; Kafka mode allows 32 MiB). Larger records are refused by
	// Publish and treated as corruption when read.
	MaxRecordBytes = 64 << 20

	segSuffix = ".seg"
	// indexInterval is how many segment bytes one sparse-index entry covers.
	indexInterval = 256 << 10
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errShort means the bytes end inside a frame.
var errShort = errors.New("mem: frame continues past the end of the data")

// CorruptError describes where a segment or offsets file stops being valid.
type CorruptError struct {
	Pos    int64  // byte position of the first invalid byte
	Reason string // what was wrong
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("mem: invalid data at byte %d: %s", e.Pos, e.Reason)
}

func corrupt(pos int64, format string, args ...any) error {
	return &CorruptError{Pos: pos, Reason: fmt.Sprintf(format, args...)}
}

func segName(base int64) string { return fmt.Sprintf("%020d%s", base, segSuffix) }

// parseSegName returns the base offset of a segment file name.
func parseSegName(name string) (int64, bool) {
	s, ok := strings.CutSuffix(name, segSuffix)
	if !ok || len(s) != 20 {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n >= 0
}

// appendSegHeader appends a segment header for base.
func appendSegHeader(dst []byte, base int64) []byte {
	start := len(dst)
	dst = append(dst, segMagic...)
	dst = binary.BigEndian.AppendUint64(dst, uint64(base))
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// checkSegHeader validates a segment header.
func checkSegHeader(h []byte, base int64) error {
	if len(h) < segHeaderSize {
		return corrupt(int64(len(h)), "segment header is short")
	}
	if string(h[:8]) != segMagic {
		return corrupt(0, "not a segment file (bad magic)")
	}
	if crc32.Checksum(h[:16], castagnoli) != binary.BigEndian.Uint32(h[16:20]) {
		return corrupt(16, "segment header CRC mismatch")
	}
	if got := int64(binary.BigEndian.Uint64(h[8:16])); got != base {
		return corrupt(8, "segment header says base %d, file name says %d", got, base)
	}
	return nil
}

// appendFrame appends one record frame.
func appendFrame(dst []byte, off, nanos int64, key, value []byte) []byte {
	size := bodyFixedSize + len(key) + len(value)
	start := len(dst)
	dst = binary.BigEndian.AppendUint32(dst, uint32(size))
	dst = append(dst, 0, 0, 0, 0) // CRC, filled in below
	dst = binary.BigEndian.AppendUint64(dst, uint64(off))
	dst = binary.BigEndian.AppendUint64(dst, uint64(nanos))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(key)))
	dst = append(dst, key...)
	dst = append(dst, value...)
	binary.BigEndian.PutUint32(dst[start+4:], crc32.Checksum(dst[start+8:], castagnoli))
	return dst
}

// frame is one record parsed from bytes it points into.
type frame struct {
	off, nanos int64
	key, value []byte
	n          int // bytes the frame takes
}

// parseFrame parses the frame at the start of b, which must have offset
// want. It returns errShort if b ends inside the frame (fr.n then says how
// many bytes the frame needs, when the size is known and valid) and a
// *CorruptError (Pos relative to b) for invalid data.
func parseFrame(b []byte, want int64) (fr frame, err error) {
	if len(b) < frameHeaderSize {
		return fr, errShort
	}
	size := binary.BigEndian.Uint32(b)
	if size < bodyFixedSize || size > bodyFixedSize+MaxRecordBytes {
		return fr, corrupt(0, "record size %d out of bounds", size)
	}
	fr.n = frameHeaderSize + int(size)
	if len(b) < fr.n {
		return fr, errShort
	}
	body := b[frameHeaderSize:fr.n]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(b[4:]) {
		return fr, corrupt(4, "record CRC mismatch")
	}
	fr.off = int64(binary.BigEndian.Uint64(body))
	fr.nanos = int64(binary.BigEndian.Uint64(body[8:]))
	klen := binary.BigEndian.Uint32(body[16:])
	if fr.off != want {
		return fr, corrupt(8, "record has offset %d, want %d", fr.off, want)
	}
	if klen > size-bodyFixedSize {
		return fr, corrupt(24, "key length %d exceeds the record", klen)
	}
	fr.key = body[bodyFixedSize : bodyFixedSize+klen : bodyFixedSize+klen]
	fr.value = body[bodyFixedSize+klen:]
	return fr, nil
}

// scanResult is what scanning a segment found.
type scanResult struct {
	valid     int64 // bytes from the start of the file that hold whole valid frames (≥ header)
	next      int64 // offset after the last valid record
	lastNanos int64 // publish time of the last valid record (0 if none)
	index     []indexEntry
	err       error // why the scan stopped before the end of the data; nil at a clean end
}

// scanSegment reads a whole segment from r, verifying the header and every
// frame, and builds its sparse index. A header that is invalid gives
// valid = 0.
func scanSegment(r io.Reader, base int64) scanResult {
	res := scanResult{next: base}
	br := bufio.NewReaderSize(r, 1<<20)
	var hdr [segHeaderSize]byte
	n, err := io.ReadFull(br, hdr[:])
	if err != nil {
		if n == 0 && err == io.EOF {
			res.err = corrupt(0, "segment file is empty")
		} else {
			res.err = corrupt(int64(n), "segment header is short")
		}
		return res
	}
	if err := checkSegHeader(hdr[:], base); err != nil {
		res.err = err
		return res
	}
	res.valid = segHeaderSize
	res.index = append(res.index, indexEntry{off: base, pos: segHeaderSize})
	lastIndexed := int64(segHeaderSize)
	var head [frameHeaderSize + bodyFixedSize]byte
	h := crc32.New(castagnoli)
	for {
		n, err := io.ReadFull(br, head[:])
		if err == io.EOF {
			return res
		}
		if err != nil {
			res.err = corrupt(res.valid+int64(n), "torn record header")
			return res
		}
		size := binary.BigEndian.Uint32(head[:])
		if size < bodyFixedSize || size > bodyFixedSize+MaxRecordBytes {
			res.err = corrupt(res.valid, "record size %d out of bounds", size)
			return res
		}
		h.Reset()
		h.Write(head[frameHeaderSize:])
		rest := int64(size - bodyFixedSize)
		if m, err := io.CopyN(h, br, rest); err != nil {
			res.err = corrupt(res.valid+int64(len(head))+m, "torn record: %d of %d bytes", int64(len(head))+m, int64(frameHeaderSize)+int64(size))
			return res
		}
		if h.Sum32() != binary.BigEndian.Uint32(head[4:]) {
			res.err = corrupt(res.valid, "record CRC mismatch")
			return res
		}
		off := int64(binary.BigEndian.Uint64(head[8:]))
		if off != res.next {
			res.err = corrupt(res.valid, "record has offset %d, want %d", off, res.next)
			return res
		}
		if klen := binary.BigEndian.Uint32(head[24:]); int64(klen) > rest {
			res.err = corrupt(res.valid, "key length %d exceeds the record", klen)
			return res
		}
		if res.valid-lastIndexed >= indexInterval {
			res.index = append(res.index, indexEntry{off: off, pos: res.valid})
			lastIndexed = res.valid
		}
		res.lastNanos = int64(binary.BigEndian.Uint64(head[16:]))
		res.valid += frameHeaderSize + int64(size)
		res.next++
	}
}

// indexEntry says that the record with offset off starts at byte pos.
type indexEntry struct{ off, pos int64 }

// segment is one file of a topic's log. base is fixed; the fields after it are
// guarded by the topic's mu (the writer updates them as records become
// visible).
type segment struct {
	base int64
	path string
	f    *os.File

	end       int64 // offset after the last visible record
	size      int64 // bytes of the file holding visible records (header included)
	lastNanos int64
	index     []indexEntry
	refs      int  // 1 for the topic's log while retained, +1 per reader
	removed   bool // no longer part of the log; closed when refs reaches 0
}

// lookup returns the index entry at or before off.
func (s *segment) lookup(off int64) indexEntry {
	lo, hi := 0, len(s.index)
	for lo < hi {
		m := (lo + hi) / 2
		if s.index[m].off <= off {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return indexEntry{off: s.base, pos: segHeaderSize}
	}
	return s.index[lo-1]
}

// loadSegment opens and scans one segment file, cutting an invalid tail (an
// invalid header empties the file and writes a new header).
func loadSegment(path string, base int64, log func(msg string, args ...any)) (*segment, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	res := scanSegment(f, base)
	if res.err != nil {
		cut := fi.Size() - res.valid
		if res.valid == 0 {
			// Keep the file with a fresh header: its name still says where
			// the offsets go on, even if every older segment is gone.
			log("bus segment has no valid header; emptying it", "file", path, "cut_bytes", fi.Size(), "reason", res.err)
			err := f.Truncate(0)
			if err == nil {
				_, err = f.WriteAt(appendSegHeader(nil, base), 0)
			}
			if err == nil {
				err = fdatasync(f)
			}
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("mem: rewriting the header of %s: %w", path, err)
			}
			return &segment{base: base, path: path, f: f, end: base, size: segHeaderSize,
				index: []indexEntry{{off: base, pos: segHeaderSize}}, refs: 1}, nil
		}
		log("bus segment has an invalid tail; cutting it", "file", path, "valid_bytes", res.valid,
			"cut_bytes", cut, "next_offset", res.next, "reason", res.err)
		if err := f.Truncate(res.valid); err != nil {
			f.Close()
			return nil, fmt.Errorf("mem: truncating %s: %w", path, err)
		}
		if err := fdatasync(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("mem: syncing %s: %w", path, err)
		}
	}
	return &segment{base: base, path: path, f: f, end: res.next, size: res.valid,
		lastNanos: res.lastNanos, index: res.index, refs: 1}, nil
}

// createSegment creates a new segment file holding only its header.
func createSegment(dir string, base int64) (*segment, error) {
	path := filepath.Join(dir, segName(base))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	if _, err := f.WriteAt(appendSegHeader(nil, base), 0); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	return &segment{base: base, path: path, f: f, end: base, size: segHeaderSize,
		index: []indexEntry{{off: base, pos: segHeaderSize}}, refs: 1}, nil
}
