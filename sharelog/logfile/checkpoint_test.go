package logfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func openCheckpointed(t *testing.T, dir string, c Compression, maxOpen int) *Writer {
	t.Helper()
	w, err := OpenWriter(WriterOptions{Dir: dir, Compression: c, Checkpoint: true, MaxOpenFiles: maxOpen})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func readCP(t *testing.T, dir string) []byte {
	t.Helper()
	b, err := os.ReadFile(CheckpointPath(dir, "BTC"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// appendN appends payloads from..from+n-1 at ts, advancing partition 0 to each index.
func appendN(t *testing.T, w *Writer, ts int64, from, n int) [][]byte {
	t.Helper()
	var out [][]byte
	for i := from; i < from+n; i++ {
		p := payload(i)
		if err := w.Append(ts, p); err != nil {
			t.Fatal(err)
		}
		w.Advance(0, int64(i))
		out = append(out, p)
	}
	return out
}

// TestCheckpointCutsTornTail: a crash after a flush reached the file but before its
// checkpoint (simulated by putting the older checkpoint back), with a half-written segment
// after it, leaves the reader showing only checkpointed records, and a reopened writer cuts
// the file back to the checkpointed length, a segment boundary, and restores the positions.
func TestCheckpointCutsTornTail(t *testing.T) {
	compressions(t, func(t *testing.T, c Compression) {
		dir := t.TempDir()
		w := openCheckpointed(t, dir, c, 0)
		w.SetSource("test", nil)
		want := appendN(t, w, day0+10, 0, 100)
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		path := w.Path(day0)
		good := fileSize(t, path)
		old := readCP(t, dir)
		appendN(t, w, day0+20, 100, 50)
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		second := fileSize(t, path)
		appendN(t, w, day0+30, 150, 50)
		// The crash: the third segment half written, the second never checkpointed.
		df := w.files[0]
		if err := df.zsOrGzClose(); err != nil {
			t.Fatal(err)
		}
		torn := df.buf.Bytes()[:df.buf.Len()/2]
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(torn)
		f.Close()
		if err := os.WriteFile(CheckpointPath(dir, "BTC"), old, 0o644); err != nil {
			t.Fatal(err)
		}
		w.lock.Close() // the process died: the kernel drops its lock
		w.lock = nil

		// Followers and one-shot readers see the checkpointed records only.
		equalRecords(t, readAll(t, path), want)
		r, err := OpenReader(path, ReaderOptions{Follow: true})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for ; ; n++ {
			if _, err := r.Next(); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
		}
		r.Close()
		if n != len(want) {
			t.Fatalf("follower read %d records, want %d", n, len(want))
		}
		size := fileSize(t, path)
		if size <= second {
			t.Fatalf("test setup: file %d bytes, not beyond the second segment (%d)", size, second)
		}

		w2 := openCheckpointed(t, dir, c, 0)
		defer w2.Close()
		if got := fileSize(t, path); got != good {
			t.Fatalf("after reopen the file is %d bytes, want the checkpointed %d", got, good)
		}
		f, _ = os.Open(path)
		g, total, err := ScanSegments(f, good)
		f.Close()
		if err != nil || g != good || total != good {
			t.Fatalf("cut is not on a segment boundary: good %d total %d err %v", g, total, err)
		}
		cp := w2.Restored()
		if cp.Source != "test" || cp.Positions[0] != 99 || cp.Files[filepath.Base(path)] != good {
			t.Fatalf("restored %+v", cp)
		}
		if w2.Stats().BytesCut != size-good {
			t.Fatalf("cut %d bytes, want %d", w2.Stats().BytesCut, size-good)
		}
		// Writing goes on after the cut.
		more := appendN(t, w2, day0+40, 100, 10)
		if err := w2.Flush(); err != nil {
			t.Fatal(err)
		}
		equalRecords(t, readAll(t, path), append(want, more...))
	})
}

// zsOrGzClose ends the segment being built into df.buf without writing it.
func (df *dayFile) zsOrGzClose() error {
	if df.zs != nil {
		return df.zs.Close()
	}
	return df.gz.Close()
}

// TestCheckpointMidnight: with two day files open (shares of both days around midnight) and
// a third created after the last checkpoint, a crash before the next checkpoint cuts both
// open files back and empties the new one; a file the writer never listed is left alone.
func TestCheckpointMidnight(t *testing.T) {
	compressions(t, func(t *testing.T, c Compression) {
		dir := t.TempDir()
		// An old day file written without checkpoints (e.g. by btcpool): final, not ours.
		plain := newWriter(t, dir, c)
		oldRecs := [][]byte{payload(900), payload(901)}
		for _, p := range oldRecs {
			plain.Append(day0-SecondsPerDay, p)
		}
		if err := plain.Close(); err != nil {
			t.Fatal(err)
		}

		w := openCheckpointed(t, dir, c, 0)
		w.SetSource("test", nil)
		var want0, want1 [][]byte
		for i := 0; i < 40; i++ {
			ts := int64(day0 + SecondsPerDay - 5 + i%10) // both sides of midnight
			p := payload(i)
			if err := w.Append(ts, p); err != nil {
				t.Fatal(err)
			}
			w.Advance(0, int64(i))
			if ts < day0+SecondsPerDay {
				want0 = append(want0, p)
			} else {
				want1 = append(want1, p)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if w.OpenFiles() != 2 {
			t.Fatalf("%d files open", w.OpenFiles())
		}
		p0, p1, p2 := w.Path(day0), w.Path(day0+SecondsPerDay), w.Path(day0+2*SecondsPerDay)
		s0, s1 := fileSize(t, p0), fileSize(t, p1)
		cp1 := readCP(t, dir)
		// More for both days and the first record of a third one, flushed, then the crash
		// before the checkpoint that covers them.
		appendN(t, w, day0+SecondsPerDay-1, 40, 5)
		appendN(t, w, day0+SecondsPerDay+1, 45, 5)
		appendN(t, w, day0+2*SecondsPerDay, 50, 5)
		cpIntent := readCP(t, dir) // lists the third file before its first byte
		for _, df := range w.files {
			if err := w.flushFile(df); err != nil {
				t.Fatal(err)
			}
		}
		if fileSize(t, p2) == 0 {
			t.Fatal("test setup: the third file is empty")
		}
		for _, cp := range [][]byte{cp1, cpIntent} {
			if err := os.WriteFile(CheckpointPath(dir, "BTC"), cp, 0o644); err != nil {
				t.Fatal(err)
			}
			// Readers never show the unconfirmed records.
			equalRecords(t, readAll(t, p0), want0)
			equalRecords(t, readAll(t, p1), want1)
		}
		w.lock.Close()
		w.lock = nil

		w2 := openCheckpointed(t, dir, c, 0)
		defer w2.Close()
		if fileSize(t, p0) != s0 || fileSize(t, p1) != s1 || fileSize(t, p2) != 0 {
			t.Fatalf("after reopen: %d %d %d bytes, want %d %d 0", fileSize(t, p0), fileSize(t, p1), fileSize(t, p2), s0, s1)
		}
		equalRecords(t, readAll(t, w2.Path(day0-SecondsPerDay)), oldRecs)
		if pos := w2.Restored().Positions[0]; pos != 39 {
			t.Fatalf("restored position %d, want 39", pos)
		}
	})
}

// TestCheckpointEvictionKeepsFilesExact: with one open file at a time, switching days
// flushes and checkpoints before the old file is closed and dropped from the checkpoint.
func TestCheckpointEvictionKeepsFilesExact(t *testing.T) {
	dir := t.TempDir()
	w := openCheckpointed(t, dir, Gzip, 1)
	w.SetSource("test", nil)
	var want [2][][]byte
	for i := 0; i < 30; i++ {
		d := i / 3 % 2
		p := payload(i)
		if err := w.Append(day0+int64(d)*SecondsPerDay, p); err != nil {
			t.Fatal(err)
		}
		w.Advance(0, int64(i))
		want[d] = append(want[d], p)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.Stats().FilesEvicted == 0 {
		t.Fatal("no eviction")
	}
	w2 := openCheckpointed(t, dir, Gzip, 1)
	defer w2.Close()
	equalRecords(t, readAll(t, w2.Path(day0)), want[0])
	equalRecords(t, readAll(t, w2.Path(day0+SecondsPerDay)), want[1])
	if w2.Restored().Positions[0] != 29 {
		t.Fatalf("restored %+v", w2.Restored())
	}
}

// TestCheckpointLocksDirectory: two writers never share a directory.
func TestCheckpointLocksDirectory(t *testing.T) {
	dir := t.TempDir()
	w := openCheckpointed(t, dir, Gzip, 0)
	if _, err := OpenWriter(WriterOptions{Dir: dir, Checkpoint: true}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second writer: %v, want ErrLocked", err)
	}
	w.Close()
	w2 := openCheckpointed(t, dir, Gzip, 0)
	w2.Close()
}

// TestBadCheckpointRefused: a damaged checkpoint stops the writer with a clear error.
func TestBadCheckpointRefused(t *testing.T) {
	for _, body := range []string{`{`, `{"files":{"../../etc/passwd":1}}`, `{"files":{"sharelogBTC-2020-09-14.bin":-1}}`, `{"positions":{"0":-5}}`} {
		dir := t.TempDir()
		os.WriteFile(CheckpointPath(dir, "BTC"), []byte(body), 0o644)
		if _, err := OpenWriter(WriterOptions{Dir: dir, Checkpoint: true}); !errors.Is(err, ErrBadCheckpoint) {
			t.Errorf("%s: %v, want ErrBadCheckpoint", body, err)
		}
	}
}

func FuzzCheckpoint(f *testing.F) {
	f.Add([]byte(`{"source":"bus:BtcShare","positions":{"0":12},"files":{"sharelogBTC-2020-09-14.bin":1234}}`))
	f.Add([]byte(`{"positions":{"-1":1}}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"source":"s","positions":{},"files":{},"marks":{"sharelogBTC-2020-09-14.bin.zst":[{"o":0,"t":-1},{"o":99,"t":1600041700}]}}`))
	f.Add([]byte(`{"marks":{"sharelogBTC-2020-09-14.bin":[{"o":5,"t":9},{"o":4,"t":10}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		cp, err := decodeCheckpoint(b)
		if err != nil {
			return
		}
		out, err := cp.appendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeCheckpoint(out)
		if err != nil || !back.equal(cp) {
			t.Fatalf("round trip %s -> %s: %v", b, out, err)
		}
	})
}

// TestMarksLetReadersSkipOldShares: the checkpoint's marks of a day file give, for any time,
// a segment boundary before which every record is older, also across a restart of the writer.
func TestMarksLetReadersSkipOldShares(t *testing.T) {
	compressions(t, func(t *testing.T, c Compression) {
		dir := t.TempDir()
		var ts []int64
		write := func(w *Writer, from, to int) {
			for i := from; i < to; i++ {
				tm := int64(day0 + i*10) // 10 s apart
				if err := w.Append(tm, payload(i)); err != nil {
					t.Fatal(err)
				}
				w.Advance(0, int64(i))
				ts = append(ts, tm)
				if i%20 == 19 { // a flush every 200 s of share time
					if err := w.Flush(); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
		w := openCheckpointed(t, dir, c, 0)
		write(w, 0, 2000)
		w.Close()
		w = openCheckpointed(t, dir, c, 0) // marks go on after a restart
		write(w, 2000, 4000)
		w.Close()
		cp, ok, err := ReadCheckpoint(dir, "BTC")
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		name := FileName("BTC", day0, c)
		marks := cp.Marks[name]
		if len(marks) < 100 || len(marks) > maxMarks+1 {
			t.Fatalf("%d marks", len(marks))
		}
		path := filepath.Join(dir, name)
		for _, since := range []int64{day0, day0 + 3600, day0 + 20000, day0 + 39990, day0 + 40000} {
			off := Start(marks, since)
			r, err := OpenReader(path, ReaderOptions{Offset: off})
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for ; ; n++ {
				if _, err := r.Next(); err == io.EOF {
					break
				} else if err != nil {
					t.Fatal(err)
				}
			}
			r.Close()
			skipped := len(ts) - n
			for _, tm := range ts[:skipped] {
				if tm >= since {
					t.Fatalf("since %d: skipped a record of %d", since, tm)
				}
			}
			newer := 0
			for _, tm := range ts {
				if tm >= since {
					newer++
				}
			}
			if n-newer > 2*MarkSeconds/10+20 { // at most a mark interval and a flush too early
				t.Fatalf("since %d: read %d records for %d newer", since, n, newer)
			}
		}
	})
}
