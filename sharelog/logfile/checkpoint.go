package logfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
)

// Checkpoint is what a checkpointing Writer makes durable after every flush: the durable
// length of every day file it may still write, and how far into its source (the share topic,
// per partition) the records in those bytes go. Files and positions are written together in
// one atomic file, so after any crash the two agree: the bytes of a listed file beyond its
// length are records of positions after Positions, which the source delivers again.
//
// A file that exists but is not listed is final: no writer will cut or extend it without
// listing it first (a writer lists a file, fsynced, before its first byte). Readers therefore
// never show bytes beyond a listed length (see ReaderOptions), and a writer cuts them off when
// it opens the directory.
type Checkpoint struct {
	// Source names what Positions count: the logger stores its bus and topic here, and
	// positions from another source are not comparable.
	Source string `json:"source"`
	// Positions is, per partition, the last position (bus offset) whose record is inside the
	// listed lengths (or was dropped as invalid).
	Positions map[int32]int64 `json:"positions"`
	// Files maps a day file's base name to its durable length, always a segment boundary.
	Files map[string]int64 `json:"files"`
	// Marks are, for the newest day files, segment boundaries with the latest share time
	// before them (at most one per MarkSeconds of share time, and the durable end last), so
	// that a reader wanting only recent shares starts near the end instead of decompressing
	// the whole day. They are hints kept with the lengths they describe.
	Marks map[string][]Mark `json:"marks,omitempty"`
}

// Mark says that every record before byte Off of a day file has a timestamp of at most Max
// (-1: there is none); Off is a segment boundary.
type Mark struct {
	Off int64 `json:"o"`
	Max int64 `json:"t"`
}

// MarkSeconds is the share time between two marks of a file.
const MarkSeconds = 300

// maxMarks bounds the marks of one file (a day of marks plus slack for late shares).
const maxMarks = 2 * SecondsPerDay / MarkSeconds

// maxMarkedFiles bounds the files with marks.
const maxMarkedFiles = 8

// Start returns the last mark of marks before which every record is older than ts: a reader
// that wants only records at or after ts can start there.
func Start(marks []Mark, ts int64) int64 {
	var off int64
	for _, m := range marks {
		if m.Max < ts && m.Off > off {
			off = m.Off
		}
	}
	return off
}

// maxCheckpointSize bounds the checkpoint file read from disk.
const maxCheckpointSize = 1 << 20

// maxCheckpointEntries bounds the partitions and files a checkpoint may list.
const maxCheckpointEntries = 4096

var dayFileName = regexp.MustCompile(`^sharelog([A-Za-z0-9_]{1,16})-[0-9]{4}-[0-9]{2}-[0-9]{2}\.bin(\.zst)?$`)

// CheckpointPath is the checkpoint file of chain's share logs in dir.
func CheckpointPath(dir, chain string) string {
	return filepath.Join(dir, "sharelog"+chain+".checkpoint")
}

// LockPath is the lock file a Writer holds while it writes chain's share logs in dir.
func LockPath(dir, chain string) string {
	return filepath.Join(dir, "sharelog"+chain+".lock")
}

// checkpointOf is the checkpoint path that governs a day file, or "" when the name is not a
// day file's.
func checkpointOf(path string) string {
	m := dayFileName.FindStringSubmatch(filepath.Base(path))
	if m == nil {
		return ""
	}
	return CheckpointPath(filepath.Dir(path), m[1])
}

// ErrBadCheckpoint reports a checkpoint file that cannot be used.
var ErrBadCheckpoint = errors.New("share log: bad checkpoint file")

// ReadCheckpoint reads chain's checkpoint in dir. ok is false (and err nil) when there is none.
func ReadCheckpoint(dir, chain string) (cp Checkpoint, ok bool, err error) {
	return readCheckpointFile(CheckpointPath(dir, chain))
}

func readCheckpointFile(path string) (cp Checkpoint, ok bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Checkpoint{}, false, nil
	}
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("logfile: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCheckpointSize+1))
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("logfile: %s: %w", path, err)
	}
	cp, err = decodeCheckpoint(b)
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("%w %s: %v", ErrBadCheckpoint, path, err)
	}
	return cp, true, nil
}

