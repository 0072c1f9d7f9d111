package engine

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hashpool/hashpool/codec/agent"
	"github.com/hashpool/hashpool/codec/btcpool"
)

// readFrame reads one 0x7F frame from the client.
func (c *client) readFrame() []byte {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	hdr := make([]byte, 4)
	if _, err := io.ReadFull(c.r, hdr); err != nil {
		c.t.Fatal(err)
	}
	if hdr[0] != agent.Magic {
		rest, _ := c.r.ReadString('\n')
		c.t.Fatalf("want a frame, got line %q", string(hdr)+rest)
	}
	f := make([]byte, binary.LittleEndian.Uint16(hdr[2:4]))
	copy(f, hdr)
	if _, err := io.ReadFull(c.r, f[4:]); err != nil {
		c.t.Fatal(err)
	}
	return f
}

func TestAgentSession(t *testing.T) {
	p := startPool(t, testOptions(t))
	job := testJobParams(200, false)
	if err := p.srv.AddJob(job); err != nil {
		t.Fatal(err)
	}
	c := p.dial()
	c.script(`
> {"id":"caps","method":"agent.get_capabilities","params":[["verrol","subres"]]}
< {"id":"caps","result":{"capabilities":["verrol","subres"]}}
> {"id":"sub","method":"mining.subscribe","params":["btccom-agent/2.0.0-mu"]}
< {"id":"sub","result":[[["mining.set_difficulty","01000000"],["mining.notify","01000000"]],"01000000",8],"error":null}
> {"id":"auth","method":"mining.authorize","params":["carol",""]}
< {"id":"auth","result":true,"error":null}
<~ \{"id":null,"method":"mining.set_difficulty","params":\[[0-9.]+\]\}
<~ ` + fmt.Sprintf(notifyRe, 0, "true"))
	// Register two workers, then a new job: their difficulty goes out as one
	// MINING_SET_DIFF frame (same exponent) before the notify.
	reg1, _ := agent.AppendRegisterWorker(nil, 0x0001, "cgminer/4.9", "w1")
	reg2, _ := agent.AppendRegisterWorker(nil, 0x0002, "cgminer/4.9", "w2")
	c.conn.Write(append(reg1, reg2...))
	// A round trip after the frames: the registrations landed before the job.
	c.script(`
> {"id":"barrier","method":"mining.extranonce.subscribe","params":[]}
< {"id":"barrier","result":true,"error":null}`)
	job2 := testJobParams(201, false)
	if err := p.srv.AddJob(job2); err != nil {
		t.Fatal(err)
	}
	f := c.readFrame()
	var sd agent.SetDiff
	if err := agent.DecodeSetDiff(f, &sd); err != nil || sd.Count() != 2 || sd.DiffExp != 0 {
		t.Fatalf("set diff frame %x: %v count %d exp %d", f, err, sd.Count(), sd.DiffExp)
	}
	c.script(`<~ ` + fmt.Sprintf(notifyRe, 1, "true"))

	// A share from worker 2: en2 = 2<<32 | 0xdeadbeef.
	en1 := uint32(0x01000000)
	full := uint64(2)<<32 | 0xdeadbeef
	nonce := findNonce(t, job2, en1, full, job2.Time, -32, true)
	sub := agent.Submit{JobID: 1, SessionID: 2, ExtraNonce2: 0xdeadbeef, Nonce: nonce, Time: job2.Time, HasTime: true}
	c.conn.Write(agent.AppendSubmit(nil, &sub))
	idx, st, err := agent.DecodeSubmitResponse(c.readFrame())
	if err != nil || idx != 0 || st != 1798084231 {
		t.Fatalf("submit response idx %d status %d err %v", idx, st, err)
	}
	c.conn.Write(agent.AppendSubmit(nil, &sub)) // duplicate: raw 22
	if idx, st, _ := agent.DecodeSubmitResponse(c.readFrame()); idx != 1 || st != 22 {
		t.Fatalf("duplicate: idx %d status %d", idx, st)
	}
	// A new height makes job 1 stale: raw 37 for agents, not 21.
	if err := p.srv.AddJob(testJobParams(202, false)); err != nil {
		t.Fatal(err)
	}
	c.script(`<~ ` + fmt.Sprintf(notifyRe, 2, "true"))
	sub.Nonce++
	c.conn.Write(agent.AppendSubmit(nil, &sub))
	if idx, st, _ := agent.DecodeSubmitResponse(c.readFrame()); idx != 2 || st != 37 {
		t.Fatalf("stale: idx %d status %d", idx, st)
	}
	sub.SessionID = 9 // unregistered: ignored, no response and no index used
	c.conn.Write(agent.AppendSubmit(nil, &sub))
	c.conn.Write(agent.AppendUnregisterWorker(nil, 2))
	job3 := p.srv.repo.Latest()
	sub.SessionID, sub.JobID = 1, 2
	sub.Nonce = 0
	c.conn.Write(agent.AppendSubmit(nil, &sub))
	if idx, st, _ := agent.DecodeSubmitResponse(c.readFrame()); idx != 3 || (st != 1798084231 && st != 23) || job3.ShortID != 2 {
		t.Fatalf("worker 1: idx %d status %d", idx, st)
	}
	sh := p.nextShare()
	if sh.WorkerHashID != WorkerID("w2") || sh.SessionID != en1 || sh.Nonce != nonce {
		t.Fatalf("record %+v", sh)
	}
	if sh := p.nextShare(); sh.Status != 37 {
		t.Fatalf("stale record status %d", sh.Status)
	}
}

