package agent

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"testing"
)

// decodeCompact is the test's reference reader of SUBMIT_COMPACT frames
// (the engine's is engine.Session.agentCompactSubmits): it reads the
// bitstream one bit at a time and turns the records back into SUBMIT_SHARE
// frames. It checks what the encoder promises: sid_bits is the bit length
// of the frame's largest session id (at least 1), the first record carries
// its flags, the same bit is used whenever the flags repeat, and nothing
// but zero padding follows the last record.
func decodeCompact(t *testing.T, f []byte, last map[uint16]uint32) []byte {
	t.Helper()
	le := binary.LittleEndian
	if len(f) < CompactHeaderLen || int(le.Uint16(f[2:])) != len(f) {
		t.Fatalf("frame of %d bytes, header %x", len(f), f[:min(len(f), CompactHeaderLen)])
	}
	b := f[HeaderLen:]
	job, tm, n, sidBits := b[0], le.Uint32(b[1:]), int(le.Uint16(b[5:])), int(b[7])
	stream, pos := b[8:], 0
	get := func(n int) uint32 {
		var v uint32
		for k := 0; k < n; k++ {
			if pos >= len(stream)*8 {
				t.Fatalf("record past the end of the frame (%d bits)", len(stream)*8)
			}
			v |= uint32(stream[pos/8]>>(pos%8)&1) << k
			pos++
		}
		return v
	}
	var out []byte
	var maxSID uint16
	fl := uint32(0xFF)
	for i := 0; i < n; i++ {
		if get(1) == 1 {
			if i == 0 {
				t.Fatal("first record without flags")
			}
		} else {
			nfl := get(6)
			if nfl == fl {
				t.Fatalf("record %d repeats its flags %#x", i, fl)
			}
			fl = nfl
		}
		s := Submit{SessionID: uint16(get(sidBits)), JobID: job, Time: tm}
		maxSID = max(maxSID, s.SessionID)
		if fl&CompactJob != 0 {
			s.JobID = uint8(get(8))
		}
		if fl&CompactSeq != 0 {
			l, seen := last[s.SessionID]
			if !seen {
				t.Fatalf("record %d: CompactSeq for unseen session %d", i, s.SessionID)
			}
			s.ExtraNonce2 = l + 1
		} else {
			s.ExtraNonce2 = get(32)
		}
		last[s.SessionID] = s.ExtraNonce2
		s.Nonce = get(32)
		if fl&CompactTime != 0 {
			s.Time = get(32)
		}
		if s.HasTime = fl&CompactHasTime != 0; !s.HasTime {
			s.Time = 0
		}
		switch {
		case fl&CompactVerC != 0:
			s.VersionMask, s.HasVersionMask = get(16)<<13, true
		case fl&CompactVer != 0:
			s.VersionMask, s.HasVersionMask = get(32), true
		}
		out = AppendSubmit(out, &s)
	}
	if want := max(bits.Len16(maxSID), 1); sidBits != want {
		t.Fatalf("sid_bits %d, largest session id %d needs %d", sidBits, maxSID, want)
	}
	if len(stream) != (pos+7)/8 || pos%8 != 0 && stream[len(stream)-1]>>(pos%8) != 0 {
		t.Fatalf("%d bits of records in %d bytes, last byte %#x", pos, len(stream), stream[len(stream)-1])
	}
	return out
}

// compactRoundTrip compacts frames with e, checks every output frame and
// that decoding gives frames back exactly, and returns the output.
func compactRoundTrip(t *testing.T, e *CompactEncoder, last map[uint16]uint32, frames []byte) []byte {
	t.Helper()
	out := e.Append(nil, frames)
	d := decoders[e]
	if d == nil {
		d = &CompactDecoder{}
		decoders[e] = d
	}
	var got, got2 []byte
	for rest := out; len(rest) > 0; {
		l, err := Split(rest)
		if err != nil || l == 0 {
			t.Fatalf("bad output frame: %v", err)
		}
		if FrameCmd(rest[:l]) == CmdCompactSubmits {
			got = append(got, decodeCompact(t, rest[:l], last)...)
			got2 = appendDecoded(t, got2, d, rest[:l])
		} else {
			got = append(got, rest[:l]...)
			got2 = append(got2, rest[:l]...)
		}
		rest = rest[l:]
	}
	if !bytes.Equal(got, frames) {
		t.Fatal("round trip differs")
	}
	if !bytes.Equal(got2, frames) {
		t.Fatal("round trip through CompactDecoder differs")
	}
	if !sameCounters(last, e) || d.Len() != len(last) {
		t.Fatal("encoder, decoder and reference counters differ")
	}
	return out
}

