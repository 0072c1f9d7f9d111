package logfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// WriterOptions configure a Writer. Fill what you need; OpenWriter applies
// the defaults.
type WriterOptions struct {
	// Dir is the directory of the day files; created if missing.
	Dir string
	// Chain goes into the file name: sharelog<Chain>-YYYY-MM-DD.bin (default "BTC").
	Chain string
	// Compression is Gzip (btcpool's format, the default) or Zstd.
	Compression Compression
	// GzipLevel is the deflate level, -1 (default, as btcpool) to 9.
	GzipLevel int
	// MaxOpenFiles bounds the day files open at once (default 3, as btcpool).
	MaxOpenFiles int
	// MaxRecoveryCut is the most bytes recovery may cut from the end of a
	// file (default 64 MiB). A larger damaged tail is not a torn last
	// segment but corruption, and the file is refused rather than cut.
	MaxRecoveryCut int64
	// Logger reports recoveries; nil keeps the writer silent.
	Logger *slog.Logger
}

const (
	defaultMaxOpenFiles   = 3
	defaultMaxRecoveryCut = 64 << 20
)

var chainName = regexp.MustCompile(`^[A-Za-z0-9_]{1,16}$`)

// SetDefaults fills the zero fields with their defaults.
func (o *WriterOptions) SetDefaults() {
	if o.Chain == "" {
		o.Chain = "BTC"
	}
	if o.GzipLevel == 0 {
		o.GzipLevel = gzip.DefaultCompression
	}
	if o.MaxOpenFiles == 0 {
		o.MaxOpenFiles = defaultMaxOpenFiles
	}
	if o.MaxRecoveryCut == 0 {
		o.MaxRecoveryCut = defaultMaxRecoveryCut
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports every problem at once (call after SetDefaults).
func (o WriterOptions) Validate() error {
	var errs []error
	if o.Dir == "" {
		errs = append(errs, errors.New("logfile: Dir is empty"))
	}
	if !chainName.MatchString(o.Chain) {
		errs = append(errs, fmt.Errorf("logfile: Chain %q must be 1-16 letters, digits or _", o.Chain))
	}
	if o.Compression != Gzip && o.Compression != Zstd {
		errs = append(errs, fmt.Errorf("logfile: unknown %v", o.Compression))
	}
	if o.GzipLevel < gzip.HuffmanOnly || o.GzipLevel > gzip.BestCompression {
		errs = append(errs, fmt.Errorf("logfile: GzipLevel %d out of range %d..%d", o.GzipLevel, gzip.HuffmanOnly, gzip.BestCompression))
	}
	if o.MaxOpenFiles < 1 || o.MaxOpenFiles > 64 {
		errs = append(errs, fmt.Errorf("logfile: MaxOpenFiles %d out of range 1..64", o.MaxOpenFiles))
	}
	if o.MaxRecoveryCut < 0 {
		errs = append(errs, fmt.Errorf("logfile: MaxRecoveryCut %d is negative", o.MaxRecoveryCut))
	}
	return errors.Join(errs...)
}

// WriterStats count what a Writer did since it was opened.
type WriterStats struct {
	Records      int64 // records made durable by Flush
	Segments     int64 // gzip members / zstd frames written
	Bytes        int64 // compressed bytes written
	Recovered    int64 // files whose torn tail was cut on open
	BytesCut     int64 // bytes cut by recovery
	FilesOpened  int64
	FilesEvicted int64 // closed to stay within MaxOpenFiles
}

// Writer appends records to day files. It is not safe for concurrent use:
// one goroutine (the share logger) owns it.
type Writer struct {
	opts    WriterOptions
	files   []*dayFile // open files, at most opts.MaxOpenFiles
	pending int
	err     error // sticky: after a failed write the writer must be reopened
	stats   WriterStats
	hdr     [4]byte
}

// dayFile is one open day file and the segment being built for it.
type dayFile struct {
	day     int64 // unix time of 00:00 UTC
	path    string
	f       *os.File
	size    int64        // durable size: the end of the last fsynced segment
	buf     bytes.Buffer // compressed bytes of the segment being built
	gz      *gzip.Writer
	zs      *zstd.Encoder
	records int // records in buf
}

// OpenWriter checks opts and creates Dir. Day files are opened (and
// recovered) when the first record of their day arrives.
func OpenWriter(opts WriterOptions) (*Writer, error) {
	opts.SetDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("logfile: %w", err)
	}
	return &Writer{opts: opts}, nil
}

// ErrBadTimestamp reports a record timestamp outside 0..MaxTimestamp.
var ErrBadTimestamp = errors.New("logfile: timestamp out of range")

// Append adds one record with this payload (written as "u32 LE length |
// payload") to the file of the UTC day of unix time ts. The record is
// durable only after the next Flush returns nil. Append copies payload.
func (w *Writer) Append(ts int64, payload []byte) error {
	if w.err != nil {
		return w.err
	}
	if ts < 0 || ts > MaxTimestamp {
		return fmt.Errorf("%w: %d", ErrBadTimestamp, ts)
	}
	if len(payload) > MaxRecordSize {
		return fmt.Errorf("logfile: record of %d bytes exceeds %d", len(payload), MaxRecordSize)
	}
	df, err := w.file(ts - ts%SecondsPerDay)
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint32(w.hdr[:], uint32(len(payload)))
	var cw io.Writer = df.gz
	if df.zs != nil {
		cw = df.zs
	}
	if _, err := cw.Write(w.hdr[:]); err != nil {
		return w.fail(df, err)
	}
	if _, err := cw.Write(payload); err != nil {
		return w.fail(df, err)
	}
	df.records++
	w.pending++
	return nil
}

// Pending is the number of records appended but not yet flushed.
func (w *Writer) Pending() int { return w.pending }

// OpenFiles is the number of day files open now.
func (w *Writer) OpenFiles() int { return len(w.files) }

// Stats returns the writer's counters.
func (w *Writer) Stats() WriterStats { return w.stats }

// Flush ends the current segment of every file with pending records, writes
// it and fsyncs the file. When it returns nil every record appended so far
// is durable. After an error the writer is unusable (every later call
// returns the error); a reopened writer recovers the files.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	for _, df := range w.files {
		if err := w.flushFile(df); err != nil {
			return err
		}
	}
	return nil
}

