package engine

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"sync"
	"testing"

	"github.com/hashpool/hashpool/sha"
)

// Tests of what keeps shares from being credited twice or recorded
// without bound: session-id resumption, duplicate sets, the spam guard.

var subscribeEn1Re = regexp.MustCompile(`"([0-9a-f]{8})",8\],"error":null\}$`)

// TestResumedSessionIDCannotReplayShares: a share accepted on one
// connection must not be credited again on a connection that asks for the
// same extranonce1 in mining.subscribe and lands on another event loop
// (duplicate sets are per loop).
func TestResumedSessionIDCannotReplayShares(t *testing.T) {
	o := testOptions(t)
	o.MinDifficulty = math.Ldexp(1, -24)
	o.DefaultDifficulty = math.Ldexp(1, -24)
	p := startPool(t, o)
	job := testJobParams(900, false)
	if err := p.srv.AddJob(job); err != nil {
		t.Fatal(err)
	}
	a := p.dial()
	a.subscribeAuthorize("cgminer/4.10", "ivan.a")
	a.script(`
<~ .*set_difficulty.*
<~ .*mining.notify.*`)
	const en1, en2 = uint32(0x01000000), uint64(0x0a0b0c0d0e0f1011)
	nonce := findNonce(t, job, en1, en2, job.Time, -24, true)
	share := fmt.Sprintf(`"0","%016x","%08x","%08x"`, en2, job.Time, nonce)
	a.script(`
> {"id":3,"method":"mining.submit","params":["ivan.a",` + share + `]}
< {"id":3,"result":true,"error":null}`)

	// While a is open, least-connections balancing puts b on the other
	// loop; the test checks that it did.
	b := p.dial()
	b.script(`
> {"id":0,"method":"mining.extranonce.subscribe","params":[]}
< {"id":0,"result":true,"error":null}`)
	if per := sessionsPerLoop(p.srv); len(per) != 2 || per[0] != 1 || per[1] != 1 {
		t.Fatalf("sessions per loop %v: want a and b on different loops", per)
	}
	a.conn.Close()
	waitFor(t, "a's session to close", func() bool { return p.srv.metrics.Sessions.Load() == 1 })

	b.send(`{"id":1,"method":"mining.subscribe","params":["cgminer/4.10","01000000"]}`)
	m := subscribeEn1Re.FindStringSubmatch(b.recv())
	if m == nil {
		t.Fatal("bad subscribe answer")
	}
	got, _ := strconv.ParseUint(m[1], 16, 32)
	b.script(`
> {"id":2,"method":"mining.authorize","params":["ivan.b"]}
< {"id":2,"result":true,"error":null}
<~ .*set_difficulty.*
<~ .*mining.notify.*
> {"id":4,"method":"mining.submit","params":["ivan.b",` + share + `]}`)
	ans := b.recv()
	h := refShareHash(job, 8, uint32(got), en2, job.Time, nonce, 0)
	target := sha.DiffToTarget(ExpDiff(-24))
	if ans == `{"id":4,"result":true,"error":null}` && !sha.HashMeetsTarget(&h, &target) || uint32(got) == en1 && ans != `{"id":4,"result":null,"error":[22,"Duplicate share",null]}` {
		t.Fatalf("replayed share on extranonce1 %08x answered %s", got, ans)
	}
}

// TestDupSetHoldsOnlySharesWithWork: shares without the work (low
// difficulty) must not fill the job's duplicate set, or a client could
// flood it to its bound at no cost and then replay accepted shares.
func TestDupSetHoldsOnlySharesWithWork(t *testing.T) {
	opts := testOptions(t)
	opts.MinDifficulty = math.Ldexp(1, -16)
	opts.DefaultDifficulty = math.Ldexp(1, -16)
	o := newOffline(t, opts)
	s := authorizedSession(t, o)
	job := o.srv.repo.Latest()
	const en1, en2 = uint32(0x01000000), uint64(0x1122334455667788)
	good := findNonce(t, o.job, en1, en2, o.job.Time, -16, true)
	submit := func(id int, nonce uint32) string {
		return fmt.Sprintf(`{"id":%d,"method":"mining.submit","params":["alice.rig1","%d","%016x","%08x","%08x"]}`+"\n",
			id, job.ShortID, en2, o.job.Time, nonce)
	}
	if out := o.run(s, submit(1, good)); out != `{"id":1,"result":true,"error":null}`+"\n" {
		t.Fatalf("good share: %s", out)
	}
	low := 0
	for nonce := uint32(0); low < 500; nonce++ {
		h := refShareHash(o.job, 8, en1, en2, o.job.Time, nonce, 0)
		target := sha.DiffToTarget(ExpDiff(-16))
		if sha.HashMeetsTarget(&h, &target) {
			continue
		}
		low++
		if out := o.run(s, submit(2, nonce)); out != `{"id":2,"result":null,"error":[23,"Low difficulty",null]}`+"\n" {
			t.Fatalf("low share: %s", out)
		}
		if low == 1 { // repeated without work: low difficulty again, not remembered
			if out := o.run(s, submit(2, nonce)); out != `{"id":2,"result":null,"error":[23,"Low difficulty",null]}`+"\n" {
				t.Fatalf("repeated low share: %s", out)
			}
		}
	}
	if n := job.seen[o.lp.idx].n.Load(); n != 1 {
		t.Fatalf("duplicate set holds %d keys after 1 accepted and %d low-difficulty shares, want 1", n, low)
	}
	if out := o.run(s, submit(3, good)); out != `{"id":3,"result":null,"error":[22,"Duplicate share",null]}`+"\n" {
		t.Fatalf("replayed share: %s", out)
	}
}

