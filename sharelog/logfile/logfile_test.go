package logfile

import (
	"bytes"
	stdgzip "compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// day0 is 2020-09-14 00:00:00 UTC, the spec's example day.
const day0 = 1600041600

func TestFileName(t *testing.T) {
	for _, c := range []struct {
		ts   int64
		comp Compression
		want string
	}{
		{day0, Gzip, "sharelogBTC-2020-09-14.bin"},
		{day0 + SecondsPerDay - 1, Gzip, "sharelogBTC-2020-09-14.bin"},
		{day0 + SecondsPerDay, Gzip, "sharelogBTC-2020-09-15.bin"},
		{day0, Zstd, "sharelogBTC-2020-09-14.bin.zst"},
		{0, Gzip, "sharelogBTC-1970-01-01.bin"},
	} {
		if got := FileName("BTC", c.ts, c.comp); got != c.want {
			t.Errorf("FileName(%d, %v) = %q, want %q", c.ts, c.comp, got, c.want)
		}
	}
}

// payload is a deterministic record payload of 30..69 bytes.
func payload(i int) []byte {
	return []byte(fmt.Sprintf("share-%06d-%s", i, strings.Repeat("x", i%40)))
}

func newWriter(t *testing.T, dir string, c Compression) *Writer {
	t.Helper()
	w, err := OpenWriter(WriterOptions{Dir: dir, Compression: c})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func readAll(t *testing.T, path string) [][]byte {
	t.Helper()
	r, err := OpenReader(path, ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out [][]byte
	for i := 0; i < 1_000_000; i++ {
		rec, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("%s: record %d: %v", path, len(out), err)
		}
		out = append(out, append([]byte(nil), rec...))
	}
	t.Fatal("too many records")
	return nil
}

func framed(recs ...[]byte) []byte {
	var b []byte
	for _, r := range recs {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(r)))
		b = append(b, r...)
	}
	return b
}