// decoders pairs each test encoder with the decoder that follows it.
var decoders = map[*CompactEncoder]*CompactDecoder{}

// appendDecoded decodes one SUBMIT_COMPACT frame with d and appends its
// records as SUBMIT_SHARE frames; the frame must be well-formed.
func appendDecoded(t *testing.T, dst []byte, d *CompactDecoder, f []byte) []byte {
	t.Helper()
	if err := d.Start(f); err != nil {
		t.Fatal(err)
	}
	var s Submit
	n := 0
	for d.Next(&s) {
		dst = AppendSubmit(dst, &s)
		n++
	}
	if d.Err() != nil || n != int(binary.LittleEndian.Uint16(f[HeaderLen+5:])) {
		t.Fatalf("%d records decoded, err %v", n, d.Err())
	}
	return dst
}

// sameCounters reports whether the encoder's counters are exactly last.
func sameCounters(last map[uint16]uint32, e *CompactEncoder) bool {
	if e.Len() != len(last) {
		return false
	}
	for k, v := range last {
		if got, ok := e.Last(k); !ok || got != v {
			return false
		}
	}
	return true
}

// compactFrames splits out into its frames, keeping SUBMIT_COMPACT ones.
func compactFrames(t *testing.T, out []byte) [][]byte {
	t.Helper()
	var fs [][]byte
	for len(out) > 0 {
		l, _ := Split(out)
		if FrameCmd(out[:l]) == CmdCompactSubmits {
			fs = append(fs, out[:l])
		}
		out = out[l:]
	}
	return fs
}

// TestCompactGolden: one share encodes to the bytes worked out by hand in
// the engine's TestCompactFrameGolden.
func TestCompactGolden(t *testing.T) {
	s := Submit{JobID: 0, SessionID: 7, ExtraNonce2: 5, Nonce: 9, Time: 0x01020304, HasTime: true, VersionMask: 0x2000, HasVersionMask: true}
	got := (&CompactEncoder{}).Append(nil, AppendSubmit(nil, &s))
	want := hexDecode("7f7d1800" + "00" + "04030201" + "0100" + "03" + "e817000000240000000400" + "00")
	if !bytes.Equal(got, want) {
		t.Fatalf("frame %x\nwant  %x", got, want)
	}
}

// TestCompactRoundTrip: every submit form, job and time changes, session
// ids up to 65535, non-sequential and wrapping extranonce2s, version masks
// outside 0x1fffe000, non-submit frames in between, and per-miner counters
// carried from one batch to the next survive SUBMIT_COMPACT exactly.
func TestCompactRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		name   string
		sid    func(i int) uint16
		shares int
	}{
		{"500 miners", func(int) uint16 { return uint16(r.IntN(500)) }, 3000},
		{"any session id", func(int) uint16 { return uint16(r.Uint32()) }, 3000},
		{"ids near the top", func(int) uint16 { return uint16(65535 - r.IntN(4)) }, 1000},
		{"session 0 only", func(int) uint16 { return 0 }, 200},
		{"session 1 only", func(int) uint16 { return 1 }, 200},
		{"0 and 65535", func(i int) uint16 { return uint16(-(i % 2)) }, 200},
		{"1 then 32768", func(i int) uint16 { return uint16(min(i/100, 1) << 15) }, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			en2 := map[uint16]uint32{}
			e := &CompactEncoder{}
			last := map[uint16]uint32{}
			for batch := 0; batch < 3; batch++ {
				var frames []byte
				for i := 0; i < tc.shares; i++ {
					sid := tc.sid(i)
					en2[sid]++
					s := Submit{JobID: 4, SessionID: sid, ExtraNonce2: en2[sid], Nonce: r.Uint32(),
						Time: 1700000000, HasTime: true, VersionMask: r.Uint32() & 0x1fffe000, HasVersionMask: true}
					switch i % 37 {
					case 1:
						s.JobID = 5
					case 2:
						s.Time++
					case 3:
						s.HasTime, s.Time = false, 0
					case 4:
						s.VersionMask = 0xffffffff
					case 5:
						s.HasVersionMask, s.VersionMask = false, 0
					case 6:
						s.ExtraNonce2 = r.Uint32()
						en2[sid] = s.ExtraNonce2
					case 7:
						frames = AppendUnregisterWorker(frames, sid)
					case 8:
						s.ExtraNonce2 = 0xffffffff // the next one wraps to 0
						en2[sid] = s.ExtraNonce2
					case 9:
						s.JobID, s.Time, s.VersionMask = 0, 0xffffffff, 0x1fffe000
					case 10:
						s.HasTime, s.Time, s.HasVersionMask, s.VersionMask = false, 0, false, 0
						s.ExtraNonce2 = en2[sid] + 2 // not sequential
						en2[sid] = s.ExtraNonce2
					}
					frames = AppendSubmit(frames, &s)
				}
				out := compactRoundTrip(t, e, last, frames)
				if batch == 2 {
					t.Logf("%d shares: %d bytes → %d (%.2f bytes/share)", tc.shares, len(frames), len(out), float64(len(out))/float64(tc.shares))
				}
			}
			if !sameCounters(last, e) {
				t.Fatal("the encoder's counters differ from the decoder's")
			}
		})
	}
}

