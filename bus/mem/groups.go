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
	"sort"
	"sync"
)

// Dir/groups.log holds consumer-group offsets as append-only records:
//
//	size uint32 | crc32c(body) uint32 | body
//	body: topic length uint16 | topic | group length uint16 | group | offset int64
//
// The last record of a (group, topic) wins. Open reads the file up to the
// first invalid record (a torn tail), clamps offsets to the topics' ends and
// rewrites it compacted; at run time it is rewritten again once it grows past
// groupsCompactBytes.

const (
	// MaxGroupNameBytes bounds a consumer group's name with a Dir.
	MaxGroupNameBytes = 1024
	groupsMaxBody     = 2 + 249 + 2 + MaxGroupNameBytes + 8
	// groupsCompactBytes is the size past which the offsets file is rewritten.
	groupsCompactBytes = 4 << 20
)

// groupLog is the open offsets file.
type groupLog struct {
	mu     sync.Mutex // serializes appends; held across the write and fsync
	path   string
	f      *os.File
	size   int64
	latest map[groupKey]int64 // what the file says, for compaction
	buf    []byte
}

func appendGroupRecord(dst []byte, k groupKey, off int64) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(k.topic)))
	dst = append(dst, k.topic...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(k.group)))
	dst = append(dst, k.group...)
	dst = binary.BigEndian.AppendUint64(dst, uint64(off))
	body := dst[start+8:]
	binary.BigEndian.PutUint32(dst[start:], uint32(len(body)))
	binary.BigEndian.PutUint32(dst[start+4:], crc32.Checksum(body, castagnoli))
	return dst
}

// parseGroups reads offset records from r until the end or the first invalid
// record. It returns the latest offset per key, the bytes of valid records,
// and why it stopped early (nil at a clean end).
func parseGroups(r io.Reader) (map[groupKey]int64, int64, error) {
	out := make(map[groupKey]int64)
	br := bufio.NewReader(r)
	var valid int64
	var hdr [8]byte
	body := make([]byte, 0, 64)
	for {
		n, err := io.ReadFull(br, hdr[:])
		if err == io.EOF {
			return out, valid, nil
		}
		if err != nil {
			return out, valid, corrupt(valid+int64(n), "torn offset record header")
		}
		size := binary.BigEndian.Uint32(hdr[:])
		if size < 12 || size > groupsMaxBody {
			return out, valid, corrupt(valid, "offset record size %d out of bounds", size)
		}
		if cap(body) < int(size) {
			body = make([]byte, size)
		}
		body = body[:size]
		if m, err := io.ReadFull(br, body); err != nil {
			return out, valid, corrupt(valid+8+int64(m), "torn offset record")
		}
		if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(hdr[4:]) {
			return out, valid, corrupt(valid, "offset record CRC mismatch")
		}
		k, off, ok := decodeGroupBody(body)
		if !ok {
			return out, valid, corrupt(valid, "malformed offset record")
		}
		out[k] = off
		valid += 8 + int64(size)
	}
}

func decodeGroupBody(b []byte) (groupKey, int64, bool) {
	var k groupKey
	tl := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if tl > len(b) {
		return k, 0, false
	}
	k.topic = string(b[:tl])
	b = b[tl:]
	if len(b) < 2 {
		return k, 0, false
	}
	gl := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if gl+8 != len(b) {
		return k, 0, false
	}
	k.group = string(b[:gl])
	off := int64(binary.BigEndian.Uint64(b[gl:]))
	if off < 0 || checkTopicName(k.topic) != nil || k.group == "" {
		return k, 0, false
	}
	return k, off, true
}

// openGroups loads Dir/groups.log into b.groups (clamped to each topic's
// retained range end) and rewrites it compacted.
func (d *disk) openGroups() error {
	path := filepath.Join(d.dir, groupsName)
	latest := map[groupKey]int64{}
	if f, err := os.Open(path); err == nil {
		var perr error
		var valid int64
		latest, valid, perr = parseGroups(f)
		f.Close()
		if perr != nil {
			d.b.log.Warn("bus group offsets file has an invalid tail; ignoring it", "file", path, "valid_bytes", valid, "reason", perr)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("mem: opening group offsets: %w", err)
	}
	for k, off := range latest {
		t := d.b.topic(k.topic)
		t.mu.Lock()
		end := t.next
		t.mu.Unlock()
		if off > end {
			d.b.log.Warn("bus group offset beyond its topic's end; clamped", "group", k.group, "topic", k.topic, "offset", off, "end", end)
			off = end
			latest[k] = off
		}
		d.b.groups[k] = &group{key: k, committed: off}
	}
	g := &groupLog{path: path, latest: latest}
	if err := g.rewrite(); err != nil {
		return err
	}
	d.groups = g
	return nil
}

// rewrite writes latest to a new file, fsyncs it and renames it over path.
func (g *groupLog) rewrite() error {
	keys := make([]groupKey, 0, len(g.latest))
	for k := range g.latest {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].topic != keys[j].topic {
			return keys[i].topic < keys[j].topic
		}
		return keys[i].group < keys[j].group
	})
	var buf []byte
	for _, k := range keys {
		buf = appendGroupRecord(buf, k, g.latest[k])
	}
	tmp := g.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("mem: writing group offsets: %w", err)
	}
	_, err = f.Write(buf)
	if err == nil {
		err = fdatasync(f)
	}
	if err == nil {
		err = os.Rename(tmp, g.path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(g.path))
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("mem: writing group offsets: %w", err)
	}
	if g.f != nil {
		g.f.Close()
	}
	g.f, g.size = f, int64(len(buf))
	return nil
}

// commit appends one offset and fsyncs it.
func (g *groupLog) commit(k groupKey, off int64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.f == nil {
		return fmt.Errorf("mem: committing offset of group %q on %q: %w", k.group, k.topic, errClosedFile)
	}
	if old, ok := g.latest[k]; ok && off <= old {
		return nil // already durable; the file only ever grows an offset
	}
	g.buf = appendGroupRecord(g.buf[:0], k, off)
	if _, err := g.f.WriteAt(g.buf, g.size); err != nil {
		g.f.Truncate(g.size)
		return fmt.Errorf("mem: committing offset of group %q on %q: %w", k.group, k.topic, err)
	}
	if err := fdatasync(g.f); err != nil {
		return fmt.Errorf("mem: committing offset of group %q on %q: %w", k.group, k.topic, err)
	}
	g.size += int64(len(g.buf))
	g.latest[k] = off
	if g.size > groupsCompactBytes {
		if err := g.rewrite(); err != nil {
			return err
		}
	}
	return nil
}

var errClosedFile = errors.New("offsets file closed")

func (g *groupLog) close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.f == nil {
		return nil
	}
	err := g.f.Close()
	g.f = nil
	return err
}
