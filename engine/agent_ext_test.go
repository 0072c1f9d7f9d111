package engine

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/hashpool/hashpool/codec/agent"
	"github.com/hashpool/hashpool/codec/btcpool"
)

// TestAgentRejOnly: with the "rejonly" extension, rejected shares are
// answered one by one and accepted ones by one cumulative accept per read;
// a worker registered after the job went out can submit on it at once.
func TestAgentRejOnly(t *testing.T) {
	p := startPool(t, testOptions(t))
	job := testJobParams(200, false)
	if err := p.srv.AddJob(job); err != nil {
		t.Fatal(err)
	}
	c := p.dial()
	c.script(`
> {"id":"caps","method":"agent.get_capabilities","params":[["verrol","subres","rejonly"]]}
< {"id":"caps","result":{"capabilities":["verrol","subres","rejonly"]}}
> {"id":"sub","method":"mining.subscribe","params":["btccom-agent/2.0.0-hashpool"]}
<~ .*"01000000",8\],"error":null\}
> {"id":"auth","method":"mining.authorize","params":["carol",""]}
< {"id":"auth","result":true,"error":null}
<~ .*mining.set_difficulty.*
<~ ` + fmt.Sprintf(notifyRe, 0, "true"))
	reg, _ := agent.AppendRegisterWorker(nil, 7, "cgminer/4.9", "w7")
	en1 := uint32(0x01000000)
	share := func(en2 uint32, ok bool) []byte {
		full := uint64(7)<<32 | uint64(en2)
		n := findNonce(t, job, en1, full, job.Time, -32, true)
		sub := agent.Submit{JobID: 0, SessionID: 7, ExtraNonce2: en2, Nonce: n, Time: job.Time, HasTime: true}
		if !ok {
			sub.Time = job.MinTime - 1 // time too old
		}
		return agent.AppendSubmit(nil, &sub)
	}
	// Register and three shares in one write: accept, reject, accept.
	in := append(reg, share(1, true)...)
	in = append(in, share(2, false)...)
	in = append(in, share(3, true)...)
	c.conn.Write(in)
	for _, want := range []struct {
		idx uint16
		st  int32
	}{{1, 31}, {2, 1798084231}} {
		idx, st, err := agent.DecodeSubmitResponse(c.readFrame())
		if err != nil || idx != want.idx || st != want.st {
			t.Fatalf("response idx %d status %d (%v), want %d %d", idx, st, err, want.idx, want.st)
		}
	}
	// A lone reject gets its frame and no accept follows.
	c.conn.Write(share(4, false))
	if idx, st, _ := agent.DecodeSubmitResponse(c.readFrame()); idx != 3 || st != 31 {
		t.Fatalf("response idx %d status %d", idx, st)
	}
	if sh := p.nextShare(); sh.WorkerHashID != WorkerID("w7") || sh.Status != 1798084231 {
		t.Fatalf("record %+v", sh)
	}
}

// TestAgentNoRejOnlyUnasked: an agent that does not ask for the extension
// gets btcpool's exact capabilities answer.
func TestAgentNoRejOnlyUnasked(t *testing.T) {
	p := startPool(t, testOptions(t))
	c := p.dial()
	c.script(`
> {"id":"caps","method":"agent.get_capabilities","params":[["verrol","subres"]]}
< {"id":"caps","result":{"capabilities":["verrol","subres"]}}`)
}

