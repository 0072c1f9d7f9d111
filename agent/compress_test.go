package agent

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"math"
	"math/bits"
	"math/rand/v2"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/hashpool/hashpool/codec/agent"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/codec/stratum"
	"github.com/hashpool/hashpool/internal/enginetest"
	"github.com/hashpool/hashpool/sha"
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
// (the engine's is engine.Session.agentCompactSubmits): it reads the
// bitstream one bit at a time and turns the records back into SUBMIT_SHARE
// frames. It checks what the encoder promises: sid_bits is the bit length
// of the frame's largest session id (at least 1), the first record carries
// its flags, the same bit is used whenever the flags repeat, and nothing
// but zero padding follows the last record.
func decodeCompact(t *testing.T, f []byte, last map[uint16]uint32) []byte {
	t.Helper()
	le := binary.LittleEndian
	if len(f) < compactHeaderLen || int(le.Uint16(f[2:])) != len(f) {
		t.Fatalf("frame of %d bytes, header %x", len(f), f[:min(len(f), compactHeaderLen)])
	}
	b := f[agent.HeaderLen:]
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
		s := agent.Submit{SessionID: uint16(get(sidBits)), JobID: job, Time: tm}
		maxSID = max(maxSID, s.SessionID)
		if fl&agent.CompactJob != 0 {
			s.JobID = uint8(get(8))
		}
		if fl&agent.CompactSeq != 0 {
			l, seen := last[s.SessionID]
			if !seen {
				t.Fatalf("record %d: agent.CompactSeq for unseen session %d", i, s.SessionID)
			}
			s.ExtraNonce2 = l + 1
		} else {
			s.ExtraNonce2 = get(32)
		}
		last[s.SessionID] = s.ExtraNonce2
		s.Nonce = get(32)
		if fl&agent.CompactTime != 0 {
			s.Time = get(32)
		}
		if s.HasTime = fl&agent.CompactHasTime != 0; !s.HasTime {
			s.Time = 0
		}
		switch {
		case fl&agent.CompactVerC != 0:
			s.VersionMask, s.HasVersionMask = get(16)<<13, true
		case fl&agent.CompactVer != 0:
			s.VersionMask, s.HasVersionMask = get(32), true
		}
		out = agent.AppendSubmit(out, &s)
	}
	if want := max(bits.Len16(maxSID), 1); sidBits != want {
		t.Fatalf("sid_bits %d, largest session id %d needs %d", sidBits, maxSID, want)
	}
	if len(stream) != (pos+7)/8 || pos%8 != 0 && stream[len(stream)-1]>>(pos%8) != 0 {
		t.Fatalf("%d bits of records in %d bytes, last byte %#x", pos, len(stream), stream[len(stream)-1])
	}
	return out
}

// compactRoundTrip compacts frames with u, checks every output frame and
// that decoding gives frames back exactly, and returns the output.
func compactRoundTrip(t *testing.T, u *upConn, last map[uint16]uint32, frames []byte) []byte {
	t.Helper()
	out := u.compact(nil, frames)
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
	return out
}

// compactFrames splits out into its frames, keeping SUBMIT_COMPACT ones.
func compactFrames(t *testing.T, out []byte) [][]byte {
	t.Helper()
	var fs [][]byte
	for len(out) > 0 {
		l, _ := agent.Split(out)
		if agent.FrameCmd(out[:l]) == cmdCompactSubmits {
			fs = append(fs, out[:l])
		}
		out = out[l:]
	}
	return fs
}

