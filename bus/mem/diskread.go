package mem

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hashpool/hashpool/bus"
)

// position is where a consumer's last read of a segment file stopped: the
// record with offset off starts at byte pos of seg.
type position struct {
	seg *segment
	pos int64
	off int64
}

// readChunk is how many bytes one Poll reads from a segment file (more when a
// single record is larger).
const readChunk = 1 << 20

// readDisk reads records from c.next on out of the segment files. It is
// called with t.mu held and releases it. ok is false when it read nothing
// (c.next moved past a gap or a corrupt part); the caller then looks again.
// err is an I/O error reading the file, for Poll to return (the next Poll
// tries again).
func (c *consumer) readDisk() (msgs []bus.Message, ok bool, err error) {
	t := c.t
	segs := t.segs
	i := len(segs) - 1
	for i > 0 && segs[i].base > c.next {
		i--
	}
	if i < 0 {
		c.next = t.base
		t.mu.Unlock()
		return nil, false, nil
	}
	s := segs[i]
	if c.next >= s.end {
		// A gap left by a cut segment: go on with the next one.
		if i+1 < len(segs) {
			c.next = segs[i+1].base
		} else {
			c.next = t.next
		}
		t.mu.Unlock()
		return nil, false, nil
	}
	start := c.cur
	if start.seg != s || start.off != c.next {
		start = position{seg: s, off: c.next}
		e := s.lookup(c.next)
		start.off, start.pos = e.off, e.pos
	}
	limitPos := s.size
	limitOff := min(s.end, t.base) // what the cache holds is read from it
	if limitOff <= c.next {
		limitOff = s.end
	}
	s.refs++
	t.mu.Unlock()

	msgs, err = c.readFrames(s, start, limitPos, limitOff)
	var ce *CorruptError
	t.mu.Lock()
	s.refs--
	closeIt := s.refs == 0
	if err != nil {
		c.cur, c.dseg = position{}, nil
		msgs = nil
		if errors.As(err, &ce) || errors.Is(err, errTruncated) || errors.Is(err, io.EOF) {
			// Bad bytes where Open (or the summary) said records are: skip
			// the rest of the segment rather than fail forever.
			c.b.log.Error("bus segment unreadable; skipping the rest of it", "topic", t.name, "file", s.path,
				"offset", c.next, "skipped_to", s.end, "err", err)
			c.next = s.end
			err = nil
		} else {
			err = fmt.Errorf("mem: reading %s: %w", s.path, err)
		}
	}
	t.mu.Unlock()
	if closeIt {
		s.f.Close()
	}
	return msgs, len(msgs) > 0, err
}

var errTruncated = errors.New("mem: segment ends inside a record")

// readFrames preads records of s from start until limitPos/limitOff, MaxPoll
// records or about readChunk bytes, skipping those before c.next.
func (c *consumer) readFrames(s *segment, start position, limitPos, limitOff int64) ([]bus.Message, error) {
	clear(c.buf)
	c.buf = c.buf[:0]
	pos, off := start.pos, start.off
	maxPoll := c.b.opts.MaxPoll
	for off < limitOff && len(c.buf) == 0 {
		var buf []byte
		if c.dseg == s && pos >= c.dpos && pos < c.dpos+int64(c.dlen) {
			// Still in what the last read brought in (a chunk holds more
			// than MaxPoll small records).
			buf = c.dbuf[pos-c.dpos : c.dlen]
		} else {
			want := min(int64(readChunk), limitPos-pos)
			if want < frameHeaderSize {
				return nil, errTruncated
			}
			if int64(cap(c.dbuf)) < want || cap(c.dbuf) > 4*readChunk {
				c.dbuf = make([]byte, want)
			}
			buf = c.dbuf[:want]
			c.dseg, c.dpos, c.dlen = nil, 0, 0
			if _, err := s.f.ReadAt(buf, pos); err != nil {
				return nil, err
			}
			c.dseg, c.dpos, c.dlen = s, pos, len(buf)
		}
		// Only whole frames below limitPos count (the buffered bytes may run
		// past what was visible when they were read, never past the file's
		// visible size then).
		if rest := limitPos - pos; int64(len(buf)) > rest {
			buf = buf[:rest]
		}
		consumed := false
		for p := 0; off < limitOff && len(c.buf) < maxPoll; {
			fr, err := parseFrame(buf[p:], off)
			if errors.Is(err, errShort) {
				if p == 0 {
					if fr.n == 0 || int64(fr.n) > limitPos-pos {
						return nil, errTruncated
					}
					// One record larger than the chunk: read it whole.
					c.dbuf = make([]byte, fr.n)
					buf = c.dbuf
					c.dseg, c.dpos, c.dlen = nil, 0, 0
					if _, err := s.f.ReadAt(buf, pos); err != nil {
						return nil, err
					}
					c.dseg, c.dpos, c.dlen = s, pos, len(buf)
					continue
				}
				// The rest of the chunk is a partial frame: read anew.
				c.dseg = nil
				break
			}
			if err != nil {
				return nil, err
			}
			consumed = true
			if off >= c.next {
				c.buf = append(c.buf, bus.Message{Topic: c.t.name, Offset: off, Key: fr.key, Value: fr.value,
					Time: time.Unix(0, fr.nanos)})
			}
			p += fr.n
			pos += int64(fr.n)
			off++
		}
		if !consumed && len(c.buf) == 0 {
			c.dseg = nil
		}
	}
	if len(c.buf) > 0 {
		c.next = off
	}
	c.cur = position{seg: s, pos: pos, off: off}
	return c.buf, nil
}