// TestAgentZstdBatch: a ZSTD_BATCH frame's inner frames are handled in
// order, exactly as if sent plainly; corrupt or nested batches are dropped.
func TestAgentZstdBatch(t *testing.T) {
	p := startPool(t, testOptions(t))
	job := testJobParams(200, false)
	if err := p.srv.AddJob(job); err != nil {
		t.Fatal(err)
	}
	c := p.dial()
	c.script(`
> {"id":"caps","method":"agent.get_capabilities","params":[["verrol","subres","zstd"]]}
< {"id":"caps","result":{"capabilities":["verrol","subres","zstd"]}}
> {"id":"sub","method":"mining.subscribe","params":["btccom-agent/2.0.0-hashpool"]}
<~ .*"01000000",8\],"error":null\}
> {"id":"auth","method":"mining.authorize","params":["carol",""]}
< {"id":"auth","result":true,"error":null}
<~ .*mining.set_difficulty.*
<~ ` + fmt.Sprintf(notifyRe, 0, "true"))
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	batch := func(frames []byte) []byte {
		body := enc.EncodeAll(frames, nil)
		f := []byte{agent.Magic, byte(CmdZstdBatch), 0, 0}
		binary.LittleEndian.PutUint16(f[2:], uint16(4+len(body)))
		return append(f, body...)
	}
	reg, _ := agent.AppendRegisterWorker(nil, 7, "cgminer/4.9", "w7")
	en1 := uint32(0x01000000)
	n := findNonce(t, job, en1, uint64(7)<<32|1, job.Time, -32, true)
	sub := agent.Submit{JobID: 0, SessionID: 7, ExtraNonce2: 1, Nonce: n, Time: job.Time, HasTime: true}
	inner := append(reg, agent.AppendSubmit(nil, &sub)...)
	sub.Time = job.MinTime - 1
	inner = append(inner, agent.AppendSubmit(nil, &sub)...)
	garbage := []byte{agent.Magic, byte(CmdZstdBatch), 8, 0, 1, 2, 3, 4}
	c.conn.Write(append(append(garbage, batch(append(inner, batch(inner)...))...), agent.AppendUnregisterWorker(nil, 99)...))
	for _, want := range []struct {
		idx uint16
		st  int32
	}{{0, 1798084231}, {1, 31}} {
		idx, st, err := agent.DecodeSubmitResponse(c.readFrame())
		if err != nil || idx != want.idx || st != want.st {
			t.Fatalf("response idx %d status %d (%v), want %d %d", idx, st, err, want.idx, want.st)
		}
	}
	// The nested batch was skipped: the next plain submit gets index 2.
	c.conn.Write(agent.AppendSubmit(nil, &sub))
	if idx, st, _ := agent.DecodeSubmitResponse(c.readFrame()); idx != 2 || st != 22 {
		t.Fatalf("after the batch: idx %d status %d, want 2 22", idx, st)
	}
	if sh := p.nextShare(); sh.WorkerHashID != WorkerID("w7") || sh.Nonce != n {
		t.Fatalf("record %+v", sh)
	}
}

// compactRec is one SUBMIT_COMPACT record as the tests write it; fl
// selects the fields written, same writes the same bit instead of fl.
type compactRec struct {
	same                    bool
	fl                      uint32
	sid                     uint16
	job                     uint8
	en2, nonce, time, vmask uint32
}

// bitStream writes bits one at a time, LSB first: the slow reference for
// the SUBMIT_COMPACT bitstream.
type bitStream struct {
	b []byte
	n int
}

func (w *bitStream) put(v uint64, n int) {
	for k := 0; k < n; k++ {
		if w.n%8 == 0 {
			w.b = append(w.b, 0)
		}
		w.b[w.n/8] |= byte(v>>k&1) << (w.n % 8)
		w.n++
	}
}

// compactFrame builds a SUBMIT_COMPACT frame field by field; count and
// sidBits are written as given (tests pass wrong ones on purpose).
func compactFrame(job uint8, tm uint32, count uint16, sidBits int, recs ...compactRec) []byte {
	var w bitStream
	for _, r := range recs {
		if r.same {
			w.put(1, 1)
		} else {
			w.put(0, 1)
			w.put(uint64(r.fl), 6)
		}
		w.put(uint64(r.sid), sidBits)
		if r.fl&agent.CompactJob != 0 {
			w.put(uint64(r.job), 8)
		}
		if r.fl&agent.CompactSeq == 0 {
			w.put(uint64(r.en2), 32)
		}
		w.put(uint64(r.nonce), 32)
		if r.fl&agent.CompactTime != 0 {
			w.put(uint64(r.time), 32)
		}
		switch {
		case r.fl&agent.CompactVerC != 0:
			w.put(uint64(r.vmask>>13), 16)
		case r.fl&agent.CompactVer != 0:
			w.put(uint64(r.vmask), 32)
		}
	}
	le := binary.LittleEndian
	f := []byte{agent.Magic, byte(CmdCompactSubmits), 0, 0, job}
	f = le.AppendUint32(f, tm)
	f = le.AppendUint16(f, count)
	f = append(f, byte(sidBits))
	f = append(f, w.b...)
	le.PutUint16(f[2:], uint16(len(f)))
	return f
}