func TestSolvedShareJournaledAndPublished(t *testing.T) {
	o := testOptions(t)
	p := startPool(t, o)
	job := testJobParams(300, true)
	if err := p.srv.AddJob(job); err != nil {
		t.Fatal(err)
	}
	c := p.dial()
	c.script(`
> {"id":1,"method":"mining.subscribe","params":[]}
<~ .*
> {"id":2,"method":"mining.authorize","params":["dave.big"]}
< {"id":2,"result":true,"error":null}
<~ .*set_difficulty.*
<~ .*mining.notify.*`)
	c.script(fmt.Sprintf(`
> {"id":3,"method":"mining.submit","params":["dave.big","0","00000000000000aa","%08x","00000001"]}
< {"id":3,"result":true,"error":null}
> {"id":4,"method":"mining.submit","params":["dave.big","0","00000000000000ab","%08x","00000001"]}
< {"id":4,"result":null,"error":[21,"Job not found (=stale)",null]}
`, job.Time, job.Time))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs, err := p.solved.Poll(ctx)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("solved topic: %d msgs, %v", len(msgs), err)
	}
	var ss btcpool.SolvedShare
	if err := btcpool.DecodeSolvedShare(msgs[0].Value, &ss); err != nil {
		t.Fatal(err)
	}
	want := refShareHash(job, 8, 0x01000000, 0xaa, job.Time, 1, 0)
	hdrHash := sha256d(ss.Header[:])
	if hdrHash != want || ss.Height != 300 || ss.WorkerFullName != "dave.big" || ss.JobID != job.ID {
		t.Fatalf("solved share %+v", ss)
	}
	if cb := sha256d(ss.Coinbase); len(ss.Coinbase) != len(job.Coinbase1)+12+len(job.Coinbase2) || cb == ([32]byte{}) {
		t.Fatalf("coinbase %x", ss.Coinbase)
	}
	recs := waitJournal(t, filepath.Join(o.DataDir, journalFile), 1)
	if string(recs[0].Msg) != string(msgs[0].Value) {
		t.Fatalf("journal holds %x, published %x", recs[0].Msg, msgs[0].Value)
	}
	if sh := p.nextShare(); sh.Status != btcpool.Status(1422486894) {
		t.Fatalf("record status %v, want solved", sh.Status)
	}
	// A torn tail is ignored.
	f, _ := os.OpenFile(filepath.Join(o.DataDir, journalFile), os.O_APPEND|os.O_WRONLY, 0)
	f.Write([]byte{200, 0, 0, 0, 1})
	f.Close()
	if recs, _ := ReadJournal(filepath.Join(o.DataDir, journalFile)); len(recs) != 1 || !recs[0].Acked {
		t.Fatalf("torn journal: %d records", len(recs))
	}
}

// TestAgentDifficultyIsUnsignedInteger: on a network whose minimum
// difficulty is fractional, an agent is told integer difficulties ≥ 1 (the
// legacy BtcAgent reads set_difficulty with strtoul), in its first notify
// and later; a plain miner still gets the fraction.
func TestAgentDifficultyIsUnsignedInteger(t *testing.T) {
	o := testOptions(t)
	o.MinDifficulty = 0.001953125 // 2^-9
	o.DefaultDifficulty = 0.001953125
	p := startPool(t, o)
	if err := p.srv.AddJob(testJobParams(750, false)); err != nil {
		t.Fatal(err)
	}
	strtoul := func(line string) uint64 {
		t.Helper()
		m := setDiffRe.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("not a set_difficulty: %s", line)
		}
		v, err := strconv.ParseUint(m[1], 10, 64)
		if err != nil || v < 1 {
			t.Fatalf("agent told difficulty %q: not an unsigned integer ≥ 1 (%v)", m[1], err)
		}
		return v
	}
	c := p.dial()
	c.subscribeAuthorize("btccom-agent/2.0.0-mu", "carol")
	if d := strtoul(c.recv()); d != 1 {
		t.Fatalf("first difficulty %d, want 1", d)
	}
	c.script(`<~ .*mining.notify.*`)
	reg, _ := agent.AppendRegisterWorker(nil, 1, "cgminer/4.9", "w1")
	c.conn.Write(reg)
	c.script(`
> {"id":"barrier","method":"mining.extranonce.subscribe","params":[]}
< {"id":"barrier","result":true,"error":null}`)
	if err := p.srv.AddJob(testJobParams(751, false)); err != nil {
		t.Fatal(err)
	}
	var sd agent.SetDiff
	if f := c.readFrame(); agent.DecodeSetDiff(f, &sd) != nil || sd.DiffExp != 0 {
		t.Fatalf("worker difficulty frame %x: exp %d, want 0", f, sd.DiffExp)
	}
	plain := p.dial()
	plain.subscribeAuthorize("cgminer/4.10", "carol.rig")
	if got := plain.recv(); got != `{"id":null,"method":"mining.set_difficulty","params":[0.001953125]}` {
		t.Fatalf("plain miner got %s", got)
	}
}
