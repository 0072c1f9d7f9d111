package logfile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compression is the format of a share-log file.
type Compression uint8

// Formats of a share-log file.
const (
	Gzip Compression = iota // btcpool's: one gzip member per flush
	Zstd                    // one zstd frame per flush
)

func (c Compression) String() string {
	switch c {
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return "Compression(" + strconv.Itoa(int(c)) + ")"
}

// Suffix is the file name ending of the format.
func (c Compression) Suffix() string {
	if c == Zstd {
		return ".bin.zst"
	}
	return ".bin"
}

// SecondsPerDay is the length of a share-log day; a share belongs to the
// file of day ts - ts%SecondsPerDay (UTC).
const SecondsPerDay = 86400

// MaxTimestamp is the last second a share timestamp may carry (9999-12-31).
const MaxTimestamp = 253402300799

// FileName is the base name of the file of the UTC day that holds unix time
// ts, e.g. "sharelogBTC-2020-09-14.bin".
func FileName(chain string, ts int64, c Compression) string {
	return "sharelog" + chain + "-" + time.Unix(ts-ts%SecondsPerDay, 0).UTC().Format("2006-01-02") + c.Suffix()
}

// MaxRecordSize bounds a record's declared payload length; it matches
// codec/btcpool.MaxShareLogRecordSize. Real records are under 200 bytes.
const MaxRecordSize = 4096

// DefaultMaxSegmentSize bounds one segment's decompressed size when reading
// (a flush of 2 s at 500k shares/s is about 60 MB).
const DefaultMaxSegmentSize = 512 << 20

// Errors of segment decoding.
var (
	// ErrCorrupt reports data that is not a valid segment or record stream.
	ErrCorrupt = errors.New("share log: corrupt data")
	// errIncomplete reports a segment cut short by the end of the file:
	// torn by a crash, or still being written.
	errIncomplete = errors.New("share log: incomplete segment at end of file")
)

var (
	gzipMagic = [2]byte{0x1f, 0x8b}
	zstdMagic = [4]byte{0x28, 0xb5, 0x2f, 0xfd}
)

// segmentReader decodes one segment at a time from a file. It keeps its
// decompressors and buffers between calls.
type segmentReader struct {
	max  int
	br   *bufio.Reader
	cr   countingReader
	gz   *gzip.Reader
	zd   *zstd.Decoder
	raw  []byte // a zstd frame's compressed bytes
	data []byte // the last decompressed segment
}

func newSegmentReader(max int) *segmentReader {
	if max <= 0 {
		max = DefaultMaxSegmentSize
	}
	return &segmentReader{max: max, br: bufio.NewReaderSize(nil, 64<<10)}
}

func (s *segmentReader) close() {
	if s.zd != nil {
		s.zd.Close()
	}
}

// countingReader counts the bytes a decompressor consumed. It implements
// io.ByteReader, so gzip and flate read exactly to the member's end.
type countingReader struct {
	r *bufio.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}

// read decodes the segment starting at off in f, whose size is taken to be
// size. It returns the decompressed bytes (valid until the next call) and the
// offset just after the segment. Errors: io.EOF when off == size,
// errIncomplete when the segment runs past size, ErrCorrupt (wrapped) when it
// cannot be a valid segment.
func (s *segmentReader) read(f io.ReaderAt, off, size int64) ([]byte, int64, error) {
	if off >= size {
		return nil, off, io.EOF
	}
	var magic [4]byte
	n, err := f.ReadAt(magic[:min(4, size-off)], off)
	if err != nil && err != io.EOF {
		return nil, off, err
	}
	switch {
	case n >= 2 && magic[0] == gzipMagic[0] && magic[1] == gzipMagic[1]:
		return s.readGzip(f, off, size)
	case n == 4 && magic == zstdMagic:
		return s.readZstd(f, off, size)
	case n < 4 && bytes.HasPrefix(zstdMagic[:], magic[:n]), n == 1 && magic[0] == gzipMagic[0]:
		// Only the first bytes of a segment's magic have been written yet.
		return nil, off, errIncomplete
	}
	return nil, off, fmt.Errorf("%w: no gzip or zstd magic at offset %d", ErrCorrupt, off)
}

func (s *segmentReader) readGzip(f io.ReaderAt, off, size int64) ([]byte, int64, error) {
	s.br.Reset(io.NewSectionReader(f, off, size-off))
	s.cr = countingReader{r: s.br}
	var err error
	if s.gz == nil {
		s.gz, err = gzip.NewReader(&s.cr)
	} else {
		err = s.gz.Reset(&s.cr)
	}
	if err != nil {
		return nil, off, classify(err, off)
	}
	s.gz.Multistream(false)
	s.data, err = readLimited(s.gz, s.data[:0], s.max)
	if err != nil {
		return nil, off, classify(err, off)
	}
	return s.data, off + s.cr.n, nil
}

// classify maps a decompressor error to errIncomplete or ErrCorrupt.
func classify(err error, off int64) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return errIncomplete
	}
	if errors.Is(err, ErrCorrupt) {
		return err
	}
	return fmt.Errorf("%w: segment at offset %d: %v", ErrCorrupt, off, err)
}