// decodeCheckpoint parses and validates a checkpoint file's bytes.
func decodeCheckpoint(b []byte) (Checkpoint, error) {
	if len(b) > maxCheckpointSize {
		return Checkpoint{}, fmt.Errorf("larger than %d bytes", maxCheckpointSize)
	}
	var cp Checkpoint
	if err := json.Unmarshal(b, &cp); err != nil {
		return Checkpoint{}, err
	}
	var errs []error
	if len(cp.Source) > 1024 {
		errs = append(errs, errors.New("source longer than 1024 bytes"))
	}
	if len(cp.Positions) > maxCheckpointEntries || len(cp.Files) > maxCheckpointEntries {
		errs = append(errs, fmt.Errorf("more than %d positions or files", maxCheckpointEntries))
	}
	for p, off := range cp.Positions {
		if p < 0 || off < -1 {
			errs = append(errs, fmt.Errorf("position %d of partition %d out of range", off, p))
		}
	}
	if len(cp.Marks) > maxMarkedFiles {
		errs = append(errs, fmt.Errorf("marks for more than %d files", maxMarkedFiles))
	}
	for name, ms := range cp.Marks {
		if !dayFileName.MatchString(name) {
			errs = append(errs, fmt.Errorf("marks: %q is not a share-log day file name", name))
		}
		if len(ms) > maxMarks+1 {
			errs = append(errs, fmt.Errorf("%s: more than %d marks", name, maxMarks+1))
		}
		for i, m := range ms {
			if m.Off < 0 || m.Max < -1 || m.Max > MaxTimestamp || i > 0 && (m.Off < ms[i-1].Off || m.Max < ms[i-1].Max) {
				errs = append(errs, fmt.Errorf("%s: mark %d (%d, %d) out of order or range", name, i, m.Off, m.Max))
				break
			}
		}
	}
	for name, n := range cp.Files {
		if !dayFileName.MatchString(name) {
			errs = append(errs, fmt.Errorf("%q is not a share-log day file name", name))
		}
		if n < 0 {
			errs = append(errs, fmt.Errorf("%s: negative length %d", name, n))
		}
	}
	if cp.Positions == nil {
		cp.Positions = map[int32]int64{}
	}
	if cp.Files == nil {
		cp.Files = map[string]int64{}
	}
	return cp, errors.Join(errs...)
}

// clone returns a deep copy.
func (cp Checkpoint) clone() Checkpoint {
	out := Checkpoint{Source: cp.Source, Positions: make(map[int32]int64, len(cp.Positions)), Files: make(map[string]int64, len(cp.Files))}
	for k, v := range cp.Positions {
		out.Positions[k] = v
	}
	for k, v := range cp.Files {
		out.Files[k] = v
	}
	if cp.Marks != nil {
		out.Marks = make(map[string][]Mark, len(cp.Marks))
		for k, v := range cp.Marks {
			out.Marks[k] = append([]Mark(nil), v...)
		}
	}
	return out
}

func (cp Checkpoint) equal(o Checkpoint) bool {
	if cp.Source != o.Source || len(cp.Positions) != len(o.Positions) || len(cp.Files) != len(o.Files) {
		return false
	}
	for k, v := range cp.Positions {
		if w, ok := o.Positions[k]; !ok || w != v {
			return false
		}
	}
	for k, v := range cp.Files {
		if w, ok := o.Files[k]; !ok || w != v {
			return false
		}
	}
	if len(cp.Marks) != len(o.Marks) {
		return false
	}
	for k, v := range cp.Marks {
		w, ok := o.Marks[k]
		if !ok || len(w) != len(v) {
			return false
		}
		for i := range v {
			if v[i] != w[i] {
				return false
			}
		}
	}
	return true
}

// appendJSON appends the checkpoint in a stable order (JSON object keys sorted by
// encoding/json), one line.
func (cp Checkpoint) appendJSON(dst []byte) ([]byte, error) {
	b, err := json.Marshal(cp)
	if err != nil {
		return dst, err
	}
	return append(append(dst, b...), '\n'), nil
}

// writeCheckpointFile replaces path atomically and durably: a temporary file, fsynced,
// renamed over path, and the directory fsynced. A crash leaves the old or the new content.
func writeCheckpointFile(path string, cp Checkpoint, buf []byte) ([]byte, error) {
	buf, err := cp.appendJSON(buf[:0])
	if err != nil {
		return buf, err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return buf, err
	}
	_, err = f.Write(buf)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return buf, err
	}
	return buf, syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// String is a short description for logs.
func (cp Checkpoint) String() string {
	return "checkpoint(" + strconv.Itoa(len(cp.Files)) + " files, " + strconv.Itoa(len(cp.Positions)) + " partitions)"
}
