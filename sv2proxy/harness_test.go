package sv2proxy

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/hashpool/hashpool/codec/sv2/noise"
	"github.com/hashpool/hashpool/internal/btcdtest"
	"github.com/hashpool/hashpool/node"
	"github.com/hashpool/hashpool/sha"
	"github.com/hashpool/hashpool/sv2pool"
)

// poolDiff is the pool's share difficulty: 4096 hashes a share on average,
// and on regtest (network target ~2^255) every share is also a block.
const poolDiff = 1.0 / 4096

// testPool is an sv2pool server on loopback with its own keys.
type testPool struct {
	srv       *sv2pool.Server
	addr      string
	authority [32]byte
	blocks    chan sv2pool.Block
	done      chan struct{}
	once      sync.Once
	mu        sync.Mutex
	seen      map[string]bool // user identities of accepted shares
}

func (p *testPool) users() map[string]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]bool{}
	for u := range p.seen {
		out[u] = true
	}
	return out
}

func newCert(t testing.TB, authority, static *btcec.PrivateKey, from, until time.Time) noise.Certificate {
	t.Helper()
	c, err := noise.SignCertificate(authority, static, 0, uint32(from.Unix()), uint32(until.Unix()))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// startPool runs a pool whose certificate is valid from..until (zero: an
// hour around now).
func startPool(t testing.TB, from, until time.Time) *testPool {
	t.Helper()
	return startPoolDiff(t, from, until, poolDiff)
}

// startPoolDiff is startPool with the pool's share difficulty.
func startPoolDiff(t testing.TB, from, until time.Time, diff float64) *testPool {
	t.Helper()
	if from.IsZero() {
		from, until = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	}
	auth, err := noise.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	static, err := noise.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	r, err := noise.NewResponder(static, newCert(t, auth, static, from, until), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &testPool{authority: noise.XOnly(auth), blocks: make(chan sv2pool.Block, 64), done: make(chan struct{}), seen: map[string]bool{}}
	p.srv, err = sv2pool.NewServer(sv2pool.Options{Responder: r, InitialDifficulty: diff,
		OnShare: func(s sv2pool.Share) {
			p.mu.Lock()
			p.seen[s.User] = true
			p.mu.Unlock()
		},
		OnBlock: func(b sv2pool.Block) {
			select {
			case p.blocks <- b:
			default:
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	go func() { defer close(p.done); p.srv.Serve(ln) }()
	t.Cleanup(p.stop)
	return p
}

func (p *testPool) stop() {
	p.once.Do(func() {
		p.srv.Close()
		<-p.done
	})
}

// chainJob builds a JobTemplate from the node's block template: an empty
// block whose coinbase pays the node's key, with the pool's 12 extranonce
// bytes at the end of the scriptSig.
func chainJob(t testing.TB, n *btcdtest.Node) sv2pool.JobTemplate {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tmpl, err := n.Client().GetBlockTemplate(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(tmpl.Transactions) > 0 {
		t.Fatalf("template has transactions; the test mines empty blocks")
	}
	prev, err := sha.ParseDisplayHex(tmpl.PreviousBlockHash)
	if err != nil {
		t.Fatal(err)
	}
	bits, err := strconv.ParseUint(tmpl.Bits, 16, 32)
	if err != nil {
		t.Fatal(err)
	}
	heightScript, err := txscript.NewScriptBuilder().AddInt64(tmpl.Height).Script()
	if err != nil {
		t.Fatal(err)
	}
	const extranonce = 12
	var cb1 []byte
	cb1 = binary.LittleEndian.AppendUint32(cb1, 1) // tx version
	cb1 = append(cb1, 1)                           // one input
	cb1 = append(cb1, make([]byte, 32)...)         // null prevout
	cb1 = binary.LittleEndian.AppendUint32(cb1, 0xffffffff)
	cb1 = append(cb1, byte(len(heightScript)+extranonce))
	cb1 = append(cb1, heightScript...)
	pk := n.MiningScript()
	var cb2 []byte
	cb2 = binary.LittleEndian.AppendUint32(cb2, 0xffffffff) // sequence
	cb2 = append(cb2, 1)                                    // one output
	cb2 = binary.LittleEndian.AppendUint64(cb2, uint64(tmpl.CoinbaseValue))
	cb2 = append(cb2, byte(len(pk)))
	cb2 = append(cb2, pk...)
	cb2 = binary.LittleEndian.AppendUint32(cb2, 0) // lock time
	return sv2pool.JobTemplate{PrevHash: prev, Coinbase1: cb1, Coinbase2: cb2, Version: uint32(tmpl.Version),
		NBits: uint32(bits), NTime: uint32(tmpl.CurTime)}
}

// chain drives the node: blocks found through the pools are submitted and
// every pool gets the next job.
type chain struct {
	t     testing.TB
	n     *btcdtest.Node
	pools []*testPool
}

func (c *chain) height() int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := c.n.Client().GetBlockCount(ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	return h
}

// newJob sends the node's next job to every live pool.
func (c *chain) newJob() {
	c.t.Helper()
	j := chainJob(c.t, c.n)
	for _, p := range c.pools {
		if p != nil {
			if _, err := p.srv.SetJob(j); err != nil {
				c.t.Fatal(err)
			}
		}
	}
}

// submit takes the next block p found, has the node accept it and sends
// the next job. It returns the block's hash.
func (c *chain) submit(p *testPool) [32]byte {
	c.t.Helper()
	var b sv2pool.Block
	select {
	case b = <-p.blocks:
	case <-time.After(60 * time.Second):
		c.t.Fatal("no block from the pool in 60 s")
	}
	before := c.height()
	raw := append(b.Header[:], 1)
	raw = append(raw, b.Coinbase...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := c.n.Client().SubmitBlock(ctx, hex.EncodeToString(raw))
	if err != nil || res.Status != node.SubmitAccepted {
		c.t.Fatalf("submitblock: %+v %v", res, err)
	}
	if h := c.height(); h != before+1 {
		c.t.Fatalf("height %d after the block, want %d", h, before+1)
	}
	c.newJob()
	return sha.DoubleSHA256(b.Header[:])
}

// sv1Miner is a minimal SV1 client that grinds real shares.
type sv1Miner struct {
	t       testing.TB
	c       net.Conn
	user    string
	lines   chan map[string]any
	en1     []byte
	en2Size int
	diff    float64
	job     *minerJob
	cleans  int // clean notifies seen
	nextID  int
	en2     uint64
	mask    uint32
}

type minerJob struct {
	id            string
	prev          [32]byte
	cb1, cb2      []byte
	branch        [][32]byte
	version, bits uint32
	ntime         uint32
	clean         bool
}

func dialMiner(t testing.TB, addr, user string, rolling bool) *sv1Miner {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	m := &sv1Miner{t: t, c: c, user: user, lines: make(chan map[string]any, 256), nextID: 10}
	go func() {
		defer close(m.lines)
		sc := bufio.NewScanner(c)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var v map[string]any
			if json.Unmarshal(sc.Bytes(), &v) == nil {
				m.lines <- v
			} else {
				m.lines <- map[string]any{"bad": sc.Text()}
			}
		}
	}()
	if rolling {
		m.send(`{"id":1,"method":"mining.configure","params":[["version-rolling"],{"version-rolling.mask":"ffffffff","version-rolling.min-bit-count":2}]}`)
		r := m.reply(1)
		res := r["result"].(map[string]any)
		if res["version-rolling"] != true {
			t.Fatalf("configure: %v", r)
		}
		mk, _ := strconv.ParseUint(res["version-rolling.mask"].(string), 16, 32)
		m.mask = uint32(mk)
	}
	m.send(`{"id":2,"method":"mining.subscribe","params":["sv2proxy-test/1.0"]}`)
	res := m.reply(2)["result"].([]any)
	if m.en1, err = hex.DecodeString(res[1].(string)); err != nil {
		t.Fatal(err)
	}
	m.en2Size = int(res[2].(float64))
	m.send(`{"id":3,"method":"mining.authorize","params":["` + user + `","x"]}`)
	if r := m.reply(3); r["result"] != true {
		t.Fatalf("authorize: %v", r)
	}
	return m
}

func (m *sv1Miner) send(line string) {
	m.t.Helper()
	m.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := m.c.Write([]byte(line + "\n")); err != nil {
		m.t.Fatal(err)
	}
}

func (m *sv1Miner) next() map[string]any {
	m.t.Helper()
	select {
	case v, ok := <-m.lines:
		if !ok {
			m.t.Fatal("miner connection closed")
		}
		switch v["method"] {
		case "mining.set_difficulty":
			m.diff = v["params"].([]any)[0].(float64)
		case "mining.notify":
			m.job = m.parseNotify(v["params"].([]any))
			if m.job.clean {
				m.cleans++
			}
		}
		return v
	case <-time.After(60 * time.Second):
		m.t.Fatal("nothing from the translator in 60 s")
		return nil
	}
}

func (m *sv1Miner) reply(id int) map[string]any {
	m.t.Helper()
	for {
		if v := m.next(); v["method"] == nil {
			if n, ok := v["id"].(float64); ok && int(n) == id {
				return v
			}
		}
	}
}

// waitClean waits until more than n clean notifies have arrived.
func (m *sv1Miner) waitClean(n int) {
	m.t.Helper()
	for m.cleans <= n {
		m.next()
	}
}

func (m *sv1Miner) parseNotify(p []any) *minerJob {
	m.t.Helper()
	hx := func(i int) []byte {
		b, err := hex.DecodeString(p[i].(string))
		if err != nil {
			m.t.Fatal(err)
		}
		return b
	}
	u32 := func(i int) uint32 { return binary.BigEndian.Uint32(hx(i)) }
	j := &minerJob{id: p[0].(string), cb1: hx(2), cb2: hx(3), version: u32(5), bits: u32(6), ntime: u32(7), clean: p[8].(bool)}
	pb := hx(1)
	for w := 0; w < 32; w += 4 { // prevHashBE: each word byte-reversed
		for k := 0; k < 4; k++ {
			j.prev[w+k] = pb[w+3-k]
		}
	}
	for _, b := range p[4].([]any) {
		var h [32]byte
		bb, _ := hex.DecodeString(b.(string))
		copy(h[:], bb)
		j.branch = append(j.branch, h)
	}
	return j
}

// share is one ground share, ready to submit.
type share struct {
	job                 *minerJob
	en2                 []byte
	ntime, nonce, vmask uint32
}

func (s share) line(id int, user string) string {
	l := fmt.Sprintf(`{"id":%d,"method":"mining.submit","params":["%s","%s","%x","%08x","%08x"`, id, user, s.job.id, s.en2, s.ntime, s.nonce)
	if s.vmask != 0 {
		l += fmt.Sprintf(`,"%08x"`, s.vmask)
	}
	return l + "]}"
}

// grind finds a share for the current job that meets (want true) or misses
// the current difficulty.
func (m *sv1Miner) grind(want bool) share {
	m.t.Helper()
	j := m.job
	if j == nil {
		m.t.Fatal("no job to grind")
	}
	m.en2++
	en2 := make([]byte, m.en2Size)
	for i := range en2 {
		en2[len(en2)-1-i] = byte(m.en2 >> (8 * i))
	}
	cb := append(append(append(append([]byte(nil), j.cb1...), m.en1...), en2...), j.cb2...)
	root := sha.MerkleRoot(sha.DoubleSHA256(cb), j.branch)
	var vm uint32
	if m.mask != 0 && m.en2%2 == 0 {
		vm = 0x2000 & m.mask // roll one bit on every other share
	}
	target := sha.DiffToTarget(m.diff)
	hdr := make([]byte, 0, 80)
	for nonce := uint32(0); nonce < 1<<26; nonce++ {
		hdr = sha.AppendHeader(hdr[:0], j.version^vm, &j.prev, &root, j.ntime, j.bits, nonce)
		h := sha.DoubleSHA256(hdr)
		if sha.HashMeetsTarget(&h, &target) == want {
			return share{job: j, en2: en2, ntime: j.ntime, nonce: nonce, vmask: vm}
		}
	}
	m.t.Fatal("no share in 2^26 nonces")
	return share{}
}

// submit sends s and returns the answer's error code (0 accepted).
func (m *sv1Miner) submit(s share) int {
	m.t.Helper()
	m.nextID++
	id := m.nextID
	m.send(s.line(id, m.user))
	r := m.reply(id)
	if r["result"] == true {
		return 0
	}
	e, ok := r["error"].([]any)
	if !ok || len(e) < 2 {
		m.t.Fatalf("submit answer %v", r)
	}
	return int(e[0].(float64))
}

// startTranslator runs a translator for the upstreams and returns its
// miner address.
func startTranslator(t testing.TB, o Options) (*Translator, string) {
	t.Helper()
	if o.ReconnectMin == 0 {
		o.ReconnectMin, o.ReconnectMax = 50*time.Millisecond, 500*time.Millisecond
	}
	tr, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go tr.Serve(ln)
	go func() { defer close(done); tr.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("translator did not stop in 30 s")
		}
	})
	return tr, ln.Addr().String()
}

// eventually waits up to 60 s for cond.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(60 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}
