package agent

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
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