// TestCompactFrameGolden pins the bit layout of CmdCompactSubmits with one
// record worked out by hand (the agent's encoder has the same golden test).
func TestCompactFrameGolden(t *testing.T) {
	got := compactFrame(0, 0x01020304, 1, 3,
		compactRec{fl: agent.CompactHasTime | agent.CompactVer | agent.CompactVerC, sid: 7, en2: 5, nonce: 9, vmask: 0x2000})
	// same 0, flags 0x34 (001011 low bit first), sid 111, en2 5, nonce 9, version 1.
	want := mustHex("7f7d1800" + "00" + "04030201" + "0100" + "03" + "e817000000240000000400" + "00")
	if !bytes.Equal(got, want) {
		t.Fatalf("frame %x\nwant  %x", got, want)
	}
}

// agentCompactClient is an authorized agent connection that negotiated
// subres, zstd and csub, with workers registered at sids.
func agentCompactClient(t *testing.T, p *testPool, sids ...uint16) *client {
	t.Helper()
	c := p.dial()
	c.t = t
	c.script(`
> {"id":"caps","method":"agent.get_capabilities","params":[["verrol","subres","zstd","csub"]]}
< {"id":"caps","result":{"capabilities":["verrol","subres","zstd","csub"]}}
> {"id":"sub","method":"mining.subscribe","params":["btccom-agent/2.0.0-hashpool"]}
<~ .*"[0-9a-f]{8}",8\],"error":null\}
> {"id":"auth","method":"mining.authorize","params":["carol",""]}
< {"id":"auth","result":true,"error":null}
<~ .*mining.set_difficulty.*
<~ ` + fmt.Sprintf(notifyRe, 0, "true"))
	var regs []byte
	for _, sid := range sids {
		regs, _ = agent.AppendRegisterWorker(regs, sid, "cgminer/4.9", fmt.Sprintf("w%d", sid))
	}
	c.conn.Write(regs)
	return c
}

// expectResponses reads SUBMIT_RESPONSE frames: indexes from first on, with
// the statuses given.
func (c *client) expectResponses(first uint16, sts ...btcpool.Status) {
	c.t.Helper()
	for i, want := range sts {
		idx, st, err := agent.DecodeSubmitResponse(c.readFrame())
		if err != nil || idx != first+uint16(i) || st != int32(want) {
			c.t.Fatalf("response %d: idx %d status %d (%v), want %d %d", i, idx, st, err, first+uint16(i), want)
		}
	}
}

