package baseline

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/sha"
)

// startServer serves opts on 127.0.0.1:0 until the test ends.
func startServer(t testing.TB, opts Options) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := New(opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return")
		}
	})
	// Serve publishes ln's address before it accepts: wait for that (or for
	// Serve to end) and fail rather than go on without an address.
	deadline := time.Now().Add(30 * time.Second)
	for srv.Addr() == nil {
		select {
		case err := <-done:
			t.Fatalf("Serve returned before listening: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("Serve did not publish its address within 30 s")
		}
		time.Sleep(time.Millisecond)
	}
	return srv
}

type client struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

func dial(t testing.TB, srv *Server) *client {
	t.Helper()
	c, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, c: c, r: bufio.NewReader(c)}
}

func (c *client) send(line string) {
	c.t.Helper()
	if _, err := io.WriteString(c.c, line+"\n"); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) read() string {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (got %q)", err, line)
	}
	return strings.TrimSuffix(line, "\n")
}

func (c *client) expect(want string) {
	c.t.Helper()
	if got := c.read(); got != want {
		c.t.Fatalf("got  %s\nwant %s", got, want)
	}
}

// authorized subscribes and authorizes, consumes the replies and returns
// the extranonce1.
func (c *client) authorized() uint32 {
	c.t.Helper()
	c.send(`{"id":1,"method":"mining.subscribe","params":["test/1.0"]}`)
	line := c.read()
	var reply struct{ Result []any }
	var en1 uint32
	if err := json.Unmarshal([]byte(line), &reply); err != nil || len(reply.Result) != 3 {
		c.t.Fatalf("subscribe reply %s: %v", line, err)
	}
	if _, err := fmt.Sscanf(fmt.Sprint(reply.Result[1]), "%08x", &en1); err != nil {
		c.t.Fatalf("subscribe reply %s: %v", line, err)
	}
	c.send(`{"id":2,"method":"mining.authorize","params":["user.worker","x"]}`)
	c.expect(`{"id":2,"result":true,"error":null}`)
	return en1
}