func (w *Writer) flushFile(df *dayFile) error {
	if df.records == 0 {
		return nil
	}
	var err error
	if df.zs != nil {
		err = df.zs.Close()
	} else {
		err = df.gz.Close()
	}
	if err != nil {
		return w.fail(df, err)
	}
	// One write per segment, so a crash tears at most this segment.
	n, err := df.f.Write(df.buf.Bytes())
	if err == nil && n != df.buf.Len() {
		err = io.ErrShortWrite
	}
	if err == nil {
		err = df.f.Sync()
	}
	if err != nil {
		// Take the partial segment back, so the file stays a sequence of
		// whole segments even without a restart.
		_ = df.f.Truncate(df.size)
		return w.fail(df, err)
	}
	df.size += int64(n)
	w.stats.Records += int64(df.records)
	w.stats.Segments++
	w.stats.Bytes += int64(n)
	w.pending -= df.records
	df.records = 0
	df.buf.Reset()
	if df.zs != nil {
		df.zs.Reset(&df.buf)
	} else {
		df.gz.Reset(&df.buf)
	}
	return nil
}

func (w *Writer) fail(df *dayFile, err error) error {
	w.err = fmt.Errorf("logfile: %s: %w", df.path, err)
	return w.err
}

// Close flushes and closes every file. The writer is unusable afterwards.
func (w *Writer) Close() error {
	err := w.Flush()
	for _, df := range w.files {
		if cerr := df.f.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if df.zs != nil {
			df.zs.Close()
		}
	}
	w.files = nil
	if w.err == nil {
		w.err = errors.New("logfile: writer closed")
	}
	return err
}

