package agent

import (
	"encoding/binary"
	"errors"
	"math/bits"
)

// Both directions of the "csub" extension (CmdCompactSubmits documents the
// layout). The extension is stateful: each end keeps, per connection, the
// last extranonce2 of every session id in frame order, so CompactEncoder
// and CompactDecoder are caller-owned values that must follow exactly one
// connection each (one per agent→pool link, created with the link and
// dropped with it).

// Errors reported by CompactDecoder.
var (
	// ErrCompactHeader: the frame is shorter than its fixed part or its
	// sid_bits is outside 1..16; the whole frame is dropped.
	ErrCompactHeader = errors.New("agent: SUBMIT_COMPACT header malformed (short or sid_bits outside 1..16)")
	// ErrCompactRecord: a record is truncated, repeats flags on the frame's
	// first record, or says CompactSeq for a session id never seen; it and
	// the rest of the frame are dropped (records before it stand).
	ErrCompactRecord = errors.New("agent: SUBMIT_COMPACT record malformed")
)

// compactFixed is the fixed part of a SUBMIT_COMPACT body: base_job u8,
// base_time u32, count u16, sid_bits u8.
const compactFixed = 8

// CompactHeaderLen is the length of a SUBMIT_COMPACT frame without records.
const CompactHeaderLen = HeaderLen + compactFixed

// compactRec is one share of the SUBMIT_COMPACT frame being built.
type compactRec struct {
	sub Submit
	fl  uint8
}

// CompactEncoder rewrites runs of submit frames as SUBMIT_COMPACT frames
// for one connection. The zero value is ready; it is not safe for
// concurrent use.
type CompactEncoder struct {
	last map[uint16]uint32 // the last extranonce2 sent per session id
	recs []compactRec      // the frame being built
}

// Last returns the last extranonce2 the encoder sent for session id sid.
func (e *CompactEncoder) Last(sid uint16) (uint32, bool) {
	v, ok := e.last[sid]
	return v, ok
}

// Len returns how many session ids the encoder keeps a counter for.
func (e *CompactEncoder) Len() int { return len(e.last) }

// Append appends frames to dst with every run of SUBMIT_SHARE* frames
// rewritten as SUBMIT_COMPACT frames; other frames are copied in place, so
// the order the pool sees (and its submit indexes) is unchanged. frames
// must be whole, well-formed frames (anything from the first malformed one
// on is copied as is). Each SUBMIT_COMPACT frame is closed before its
// length could exceed MaxFrameLen or its count 0xFFFF. Once its buffers
// have grown, Append does not allocate (beyond the per-session map).
func (e *CompactEncoder) Append(dst, frames []byte) []byte {
	if e.last == nil {
		e.last = make(map[uint16]uint32)
	}
	for len(frames) > 0 { // each round consumes at least one frame
		used, sidBits := e.run(frames)
		if len(e.recs) > 0 {
			dst = appendCompact(dst, e.recs, sidBits)
			frames = frames[used:]
			continue
		}
		n, err := Split(frames)
		if err != nil || n == 0 {
			return append(dst, frames...)
		}
		dst = append(dst, frames[:n]...)
		frames = frames[n:]
	}
	return dst
}

// run reads into e.recs the submit frames at the front of frames that fit
// in one SUBMIT_COMPACT frame (none when the first frame is not a submit
// frame), with their flags against the first one's job and time, and
// advances e.last over them. It returns the bytes of frames it took and the
// frame's sid_bits.
func (e *CompactEncoder) run(frames []byte) (used, sidBits int) {
	recs := e.recs[:0]
	var sub Submit
	var maxSID uint16
	bodyBits := 0 // every bit of the records but their session ids
	prev := uint8(0xFF)
	for used < len(frames) && len(recs) < 0xFFFF {
		n, err := Split(frames[used:])
		if err != nil || n == 0 || DecodeSubmit(frames[used:used+n], &sub) != nil {
			break
		}
		var fl uint8
		if len(recs) > 0 && sub.JobID != recs[0].sub.JobID {
			fl |= CompactJob
		}
		last, seen := e.last[sub.SessionID]
		if seen && sub.ExtraNonce2 == last+1 {
			fl |= CompactSeq
		}
		if sub.HasTime {
			fl |= CompactHasTime
			if len(recs) > 0 && sub.Time != recs[0].sub.Time {
				fl |= CompactTime
			}
		}
		if sub.HasVersionMask {
			fl |= CompactVer
			if sub.VersionMask&^0x1fffe000 == 0 {
				fl |= CompactVerC
			}
		}
		b := 1 + CompactFieldBits(fl)
		if fl != prev {
			b += 6
		}
		sb := max(bits.Len16(max(maxSID, sub.SessionID)), 1)
		if CompactHeaderLen+(bodyBits+b+(len(recs)+1)*sb+7)/8 > MaxFrameLen {
			break
		}
		recs = append(recs, compactRec{sub: sub, fl: fl})
		e.last[sub.SessionID] = sub.ExtraNonce2
		maxSID, bodyBits, sidBits, prev = max(maxSID, sub.SessionID), bodyBits+b, sb, fl
		used += n
	}
	e.recs = recs
	return used, sidBits
}