func equalRecords(t *testing.T, got [][]byte, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("record %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func compressions(t *testing.T, fn func(t *testing.T, c Compression)) {
	for _, c := range []Compression{Gzip, Zstd} {
		t.Run(c.String(), func(t *testing.T) { fn(t, c) })
	}
}

// TestWriteReadDays writes shares of three days over several flushes and
// reads each day back in order; every flush is one segment.
func TestWriteReadDays(t *testing.T) {
	compressions(t, func(t *testing.T, c Compression) {
		dir := t.TempDir()
		w := newWriter(t, dir, c)
		want := map[int64][][]byte{}
		const flushes = 4
		for f := 0; f < flushes; f++ {
			for i := 0; i < 300; i++ {
				n := f*300 + i
				ts := int64(day0 + (n%3)*SecondsPerDay + n%SecondsPerDay)
				if err := w.Append(ts, payload(n)); err != nil {
					t.Fatal(err)
				}
				day := ts - ts%SecondsPerDay
				want[day] = append(want[day], payload(n))
			}
			if w.Pending() != 300 {
				t.Fatalf("Pending = %d", w.Pending())
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if w.Pending() != 0 {
				t.Fatalf("Pending after flush = %d", w.Pending())
			}
		}
		if err := w.Flush(); err != nil { // nothing pending: writes nothing
			t.Fatal(err)
		}
		st := w.Stats()
		if st.Records != flushes*300 || st.Segments != flushes*3 {
			t.Fatalf("stats %+v", st)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		for day, recs := range want {
			path := filepath.Join(dir, FileName("BTC", day, c))
			equalRecords(t, readAll(t, path), recs)
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			fi, _ := f.Stat()
			n := 0
			sr := newSegmentReader(0)
			for off := int64(0); ; n++ {
				_, end, err := sr.read(f, off, fi.Size())
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				off = end
			}
			f.Close()
			if n != flushes {
				t.Fatalf("%s has %d segments, want one per flush (%d)", path, n, flushes)
			}
		}
	})
}

// TestGzipFileIsBtcpoolFormat decodes a written file with the standard
// library (an independent gzip implementation, multistream like zstr) and
// zstd as one stream: the content is exactly the framed records.
func TestGzipFileIsBtcpoolFormat(t *testing.T) {
	compressions(t, func(t *testing.T, c Compression) {
		dir := t.TempDir()
		w := newWriter(t, dir, c)
		var recs [][]byte
		for i := 0; i < 50; i++ {
			recs = append(recs, payload(i))
			if err := w.Append(day0+int64(i), payload(i)); err != nil {
				t.Fatal(err)
			}
			if i%7 == 6 {
				if err := w.Flush(); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(filepath.Join(dir, FileName("BTC", day0, c)))
		if err != nil {
			t.Fatal(err)
		}
		var got []byte
		if c == Gzip {
			zr, err := stdgzip.NewReader(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			got, err = io.ReadAll(zr)
			if err != nil {
				t.Fatal(err)
			}
		} else {
			zr, err := zstd.NewReader(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			got, err = io.ReadAll(zr)
			zr.Close()
			if err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(got, framed(recs...)) {
			t.Fatalf("decompressed content differs from the framed records")
		}
	})
}

func TestMaxOpenFiles(t *testing.T) {
	compressions(t, func(t *testing.T, c Compression) {
		dir := t.TempDir()
		w := newWriter(t, dir, c)
		want := map[int][][]byte{}
		// Days 0..4, then day 0 again after it was closed.
		for i, d := range []int{0, 1, 2, 3, 4, 0, 4} {
			if err := w.Append(int64(day0+d*SecondsPerDay), payload(i)); err != nil {
				t.Fatal(err)
			}
			want[d] = append(want[d], payload(i))
			if w.OpenFiles() > 3 {
				t.Fatalf("%d files open", w.OpenFiles())
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if st := w.Stats(); st.FilesEvicted != 3 || st.FilesOpened != 6 {
			t.Fatalf("stats %+v, want 3 evictions of the oldest day and 6 opens", st)
		}
		for d, recs := range want {
			equalRecords(t, readAll(t, filepath.Join(dir, FileName("BTC", int64(day0+d*SecondsPerDay), c))), recs)
		}
	})
}

func TestAppendRejects(t *testing.T) {
	w := newWriter(t, t.TempDir(), Gzip)
	defer w.Close()
	for name, err := range map[string]error{
		"negative ts": w.Append(-1, []byte("x")),
		"year 10000":  w.Append(MaxTimestamp+1, []byte("x")),
		"too big":     w.Append(day0, make([]byte, MaxRecordSize+1)),
	} {
		if err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	if w.Pending() != 0 || w.OpenFiles() != 0 {
		t.Fatalf("rejected appends left state: pending %d files %d", w.Pending(), w.OpenFiles())
	}
	if err := w.Append(MaxTimestamp, []byte("ok")); err != nil {
		t.Fatal(err)
	}
}

func TestWriterOptionsValidate(t *testing.T) {
	o := WriterOptions{Chain: "B T C", Compression: 7, GzipLevel: 11, MaxOpenFiles: -1}
	err := o.Validate()
	for _, want := range []string{"Dir", "Chain", "Compression", "GzipLevel", "MaxOpenFiles"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, missing %s", err, want)
		}
	}
}

// writeDay writes n records in flushes of 10 and returns them and the path.
func writeDay(t *testing.T, dir string, c Compression, from, n int) ([][]byte, string) {
	t.Helper()
	w := newWriter(t, dir, c)
	var recs [][]byte
	for i := from; i < from+n; i++ {
		if err := w.Append(day0+int64(i), payload(i)); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, payload(i))
		if i%10 == 9 {
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return recs, filepath.Join(dir, FileName("BTC", day0, c))
}

// TestRecoverTornTail simulates a crash at every byte of the last segment's
// write, and garbage after a crash: reopening cuts exactly the torn segment
// and new records follow the old ones.
func TestRecoverTornTail(t *testing.T) {
	compressions(t, func(t *testing.T, c Compression) {
		src := t.TempDir()
		old, path := writeDay(t, src, c, 0, 20) // two segments
		whole, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		// The last segment of a file with 3 flushes: write one more segment.
		_, _ = writeDay(t, src, c, 20, 10)
		full, _ := os.ReadFile(path)
		last := full[len(whole):]

		tails := map[string][]byte{"zeros": make([]byte, 4096), "text": []byte("not a segment")}
		for cut := 1; cut < len(last); cut += max(1, len(last)/40) {
			tails[fmt.Sprintf("cut%d", cut)] = last[:cut]
		}
		for name, tail := range tails {
			dir := t.TempDir()
			p := filepath.Join(dir, filepath.Base(path))
			if err := os.WriteFile(p, append(append([]byte(nil), whole...), tail...), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := OpenReader(p, ReaderOptions{}); err != nil {
				t.Fatal(err)
			}
			w := newWriter(t, dir, c)
			if err := w.Append(day0+500, []byte("after crash")); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if st := w.Stats(); st.Recovered != 1 || st.BytesCut != int64(len(tail)) {
				t.Fatalf("%s: stats %+v, want one recovery cutting %d bytes", name, st, len(tail))
			}
			equalRecords(t, readAll(t, p), append(append([][]byte(nil), old...), []byte("after crash")))
		}
	})
}

func TestRecoveryRefusesLargeDamage(t *testing.T) {
	dir := t.TempDir()
	_, path := writeDay(t, dir, Gzip, 0, 10)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(bytes.Repeat([]byte{0xAB}, 2000))
	f.Close()
	w, err := OpenWriter(WriterOptions{Dir: dir, MaxRecoveryCut: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Append(day0, []byte("x")); err == nil || !strings.Contains(err.Error(), "MaxRecoveryCut") {
		t.Fatalf("Append over 2000 damaged bytes: %v", err)
	}
	if fi, _ := os.Stat(path); fi.Size() < 2000 {
		t.Fatal("file was cut anyway")
	}
}

// TestFollow reads a file while it is written, including a segment that is
// only partly on disk.
func TestFollow(t *testing.T) {
	compressions(t, func(t *testing.T, c Compression) {
		dir := t.TempDir()
		path := filepath.Join(dir, FileName("BTC", day0, c))
		if err := os.WriteFile(path, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := OpenReader(path, ReaderOptions{Follow: true})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if _, err := r.Next(); err != io.EOF {
			t.Fatalf("empty file: %v", err)
		}
		w := newWriter(t, dir, c)
		defer w.Close()
		var got [][]byte
		var want [][]byte
		for round := 0; round < 3; round++ {
			for i := 0; i < 5; i++ {
				n := round*5 + i
				want = append(want, payload(n))
				if err := w.Append(day0+int64(n), payload(n)); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := r.Next(); err != io.EOF {
				t.Fatalf("unflushed records visible: %v", err)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 5; i++ {
				rec, err := r.WaitNext(context.Background(), time.Millisecond)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, append([]byte(nil), rec...))
			}
			if _, err := r.Next(); err != io.EOF {
				t.Fatalf("after round %d: %v", round, err)
			}
		}
		equalRecords(t, got, want)

		// A segment arriving in two halves.
		var seg bytes.Buffer
		other := t.TempDir()
		_, p2 := writeDay(t, other, c, 100, 3)
		segBytes, _ := os.ReadFile(p2)
		seg.Write(segBytes)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		half := seg.Len() / 2
		f.Write(seg.Bytes()[:half])
		if _, err := r.Next(); err != io.EOF {
			t.Fatalf("half segment in follow mode: %v", err)
		}
		nf, err := OpenReader(path, ReaderOptions{Offset: r.Offset()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nf.Next(); !errors.Is(err, ErrTorn) {
			t.Fatalf("half segment without follow: %v, want ErrTorn", err)
		}
		nf.Close()
		f.Write(seg.Bytes()[half:])
		for i := 100; i < 103; i++ {
			rec, err := r.Next()
			if err != nil || !bytes.Equal(rec, payload(i)) {
				t.Fatalf("completed segment record %d: %q %v", i, rec, err)
			}
		}
	})
}

// TestReaderOffsetResumes checks, after every record, that a reader opened
// at Offset continues without a gap: it returns recs[k:] for some k no
// later than the records already consumed.
func TestReaderOffsetResumes(t *testing.T) {
	compressions(t, func(t *testing.T, c Compression) {
		recs, path := writeDay(t, t.TempDir(), c, 0, 35)
		r, err := OpenReader(path, ReaderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		for consumed := 0; consumed <= len(recs); consumed++ {
			rest := readAllFrom(t, path, r.Offset())
			k := len(recs) - len(rest)
			if k < 0 || k > consumed {
				t.Fatalf("after %d records, resume gives %d records", consumed, len(rest))
			}
			equalRecords(t, rest, recs[k:])
			if consumed < len(recs) {
				if _, err := r.Next(); err != nil {
					t.Fatal(err)
				}
			}
		}
		if r.Offset() == 0 {
			t.Fatal("offset never moved")
		}
	})
}

func readAllFrom(t *testing.T, path string, off int64) [][]byte {
	t.Helper()
	r, err := OpenReader(path, ReaderOptions{Offset: off})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out [][]byte
	for i := 0; i < 1000; i++ {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, append([]byte(nil), rec...))
	}
	return out
}

func gzipMember(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := stdgzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// TestRecordSplitAcrossMembers: another writer may cut a record between two
// members; the stream is what counts.
func TestRecordSplitAcrossMembers(t *testing.T) {
	all := framed([]byte("first record"), []byte("second record"))
	file := append(gzipMember(t, all[:20]), gzipMember(t, all[20:])...)
	p := filepath.Join(t.TempDir(), "x.bin")
	os.WriteFile(p, file, 0o644)
	equalRecords(t, readAll(t, p), [][]byte{[]byte("first record"), []byte("second record")})
}

func TestReaderRejectsHugeLength(t *testing.T) {
	bad := binary.LittleEndian.AppendUint32(nil, 1<<30)
	p := filepath.Join(t.TempDir(), "x.bin")
	os.WriteFile(p, gzipMember(t, append(bad, "abc"...)), 0o644)
	r, _ := OpenReader(p, ReaderOptions{})
	defer r.Close()
	if _, err := r.Next(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("huge length: %v", err)
	}
	if _, err := r.Next(); !errors.Is(err, ErrCorrupt) {
		t.Fatal("corruption is not sticky")
	}
}

func TestReaderBoundsSegmentSize(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.bin")
	os.WriteFile(p, gzipMember(t, make([]byte, 1<<20)), 0o644) // a gzip bomb in small
	r, _ := OpenReader(p, ReaderOptions{MaxSegmentSize: 64 << 10})
	defer r.Close()
	if _, err := r.Next(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("oversized segment: %v", err)
	}
}

// memFile is an in-memory share-log file for the fuzz target: creating and removing a file
// per input kept the fuzz workers waiting on the disk (ext4 discards on unlink) and the fuzzer
// at 0 execs/s for seconds at a time.
type memFile struct{ *bytes.Reader }

func (m memFile) Close() error               { return nil }
func (m memFile) Stat() (os.FileInfo, error) { return memInfo(m.Size()), nil }

type memInfo int64

func (m memInfo) Name() string       { return "f.bin" }
func (m memInfo) Size() int64        { return int64(m) }
func (m memInfo) Mode() os.FileMode  { return 0o644 }
func (m memInfo) ModTime() time.Time { return time.Time{} }
func (m memInfo) IsDir() bool        { return false }
func (m memInfo) Sys() any           { return nil }

// FuzzReader feeds arbitrary files to the reader: it must not panic, must
// end, and must return only records of at most MaxRecordSize.
func FuzzReader(f *testing.F) {
	dir := f.TempDir()
	for _, c := range []Compression{Gzip, Zstd} {
		w, _ := OpenWriter(WriterOptions{Dir: dir, Compression: c})
		for i := 0; i < 5; i++ {
			w.Append(day0, payload(i))
			if i%2 == 1 {
				w.Flush()
			}
		}
		w.Close()
		b, _ := os.ReadFile(filepath.Join(dir, FileName("BTC", day0, c)))
		f.Add(b)
		f.Add(b[:len(b)-3])
	}
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0xff, 0xff, 0xff})
	f.Add([]byte{0x1f, 0x8b})
	// a zstd frame declaring a 511 MB content size, and one of 128 KiB RLE blocks
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0xe0, 0, 0, 0xf0, 0x1f, 0, 0, 0, 0, 0x23, 0x03, 0x00, 0x30})
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x50, 0x02, 0x00, 0x10, 0x30, 0x03, 0x00, 0x10, 0x30})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, follow := range []bool{false, true} {
			r := newReader(memFile{bytes.NewReader(b)}, ReaderOptions{Follow: follow, MaxSegmentSize: 1 << 20})
			for i := 0; i < 10000; i++ {
				rec, err := r.Next()
				if err != nil {
					break
				}
				if len(rec) > MaxRecordSize {
					t.Fatalf("record of %d bytes", len(rec))
				}
			}
			r.Close()
		}
		good, _, _ := ScanSegments(bytes.NewReader(b), int64(len(b)))
		if good < 0 || good > int64(len(b)) {
			t.Fatalf("ScanSegments good offset %d of %d", good, len(b))
		}
	})
}