// file returns the open file of day, opening (and recovering) it and
// closing the oldest open day when MaxOpenFiles are open.
func (w *Writer) file(day int64) (*dayFile, error) {
	for _, df := range w.files {
		if df.day == day {
			return df, nil
		}
	}
	if len(w.files) >= w.opts.MaxOpenFiles {
		oldest := 0
		for i, df := range w.files {
			if df.day < w.files[oldest].day {
				oldest = i
			}
		}
		df := w.files[oldest]
		if err := w.flushFile(df); err != nil {
			return nil, err
		}
		if err := df.f.Close(); err != nil {
			return nil, w.fail(df, err)
		}
		if df.zs != nil {
			df.zs.Close()
		}
		w.files = append(w.files[:oldest], w.files[oldest+1:]...)
		w.stats.FilesEvicted++
	}
	df, err := w.open(day)
	if err != nil {
		w.err = err
		return nil, err
	}
	w.files = append(w.files, df)
	return df, nil
}

// Path is the full name of the day file holding unix time ts.
func (w *Writer) Path(ts int64) string {
	return filepath.Join(w.opts.Dir, FileName(w.opts.Chain, ts, w.opts.Compression))
}

func (w *Writer) open(day int64) (*dayFile, error) {
	path := w.Path(day)
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("logfile: %w", err)
	}
	df := &dayFile{day: day, path: path, f: f}
	if os.IsNotExist(statErr) {
		// Make the new directory entry durable too.
		if d, err := os.Open(w.opts.Dir); err == nil {
			_ = d.Sync()
			d.Close()
		}
	} else if err := w.recover(df); err != nil {
		f.Close()
		return nil, err
	}
	if w.opts.Compression == Zstd {
		df.zs, err = zstd.NewWriter(&df.buf, zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true))
	} else {
		df.gz, err = gzip.NewWriterLevel(&df.buf, w.opts.GzipLevel)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("logfile: %w", err)
	}
	w.stats.FilesOpened++
	return df, nil
}

// recover finds the end of the last whole segment of an existing file and
// cuts off anything after it.
func (w *Writer) recover(df *dayFile) error {
	st, err := df.f.Stat()
	if err != nil {
		return fmt.Errorf("logfile: %w", err)
	}
	good, size, err := ScanSegments(df.f, st.Size())
	if err == nil {
		df.size = size
		return nil
	}
	cut := size - good
	if cut > w.opts.MaxRecoveryCut {
		return fmt.Errorf("logfile: %s: damaged after offset %d (%v), and cutting %d bytes exceeds MaxRecoveryCut %d; move the file aside to continue",
			df.path, good, err, cut, w.opts.MaxRecoveryCut)
	}
	if err := df.f.Truncate(good); err != nil {
		return fmt.Errorf("logfile: %s: cut torn tail: %w", df.path, err)
	}
	if err := df.f.Sync(); err != nil {
		return fmt.Errorf("logfile: %s: %w", df.path, err)
	}
	df.size = good
	w.stats.Recovered++
	w.stats.BytesCut += cut
	w.opts.Logger.Warn("share log: cut torn tail after crash", "file", df.path, "good_bytes", good, "cut_bytes", cut, "reason", err)
	return nil
}

// ScanSegments decodes every segment of f (of the given size) and returns
// the end of the last whole segment. err is nil when the whole file is whole
// segments; otherwise it says what is wrong after offset good.
func ScanSegments(f io.ReaderAt, size int64) (good, total int64, err error) {
	sr := newSegmentReader(0)
	defer sr.close()
	var off int64
	for {
		_, end, err := sr.read(f, off, size)
		if err == io.EOF {
			return off, size, nil
		}
		if err != nil {
			return off, size, err
		}
		off = end
	}
}
