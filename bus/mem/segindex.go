package mem

import (
	"encoding/binary"
	"hash/crc32"
	"os"
	"strings"
)

// A sealed segment (one no longer written) gets a summary file beside it,
// <base>.idx, so that Open need not read and verify every retained byte
// again: only the last segment, the one a crash can leave torn, is scanned.
//
//	magic "hpbusidx" | base | end | size | lastNanos (int64 each) |
//	entries uint32 | entries × (offset int64, pos int64) | crc32c of all before
//
// A summary that is missing, fails its CRC or disagrees with the segment's
// size is ignored and the segment scanned instead (and the summary written
// again). The summary is not fsynced: losing it costs only a scan.

const (
	idxMagic      = "hpbusidx"
	idxSuffix     = ".idx"
	idxFixedSize  = 8 + 4*8 + 4
	maxIdxEntries = (1 << 30) / indexInterval * 64 // far beyond any segment size
)

func idxPath(segPath string) string { return strings.TrimSuffix(segPath, segSuffix) + idxSuffix }

// appendSegIndex encodes the summary of s (whose fields the caller may read).
func appendSegIndex(dst []byte, s *segment) []byte {
	start := len(dst)
	dst = append(dst, idxMagic...)
	for _, v := range []int64{s.base, s.end, s.size, s.lastNanos} {
		dst = binary.BigEndian.AppendUint64(dst, uint64(v))
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(s.index)))
	for _, e := range s.index {
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.off))
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.pos))
	}
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// parseSegIndex decodes a summary of the segment with base and file size;
// ok is false for anything that does not check out.
func parseSegIndex(b []byte, base, size int64) (s segment, ok bool) {
	if len(b) < idxFixedSize+4 || string(b[:8]) != idxMagic {
		return s, false
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return s, false
	}
	s.base = int64(binary.BigEndian.Uint64(b[8:]))
	s.end = int64(binary.BigEndian.Uint64(b[16:]))
	s.size = int64(binary.BigEndian.Uint64(b[24:]))
	s.lastNanos = int64(binary.BigEndian.Uint64(b[32:]))
	n := binary.BigEndian.Uint32(b[40:])
	if s.base != base || s.size != size || s.end < base || s.size < segHeaderSize ||
		n > maxIdxEntries || len(body) != idxFixedSize+int(n)*16 {
		return s, false
	}
	prev := indexEntry{off: base - 1, pos: segHeaderSize - 1}
	for i := range int(n) {
		e := indexEntry{off: int64(binary.BigEndian.Uint64(body[idxFixedSize+16*i:])),
			pos: int64(binary.BigEndian.Uint64(body[idxFixedSize+16*i+8:]))}
		if e.off <= prev.off || e.pos <= prev.pos || e.off >= max(s.end, base+1) || e.pos >= max(s.size, segHeaderSize+1) {
			return segment{}, false
		}
		s.index = append(s.index, e)
		prev = e
	}
	return s, true
}

// writeSegIndex writes the summary of a sealed segment; errors only cost a
// scan at the next Open.
func writeSegIndex(s *segment) error {
	return os.WriteFile(idxPath(s.path), appendSegIndex(nil, s), 0o644)
}

// loadSealed opens a sealed segment from its summary, or returns nil if
// the summary cannot be used.
func loadSealed(path string, base int64) *segment {
	b, err := os.ReadFile(idxPath(path))
	if err != nil || len(b) > idxFixedSize+4+maxIdxEntries*16 {
		return nil
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil
	}
	s, ok := parseSegIndex(b, base, fi.Size())
	if !ok {
		f.Close()
		return nil
	}
	s.path, s.f, s.refs = path, f, 1
	return &s
}
