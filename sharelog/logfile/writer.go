package logfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"time"

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
	// Checkpoint makes the files and the positions of their records durable together
	// (see Checkpoint): the writer locks the directory (ErrLocked if another writer holds
	// it), cuts every listed file back to its checkpointed length on open, lists a file
	// before writing its first byte, and rewrites the checkpoint after every flush.
	Checkpoint bool
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
	BytesCut     int64 // bytes cut by recovery (torn tails and bytes after the checkpoint)
	Checkpoints  int64 // checkpoint files written
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

	// Checkpointing (opts.Checkpoint).
	lock     *os.File
	verified map[string]int64 // base name -> a length known to be a segment boundary
	restored Checkpoint       // as found on open, before the cut
	cp       Checkpoint       // as last written
	source   string
	pos      map[int32]int64
	posDirty bool
	cpBuf    []byte
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

	// Marks (Checkpoint mode): the latest share time in the segment being built,
	// in the flushed segments (markUnknown for a file reopened without marks),
	// and the marks so far, without the one at the durable end.
	segMax, flushedMax int64
	marks              []Mark
}

// markUnknown is a dayFile.flushedMax for a file whose records' times are unknown.
const markUnknown = math.MaxInt64

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
	w := &Writer{opts: opts}
	if opts.Checkpoint {
		if err := w.openCheckpoint(); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// openCheckpoint locks the directory, cuts every file the checkpoint lists back to its
// length (removing records written after the last checkpoint, which the source delivers
// again) and writes a checkpoint that lists no file: they are all final until written again.
func (w *Writer) openCheckpoint() error {
	lock, err := lockDir(LockPath(w.opts.Dir, w.opts.Chain))
	if err != nil {
		return err
	}
	cp, _, err := ReadCheckpoint(w.opts.Dir, w.opts.Chain)
	if err != nil {
		unlockDir(lock)
		return fmt.Errorf("%w; it is rewritten after every flush, so a damaged one means the directory was changed by hand: restore it or move it aside (the next start then keeps every record on disk and may write records of the last flush again)", err)
	}
	if cp.Positions == nil {
		cp = Checkpoint{Positions: map[int32]int64{}, Files: map[string]int64{}}
	}
	for name, n := range cp.Files {
		if err := w.cutTo(filepath.Join(w.opts.Dir, name), n); err != nil {
			unlockDir(lock)
			return err
		}
	}
	w.lock = lock
	w.restored = cp.clone()
	w.source = cp.Source
	w.pos = cp.clone().Positions
	w.cp = Checkpoint{Source: cp.Source, Positions: cp.clone().Positions, Files: map[string]int64{}}
	// Lengths known to end on a segment boundary: a reopened file of that size
	// needs no scan. Marks are kept only up to what is on disk.
	w.verified = map[string]int64{}
	for name, n := range cp.Files {
		w.verified[name] = n
	}
	for name, ms := range cp.Marks {
		st, err := os.Stat(filepath.Join(w.opts.Dir, name))
		if err != nil {
			continue
		}
		keep := ms
		for len(keep) > 0 && keep[len(keep)-1].Off > st.Size() {
			keep = keep[:len(keep)-1]
		}
		if len(keep) == 0 {
			continue
		}
		if w.cp.Marks == nil {
			w.cp.Marks = map[string][]Mark{}
		}
		w.cp.Marks[name] = keep
		if last := keep[len(keep)-1]; last.Off == st.Size() {
			w.verified[name] = last.Off
		}
	}
	if err := w.writeCheckpoint(w.cp); err != nil {
		w.lock = nil
		unlockDir(lock)
		return err
	}
	return nil
}

// cutTo truncates path to its checkpointed length n.
func (w *Writer) cutTo(path string, n int64) error {
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil // listed before its creation, or removed by the operator: nothing to cut
	}
	if err != nil {
		return fmt.Errorf("logfile: %w", err)
	}
	switch {
	case st.Size() < n:
		w.opts.Logger.Warn("share log: file is shorter than its checkpointed length; it was changed outside the sharelogger",
			"file", path, "size", st.Size(), "checkpointed", n)
		return nil
	case st.Size() == n:
		return nil
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("logfile: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(n); err != nil {
		return fmt.Errorf("logfile: %s: cut to checkpoint: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("logfile: %s: %w", path, err)
	}
	w.stats.BytesCut += st.Size() - n
	w.opts.Logger.Warn("share log: cut records written after the last checkpoint; they are read again from the bus",
		"file", path, "checkpointed", n, "cut_bytes", st.Size()-n)
	return nil
}

// Restored is the checkpoint found when the writer was opened (empty without one, or
// without WriterOptions.Checkpoint): its Source and Positions say which records the files
// already hold.
func (w *Writer) Restored() Checkpoint { return w.restored.clone() }

// SetSource names what positions count and sets where the files stand in it, for the next
// checkpoint (e.g. after Restored named another source, to start counting afresh).
func (w *Writer) SetSource(source string, positions map[int32]int64) {
	w.source = source
	w.pos = make(map[int32]int64, len(positions))
	for k, v := range positions {
		w.pos[k] = v
	}
	w.posDirty = true
}

// Advance records that every record of partition up to position has been appended (or
// dropped); the next Flush makes that durable with the records.
func (w *Writer) Advance(partition int32, position int64) {
	if w.pos == nil {
		w.pos = map[int32]int64{}
	}
	if old, ok := w.pos[partition]; !ok || position > old {
		w.pos[partition] = position
		w.posDirty = true
	}
}

// Positions returns the positions the writer has been advanced to (not necessarily durable
// yet).
func (w *Writer) Positions() map[int32]int64 {
	out := make(map[int32]int64, len(w.pos))
	for k, v := range w.pos {
		out[k] = v
	}
	return out
}

// checkpoint writes the current state: every open file at its durable length and the
// positions, which Flush has just made consistent with those lengths.
func (w *Writer) checkpoint() error {
	cp := Checkpoint{Source: w.source, Positions: make(map[int32]int64, len(w.pos)), Files: make(map[string]int64, len(w.files))}
	for k, v := range w.pos {
		cp.Positions[k] = v
	}
	for _, df := range w.files {
		cp.Files[filepath.Base(df.path)] = df.size
	}
	cp.Marks = w.marksNow()
	if cp.equal(w.cp) {
		w.posDirty = false
		return nil
	}
	if err := w.writeCheckpoint(cp); err != nil {
		w.err = fmt.Errorf("logfile: checkpoint: %w", err)
		return w.err
	}
	w.cp = cp
	w.posDirty = false
	return nil
}

// marksNow returns the marks of the open files (with their durable ends) and those kept
// from closed files, for the newest two days only.
func (w *Writer) marksNow() map[string][]Mark {
	out := map[string][]Mark{}
	newest := int64(-1)
	for name, ms := range w.cp.Marks {
		if day, ok := dayOfName(name); ok {
			out[name] = ms
			newest = max(newest, day)
		}
	}
	for _, df := range w.files {
		name := filepath.Base(df.path)
		if df.flushedMax == markUnknown {
			continue // marks kept from before still hold: the file only grew
		}
		out[name] = append(append(make([]Mark, 0, len(df.marks)+1), df.marks...), Mark{Off: df.size, Max: df.flushedMax})
		newest = max(newest, df.day)
	}
	for name := range out {
		if day, _ := dayOfName(name); day < newest-SecondsPerDay || len(out) > maxMarkedFiles && day < newest {
			delete(out, name)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// dayOfName is the unix time of the day of a day file's base name.
func dayOfName(name string) (int64, bool) {
	m := dayFileName.FindStringSubmatchIndex(name)
	if m == nil {
		return 0, false
	}
	start := m[3] + 1 // after "sharelog<chain>-"
	t, err := time.Parse("2006-01-02", name[start:start+10])
	if err != nil {
		return 0, false
	}
	return t.Unix(), true
}

func (w *Writer) writeCheckpoint(cp Checkpoint) error {
	var err error
	w.cpBuf, err = writeCheckpointFile(CheckpointPath(w.opts.Dir, w.opts.Chain), cp, w.cpBuf)
	if err != nil {
		return fmt.Errorf("logfile: write checkpoint: %w", err)
	}
	w.stats.Checkpoints++
	return nil
}

// list adds a file at length n to the last written checkpoint and writes it, before the
// file's first byte is written: an unlisted file is final for readers and for recovery.
func (w *Writer) list(path string, n int64) error {
	cp := w.cp.clone()
	cp.Files[filepath.Base(path)] = n
	if err := w.writeCheckpoint(cp); err != nil {
		return err
	}
	w.cp = cp
	return nil
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
	df.segMax = max(df.segMax, ts)
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
// it and fsyncs the file; with WriterOptions.Checkpoint it then writes the
// checkpoint (file lengths and positions). When it returns nil every record
// appended so far is durable, and so are the positions passed to Advance.
// After an error the writer is unusable (every later call returns the
// error); a reopened writer recovers the files.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	wrote := false
	for _, df := range w.files {
		if df.records > 0 {
			wrote = true
		}
		if err := w.flushFile(df); err != nil {
			return err
		}
	}
	if w.opts.Checkpoint && (wrote || w.posDirty || len(w.cp.Files) != len(w.files)) {
		return w.checkpoint()
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
	if prev := df.flushedMax; prev != markUnknown {
		if prev >= 0 && len(df.marks) < maxMarks &&
			(len(df.marks) == 0 || prev/MarkSeconds > df.marks[len(df.marks)-1].Max/MarkSeconds) {
			df.marks = append(df.marks, Mark{Off: df.size, Max: prev})
		}
		df.flushedMax = max(prev, df.segMax)
	}
	df.segMax = -1
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
	if w.lock != nil {
		if cerr := unlockDir(w.lock); err == nil && cerr != nil {
			err = cerr
		}
		w.lock = nil
	}
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
		if w.opts.Checkpoint {
			// Every file and the positions together, so the checkpoint that
			// later drops this file follows one with its final length.
			if err := w.Flush(); err != nil {
				return nil, err
			}
		} else if err := w.flushFile(df); err != nil {
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
	if statErr != nil && !os.IsNotExist(statErr) {
		return nil, fmt.Errorf("logfile: %w", statErr)
	}
	isNew := os.IsNotExist(statErr)
	if isNew && w.opts.Checkpoint {
		if err := w.list(path, 0); err != nil {
			return nil, err
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("logfile: %w", err)
	}
	df := &dayFile{day: day, path: path, f: f, segMax: -1, flushedMax: -1}
	if !isNew {
		df.flushedMax = markUnknown
	}
	if isNew {
		// Make the new directory entry durable too.
		_ = syncDir(w.opts.Dir)
	} else if err := w.recover(df); err != nil {
		f.Close()
		return nil, err
	} else if w.opts.Checkpoint {
		if ms := w.cp.Marks[filepath.Base(path)]; len(ms) > 0 && ms[len(ms)-1].Off == df.size {
			df.marks = append([]Mark(nil), ms[:len(ms)-1]...)
			df.flushedMax = ms[len(ms)-1].Max
		}
		if err := w.list(path, df.size); err != nil {
			f.Close()
			return nil, err
		}
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
	if n, ok := w.verified[filepath.Base(df.path)]; ok && n == st.Size() {
		df.size = n // the checkpoint says it ends on a segment boundary: no scan of the day
		return nil
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