// readLimited appends all of r to dst, failing beyond max bytes.
func readLimited(r io.Reader, dst []byte, max int) ([]byte, error) {
	for {
		if len(dst) == cap(dst) {
			if len(dst) > max {
				return dst, fmt.Errorf("%w: segment decompresses to more than %d bytes", ErrCorrupt, max)
			}
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if len(dst) > max {
			return dst, fmt.Errorf("%w: segment decompresses to more than %d bytes", ErrCorrupt, max)
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
}

// zstdFrameEnd walks a zstd frame's headers (RFC 8878 §3.1.1) from off and
// returns the offset after it without decompressing, or errIncomplete.
func zstdFrameEnd(f io.ReaderAt, off, size int64) (int64, error) {
	var hdr [18]byte // magic, descriptor, window, dict id (<=4), content size (<=8)
	n, _ := f.ReadAt(hdr[:min(int64(len(hdr)), size-off)], off)
	if n < 5 {
		return 0, errIncomplete
	}
	fhd := hdr[4]
	if fhd&0x08 != 0 {
		return 0, fmt.Errorf("%w: zstd frame at %d: reserved bit set", ErrCorrupt, off)
	}
	single := fhd&0x20 != 0
	pos := int64(5)
	if !single {
		pos++ // window descriptor
	}
	pos += [4]int64{0, 1, 2, 4}[fhd&3]
	fcs := [4]int64{0, 2, 4, 8}[fhd>>6]
	if fcs == 0 && single {
		fcs = 1
	}
	pos += fcs
	checksum := fhd&0x04 != 0
	const maxBlocks = 1 << 20 // 128 GiB of 128 KiB blocks: bounds the walk
	for i := 0; i < maxBlocks; i++ {
		var bh [3]byte
		if off+pos+3 > size {
			return 0, errIncomplete
		}
		if _, err := f.ReadAt(bh[:], off+pos); err != nil {
			return 0, errIncomplete
		}
		h := uint32(bh[0]) | uint32(bh[1])<<8 | uint32(bh[2])<<16
		last, typ, bsize := h&1 == 1, (h>>1)&3, int64(h>>3)
		if bsize > 128<<10 {
			return 0, fmt.Errorf("%w: zstd frame at %d: block of %d bytes", ErrCorrupt, off, bsize)
		}
		switch typ {
		case 1: // RLE: one byte repeated
			bsize = 1
		case 3:
			return 0, fmt.Errorf("%w: zstd frame at %d: reserved block type", ErrCorrupt, off)
		}
		pos += 3 + bsize
		if last {
			if checksum {
				pos += 4
			}
			if off+pos > size {
				return 0, errIncomplete
			}
			return off + pos, nil
		}
	}
	return 0, fmt.Errorf("%w: zstd frame at %d: too many blocks", ErrCorrupt, off)
}

func (s *segmentReader) readZstd(f io.ReaderAt, off, size int64) ([]byte, int64, error) {
	end, err := zstdFrameEnd(f, off, size)
	if err != nil {
		return nil, off, err
	}
	if end-off > int64(s.max) {
		return nil, off, fmt.Errorf("%w: zstd frame at %d is %d bytes", ErrCorrupt, off, end-off)
	}
	if cap(s.raw) < int(end-off) {
		s.raw = make([]byte, end-off)
	}
	s.raw = s.raw[:end-off]
	if _, err := f.ReadAt(s.raw, off); err != nil {
		return nil, off, classify(err, off)
	}
	if s.zd == nil {
		s.zd, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxMemory(uint64(s.max)), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, off, err
		}
	}
	s.data, err = s.zd.DecodeAll(s.raw, s.data[:0])
	if err != nil {
		return nil, off, fmt.Errorf("%w: zstd frame at %d: %v", ErrCorrupt, off, err)
	}
	return s.data, end, nil
}