// TestCompactTypicalShareSize: 1,000 typical shares (sequential
// extranonce2, one job and time, version bits in 0x1fffe000) from 10,000
// miners cost at most 8 bytes each, frame header included (Issue 7's
// budget for 10,000 miners at 1,000 shares/s in 75 kbps).
func TestCompactTypicalShareSize(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const miners = 10000
	e := &CompactEncoder{}
	en2 := map[uint16]uint32{}
	share := func(sid uint16) Submit {
		en2[sid]++
		return Submit{JobID: 9, SessionID: sid, ExtraNonce2: en2[sid], Nonce: r.Uint32(),
			Time: 1700000000, HasTime: true, VersionMask: r.Uint32() & 0x1fffe000, HasVersionMask: true}
	}
	var warm []byte // every miner's first share carries its extranonce2
	for sid := uint16(0); sid < miners; sid++ {
		en2[sid] = r.Uint32()
		s := share(sid)
		warm = AppendSubmit(warm, &s)
	}
	last := map[uint16]uint32{}
	compactRoundTrip(t, e, last, warm)
	var frames []byte
	for i := 0; i < 1000; i++ {
		s := share(uint16(r.IntN(miners)))
		frames = AppendSubmit(frames, &s)
	}
	out := compactRoundTrip(t, e, last, frames)
	if fs := compactFrames(t, out); len(fs) != 1 || len(fs[0]) != len(out) {
		t.Fatalf("%d bytes in %d frames, want one SUBMIT_COMPACT frame", len(out), len(fs))
	}
	per := float64(len(out)) / 1000
	t.Logf("1000 typical shares from %d miners: %d bytes → %d (%.3f bytes/share, plain %.1f)", miners, len(frames), len(out), per, float64(len(frames))/1000)
	if per > 8 {
		t.Fatalf("%.3f bytes per typical share, want ≤ 8", per)
	}
}

// TestCompactSplitsAtFrameLimit: long runs are cut into frames that fit the
// u16 length, each filled to within one record of MaxFrameLen.
func TestCompactSplitsAtFrameLimit(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, tc := range []struct {
		name   string
		shares int
		maxRec int // bytes a record can take in this run
		share  func(i int) Submit
	}{
		{"largest records", 20000, 20, func(i int) Submit {
			s := Submit{JobID: uint8(i), SessionID: 65535 - uint16(i%2), ExtraNonce2: r.Uint32(), Nonce: r.Uint32(),
				Time: r.Uint32(), HasTime: true, VersionMask: r.Uint32() | 1, HasVersionMask: true}
			if i%3 == 0 { // changes the flags: a record without CompactJob
				s.JobID = 0
			}
			return s
		}},
		{"typical records", 40000, 13, func(i int) Submit {
			return Submit{JobID: 1, SessionID: uint16(i % 10000), ExtraNonce2: uint32(i/10000) + 1, Nonce: r.Uint32(),
				Time: 1700000000, HasTime: true, VersionMask: r.Uint32() & 0x1fffe000, HasVersionMask: true}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var frames []byte
			for i := 0; i < tc.shares; i++ {
				s := tc.share(i)
				frames = AppendSubmit(frames, &s)
			}
			e := &CompactEncoder{}
			out := compactRoundTrip(t, e, map[uint16]uint32{}, frames)
			fs := compactFrames(t, out)
			if len(fs) < 2 {
				t.Fatalf("%d shares in %d frame(s)", tc.shares, len(fs))
			}
			for i, f := range fs {
				if len(f) > MaxFrameLen || i < len(fs)-1 && len(f) <= MaxFrameLen-tc.maxRec {
					t.Fatalf("frame %d of %d: %d bytes", i, len(fs), len(f))
				}
			}
			t.Logf("%d shares in %d frames, %.2f bytes/share", tc.shares, len(fs), float64(len(out))/float64(tc.shares))
		})
	}
}