// TestAgentCompactSubmits: SUBMIT_COMPACT records are handled like the
// equivalent SUBMIT_SHARE frames, with the sequential extranonce2 rebuilt
// from the last one of that session id across frames (also inside a
// ZSTD_BATCH), session ids up to MaxSessionID with 16 sid bits, and every
// field form.
func TestAgentCompactSubmits(t *testing.T) {
	p := startPool(t, testOptions(t))
	job := testJobParams(200, false)
	if err := p.srv.AddJob(job); err != nil {
		t.Fatal(err)
	}
	c := agentCompactClient(t, p, 7, agent.MaxSessionID)
	const top = agent.MaxSessionID
	c.conn.Write(compactFrame(0, job.Time, 6, 16,
		// explicit en2 5, base time, version mask 0x2000 as 16 bits
		compactRec{fl: agent.CompactHasTime | agent.CompactVer | agent.CompactVerC, sid: 7, en2: 5, nonce: 9, vmask: 0x2000},
		// sequential en2 (6), same nonce: not a duplicate
		compactRec{fl: agent.CompactSeq | agent.CompactHasTime, sid: 7, nonce: 9},
		// same flags: sequential en2 (7)
		compactRec{same: true, fl: agent.CompactSeq | agent.CompactHasTime, sid: 7, nonce: 9},
		// the top session id, en2 0xffffffff, a full version mask outside the pool's
		compactRec{fl: agent.CompactHasTime | agent.CompactVer, sid: top, en2: 0xffffffff, nonce: 9, vmask: 0xffffffff},
		// sequential en2 wraps to 0, explicit job 0 and a time too old
		compactRec{fl: agent.CompactSeq | agent.CompactJob | agent.CompactHasTime | agent.CompactTime, sid: top, job: 0, nonce: 9, time: job.MinTime - 1},
		// no time, no version
		compactRec{fl: 0, sid: 7, en2: 100, nonce: 10}))
	c.expectResponses(0, btcpool.StatusAccept, btcpool.StatusAccept, btcpool.StatusAccept,
		btcpool.StatusIllegalVersionMask, btcpool.StatusTimeTooOld, btcpool.StatusAccept)
	for _, want := range []struct {
		worker string
		nonce  uint32
		vmask  uint32
		st     btcpool.Status
	}{{"w7", 9, 0x2000, btcpool.StatusAccept}, {"w7", 9, 0, btcpool.StatusAccept}, {"w7", 9, 0, btcpool.StatusAccept},
		{"w65534", 9, 0xffffffff, btcpool.StatusIllegalVersionMask}, {"w65534", 9, 0, btcpool.StatusTimeTooOld}, {"w7", 10, 0, btcpool.StatusAccept}} {
		if sh := p.nextShare(); sh.WorkerHashID != WorkerID(want.worker) || sh.Nonce != want.nonce || sh.VersionMask != want.vmask || sh.Status != want.st {
			t.Fatalf("record %+v, want %+v", sh, want)
		}
	}
	// The next frame, inside a ZSTD_BATCH, continues both counters: en2 101
	// for 7 and 1 for the top id; the second share of 7 repeats en2 100 and
	// nonce 10 (explicitly), a duplicate.
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	body := enc.EncodeAll(compactFrame(0, 0, 3, 16,
		compactRec{fl: agent.CompactSeq, sid: 7, nonce: 10},
		compactRec{fl: 0, sid: 7, en2: 100, nonce: 10},
		compactRec{fl: agent.CompactSeq | agent.CompactHasTime | agent.CompactTime, sid: top, nonce: 9, time: job.Time}), nil)
	z := binary.LittleEndian.AppendUint16([]byte{agent.Magic, byte(CmdZstdBatch)}, uint16(4+len(body)))
	c.conn.Write(append(z, body...))
	c.expectResponses(6, btcpool.StatusAccept, btcpool.StatusDuplicateShare, btcpool.StatusAccept)
	if sh := p.nextShare(); sh.WorkerHashID != WorkerID("w7") || sh.Nonce != 10 {
		t.Fatalf("record %+v", sh)
	}
}

