package stratum

import (
	"bytes"
	"errors"
)

// ErrLineTooLong is returned by LineFramer.Next when no '\n' appears within
// the configured limit. The connection should be closed: the limit is what
// keeps a peer from making the server buffer without bound.
var ErrLineTooLong = errors.New("stratum: line too long")

// DefaultMaxLine is a line limit that fits every legitimate stratum message,
// including a mining.configure with many extensions and long worker names.
const DefaultMaxLine = 16 << 10

// LineFramer cuts '\n'-terminated lines out of a connection's buffered input,
// for example the bytes of gnet's Conn.Peek(-1). It keeps one integer of
// state so that a line arriving in many small reads is scanned only once.
//
// Use one LineFramer per connection:
//
//	buf, _ := c.Peek(-1)
//	for {
//		line, n, err := f.Next(buf)
//		if err != nil { /* close */ }
//		if n == 0 { break } // wait for more bytes
//		handle(line)        // line aliases buf
//		buf = buf[n:]
//	}
//	c.Discard(consumed)
//
// After Next returns n > 0 the caller must drop exactly n bytes from the
// front of the buffer before the next call; after n == 0 it must call again
// with the same bytes plus whatever arrived since (never fewer).
type LineFramer struct {
	// Max is the longest accepted line, '\n' excluded. Zero means DefaultMaxLine.
	Max int

	scanned int // bytes already searched for '\n' in the pending line
}

// Next returns the first complete line of buf without its '\n' (a trailing
// '\r' is left in place: it is JSON whitespace) and n, the number of bytes
// to consume (the line plus its newline). When buf holds no complete line it
// returns n == 0 and a nil error; when the pending line already exceeds Max
// it returns ErrLineTooLong. line aliases buf.
func (f *LineFramer) Next(buf []byte) (line []byte, n int, err error) {
	max := f.Max
	if max <= 0 {
		max = DefaultMaxLine
	}
	if f.scanned > len(buf) { // caller broke the contract; rescan safely
		f.scanned = 0
	}
	limit := min(len(buf), max+1) // the newline may sit at index max
	if f.scanned < limit {
		if i := bytes.IndexByte(buf[f.scanned:limit], '\n'); i >= 0 {
			end := f.scanned + i
			f.scanned = 0
			return buf[:end], end + 1, nil
		}
		f.scanned = limit
	}
	if len(buf) > max {
		f.scanned = 0
		return nil, 0, ErrLineTooLong
	}
	return nil, 0, nil
}

// Reset forgets the pending line (use when the connection's buffer is discarded).
func (f *LineFramer) Reset() { f.scanned = 0 }