// TestCompactZeroAllocs: once its buffers have grown, the writer's csub
// pass allocates nothing.
func TestCompactZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	var frames []byte
	for i := 0; i < 5000; i++ {
		s := Submit{JobID: 1, SessionID: uint16(i % 1000), ExtraNonce2: uint32(i), Nonce: uint32(i),
			Time: 1700000000, HasTime: true, VersionMask: 0x2000, HasVersionMask: true}
		frames = AppendSubmit(frames, &s)
		if i%100 == 0 {
			frames = AppendUnregisterWorker(frames, 5000)
		}
	}
	e := &CompactEncoder{}
	out := e.Append(nil, frames)
	allocs := testing.AllocsPerRun(50, func() { out = e.Append(out[:0], frames) })
	if allocs != 0 {
		t.Fatalf("encoder: %v allocations per batch", allocs)
	}
	var d CompactDecoder
	var s Submit
	decodeAll := func() {
		for rest := out; len(rest) > 0; {
			l, _ := Split(rest)
			if FrameCmd(rest[:l]) == CmdCompactSubmits && d.Start(rest[:l]) == nil {
				for d.Next(&s) {
				}
			}
			rest = rest[l:]
		}
	}
	decodeAll()
	if allocs := testing.AllocsPerRun(50, decodeAll); allocs != 0 {
		t.Fatalf("decoder: %v allocations per batch", allocs)
	}
}

// submitsFrom turns fuzz input into submit frames, 12 bytes a share: the
// session id (few distinct ones, so counters repeat), an extranonce2 that
// is usually the next one, nonce, and bits that vary job, time and
// version mask; every 7th share is preceded by an UNREGISTER_WORKER frame.
func submitsFrom(data []byte, en2 map[uint16]uint32) []byte {
	var frames []byte
	for i := 0; len(data) >= 12; i++ {
		b := data[:12]
		data = data[12:]
		le := binary.LittleEndian
		s := Submit{SessionID: le.Uint16(b) % 300, Nonce: le.Uint32(b[2:]), JobID: b[6] & 3,
			Time: 1700000000 + uint32(b[7]&1), HasTime: b[7]&2 == 0}
		if !s.HasTime {
			s.Time = 0
		}
		switch {
		case b[7]&4 != 0:
			s.VersionMask, s.HasVersionMask = le.Uint32(b[8:]), true
		case b[7]&8 != 0:
			s.VersionMask, s.HasVersionMask = le.Uint32(b[8:])&0x1fffe000, true
		}
		if b[7]&0x30 == 0 {
			en2[s.SessionID] = le.Uint32(b[8:])
		} else {
			en2[s.SessionID]++
		}
		s.ExtraNonce2 = en2[s.SessionID]
		if i%7 == 6 {
			frames = AppendUnregisterWorker(frames, s.SessionID)
		}
		frames = AppendSubmit(frames, &s)
	}
	return frames
}

// FuzzCompactRoundTrip: whatever shares the encoder is given, in two
// batches on one connection, the decoder gives back exactly the submit
// frames, in order, and both ends end with the same counters.
func FuzzCompactRoundTrip(f *testing.F) {
	f.Add(hexDecode("0700090000000000000000000700090000001000000000000800ffffffff0c00000001000000"), 1)
	f.Add(bytes.Repeat([]byte{1, 0, 2, 3, 4, 5, 1, 0x18, 0, 0, 0, 0}, 40), 13)
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		en2 := map[uint16]uint32{}
		var e CompactEncoder
		var d CompactDecoder
		if cut < 0 {
			cut = -cut
		}
		cut = cut % (len(data) + 1)
		for _, part := range [][]byte{data[:cut], data[cut:]} {
			frames := submitsFrom(part, en2)
			out := e.Append(nil, frames)
			var got []byte
			for rest := out; len(rest) > 0; {
				l, err := Split(rest)
				if err != nil || l == 0 {
					t.Fatalf("encoder made a bad frame: %v", err)
				}
				if FrameCmd(rest[:l]) != CmdCompactSubmits {
					got = append(got, rest[:l]...)
				} else {
					if err := d.Start(rest[:l]); err != nil {
						t.Fatal(err)
					}
					var s Submit
					for d.Next(&s) {
						got = AppendSubmit(got, &s)
					}
					if d.Err() != nil {
						t.Fatal(d.Err())
					}
				}
				rest = rest[l:]
			}
			if !bytes.Equal(got, frames) {
				t.Fatalf("round trip differs:\n% x\n% x", frames, got)
			}
		}
		if e.Len() != d.Len() {
			t.Fatalf("%d counters encoded, %d decoded", e.Len(), d.Len())
		}
		for sid := range e.last {
			if a, _ := e.Last(sid); a != d.last[sid] {
				t.Fatalf("session %d: encoder %d, decoder %d", sid, a, d.last[sid])
			}
		}
	})
}

