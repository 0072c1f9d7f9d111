package btcpool

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"

	"github.com/hashpool/hashpool/internal/alloctest"
)

func shareLogStream(t testing.TB, shares []Share) []byte {
	t.Helper()
	var b []byte
	for i := range shares {
		b = AppendShareLogRecord(b, &shares[i])
	}
	return b
}

func someShares(n int) []Share {
	r := rand.New(rand.NewPCG(7, 7))
	out := make([]Share, n)
	for i := range out {
		out[i] = randomShare(r)
		if !out[i].IP.IsValid() {
			out[i].IP = mustAddr("0.0.0.0")
		}
	}
	return out
}

func TestShareLogReaderReaders(t *testing.T) {
	shares := someShares(300)
	stream := shareLogStream(t, shares)
	readers := map[string]func() io.Reader{
		"whole":    func() io.Reader { return bytes.NewReader(stream) },
		"one byte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(stream)) },
		"half":     func() io.Reader { return iotest.HalfReader(bytes.NewReader(stream)) },
		"data+EOF": func() io.Reader { return iotest.DataErrReader(bytes.NewReader(stream)) },
	}
	for name, mk := range readers {
		t.Run(name, func(t *testing.T) {
			r := NewShareLogReader(mk())
			var s Share
			for i := range shares {
				if err := r.Next(&s); err != nil {
					t.Fatalf("record %d: %v", i, err)
				}
				if s != shares[i] {
					t.Fatalf("record %d\n got %+v\nwant %+v", i, s, shares[i])
				}
			}
			if err := r.Next(&s); err != io.EOF {
				t.Fatalf("end: %v", err)
			}
			if r.Offset() != int64(len(stream)) {
				t.Fatalf("offset %d want %d", r.Offset(), len(stream))
			}
		})
	}
}

// A sharelogger day file is a concatenation of gzip members, one per flush (spec §6.2).
func TestShareLogReaderGzipMembers(t *testing.T) {
	shares := someShares(50)
	var file bytes.Buffer
	for _, part := range [][]Share{shares[:20], shares[20:21], shares[21:]} {
		zw := gzip.NewWriter(&file)
		if _, err := zw.Write(shareLogStream(t, part)); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	zr, err := gzip.NewReader(&file)
	if err != nil {
		t.Fatal(err)
	}
	r := NewShareLogReader(zr)
	var s Share
	n := 0
	for {
		err := r.Next(&s)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if s != shares[n] {
			t.Fatalf("record %d differs", n)
		}
		n++
	}
	if n != len(shares) {
		t.Fatalf("read %d of %d", n, len(shares))
	}
}

// Tail-following a growing file: a partial record is not consumed and reading resumes once the
// rest has been appended.
func TestShareLogReaderTailFollow(t *testing.T) {
	shares := someShares(3)
	stream := shareLogStream(t, shares)
	var file bytes.Buffer // reads return io.EOF when drained; later writes become readable
	r := NewShareLogReader(&file)
	var s Share
	if err := r.Next(&s); err != io.EOF {
		t.Fatalf("empty: %v", err)
	}
	first := 4 + int(binary.LittleEndian.Uint32(stream))
	cuts := []int{2, first + 3, len(stream) - 1, len(stream)}
	want := []error{io.ErrUnexpectedEOF, io.ErrUnexpectedEOF, io.ErrUnexpectedEOF, nil}
	prev, got := 0, 0
	for i, cut := range cuts {
		file.Write(stream[prev:cut])
		prev = cut
		for {
			err := r.Next(&s)
			if err == nil {
				if s != shares[got] {
					t.Fatalf("record %d differs", got)
				}
				got++
				continue
			}
			if want[i] == nil && err == io.EOF {
				break
			}
			if err != want[i] {
				t.Fatalf("cut %d: err %v want %v", cut, err, want[i])
			}
			break
		}
	}
	if got != len(shares) {
		t.Fatalf("got %d records", got)
	}
}

func TestShareLogReaderBadRecords(t *testing.T) {
	good := AppendShareLogRecord(nil, &goldenShare)
	// A bounded record that is not a share: skipped with an error, then reading goes on.
	bad := []byte{3, 0, 0, 0, 0xff, 0xff, 0xff}
	var s Share
	r := NewShareLogReader(bytes.NewReader(append(append(append([]byte(nil), good...), bad...), good...)))
	if err := r.Next(&s); err != nil {
		t.Fatal(err)
	}
	if err := r.Next(&s); err == nil || !errors.Is(err, ErrMalformed) {
		t.Fatalf("bad record: %v", err)
	}
	if err := r.Next(&s); err != nil || s != goldenShare {
		t.Fatalf("after bad record: %v", err)
	}
	// An absurd length is rejected at once (no waiting for 4 GiB) and the error is sticky.
	huge := append(append([]byte(nil), good...), 0xff, 0xff, 0xff, 0xff)
	huge = append(huge, good...)
	r = NewShareLogReader(bytes.NewReader(huge))
	_ = r.Next(&s)
	for range 2 {
		if err := r.Next(&s); !errors.Is(err, ErrRecordTooLarge) {
			t.Fatalf("huge length: %v", err)
		}
	}
	r.Reset(bytes.NewReader(good)) // Reset clears the sticky error and the offset
	if err := r.Next(&s); err != nil || s != goldenShare || r.Offset() != int64(len(good)) {
		t.Fatalf("after Reset: %v offset %d", err, r.Offset())
	}
	// Exactly the limit is allowed (and fails only as a protobuf).
	limit := binary.LittleEndian.AppendUint32(nil, MaxShareLogRecordSize)
	limit = append(limit, make([]byte, MaxShareLogRecordSize)...)
	r = NewShareLogReader(bytes.NewReader(limit))
	if err := r.Next(&s); err == nil || errors.Is(err, ErrRecordTooLarge) {
		t.Fatalf("limit-size record: %v", err)
	}
	r = NewShareLogReader(iotest.ErrReader(errors.New("disk on fire")))
	if err := r.Next(&s); err == nil || err.Error() != "disk on fire" {
		t.Fatalf("reader error: %v", err)
	}
}

func TestDecodeShareLogRecord(t *testing.T) {
	rec := AppendShareLogRecord(nil, &goldenShare)
	var s Share
	for i := 0; i < len(rec); i++ {
		n, err := DecodeShareLogRecord(rec[:i], &s)
		want := io.ErrUnexpectedEOF
		if i == 0 {
			want = io.EOF
		}
		if n != 0 || err != want {
			t.Fatalf("prefix %d: n=%d err=%v", i, n, err)
		}
	}
	n, err := DecodeShareLogRecord(append(rec, 1, 2, 3), &s)
	if n != len(rec) || err != nil || s != goldenShare {
		t.Fatalf("n=%d err=%v", n, err)
	}
	if _, err := DecodeShareLogRecord([]byte{1, 0x10, 0, 0, 1}, &s); !errors.Is(err, ErrRecordTooLarge) {
		t.Fatalf("too large: %v", err)
	}
}

func TestShareLogReaderZeroAlloc(t *testing.T) {
	stream := shareLogStream(t, someShares(1))
	br := bytes.NewReader(stream)
	r := NewShareLogReader(br)
	var s Share
	alloctest.Zero(t, "ShareLogReader.Next", 100, func() {
		br.Reset(stream)
		r.Reset(br)
		if err := r.Next(&s); err != nil {
			t.Fatal(err)
		}
	})
}
