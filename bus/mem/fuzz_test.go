package mem

import (
	"bytes"
	"errors"
	"testing"
)

func seedSegment(base int64, n int) []byte {
	b := appendSegHeader(nil, base)
	for i := range n {
		b = appendFrame(b, base+int64(i), int64(i)*1e9, []byte("k"), bytes.Repeat([]byte{byte(i)}, i*3))
	}
	return b
}

// FuzzScanSegment: any bytes as a segment file never panic; the valid prefix
// rescans cleanly to the same records, and the consumers' frame parser agrees
// with the open-time scanner on every record of it.
func FuzzScanSegment(f *testing.F) {
	const base = 1000
	full := seedSegment(base, 12)
	f.Add(full)
	f.Add(full[:len(full)-5])
	f.Add(full[:segHeaderSize])
	f.Add(full[:7])
	bad := bytes.Clone(full)
	bad[len(bad)/2] ^= 0xff
	f.Add(bad)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		res := scanSegment(bytes.NewReader(data), base)
		if res.valid > int64(len(data)) || res.next < base {
			t.Fatalf("valid %d of %d bytes, next %d", res.valid, len(data), res.next)
		}
		if res.err == nil && res.valid != int64(len(data)) {
			t.Fatalf("clean scan stopped at %d of %d", res.valid, len(data))
		}
		if res.valid == 0 {
			return
		}
		again := scanSegment(bytes.NewReader(data[:res.valid]), base)
		if again.err != nil || again.next != res.next || again.valid != res.valid {
			t.Fatalf("rescan of the valid prefix: %+v, first %+v", again, res)
		}
		pos, off := segHeaderSize, int64(base)
		for off < res.next {
			fr, err := parseFrame(data[pos:res.valid], off)
			if err != nil {
				t.Fatalf("parseFrame at %d (offset %d): %v", pos, off, err)
			}
			pos += fr.n
			off++
		}
		if int64(pos) != res.valid {
			t.Fatalf("frames end at %d, scan at %d", pos, res.valid)
		}
		for _, e := range res.index {
			if e.off >= res.next {
				continue // the entry for an empty segment
			}
			if _, err := parseFrame(data[e.pos:res.valid], e.off); err != nil {
				t.Fatalf("index entry %+v: %v", e, err)
			}
		}
		// Bytes after the valid part never parse as the next record.
		if res.err != nil && int64(len(data)) > res.valid {
			if _, err := parseFrame(data[res.valid:], res.next); err == nil {
				t.Fatalf("parseFrame accepts the record the scan rejected (%v)", res.err)
			} else if !errors.Is(err, errShort) {
				var ce *CorruptError
				if !errors.As(err, &ce) {
					t.Fatalf("parseFrame error %T %v", err, err)
				}
			}
		}
	})
}

// FuzzParseGroups: any bytes as an offsets file never panic; the valid
// prefix reparses to the same offsets, and rewriting them reparses equal.
func FuzzParseGroups(f *testing.F) {
	var seed []byte
	seed = appendGroupRecord(seed, groupKey{"sharelog", "BtcShare"}, 12345)
	seed = appendGroupRecord(seed, groupKey{"blkmaker", "BtcSolvedShare"}, 7)
	seed = appendGroupRecord(seed, groupKey{"sharelog", "BtcShare"}, 99999)
	f.Add(seed)
	f.Add(seed[:len(seed)-3])
	f.Add([]byte{0, 0, 0, 12, 1, 2, 3, 4})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, valid, err := parseGroups(bytes.NewReader(data))
		if valid > int64(len(data)) || (err == nil && valid != int64(len(data))) {
			t.Fatalf("valid %d of %d, err %v", valid, len(data), err)
		}
		m2, valid2, err2 := parseGroups(bytes.NewReader(data[:valid]))
		if err2 != nil || valid2 != valid || len(m2) != len(m) {
			t.Fatalf("reparse of the valid prefix: %v %d %v", m2, valid2, err2)
		}
		var out []byte
		for k, off := range m {
			if off < 0 || m2[k] != off {
				t.Fatalf("offset %d for %v", off, k)
			}
			out = appendGroupRecord(out, k, off)
		}
		m3, _, err3 := parseGroups(bytes.NewReader(out))
		if err3 != nil || len(m3) != len(m) {
			t.Fatalf("rewritten file: %v %v", m3, err3)
		}
	})
}

// FuzzParseSegIndex: any bytes as a segment summary never panic, and what is
// accepted is self-consistent (sorted entries inside the segment) and
// re-encodes to the same bytes.
func FuzzParseSegIndex(f *testing.F) {
	s := &segment{base: 100, end: 900, size: 3 << 20, lastNanos: 12345,
		index: []indexEntry{{100, 20}, {400, 1 << 20}, {700, 2 << 20}}}
	enc := appendSegIndex(nil, s)
	f.Add(enc, int64(100), int64(3<<20))
	f.Add(enc[:len(enc)-1], int64(100), int64(3<<20))
	f.Add(enc, int64(101), int64(3<<20))
	f.Add([]byte(idxMagic), int64(0), int64(20))
	f.Fuzz(func(t *testing.T, data []byte, base, size int64) {
		got, ok := parseSegIndex(data, base, size)
		if !ok {
			return
		}
		if got.base != base || got.size != size || got.end < base {
			t.Fatalf("accepted %+v for base %d size %d", got, base, size)
		}
		for i, e := range got.index {
			if e.off < base || e.pos < segHeaderSize || (i > 0 && (e.off <= got.index[i-1].off || e.pos <= got.index[i-1].pos)) {
				t.Fatalf("entry %d %+v out of order or bounds", i, e)
			}
		}
		if again := appendSegIndex(nil, &got); !bytes.Equal(again, data) {
			t.Fatal("accepted summary does not re-encode to itself")
		}
	})
}