// FuzzCompactDecode: an arbitrary SUBMIT_COMPACT frame (after counters
// seeded from the input) never panics, yields at most count records and at
// most one per 34 bits, and the records it yields, compacted by an encoder
// with the same counters, decode to the same records again.
func FuzzCompactDecode(f *testing.F) {
	f.Add(hexDecode("7f7d1800"+"00"+"04030201"+"0100"+"03"+"e817000000240000000400"+"00"), uint16(7))
	f.Add(hexDecode("7f7d0c000104030201ffff10"), uint16(0))
	f.Add(hexDecode("7f7d0e000104030201020001ff03"), uint16(1))
	f.Fuzz(func(t *testing.T, frame []byte, seed uint16) {
		var d CompactDecoder
		d.last = map[uint16]uint32{seed: 41, seed + 1: 0xffffffff}
		e := CompactEncoder{last: map[uint16]uint32{seed: 41, seed + 1: 0xffffffff}}
		if d.Start(frame) != nil {
			if d.Next(&Submit{}) {
				t.Fatal("records after a header error")
			}
			return
		}
		count := int(binary.LittleEndian.Uint16(frame[HeaderLen+5:]))
		var recs []byte
		var s Submit
		n := 0
		for d.Next(&s) {
			recs = AppendSubmit(recs, &s)
			n++
		}
		if n > count || n > (len(frame)-CompactHeaderLen)*8/34 {
			t.Fatalf("%d records from a %d-byte frame of count %d", n, len(frame), count)
		}
		var d2 CompactDecoder
		d2.last = map[uint16]uint32{seed: 41, seed + 1: 0xffffffff}
		var again []byte
		for rest := e.Append(nil, recs); len(rest) > 0; {
			l, _ := Split(rest)
			if d2.Start(rest[:l]) != nil {
				t.Fatal("re-encoded frame rejected")
			}
			for d2.Next(&s) {
				again = AppendSubmit(again, &s)
			}
			rest = rest[l:]
		}
		if !bytes.Equal(again, recs) {
			t.Fatal("decoded records do not survive re-encoding")
		}
	})
}

// FuzzCompactEncode builds runs of submit frames (and other frames
// between them) from arbitrary bytes, 16 per share, and checks that the
// encoder's SUBMIT_COMPACT frames, over two batches, decode back to exactly
// those frames with the reference reader (decodeCompact, which also checks
// sid_bits, the flags and the padding) and with CompactDecoder.
func FuzzCompactEncode(f *testing.F) {
	f.Add([]byte("\x00\x07\x00\x05\x00\x00\x00\x09\x00\x00\x00\x00\x20\x00\x00\x3f"), uint8(1))
	f.Add(bytes.Repeat([]byte("\xff\xff\xff\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d"), 5), uint8(3))
	f.Add(bytes.Repeat([]byte("\x13\x00\x80\xff\xff\xff\xff\x01\x00\x00\x00\x00\xe0\xff\x1f\x2a"), 7), uint8(0))
	f.Fuzz(func(t *testing.T, in []byte, cut uint8) {
		en2 := map[uint16]uint32{}
		var batches [2][]byte
		for i := 0; len(in) >= 16; i, in = i+1, in[16:] {
			b := in[:16]
			op, le := b[0], binary.LittleEndian
			s := Submit{JobID: b[15] & 3, SessionID: le.Uint16(b[1:]), ExtraNonce2: le.Uint32(b[3:]), Nonce: le.Uint32(b[7:]),
				HasTime: op&1 != 0, HasVersionMask: op&2 != 0}
			if op&4 != 0 { // the miner counts up
				s.ExtraNonce2 = en2[s.SessionID] + 1
			}
			en2[s.SessionID] = s.ExtraNonce2
			if s.HasTime {
				s.Time = 1700000000 + uint32(b[11]&3)
				if op&8 != 0 {
					s.Time = le.Uint32(b[11:])
				}
			}
			if s.HasVersionMask {
				s.VersionMask = le.Uint32(b[11:])
				if op&16 != 0 {
					s.VersionMask &= 0x1fffe000
				}
			}
			k := 0
			if i >= int(cut) {
				k = 1
			}
			if op&32 != 0 {
				batches[k] = AppendUnregisterWorker(batches[k], s.SessionID)
			}
			batches[k] = AppendSubmit(batches[k], &s)
		}
		e := &CompactEncoder{}
		defer delete(decoders, e)
		last := map[uint16]uint32{}
		for _, frames := range batches {
			compactRoundTrip(t, e, last, frames)
		}
	})
}
