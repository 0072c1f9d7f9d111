package engine

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/bus/mem"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/sha"
)

// testPool is a running server on loopback with an in-memory bus.
type testPool struct {
	t      testing.TB
	srv    *Server
	bus    *mem.Bus
	shares bus.Consumer
	solved bus.Consumer
	cancel context.CancelFunc
	done   chan error

	stopOnce sync.Once
	stopErr  error

	pending []btcpool.Share
}

func testOptions(t testing.TB) Options {
	o := NewOptions()
	o.Listen = "127.0.0.1:0"
	o.ReusePort = false
	o.EventLoops = 2
	o.DataDir = t.TempDir()
	o.MinDifficulty = math.Ldexp(1, -32)
	o.DefaultDifficulty = math.Ldexp(1, -32)
	o.VersionMask = 0x1fffe000
	o.GracePeriod = 500 * time.Millisecond
	return o
}

func startPool(t testing.TB, o Options) *testPool {
	t.Helper()
	b := mem.New(mem.Options{})
	prod, err := b.NewProducer(bus.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prod.Close(); b.Close() })
	return startPoolOn(t, o, b, prod)
}

// startPoolOn starts a server publishing with prod and consuming jobs and
// reading its outputs on b. The pool stops at cleanup (or with stop).
func startPoolOn(t testing.TB, o Options, b *mem.Bus, prod bus.Producer) *testPool {
	t.Helper()
	users, err := OpenEmbeddedUsers(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	shares, _ := b.NewConsumer(o.Topics.Share, bus.Start{})
	solved, _ := b.NewConsumer(o.Topics.SolvedShare, bus.Start{})
	srv, err := New(o, Deps{Producer: prod, Bus: b, Users: users})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &testPool{t: t, srv: srv, bus: b, shares: shares, solved: solved, cancel: cancel, done: make(chan error, 1)}
	go func() { p.done <- srv.Serve(ctx) }()
	select {
	case <-srv.Ready():
	case err := <-p.done:
		t.Fatalf("Serve: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("server not ready")
	}
	t.Cleanup(func() { p.stop() })
	return p
}

// stop shuts the server down (gracefully, as on SIGTERM) and returns what
// Serve returned; later calls return the same.
func (p *testPool) stop() error {
	p.stopOnce.Do(func() {
		p.cancel()
		select {
		case p.stopErr = <-p.done:
		case <-time.After(30 * time.Second):
			p.stopErr = errors.New("server did not stop")
			p.t.Error(p.stopErr)
		}
	})
	return p.stopErr
}

// testJob is a job whose network target no share meets unless solvable.
func testJobParams(height int32, solvable bool) *JobParams {
	p := &JobParams{
		ID: uint64(time.Now().Unix())<<32 | uint64(height), Height: height,
		Coinbase1: mustHex("01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff20"),
		Coinbase2: mustHex("ffffffff0100f2052a010000001976a914000000000000000000000000000000000000000088ac00000000"),
		Version:   0x20000000, Bits: 0x1d00ffff, Time: uint32(time.Now().Unix()), MinTime: uint32(time.Now().Unix()) - 3600,
	}
	p.PrevHash[31] = 0x11
	p.Branch = [][32]byte{{1, 2, 3}, {4, 5, 6}}
	if solvable {
		p.NetworkTarget = sha.Target{math.MaxUint64, math.MaxUint64, math.MaxUint64, math.MaxUint64}
	}
	return p
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// refShareHash computes a share hash from scratch with crypto/sha256: the
// slow reference the engine's result is checked against.
func refShareHash(p *JobParams, en2Size int, en1 uint32, en2 uint64, ntime, nonce, vmask uint32) [32]byte {
	d := func(b []byte) [32]byte { h := sha256.Sum256(b); return sha256.Sum256(h[:]) }
	cb := append([]byte(nil), p.Coinbase1...)
	cb = append(cb, make([]byte, 8-en2Size)...)
	cb = binary.BigEndian.AppendUint32(cb, en1)
	var e [8]byte
	binary.BigEndian.PutUint64(e[:], en2)
	cb = append(cb, e[8-en2Size:]...)
	cb = append(cb, p.Coinbase2...)
	root := d(cb)
	for _, b := range p.Branch {
		root = d(append(root[:], b[:]...))
	}
	var h []byte
	h = binary.LittleEndian.AppendUint32(h, p.Version^vmask)
	h = append(h, p.PrevHash[:]...)
	h = append(h, root[:]...)
	h = binary.LittleEndian.AppendUint32(h, ntime)
	h = binary.LittleEndian.AppendUint32(h, p.Bits)
	h = binary.LittleEndian.AppendUint32(h, nonce)
	return d(h)
}

// findNonce returns a nonce whose share hash meets (want true) or misses
// the target of difficulty 2^exp.
func findNonce(t testing.TB, p *JobParams, en1 uint32, en2 uint64, ntime uint32, exp int, want bool) uint32 {
	target := sha.DiffToTarget(ExpDiff(exp))
	for nonce := uint32(0); nonce < 1<<20; nonce++ {
		h := refShareHash(p, 8, en1, en2, ntime, nonce, 0)
		if sha.HashMeetsTarget(&h, &target) == want {
			return nonce
		}
	}
	t.Fatalf("no nonce with meets=%v for 2^%d", want, exp)
	return 0
}

type client struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func (p *testPool) dial() *client {
	p.t.Helper()
	c, err := net.Dial("tcp", p.srv.Addr().String())
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { c.Close() })
	return &client{t: p.t, conn: c, r: bufio.NewReader(c)}
}

func (c *client) send(line string) {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(line + "\n")); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) recv() string {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (got %q)", err, line)
	}
	return strings.TrimSuffix(line, "\n")
}