// TestSpamGuardFrom20thReject: btcpool counts a rejected share, then stops
// recording once 20 are in the 60 s window, so the 20th is not recorded.
func TestSpamGuardFrom20thReject(t *testing.T) {
	o := newOffline(t, testOptions(t))
	s := authorizedSession(t, o)
	before := len(o.lp.batch.ends)
	for i := 0; i < 25; i++ {
		out := o.run(s, fmt.Sprintf(`{"id":%d,"method":"mining.submit","params":["alice.rig1","%d","%016x","%08x","00000000"]}`+"\n",
			i, o.srv.repo.Latest().ShortID, i, o.job.MinTime-1))
		if want := fmt.Sprintf(`{"id":%d,"result":null,"error":[31,"Time too old",null]}`+"\n", i); out != want {
			t.Fatalf("got %s", out)
		}
	}
	if n := len(o.lp.batch.ends) - before; n != 19 {
		t.Fatalf("%d of 25 rejected shares recorded, want 19", n)
	}
}

// TestSessionIDResumedOnItsLoop: a miner reconnecting on the loop that held its session id gets
// the id (extranonce1) back, and the shares of the old connection stay duplicates.
func TestSessionIDResumedOnItsLoop(t *testing.T) {
	o := testOptions(t)
	o.EventLoops = 1
	o.MinDifficulty = math.Ldexp(1, -24)
	o.DefaultDifficulty = math.Ldexp(1, -24)
	p := startPool(t, o)
	job := testJobParams(900, false)
	if err := p.srv.AddJob(job); err != nil {
		t.Fatal(err)
	}
	a := p.dial()
	a.subscribeAuthorize("cgminer/4.10", "ivan.a")
	a.script(`
<~ .*set_difficulty.*
<~ .*mining.notify.*`)
	const en1, en2 = uint32(0x01000000), uint64(0x0a0b0c0d0e0f1011)
	nonce := findNonce(t, job, en1, en2, job.Time, -24, true)
	share := fmt.Sprintf(`"0","%016x","%08x","%08x"`, en2, job.Time, nonce)
	a.script(`
> {"id":3,"method":"mining.submit","params":["ivan.a",` + share + `]}
< {"id":3,"result":true,"error":null}`)
	a.conn.Close()
	waitFor(t, "a's session to close", func() bool { return p.srv.metrics.Sessions.Load() == 0 })

	b := p.dial()
	b.script(`
> {"id":1,"method":"mining.subscribe","params":["cgminer/4.10","01000000"]}
< {"id":1,"result":[[["mining.set_difficulty","01000000"],["mining.notify","01000000"]],"01000000",8],"error":null}
> {"id":2,"method":"mining.authorize","params":["ivan.b"]}
< {"id":2,"result":true,"error":null}
<~ .*set_difficulty.*
<~ .*mining.notify.*
> {"id":4,"method":"mining.submit","params":["ivan.b",` + share + `]}
< {"id":4,"result":null,"error":[22,"Duplicate share",null]}`)
}

// sessionsPerLoop returns how many sessions each event loop holds, asked on
// the loops themselves.
func sessionsPerLoop(srv *Server) []int {
	loops := srv.snapshotLoops()
	per := make([]int, len(loops))
	var mu sync.Mutex
	srv.eachLoopWait(func(lp *loop) {
		mu.Lock()
		per[lp.idx] = len(lp.sessions)
		mu.Unlock()
	})
	return per
}