// appendCompact appends one SUBMIT_COMPACT frame holding recs (at least one).
func appendCompact(dst []byte, recs []compactRec, sidBits int) []byte {
	le := binary.LittleEndian
	start := len(dst)
	base := &recs[0].sub
	dst = append(dst, Magic, byte(CmdCompactSubmits), 0, 0, base.JobID)
	dst = le.AppendUint32(dst, base.Time)
	dst = le.AppendUint16(dst, uint16(len(recs)))
	dst = append(dst, byte(sidBits))
	w := bitWriter{dst: dst}
	prev := uint8(0xFF)
	for i := range recs {
		r := &recs[i]
		if r.fl == prev {
			w.write(1, 1)
		} else {
			w.write(0, 1)
			w.write(uint32(r.fl), 6)
		}
		prev = r.fl
		w.write(uint32(r.sub.SessionID), sidBits)
		if r.fl&CompactJob != 0 {
			w.write(uint32(r.sub.JobID), 8)
		}
		if r.fl&CompactSeq == 0 {
			w.write(r.sub.ExtraNonce2, 32)
		}
		w.write(r.sub.Nonce, 32)
		if r.fl&CompactTime != 0 {
			w.write(r.sub.Time, 32)
		}
		switch {
		case r.fl&CompactVerC != 0:
			w.write(r.sub.VersionMask>>13, 16)
		case r.fl&CompactVer != 0:
			w.write(r.sub.VersionMask, 32)
		}
	}
	dst = w.flush()
	le.PutUint16(dst[start+2:], uint16(len(dst)-start))
	return dst
}

// bitWriter appends a bitstream LSB first: bit i of the stream is bit i%8
// of byte i/8, and each value goes low bit first.
type bitWriter struct {
	dst []byte
	acc uint64 // bits not yet appended, the low n of them
	n   int
}

// write appends the low n bits of v (n ≤ 32).
func (w *bitWriter) write(v uint32, n int) {
	w.acc |= (uint64(v) & (1<<n - 1)) << w.n
	w.n += n
	for w.n >= 8 {
		w.dst = append(w.dst, byte(w.acc))
		w.acc >>= 8
		w.n -= 8
	}
}

// flush pads the stream with zero bits to a whole byte and returns it.
func (w *bitWriter) flush() []byte {
	if w.n > 0 {
		w.dst = append(w.dst, byte(w.acc))
		w.acc, w.n = 0, 0
	}
	return w.dst
}

// CompactDecoder reads SUBMIT_COMPACT frames for one connection:
//
//	if err := d.Start(frame); err != nil { drop the frame }
//	for d.Next(&sub) { handle sub like a SUBMIT_SHARE frame }
//	if d.Err() != nil { the rest of the frame was malformed }
//
// The zero value is ready; it is not safe for concurrent use. Between Start
// and the last Next it aliases frame, which must stay unchanged.
type CompactDecoder struct {
	last map[uint16]uint32 // the last extranonce2 received per session id

	r        bitReader
	baseJob  uint8
	baseTime uint32
	count    int
	i        int
	sidBits  int
	fl       uint32
	err      error
}