// script runs lines of "> sent" and "< expected" ("<~ regexp" matches).
func (c *client) script(s string) {
	c.t.Helper()
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "> "):
			c.send(l[2:])
		case strings.HasPrefix(l, "<~ "):
			if got := c.recv(); !regexp.MustCompile("^" + l[3:] + "$").MatchString(got) {
				c.t.Fatalf("got  %s\nwant ~%s", got, l[3:])
			}
		case strings.HasPrefix(l, "< "):
			if got := c.recv(); got != l[2:] {
				c.t.Fatalf("got  %s\nwant %s", got, l[2:])
			}
		case l == "":
		default:
			c.t.Fatalf("bad script line %q", l)
		}
	}
}

func (p *testPool) nextShare() btcpool.Share {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for len(p.pending) == 0 {
		msgs, err := p.shares.Poll(ctx)
		if err != nil {
			p.t.Fatalf("no share record: %v", err)
		}
		for _, m := range msgs {
			var sh btcpool.Share
			if err := btcpool.DecodeShareMessage(m.Value, &sh); err != nil {
				p.t.Fatal(err)
			}
			p.pending = append(p.pending, sh)
		}
	}
	sh := p.pending[0]
	p.pending = p.pending[1:]
	return sh
}

const notifyRe = `\{"id":null,"method":"mining.notify","params":\["%d","[0-9a-f]{64}","[0-9a-f]+","[0-9a-f]+",\[[^]]*\],"20000000","1d00ffff","[0-9a-f]{8}",%s\]\}`

func TestStratumSubscribeAuthorizeSubmit(t *testing.T) {
	p := startPool(t, testOptions(t))
	job := testJobParams(100, false)
	if err := p.srv.AddJob(job); err != nil {
		t.Fatal(err)
	}
	c := p.dial()
	c.script(`
> {"id":1,"method":"mining.subscribe","params":["cpuminer/2.5.1"]}
< {"id":1,"result":[[["mining.set_difficulty","01000000"],["mining.notify","01000000"]],"01000000",8],"error":null}
> {"id":"x","method":"mining.authorize","params":["alice.rig1","x"]}
< {"id":"x","result":true,"error":null}
< {"id":null,"method":"mining.set_difficulty","params":[0.00000000023283064365386963]}
<~ ` + fmt.Sprintf(notifyRe, 0, "true"))
	en1 := uint32(0x01000000)
	nonce := findNonce(t, job, en1, 0x0102030405060708, job.Time, -32, true)
	c.script(fmt.Sprintf(`
> {"id":3,"method":"mining.submit","params":["alice.rig1","0","0102030405060708","%08x","%08x"]}
< {"id":3,"result":true,"error":null}
> {"id":4,"method":"mining.submit","params":["alice.rig1","0","0102030405060708","%08x","%08x"]}
< {"id":4,"result":null,"error":[22,"Duplicate share",null]}
> {"id":5,"method":"mining.submit","params":["alice.rig1","7","0102030405060708","%08x","%08x"]}
< {"id":5,"result":null,"error":[21,"Job not found (=stale)",null]}
> {"id":6,"method":"mining.submit","params":["alice.rig1","0","01","%08x","%08x"]}
< {"id":6,"result":null,"error":[31,"Time too old",null]}
> {"id":7,"method":"mining.submit","params":["alice.rig1","0","02","%08x","%08x"]}
< {"id":7,"result":null,"error":[32,"Time too new",null]}
> {"id":8,"method":"mining.submit","params":["alice.rig1","0","03","%08x","%08x","00000001"]}
< {"id":8,"result":null,"error":[33,"Invalid version mask",null]}
> {"id":9,"method":"mining.submit","params":["alice.rig1","0"]}
< {"id":9,"result":null,"error":[27,"Illegal params",null]}
`, job.Time, nonce, job.Time, nonce, job.Time, nonce, job.MinTime-1, 0, job.Time+601, 0, job.Time, 0))
	sh := p.nextShare()
	if sh.Status != btcpool.Status(1798084231) || sh.UserID != 1 || sh.WorkerHashID != WorkerID("rig1") ||
		sh.SessionID != en1 || sh.Nonce != nonce || sh.Height != 100 || sh.JobID != job.ID || sh.ShareDiff != 1 || sh.BlkBits != 0x1d00ffff {
		t.Fatalf("record %+v", sh)
	}
	h := refShareHash(job, 8, en1, 0x0102030405060708, job.Time, nonce, 0)
	if want := sha.HashToTarget(&h).Compact(); sh.BitsReached != want {
		t.Fatalf("bits reached %08x, want %08x", sh.BitsReached, want)
	}
	for _, want := range []btcpool.Status{31, 32, 33} {
		if got := p.nextShare(); got.Status != want {
			t.Fatalf("record status %d, want %d", got.Status, want)
		}
	}
}

func sha256d(b []byte) [32]byte {
	h := sha256.Sum256(b)
	return sha256.Sum256(h[:])
}