// TestAgentCompactMalformed: a malformed or truncated record ends its frame
// after the records before it were handled; the connection goes on.
func TestAgentCompactMalformed(t *testing.T) {
	p := startPool(t, testOptions(t))
	job := testJobParams(200, false)
	if err := p.srv.AddJob(job); err != nil {
		t.Fatal(err)
	}
	ok := compactRec{fl: agent.CompactHasTime, sid: 7, en2: 1, nonce: 1}
	ok2 := compactRec{fl: agent.CompactHasTime, sid: 8, en2: 2, nonce: 2}
	truncate := func(f []byte, n int) []byte {
		f = f[:len(f)-n]
		binary.LittleEndian.PutUint16(f[2:], uint16(len(f)))
		return f
	}
	for _, tc := range []struct {
		name    string
		frame   []byte
		handled int
	}{
		{"valid", compactFrame(0, job.Time, 2, 4, ok, ok2), 2},
		{"same on the first record", compactFrame(0, job.Time, 2, 4, compactRec{same: true, fl: agent.CompactHasTime, sid: 7, en2: 1, nonce: 1}, ok2), 0},
		{"agent.CompactSeq for an unseen session", compactFrame(0, job.Time, 3, 4, ok, compactRec{fl: agent.CompactSeq | agent.CompactHasTime, sid: 8, nonce: 2}, ok2), 1},
		{"sid_bits 0", compactFrame(0, job.Time, 2, 0, ok, ok2), 0},
		{"sid_bits 17", compactFrame(0, job.Time, 2, 17, ok, ok2), 0},
		{"count beyond the records", compactFrame(0, job.Time, 9, 4, ok, ok2), 2},
		{"count 0", compactFrame(0, job.Time, 0, 4, ok, ok2), 0},
		{"truncated record", truncate(compactFrame(0, job.Time, 2, 4, ok, ok2), 2), 1},
		{"no flags after same 0", truncate(compactFrame(0, job.Time, 1, 1, compactRec{fl: 0, sid: 0}), 9), 0},
		{"short header", truncate(compactFrame(0, job.Time, 0, 4), 1), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := agentCompactClient(t, p, 7, 8)
			sts := make([]btcpool.Status, tc.handled)
			for i := range sts {
				sts[i] = btcpool.StatusAccept
			}
			// The plain submit after the frame gets the next index.
			after := agent.AppendSubmit(nil, &agent.Submit{SessionID: 7, ExtraNonce2: 50, Nonce: 50, Time: job.Time, HasTime: true})
			c.conn.Write(append(append([]byte(nil), tc.frame...), after...))
			c.expectResponses(0, append(sts, btcpool.StatusAccept)...)
		})
	}
}

// refCompact decodes a SUBMIT_COMPACT body bit by bit, as its doc comment
// reads, updating last: the slow reference for agentCompactSubmits.
func refCompact(body []byte, last map[uint16]uint32) []agent.Submit {
	if len(body) < 8 {
		return nil
	}
	le := binary.LittleEndian
	job, tm, count, sidBits := body[0], le.Uint32(body[1:]), int(le.Uint16(body[5:])), int(body[7])
	if sidBits < 1 || sidBits > 16 {
		return nil
	}
	stream, pos := body[8:], 0
	get := func(n int, ok *bool) uint32 {
		var v uint32
		for k := 0; k < n; k++ {
			if pos >= len(stream)*8 {
				*ok = false
				return 0
			}
			v |= uint32(stream[pos/8]>>(pos%8)&1) << k
			pos++
		}
		return v
	}
	var out []agent.Submit
	var fl uint32
	for i := 0; i < count; i++ {
		ok := true
		if get(1, &ok) == 0 {
			fl = get(6, &ok)
		} else if i == 0 {
			return out
		}
		s := agent.Submit{SessionID: uint16(get(sidBits, &ok)), JobID: job, Time: tm, HasTime: fl&agent.CompactHasTime != 0}
		if fl&agent.CompactJob != 0 {
			s.JobID = uint8(get(8, &ok))
		}
		seq := fl&agent.CompactSeq != 0
		if !seq {
			s.ExtraNonce2 = get(32, &ok)
		}
		s.Nonce = get(32, &ok)
		if fl&agent.CompactTime != 0 {
			s.Time = get(32, &ok)
		}
		if !s.HasTime {
			s.Time = 0
		}
		switch {
		case fl&agent.CompactVerC != 0:
			s.VersionMask, s.HasVersionMask = get(16, &ok)<<13, true
		case fl&agent.CompactVer != 0:
			s.VersionMask, s.HasVersionMask = get(32, &ok), true
		}
		if !ok {
			return out
		}
		if seq {
			l, seen := last[s.SessionID]
			if !seen {
				return out
			}
			s.ExtraNonce2 = l + 1
		}
		last[s.SessionID] = s.ExtraNonce2
		out = append(out, s)
	}
	return out
}