// Last returns the last extranonce2 decoded for session id sid.
func (d *CompactDecoder) Last(sid uint16) (uint32, bool) {
	v, ok := d.last[sid]
	return v, ok
}

// Len returns how many session ids the decoder keeps a counter for.
func (d *CompactDecoder) Len() int { return len(d.last) }

// Start begins reading a whole SUBMIT_COMPACT frame (as Split returned it;
// the command byte is not checked). It returns ErrCompactHeader when the
// frame is to be dropped.
func (d *CompactDecoder) Start(frame []byte) error {
	d.count, d.i, d.err = 0, 0, nil
	if len(frame) < CompactHeaderLen {
		d.err = ErrCompactHeader
		return d.err
	}
	b := frame[HeaderLen:]
	le := binary.LittleEndian
	d.baseJob, d.baseTime, d.count, d.sidBits = b[0], le.Uint32(b[1:5]), int(le.Uint16(b[5:7])), int(b[7])
	if d.sidBits < 1 || d.sidBits > 16 {
		d.count, d.err = 0, ErrCompactHeader
		return d.err
	}
	d.r = bitReader{b: b[compactFixed:]}
	if d.last == nil {
		d.last = make(map[uint16]uint32)
	}
	return nil
}

// Next decodes the frame's next record into sub and reports whether there
// was one; false at the end of the frame or at a malformed record (Err
// then says ErrCompactRecord). Each record consumes at least 34 bits, so a
// frame yields at most min(count, bits/34) records.
func (d *CompactDecoder) Next(sub *Submit) bool {
	if d.i >= d.count || d.err != nil {
		return false
	}
	r := &d.r
	if r.left() < 1 {
		return d.fail()
	}
	if r.read(1) == 0 {
		if r.left() < 6 {
			return d.fail()
		}
		d.fl = r.read(6)
	} else if d.i == 0 {
		return d.fail() // no previous flags
	}
	fl := d.fl
	if r.left() < d.sidBits+CompactFieldBits(uint8(fl)) {
		return d.fail()
	}
	*sub = Submit{SessionID: uint16(r.read(d.sidBits)), JobID: d.baseJob, Time: d.baseTime}
	if fl&CompactJob != 0 {
		sub.JobID = uint8(r.read(8))
	}
	last, seen := d.last[sub.SessionID]
	if fl&CompactSeq != 0 {
		if !seen {
			return d.fail() // the two ends disagree: drop the rest
		}
		sub.ExtraNonce2 = last + 1
	} else {
		sub.ExtraNonce2 = r.read(32)
	}
	d.last[sub.SessionID] = sub.ExtraNonce2
	sub.Nonce = r.read(32)
	if fl&CompactTime != 0 {
		sub.Time = r.read(32)
	}
	sub.HasTime = fl&CompactHasTime != 0
	if !sub.HasTime {
		sub.Time = 0
	}
	switch {
	case fl&CompactVerC != 0:
		sub.VersionMask, sub.HasVersionMask = r.read(16)<<13, true
	case fl&CompactVer != 0:
		sub.VersionMask, sub.HasVersionMask = r.read(32), true
	}
	d.i++
	return true
}

func (d *CompactDecoder) fail() bool {
	d.err = ErrCompactRecord
	return false
}

// Err returns the error that ended the current frame early (nil when every
// record so far was well-formed).
func (d *CompactDecoder) Err() error { return d.err }

// bitReader reads a SUBMIT_COMPACT bitstream LSB first: bit i of the
// stream is bit i%8 of byte i/8, and each value comes low bit first.
type bitReader struct {
	b   []byte
	pos int // the next bit
}

// left returns the bits not yet read.
func (r *bitReader) left() int { return len(r.b)*8 - r.pos }

// read returns the next n bits (1 ≤ n ≤ 32); the caller checked left() ≥ n.
func (r *bitReader) read(n int) uint32 {
	i := r.pos >> 3
	var v uint64
	if i+8 <= len(r.b) {
		v = binary.LittleEndian.Uint64(r.b[i:])
	} else {
		for j := len(r.b) - 1; j >= i; j-- {
			v = v<<8 | uint64(r.b[j])
		}
	}
	v >>= r.pos & 7
	r.pos += n
	return uint32(v & (1<<n - 1))
}