// TestCompactGolden: one share encodes to the bytes worked out by hand in
// the engine's TestCompactFrameGolden.
func TestCompactGolden(t *testing.T) {
	s := agent.Submit{JobID: 0, SessionID: 7, ExtraNonce2: 5, Nonce: 9, Time: 0x01020304, HasTime: true, VersionMask: 0x2000, HasVersionMask: true}
	got := (&upConn{}).compact(nil, agent.AppendSubmit(nil, &s))
	want := mustHex("7f7d1800" + "00" + "04030201" + "0100" + "03" + "e817000000240000000400" + "00")
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
			u := &upConn{}
			last := map[uint16]uint32{}
			for batch := 0; batch < 3; batch++ {
				var frames []byte
				for i := 0; i < tc.shares; i++ {
					sid := tc.sid(i)
					en2[sid]++
					s := agent.Submit{JobID: 4, SessionID: sid, ExtraNonce2: en2[sid], Nonce: r.Uint32(),
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
						frames = agent.AppendUnregisterWorker(frames, sid)
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
					frames = agent.AppendSubmit(frames, &s)
				}
				out := compactRoundTrip(t, u, last, frames)
				if batch == 2 {
					t.Logf("%d shares: %d bytes → %d (%.2f bytes/share)", tc.shares, len(frames), len(out), float64(len(out))/float64(tc.shares))
				}
			}
			if !maps.Equal(last, u.lastEn2) {
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
	u := &upConn{}
	en2 := map[uint16]uint32{}
	share := func(sid uint16) agent.Submit {
		en2[sid]++
		return agent.Submit{JobID: 9, SessionID: sid, ExtraNonce2: en2[sid], Nonce: r.Uint32(),
			Time: 1700000000, HasTime: true, VersionMask: r.Uint32() & 0x1fffe000, HasVersionMask: true}
	}
	var warm []byte // every miner's first share carries its extranonce2
	for sid := uint16(0); sid < miners; sid++ {
		en2[sid] = r.Uint32()
		s := share(sid)
		warm = agent.AppendSubmit(warm, &s)
	}
	last := map[uint16]uint32{}
	compactRoundTrip(t, u, last, warm)
	var frames []byte
	for i := 0; i < 1000; i++ {
		s := share(uint16(r.IntN(miners)))
		frames = agent.AppendSubmit(frames, &s)
	}
	out := compactRoundTrip(t, u, last, frames)
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
// u16 length, each filled to within one record of agent.MaxFrameLen.
func TestCompactSplitsAtFrameLimit(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, tc := range []struct {
		name   string
		shares int
		maxRec int // bytes a record can take in this run
		share  func(i int) agent.Submit
	}{
		{"largest records", 20000, 20, func(i int) agent.Submit {
			s := agent.Submit{JobID: uint8(i), SessionID: 65535 - uint16(i%2), ExtraNonce2: r.Uint32(), Nonce: r.Uint32(),
				Time: r.Uint32(), HasTime: true, VersionMask: r.Uint32() | 1, HasVersionMask: true}
			if i%3 == 0 { // changes the flags: a record without agent.CompactJob
				s.JobID = 0
			}
			return s
		}},
		{"typical records", 40000, 13, func(i int) agent.Submit {
			return agent.Submit{JobID: 1, SessionID: uint16(i % 10000), ExtraNonce2: uint32(i/10000) + 1, Nonce: r.Uint32(),
				Time: 1700000000, HasTime: true, VersionMask: r.Uint32() & 0x1fffe000, HasVersionMask: true}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var frames []byte
			for i := 0; i < tc.shares; i++ {
				s := tc.share(i)
				frames = agent.AppendSubmit(frames, &s)
			}
			u := &upConn{}
			out := compactRoundTrip(t, u, map[uint16]uint32{}, frames)
			fs := compactFrames(t, out)
			if len(fs) < 2 {
				t.Fatalf("%d shares in %d frame(s)", tc.shares, len(fs))
			}
			for i, f := range fs {
				if len(f) > agent.MaxFrameLen || i < len(fs)-1 && len(f) <= agent.MaxFrameLen-tc.maxRec {
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
		s := agent.Submit{JobID: 1, SessionID: uint16(i % 1000), ExtraNonce2: uint32(i), Nonce: uint32(i),
			Time: 1700000000, HasTime: true, VersionMask: 0x2000, HasVersionMask: true}
		frames = agent.AppendSubmit(frames, &s)
		if i%100 == 0 {
			frames = agent.AppendUnregisterWorker(frames, 5000)
		}
	}
	u := &upConn{}
	u.cout = u.compact(u.cout[:0], frames)
	allocs := testing.AllocsPerRun(50, func() { u.cout = u.compact(u.cout[:0], frames) })
	if allocs != 0 {
		t.Fatalf("%v allocations per batch", allocs)
	}
}

// rawAgent is a TCP connection to the engine that speaks the agent protocol
// directly, so a test can send it exactly the frames the writer makes.
type rawAgent struct {
	t     *testing.T
	conn  net.Conn
	r     *bufio.Reader
	en1   []byte // the pool's extranonce1, 4 bytes
	short uint8  // the current job's short id
}

func dialRawAgent(t *testing.T, p *enginetest.Engine, caps string) *rawAgent {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ra := &rawAgent{t: t, conn: c, r: bufio.NewReader(c)}
	c.Write([]byte(`{"id":"caps","method":"agent.get_capabilities","params":[` + caps + `]}` + "\n" +
		`{"id":"sub","method":"mining.subscribe","params":["btccom-agent/2.0.0-hashpool"]}` + "\n" +
		`{"id":"auth","method":"mining.authorize","params":["kevin",""]}` + "\n"))
	authorized, notified := false, false
	for !authorized || !notified {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		l, err := ra.r.ReadBytes('\n')
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		var m stratum.Message
		if stratum.Parse(l, &m) != nil {
			t.Fatalf("handshake line %q", l)
		}
		id, _ := m.ID.String()
		switch {
		case string(id) == "sub":
			en1, _ := m.Result.Index(1).Str()
			ra.en1 = mustHex(string(en1))
		case string(id) == "auth":
			authorized, _ = m.Result.Bool()
			if !authorized {
				t.Fatalf("authorize: %s", l)
			}
		case m.IsMethod(stratum.MethodNotify):
			jobID, _ := m.Param(0).Str()
			n, err := strconv.ParseUint(string(jobID), 10, 8)
			if err != nil {
				t.Fatalf("notify job id %q", jobID)
			}
			ra.short, notified = uint8(n), true
		}
	}
	return ra
}

// submitResponse returns the next SUBMIT_RESPONSE, skipping other frames
// and lines.
func (ra *rawAgent) submitResponse() (uint16, btcpool.Status) {
	ra.t.Helper()
	for {
		ra.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, err := ra.r.Peek(1)
		if err != nil {
			ra.t.Fatal(err)
		}
		if b[0] != agent.Magic {
			if _, err := ra.r.ReadBytes('\n'); err != nil {
				ra.t.Fatal(err)
			}
			continue
		}
		hdr, err := ra.r.Peek(agent.HeaderLen)
		if err != nil {
			ra.t.Fatal(err)
		}
		f := make([]byte, binary.LittleEndian.Uint16(hdr[2:]))
		if _, err := io.ReadFull(ra.r, f); err != nil {
			ra.t.Fatal(err)
		}
		if agent.FrameCmd(f) == agent.CmdSubmitResponse {
			idx, st, err := agent.DecodeSubmitResponse(f)
			if err != nil {
				ra.t.Fatal(err)
			}
			return idx, btcpool.Status(st)
		}
	}
}

// TestCompactThroughEngine: the writer's SUBMIT_COMPACT frames, plain and
// inside ZSTD_BATCH frames, sent over TCP to the real engine: every share
// is judged as its SUBMIT_SHARE frame would be. Passing nonces were found
// for the exact extranonce2, time and version mask, so any field decoded
// wrong turns an accept into "low difficulty".
func TestCompactThroughEngine(t *testing.T) {
	p := startEngine(t, 1)
	jp := p.AddJob(false)
	job := sha.NewJob(jp.Coinbase1, jp.Coinbase2, jp.Branch, jp.Version, jp.PrevHash, jp.Bits)
	target := sha.DiffToTarget(math.Ldexp(1, testExp))
	var h sha.Hasher
	nonce := func(en1 []byte, s *agent.Submit, want bool) uint32 {
		var en2 [8]byte
		binary.BigEndian.PutUint64(en2[:], s.FullExtraNonce2())
		ntime := s.Time
		if !s.HasTime {
			ntime = jp.Time
		}
		for n := uint32(0); n < 1<<22; n++ {
			hash := h.ShareHash(job, en1, en2[:], ntime, n, s.VersionMask)
			if sha.HashMeetsTarget(&hash, &target) == want {
				return n
			}
		}
		t.Fatalf("no nonce meets=%v", want)
		return 0
	}
	sids := []uint16{0, 1, 2, 300, 32768, agent.MaxSessionID}
	for run, zbatch := range []bool{false, true} {
		t.Run(fmt.Sprintf("zstd=%v", zbatch), func(t *testing.T) {
			ra := dialRawAgent(t, p, `["verrol","subres","zstd","csub"]`)
			var regs []byte
			for _, sid := range sids {
				regs, _ = agent.AppendRegisterWorker(regs, sid, "cgminer/4.9", fmt.Sprintf("w%d", sid))
			}
			ra.conn.Write(regs)
			r := rand.New(rand.NewPCG(9, uint64(run))) // new shares: the next connection may get the same extranonce1
			u := &upConn{}
			en2 := map[uint16]uint32{}
			index := uint16(0)
			for batch := 0; batch < 3; batch++ {
				var frames []byte
				var want []btcpool.Status
				for i := 0; i < 40; i++ {
					sid := sids[r.IntN(len(sids))]
					en2[sid]++
					s := agent.Submit{JobID: ra.short, SessionID: sid, ExtraNonce2: en2[sid], Time: jp.Time, HasTime: true,
						VersionMask: r.Uint32() & 0x1fffe000, HasVersionMask: true}
					st := btcpool.StatusAccept
					switch i % 8 {
					case 1:
						s.ExtraNonce2 = r.Uint32() // a jump
						en2[sid] = s.ExtraNonce2
					case 2:
						s.Time = jp.Time + 1 + r.Uint32N(500)
					case 3:
						s.HasTime, s.Time = false, 0
					case 4:
						s.HasVersionMask, s.VersionMask = false, 0
					case 5:
						s.VersionMask |= 0x40 // outside the pool's mask
						st = btcpool.StatusIllegalVersionMask
					case 6:
						s.JobID++ // no such job
						st = btcpool.StatusJobNotFound
					case 7:
						st = btcpool.StatusLowDifficulty
					}
					s.Nonce = nonce(ra.en1, &s, st != btcpool.StatusLowDifficulty)
					frames = agent.AppendSubmit(frames, &s)
					want = append(want, st)
				}
				frames = agent.AppendUnregisterWorker(frames, 12345) // not a submit: cuts the run
				wire := u.compact(nil, frames)
				if zbatch {
					wire = u.compress(nil, wire)
					if agent.FrameCmd(wire) != cmdZstdBatch {
						t.Fatalf("batch went out as cmd %#x", agent.FrameCmd(wire))
					}
				} else if agent.FrameCmd(wire) != cmdCompactSubmits {
					t.Fatalf("batch went out as cmd %#x", agent.FrameCmd(wire))
				}
				ra.conn.Write(wire)
				for i, st := range want {
					idx, got := ra.submitResponse()
					if idx != index || got != st {
						t.Fatalf("batch %d share %d: index %d status %d, want %d %d", batch, i, idx, got, index, st)
					}
					index++
				}
			}
		})
	}
}
