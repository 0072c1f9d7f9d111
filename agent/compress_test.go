package agent

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/hashpool/hashpool/codec/agent"
)

// TestCompressRoundTrip: ZSTD_BATCH frames decode to exactly the frames
// given, chunked at frame boundaries; typical share batches shrink.
func TestCompressRoundTrip(t *testing.T) {
	dec, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	defer dec.Close()
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 20, 200, 5000} {
		var frames []byte
		for i := 0; i < n; i++ {
			s := agent.Submit{JobID: 3, SessionID: uint16(r.IntN(10000)), ExtraNonce2: uint32(i), Nonce: r.Uint32(),
				Time: 1700000000, HasTime: true, VersionMask: r.Uint32() & 0x1fffe000, HasVersionMask: true}
			frames = agent.AppendSubmit(frames, &s)
		}
		u := &upConn{}
		out := u.compress(nil, frames)
		var got []byte
		batches := 0
		for rest := out; len(rest) > 0; {
			l, err := agent.Split(rest)
			if err != nil || l == 0 {
				t.Fatalf("n=%d: bad output frame: %v", n, err)
			}
			f := rest[:l]
			rest = rest[l:]
			if agent.FrameCmd(f) != cmdZstdBatch {
				got = append(got, f...)
				continue
			}
			batches++
			d, err := dec.DecodeAll(f[agent.HeaderLen:], nil)
			if err != nil {
				t.Fatalf("n=%d: %v", n, err)
			}
			got = append(got, d...)
		}
		if !bytes.Equal(got, frames) {
			t.Fatalf("n=%d: round trip differs", n)
		}
		if n >= 20 && (batches == 0 || len(out) >= len(frames)*3/4) {
			t.Fatalf("n=%d: %d bytes → %d in %d batches", n, len(frames), len(out), batches)
		}
		t.Logf("%d shares: %d bytes → %d (%.1f bytes/share)", n, len(frames), len(out), float64(len(out))/float64(n))
	}
}

// decodeCompact is the test's reference reader of SUBMIT_COMPACT frames
// (the engine's is engine.Session.agentCompactSubmits): it turns them back
// into SUBMIT_SHARE frames.
func decodeCompact(t *testing.T, f []byte, last map[uint16]uint32) []byte {
	t.Helper()
	le := binary.LittleEndian
	b := f[agent.HeaderLen:]
	job, tm, n := b[0], le.Uint32(b[1:]), int(le.Uint16(b[5:]))
	b = b[7:]
	var out []byte
	for i := 0; i < n; i++ {
		fl := b[0]
		s := agent.Submit{SessionID: le.Uint16(b[1:]), JobID: job, Time: tm}
		b = b[3:]
		if fl&csJob != 0 {
			s.JobID, b = b[0], b[1:]
		}
		if fl&csSeq != 0 {
			s.ExtraNonce2 = last[s.SessionID] + 1
		} else {
			s.ExtraNonce2, b = le.Uint32(b), b[4:]
		}
		last[s.SessionID] = s.ExtraNonce2
		s.Nonce, b = le.Uint32(b), b[4:]
		if fl&csTime != 0 {
			s.Time, b = le.Uint32(b), b[4:]
		}
		if s.HasTime = fl&csHasTime != 0; !s.HasTime {
			s.Time = 0
		}
		switch {
		case fl&csVerC != 0:
			s.VersionMask, s.HasVersionMask, b = uint32(le.Uint16(b))<<13, true, b[2:]
		case fl&csVer != 0:
			s.VersionMask, s.HasVersionMask, b = le.Uint32(b), true, b[4:]
		}
		out = agent.AppendSubmit(out, &s)
	}
	if len(b) != 0 {
		t.Fatalf("%d bytes after %d records", len(b), n)
	}
	return out
}

// TestCompactRoundTrip: every submit form, job and time changes, non-submit
// frames in between, and per-miner counters survive SUBMIT_COMPACT exactly;
// a typical share takes 9 bytes.
func TestCompactRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	en2 := map[uint16]uint32{}
	var frames []byte
	for i := 0; i < 3000; i++ {
		sid := uint16(r.IntN(500))
		en2[sid]++
		s := agent.Submit{JobID: 4, SessionID: sid, ExtraNonce2: en2[sid], Nonce: r.Uint32(),
			Time: 1700000000, HasTime: true, VersionMask: r.Uint32() & 0x1fffe000, HasVersionMask: true}
		switch i % 97 {
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
			frames = agent.AppendUnregisterWorker(frames, sid)
		}
		frames = agent.AppendSubmit(frames, &s)
	}
	u := &upConn{}
	out := u.compact(nil, frames)
	last := map[uint16]uint32{}
	var got []byte
	for rest := out; len(rest) > 0; {
		l, err := agent.Split(rest)
		if err != nil || l == 0 {
			t.Fatalf("bad output frame: %v", err)
		}
		if agent.FrameCmd(rest[:l]) == cmdCompactSubmits {
			got = append(got, decodeCompact(t, rest[:l], last)...)
		} else {
			got = append(got, rest[:l]...)
		}
		rest = rest[l:]
	}
	if !bytes.Equal(got, frames) {
		t.Fatal("round trip differs")
	}
	per := float64(len(out)) / 3000
	if per > 10.5 {
		t.Fatalf("%.1f bytes per share", per)
	}
	t.Logf("3000 shares: %d bytes → %d (%.1f bytes/share)", len(frames), len(out), per)
}
