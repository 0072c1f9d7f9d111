package engine

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/hashpool/hashpool/codec/agent"
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

// TestAgentCompactSubmits: SUBMIT_COMPACT records are handled like the
// equivalent SUBMIT_SHARE frames, with the sequential extranonce2 rebuilt
// from the last one of that session id.
func TestAgentCompactSubmits(t *testing.T) {
	p := startPool(t, testOptions(t))
	job := testJobParams(200, false)
	if err := p.srv.AddJob(job); err != nil {
		t.Fatal(err)
	}
	c := p.dial()
	c.script(`
> {"id":"caps","method":"agent.get_capabilities","params":[["verrol","subres","csub"]]}
< {"id":"caps","result":{"capabilities":["verrol","subres","csub"]}}
> {"id":"sub","method":"mining.subscribe","params":["btccom-agent/2.0.0-hashpool"]}
<~ .*"01000000",8\],"error":null\}
> {"id":"auth","method":"mining.authorize","params":["carol",""]}
< {"id":"auth","result":true,"error":null}
<~ .*mining.set_difficulty.*
<~ ` + fmt.Sprintf(notifyRe, 0, "true"))
	reg, _ := agent.AppendRegisterWorker(nil, 7, "cgminer/4.9", "w7")
	le := binary.LittleEndian
	f := []byte{agent.Magic, byte(CmdCompactSubmits), 0, 0, 0}
	f = le.AppendUint32(f, job.Time)
	f = le.AppendUint16(f, 3)
	// 1: explicit en2 5, nonce 9, base time, version mask 0x2000 compact.
	f = append(f, csHasTime|csVer|csVerC)
	f = le.AppendUint16(f, 7)
	f = le.AppendUint32(f, 5)
	f = le.AppendUint32(f, 9)
	f = le.AppendUint16(f, 0x2000>>13)
	// 2: sequential en2 (6), same nonce: not a duplicate.
	f = append(f, csSeq|csHasTime)
	f = le.AppendUint16(f, 7)
	f = le.AppendUint32(f, 9)
	// 3: sequential en2 (7), explicit job 0 and a time too old.
	f = append(f, csSeq|csJob|csHasTime|csTime)
	f = le.AppendUint16(f, 7)
	f = append(f, 0)
	f = le.AppendUint32(f, 9)
	f = le.AppendUint32(f, job.MinTime-1)
	le.PutUint16(f[2:], uint16(len(f)))
	c.conn.Write(append(reg, f...))
	for _, want := range []struct {
		idx uint16
		st  int32
	}{{0, 1798084231}, {1, 1798084231}, {2, 31}} {
		idx, st, err := agent.DecodeSubmitResponse(c.readFrame())
		if err != nil || idx != want.idx || st != want.st {
			t.Fatalf("response idx %d status %d (%v), want %d %d", idx, st, err, want.idx, want.st)
		}
	}
	if sh := p.nextShare(); sh.VersionMask != 0x2000 || sh.Nonce != 9 {
		t.Fatalf("record %+v", sh)
	}
}

// FuzzAgentExtensionFrames feeds arbitrary bytes as the body of a
// SUBMIT_COMPACT or ZSTD_BATCH frame to an authorized agent session that
// negotiated both extensions: never a panic, never more than the frame read.
func FuzzAgentExtensionFrames(f *testing.F) {
	le := binary.LittleEndian
	rec := []byte{0, 0, 0, 0, 0, 3, 0, csSeq | csHasTime | csVer | csVerC, 1, 0, 9, 0, 0, 0, 1, 0}
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	sub := agent.AppendSubmit(nil, &agent.Submit{SessionID: 1, ExtraNonce2: 5, Nonce: 7, Time: 1, HasTime: true})
	for _, seed := range [][]byte{rec, enc.EncodeAll(sub, nil), enc.EncodeAll(append(sub, 0x7f, 0x7e, 4, 0), nil), {}} {
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