func testJob(height int32) *Job {
	now := uint32(time.Now().Unix())
	j := &Job{
		ID: uint64(now)<<32 | uint64(height), Height: height,
		Coinbase1: mustHex("01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff20"),
		Coinbase2: mustHex("ffffffff0100f2052a010000001976a914000000000000000000000000000000000000000088ac00000000"),
		Branch:    [][32]byte{{1, 2, 3}, {4, 5, 6}},
		Version:   0x20000000, Bits: 0x1d00ffff, Time: now, MinTime: now - 3600,
	}
	j.PrevHash[0], j.PrevHash[31] = 0xaa, 0x11
	return j
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// refHash is the share hash computed from scratch with crypto/sha256.
func refHash(j *Job, en1 uint32, en2 uint64, ntime, nonce, vmask uint32) [32]byte {
	d := func(b []byte) [32]byte { h := sha256.Sum256(b); return sha256.Sum256(h[:]) }
	cb := append([]byte(nil), j.Coinbase1...)
	cb = binary.BigEndian.AppendUint32(cb, en1)
	cb = binary.BigEndian.AppendUint64(cb, en2)
	cb = append(cb, j.Coinbase2...)
	root := d(cb)
	for _, b := range j.Branch {
		root = d(append(root[:], b[:]...))
	}
	hdr := binary.LittleEndian.AppendUint32(nil, j.Version^vmask)
	hdr = append(hdr, j.PrevHash[:]...)
	hdr = append(hdr, root[:]...)
	hdr = binary.LittleEndian.AppendUint32(hdr, ntime)
	hdr = binary.LittleEndian.AppendUint32(hdr, j.Bits)
	hdr = binary.LittleEndian.AppendUint32(hdr, nonce)
	return d(hdr)
}

// refMeets reports hash <= floor(0xffff·2^208 / diff) with math/big.
func refMeets(h [32]byte, diff float64) bool {
	var rev [32]byte
	for i := range h {
		rev[i] = h[31-i]
	}
	t1 := new(big.Float).SetInt(new(big.Int).Lsh(big.NewInt(0xffff), 208))
	target, _ := new(big.Float).Quo(t1, big.NewFloat(diff)).Int(nil)
	return new(big.Int).SetBytes(rev[:]).Cmp(target) <= 0
}

// findNonce returns the first nonce whose share meets (or misses) diff.
func findNonce(t testing.TB, j *Job, en1 uint32, en2 uint64, vmask uint32, diff float64, meets bool) uint32 {
	for n := uint32(0); n < 1<<16; n++ {
		if refMeets(refHash(j, en1, en2, j.Time, n, vmask), diff) == meets {
			return n
		}
	}
	t.Fatal("no nonce found")
	return 0
}

func submit(id int, job string, en2 uint64, ntime, nonce uint32, vmask string) string {
	v := ""
	if vmask != "" {
		v = `,"` + vmask + `"`
	}
	return fmt.Sprintf(`{"id":%d,"method":"mining.submit","params":["user.worker","%s","%016x","%08x","%08x"%s]}`, id, job, en2, ntime, nonce, v)
}

func errLine(id, code int, msg string) string {
	return fmt.Sprintf(`{"id":%d,"result":null,"error":[%d,"%s",null]}`, id, code, msg)
}

// The notify line, byte for byte, built from the spec's rules by hand.
func wantNotify(j *Job, id string, clean bool) string {
	var prev strings.Builder
	for w := 0; w < 32; w += 4 {
		fmt.Fprintf(&prev, "%02x%02x%02x%02x", j.PrevHash[w+3], j.PrevHash[w+2], j.PrevHash[w+1], j.PrevHash[w])
	}
	var br []string
	for _, b := range j.Branch {
		br = append(br, `"`+hex.EncodeToString(b[:])+`"`)
	}
	return fmt.Sprintf(`{"id":null,"method":"mining.notify","params":["%s","%s","%x","%x",[%s],"%08x","%08x","%08x",%v]}`,
		id, prev.String(), j.Coinbase1, j.Coinbase2, strings.Join(br, ","), j.Version, j.Bits, j.Time, clean)
}

func TestSubscribeAuthorizeNotify(t *testing.T) {
	srv := startServer(t, Options{Difficulty: 1024})
	j := testJob(100)
	srv.Broadcast(j)
	c := dial(t, srv)
	c.send(`{"id":1,"method":"mining.subscribe","params":["cgminer/4.10"]}`)
	c.expect(`{"id":1,"result":[[["mining.set_difficulty","00000001"],["mining.notify","00000001"]],"00000001",8],"error":null}`)
	c.send(`{"id":"a","method":"mining.authorize","params":["anyone.rig1","x"]}`)
	c.expect(`{"id":"a","result":true,"error":null}`)
	c.expect(`{"id":null,"method":"mining.set_difficulty","params":[1024]}`)
	c.expect(wantNotify(j, "0", true))

	// A second connection gets the next extranonce1.
	c2 := dial(t, srv)
	c2.send(`{"id":7,"method":"mining.subscribe","params":[]}`)
	c2.expect(`{"id":7,"result":[[["mining.set_difficulty","00000002"],["mining.notify","00000002"]],"00000002",8],"error":null}`)

	// Same height: not clean, and set_difficulty is not repeated.
	j2 := testJob(100)
	j2.Time++
	srv.Broadcast(j2)
	c.expect(wantNotify(j2, "1", false))
	j3 := testJob(101)
	srv.Broadcast(j3)
	c.expect(wantNotify(j3, "2", true))
}

func TestConfigure(t *testing.T) {
	srv := startServer(t, Options{})
	c := dial(t, srv)
	c.send(`{"id":1,"method":"mining.configure","params":[["minimum-difficulty","version-rolling","subscribe-extranonce"],{"version-rolling.mask":"ffffffff","version-rolling.min-bit-count":2,"minimum-difficulty.value":2048}]}`)
	c.expect(`{"id":1,"result":{"minimum-difficulty":false,"subscribe-extranonce":false,"version-rolling":true,"version-rolling.mask":"1fffe000"},"error":null}`)
	c.expect(`{"id":null,"method":"mining.set_version_mask","params":["1fffe000"]}`)
	c.send(`{"id":2,"method":"mining.configure","params":[["version-rolling"],{"version-rolling.mask":"xyz"}]}`)
	c.expect(`{"id":2,"result":{"version-rolling":false},"error":null}`)
	c.expect(`{"id":null,"method":"mining.set_version_mask","params":["1fffe000"]}`) // still negotiated
	c.send(`{"id":3,"method":"mining.configure","params":[["version-rolling"]]}`)
	c.expect(errLine(3, 27, "Illegal params"))
}

func TestSubmit(t *testing.T) {
	const diff = 1.0 / (1 << 24) // one share in ~256 hashes meets it
	srv := startServer(t, Options{Difficulty: diff})
	j := testJob(200)
	srv.Broadcast(j)
	c := dial(t, srv)
	en1 := c.authorized()
	c.read() // set_difficulty
	c.read() // notify, job "0"

	good := findNonce(t, j, en1, 7, 0, diff, true)
	low := findNonce(t, j, en1, 7, 0, diff, false)
	goodV := findNonce(t, j, en1, 8, 0x00002000, diff, true)
	tests := []struct {
		name, line, want string
	}{
		{"accepted", submit(10, "0", 7, j.Time, good, ""), `{"id":10,"result":true,"error":null}`},
		{"duplicate", submit(11, "0", 7, j.Time, good, ""), errLine(11, 22, "Duplicate share")},
		{"low difficulty", submit(12, "0", 7, j.Time, low, ""), errLine(12, 23, "Low difficulty")},
		{"version rolled", submit(13, "0", 8, j.Time, goodV, "00002000"), `{"id":13,"result":true,"error":null}`},
		{"job not found", submit(14, "99", 7, j.Time, good, ""), errLine(14, 21, "Job not found (=stale)")},
		{"time too old", submit(15, "0", 7, j.MinTime-1, good, ""), errLine(15, 31, "Time too old")},
		{"time too new", submit(16, "0", 7, j.Time+601, good, ""), errLine(16, 32, "Time too new")},
		{"illegal version mask", submit(17, "0", 7, j.Time, good, "00000001"), errLine(17, 33, "Invalid version mask")},
		{"four params", `{"id":18,"method":"mining.submit","params":["u","0","00","00"]}`, errLine(18, 27, "Illegal params")},
		{"bad hex", submit(19, "0", 7, j.Time, good, "zz"), errLine(19, 27, "Illegal params")},
		{"en2 too long", `{"id":20,"method":"mining.submit","params":["u","0","00000000000000000","00000000","00000000"]}`, errLine(20, 27, "Illegal params")},
		{"non-string param", `{"id":21,"method":"mining.submit","params":["u",0,"00","00","00"]}`, errLine(21, 27, "Illegal params")},
		{"params not an array", `{"id":22,"method":"mining.submit","params":{}}`, errLine(22, 27, "Illegal params")},
		{"unknown method", `{"id":23,"method":"mining.bogus","params":[]}`, errLine(23, 26, "Illegal method")},
		{"subscribe twice", `{"id":24,"method":"mining.subscribe","params":[]}`, errLine(24, 2147483647, "Unknown")},
		{"authorize twice", `{"id":25,"method":"mining.authorize","params":["a.b"]}`, errLine(25, 25, "Not subscribed")},
		{"float id is null", `{"id":1.5,"method":"mining.bogus","params":[]}`, `{"id":null,"result":null,"error":[26,"Illegal method",null]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			c.send(tc.line)
			c.expect(tc.want)
		})
	}
	c.t = t
	// A line that is not JSON gets no reply; the next one does.
	c.send(`not json`)
	c.send(`{"id":30,"method":"mining.extranonce.subscribe","params":[]}`)
	c.expect(`{"id":30,"result":true,"error":null}`)

	// A new height drops the old jobs: their shares are stale (21).
	j2 := testJob(201)
	srv.Broadcast(j2)
	c.expect(wantNotify(j2, "1", true))
	c.send(submit(31, "0", 9, j.Time, good, ""))
	c.expect(errLine(31, 21, "Job not found (=stale)"))

	m := srv.Metrics()
	if a, r := m.Accepted.Load(), m.Rejected.Load(); a != 2 || r != 7 {
		t.Errorf("accepted %d rejected %d, want 2 and 7", a, r)
	}
}

func TestSolvedShare(t *testing.T) {
	srv := startServer(t, Options{Difficulty: 1.0 / (1 << 24)})
	j := testJob(300)
	j.NetworkTarget = sha.Target{math.MaxUint64, math.MaxUint64, math.MaxUint64, math.MaxUint64}
	srv.Broadcast(j)
	c := dial(t, srv)
	c.authorized()
	c.read()
	c.read()
	c.send(submit(5, "0", 1, j.Time, 1, ""))
	c.expect(`{"id":5,"result":true,"error":null}`)
	if n := srv.Metrics().Solved.Load(); n != 1 {
		t.Errorf("solved %d, want 1", n)
	}
}

func TestBeforeAuthorize(t *testing.T) {
	srv := startServer(t, Options{})
	c := dial(t, srv)
	c.send(submit(1, "0", 0, 0, 0, ""))
	c.expect(errLine(1, 24, "Unauthorized worker"))
	c.expect(`{"id":null,"method":"client.reconnect","params":[]}`)
	c.send(`{"id":2,"method":"mining.authorize","params":["a.b"]}`)
	c.expect(errLine(2, 25, "Not subscribed"))
	c.send(`{"id":3,"method":"mining.subscribe","params":[]}`)
	c.read()
	c.send(`{"id":4,"method":"mining.authorize","params":[""]}`)
	c.expect(errLine(4, 29, "Invalid username"))
	c.send(`{"id":5,"method":"mining.authorize","params":[]}`)
	c.expect(errLine(5, 29, "Invalid username"))
	c.send(`{"id":6,"method":"","params":[]}`)
	c.expect(errLine(6, 27, "Illegal params"))
}

func TestLongLineCloses(t *testing.T) {
	srv := startServer(t, Options{})
	c := dial(t, srv)
	c.send(`{"id":1,"method":"` + strings.Repeat("x", 8000) + `"}`)
	c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, err := c.r.ReadString('\n'); err == nil {
		t.Fatalf("connection still open, read %q", line)
	}
}

func TestBroadcastReachesAll(t *testing.T) {
	srv := startServer(t, Options{Difficulty: 2})
	const n = 40
	clients := make([]*client, n)
	for i := range clients {
		clients[i] = dial(t, srv)
		clients[i].authorized() // no job yet: nothing follows the reply
	}
	idle := dial(t, srv) // subscribed only: gets no notify
	idle.send(`{"id":1,"method":"mining.subscribe","params":[]}`)
	idle.read()
	for round := 0; round < 3; round++ {
		j := testJob(int32(400 + round))
		srv.Broadcast(j)
		for i, c := range clients {
			if round == 0 {
				c.expect(`{"id":null,"method":"mining.set_difficulty","params":[2]}`)
			}
			if got, want := c.read(), wantNotify(j, fmt.Sprint(round), true); got != want {
				t.Fatalf("client %d round %d: got %s", i, round, got)
			}
		}
	}
	idle.send(`{"id":2,"method":"mining.extranonce.subscribe","params":[]}`)
	idle.expect(`{"id":2,"result":true,"error":null}`)
	if b := srv.Metrics().Broadcasts.Load(); b != 3 {
		t.Errorf("broadcasts %d", b)
	}
}

func TestJobFromStratum(t *testing.T) {
	j := testJob(500)
	var sj btcpool.StratumJob
	sj.JobID, sj.Height, sj.NVersion, sj.NBits, sj.NTime, sj.MinTime = j.ID, j.Height, int32(j.Version), j.Bits, j.Time, j.MinTime
	sj.PrevHash = sha.DisplayHex(j.PrevHash)
	sj.Coinbase1, sj.Coinbase2 = hex.EncodeToString(j.Coinbase1), hex.EncodeToString(j.Coinbase2)
	for _, b := range j.Branch {
		sj.MerkleBranch += sha.DisplayHex(b)
	}
	got, err := JobFromStratum(&sj)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(j) {
		t.Errorf("got %+v\nwant %+v", got, j)
	}
	sj.Coinbase1 = "zz"
	if _, err := JobFromStratum(&sj); err == nil {
		t.Error("bad coinbase1 accepted")
	}
}

// FuzzHandleLine feeds arbitrary lines to a session: it must never panic.
func FuzzHandleLine(f *testing.F) {
	for _, s := range []string{
		`{"id":1,"method":"mining.subscribe","params":[]}`,
		`{"id":2,"method":"mining.authorize","params":["a.b"]}`,
		`{"id":3,"method":"mining.submit","params":["a","0","0000000000000000","00000000","00000000","1fffe000"]}`,
		`{"id":4,"method":"mining.configure","params":[["version-rolling"],{"version-rolling.mask":"ffffffff"}]}`,
		`{"id":null,"method":7,"params":null}`, `[]`, `{"params":[[[[`, "",
	} {
		f.Add(s)
	}
	srv := New(Options{})
	srv.Broadcast(testJob(1))
	f.Fuzz(func(t *testing.T, line string) {
		sess := &session{srv: srv, w: bufio.NewWriter(io.Discard), hex1: "00000001"}
		for _, l := range []string{`{"id":1,"method":"mining.subscribe","params":[]}`, `{"id":2,"method":"mining.authorize","params":["a.b"]}`, line} {
			sess.handleLine([]byte(l))
		}
	})
}