// FuzzAgentCompactSubmits feeds arbitrary SUBMIT_COMPACT bodies to an
// authorized agent session with workers at a few session ids: never a
// panic, and exactly the records the bit-by-bit reference decodes are
// handled (one SUBMIT_RESPONSE each for the registered ids, in index
// order), leaving the same extranonce2 counters.
func FuzzAgentCompactSubmits(f *testing.F) {
	ok := compactRec{fl: agent.CompactHasTime | agent.CompactVer | agent.CompactVerC, sid: 1, en2: 5, nonce: 9, vmask: 0x2000}
	seq := compactRec{same: true, fl: agent.CompactHasTime | agent.CompactVer | agent.CompactVerC, sid: 1, nonce: 9, vmask: 0x4000}
	for _, seed := range [][]byte{
		compactFrame(0, 1, 2, 1, ok, ok),
		compactFrame(0, 1, 3, 2, ok, compactRec{fl: agent.CompactSeq | agent.CompactHasTime | agent.CompactVer | agent.CompactVerC, sid: 1, nonce: 1}, seq),
		compactFrame(1, 1, 2, 16, compactRec{fl: agent.CompactJob | agent.CompactTime | agent.CompactHasTime | agent.CompactVer, sid: 0xFFFE, job: 3, en2: 1, nonce: 2, time: 3, vmask: 4},
			compactRec{fl: 0, sid: 3, en2: 1, nonce: 2}),
		compactFrame(0, 1, 2, 0, ok, ok),
		compactFrame(0, 1, 9, 3, ok, seq),
	} {
		f.Add(seed[agent.HeaderLen:])
	}
	f.Add([]byte{})
	o := newOffline(f, testOptions(f))
	sids := []uint16{0, 1, 2, 3, 5, 0x7FFF, 0xFFFE}
	var regs []byte
	for _, id := range sids {
		regs, _ = agent.AppendRegisterWorker(regs, id, "cgminer", "w")
	}
	now := time.Now().Unix()
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > agent.MaxFrameLen-agent.HeaderLen {
			return
		}
		s := o.session(0x01000009)
		o.run(s, `{"id":0,"method":"agent.get_capabilities","params":[["subres","csub"]]}`+"\n"+
			`{"id":1,"method":"mining.subscribe","params":["btccom-agent/2.0"]}`+"\n"+`{"id":2,"method":"mining.authorize","params":["fuzz"]}`+"\n")
		o.run(s, string(regs))
		fr := binary.LittleEndian.AppendUint16([]byte{agent.Magic, byte(CmdCompactSubmits)}, uint16(agent.HeaderLen+len(body)))
		fr = append(fr, body...)
		o.lp.out = o.lp.out[:0]
		if n, _ := s.feed(fr, now); n != len(fr) {
			t.Fatalf("consumed %d of %d", n, len(fr))
		}
		last := map[uint16]uint32{}
		want := 0
		for _, sub := range refCompact(body, last) {
			if slices.Contains(sids, sub.SessionID) {
				want++
			}
		}
		got := 0
		for out := o.lp.out; len(out) > 0; {
			n, err := agent.Split(out)
			if err != nil || n == 0 {
				t.Fatalf("bad output %x", out)
			}
			if idx, _, err := agent.DecodeSubmitResponse(out[:n]); err == nil {
				if int(idx) != got {
					t.Fatalf("response index %d, want %d", idx, got)
				}
				got++
			}
			out = out[n:]
		}
		if got != want {
			t.Fatalf("%d shares handled, the reference decodes %d", got, want)
		}
		if len(last) != s.compact.Len() {
			t.Fatalf("%d counters, the reference has %d", s.compact.Len(), len(last))
		}
		for id, v := range last {
			if got, _ := s.compact.Last(id); got != v {
				t.Fatalf("session %d: en2 %d, the reference has %d", id, got, v)
			}
		}
		o.lp.batch.buf, o.lp.batch.ends = o.lp.batch.buf[:0], o.lp.batch.ends[:0]
	})
}

// TestAgentCompactZeroAllocs: decoding a SUBMIT_COMPACT frame allocates
// nothing per record once its session ids were seen (the shares go to ids
// without a worker, so only the decoder runs).
func TestAgentCompactZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	o := newOffline(t, testOptions(t))
	s := o.session(0x01000009)
	o.run(s, `{"id":0,"method":"agent.get_capabilities","params":[["subres","csub"]]}`+"\n"+
		`{"id":1,"method":"mining.subscribe","params":["btccom-agent/2.0"]}`+"\n"+`{"id":2,"method":"mining.authorize","params":["fuzz"]}`+"\n")
	recs := make([]compactRec, 2000)
	for i := range recs {
		recs[i] = compactRec{same: i > 0, fl: agent.CompactHasTime | agent.CompactVer | agent.CompactVerC, sid: uint16(i % 1000), en2: uint32(i), nonce: uint32(i), vmask: 0x2000}
	}
	fr := compactFrame(0, 1, uint16(len(recs)), 10, recs...)
	s.handleFrame(fr, 1)
	if s.compact.Len() != 1000 {
		t.Fatalf("%d counters after the first frame", s.compact.Len())
	}
	allocs := testing.AllocsPerRun(100, func() { s.handleFrame(fr, 1) })
	if allocs != 0 {
		t.Fatalf("%v allocations per frame", allocs)
	}
}

// FuzzAgentExtensionFrames feeds arbitrary bytes as the body of a
// SUBMIT_COMPACT or ZSTD_BATCH frame to an authorized agent session that
// negotiated both extensions: never a panic, never more than the frame read.
func FuzzAgentExtensionFrames(f *testing.F) {
	le := binary.LittleEndian
	rec := compactFrame(0, 0, 2, 1, compactRec{fl: agent.CompactHasTime | agent.CompactVer | agent.CompactVerC, sid: 1, en2: 5, nonce: 9, vmask: 0x2000},
		compactRec{same: true, fl: agent.CompactHasTime | agent.CompactVer | agent.CompactVerC, sid: 1, en2: 6, nonce: 9, vmask: 0x2000})[agent.HeaderLen:]
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	sub := agent.AppendSubmit(nil, &agent.Submit{SessionID: 1, ExtraNonce2: 5, Nonce: 7, Time: 1, HasTime: true})
	for _, seed := range [][]byte{rec, enc.EncodeAll(sub, nil), enc.EncodeAll(append(sub, 0x7f, 0x7e, 4, 0), nil),
		enc.EncodeAll(append(sub, compactFrame(0, 0, 1, 1, compactRec{fl: agent.CompactSeq, sid: 1, nonce: 1})...), nil), {}} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	o := newOffline(f, testOptions(f))
	reg, _ := agent.AppendRegisterWorker(nil, 1, "cgminer", "w1")
	now := time.Now().Unix()
	f.Fuzz(func(t *testing.T, body []byte, zstdFrame bool) {
		if len(body) > agent.MaxFrameLen-agent.HeaderLen {
			return
		}
		s := o.session(0x01000009)
		o.run(s, `{"id":0,"method":"agent.get_capabilities","params":[["subres","zstd","csub"]]}`+"\n"+
			`{"id":1,"method":"mining.subscribe","params":["btccom-agent/2.0"]}`+"\n"+`{"id":2,"method":"mining.authorize","params":["fuzz"]}`+"\n")
		o.run(s, string(reg))
		cmd := CmdCompactSubmits
		if zstdFrame {
			cmd = CmdZstdBatch
		}
		fr := []byte{agent.Magic, byte(cmd), 0, 0}
		le.PutUint16(fr[2:], uint16(agent.HeaderLen+len(body)))
		fr = append(fr, body...)
		o.lp.out = o.lp.out[:0]
		if n, _ := s.feed(fr, now); n != len(fr) {
			t.Fatalf("consumed %d of %d", n, len(fr))
		}
		o.lp.batch.buf, o.lp.batch.ends = o.lp.batch.buf[:0], o.lp.batch.ends[:0]
	})
}
