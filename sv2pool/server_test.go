package sv2pool

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"

	"github.com/hashpool/hashpool/codec/sv2"
	"github.com/hashpool/hashpool/codec/sv2/noise"
	"github.com/hashpool/hashpool/sha"
)

// pool is a Server on 127.0.0.1 with a generated authority and certificate.
type pool struct {
	srv       *Server
	addr      string
	authority [32]byte
	mu        sync.Mutex
	shares    []Share
	blocks    []Block
}

func startPool(t *testing.T, diff float64) *pool {
	t.Helper()
	auth, err := noise.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	static, _ := noise.GenerateKey()
	now := uint32(time.Now().Unix())
	cert, err := noise.SignCertificate(auth, static, 0, now-3600, now+3600)
	if err != nil {
		t.Fatal(err)
	}
	r, err := noise.NewResponder(static, cert, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := &pool{authority: noise.XOnly(auth)}
	p.srv, err = NewServer(Options{Responder: r, InitialDifficulty: diff, HandshakeTimeout: 5 * time.Second, MaxPayload: 1024,
		OnShare: func(s Share) { p.mu.Lock(); p.shares = append(p.shares, s); p.mu.Unlock() },
		OnBlock: func(b Block) { p.mu.Lock(); p.blocks = append(p.blocks, b); p.mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	go p.srv.Serve(ln)
	t.Cleanup(func() { p.srv.Close() })
	return p
}

// client is a miner written for the tests: it follows the spec, not this
// package, and checks its shares with its own hashing.
type client struct {
	t *testing.T
	c *noise.Conn
}

func dialPool(t *testing.T, p *pool, authority [32]byte) (*client, error) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", p.addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c, err := noise.Client(nc, authority, noise.ConnOptions{HandshakeTimeout: 30 * time.Second})
	if err != nil {
		nc.Close() // as a miner would: the server sees the connection end
		return nil, err
	}
	return &client{t: t, c: c}, nil
}

func (c *client) send(f []byte) {
	c.t.Helper()
	if err := c.c.WriteFrame(f); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) next() (sv2.Header, []byte, error) {
	c.c.NetConn().SetReadDeadline(time.Now().Add(30 * time.Second))
	h, p, err := c.c.ReadFrame()
	return h, append([]byte(nil), p...), err
}

func (c *client) expect(t uint8) []byte {
	c.t.Helper()
	h, p, err := c.next()
	if err != nil {
		c.t.Fatalf("waiting for %s: %v", sv2.MsgName(t), err)
	}
	if h.MsgType != t {
		c.t.Fatalf("got %s, want %s", sv2.MsgName(h.MsgType), sv2.MsgName(t))
	}
	if err := sv2.CheckHeader(h); err != nil {
		c.t.Fatal(err)
	}
	return p
}

// closed waits for the server to close the connection.
func (c *client) closed() {
	c.t.Helper()
	for i := 0; i < 16; i++ {
		if _, _, err := c.next(); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				c.t.Fatal("server did not close the connection")
			}
			return
		}
	}
	c.t.Fatal("server kept talking instead of closing")
}

func (c *client) setup(flags uint32) {
	c.t.Helper()
	c.send(sv2.AppendSetupConnection(nil, &sv2.SetupConnection{MinVersion: 2, MaxVersion: 2, Flags: flags,
		EndpointHost: []byte("127.0.0.1"), Vendor: []byte("hashpool-test-miner")}))
	var ok sv2.SetupConnectionSuccess
	if err := sv2.DecodeSetupConnectionSuccess(c.expect(sv2.MsgSetupConnectionSuccess), &ok); err != nil || ok.UsedVersion != 2 {
		c.t.Fatalf("%+v %v", ok, err)
	}
}

func maxU256() (u sv2.U256) {
	for i := range u {
		u[i] = 0xff
	}
	return u
}

// template is a job with a plausible coinbase split around 12 extranonce
// bytes and a two-step branch.
func template(prev byte, ntime uint32) JobTemplate {
	cb1 := append([]byte{1, 0, 0, 0, 1}, make([]byte, 32)...)
	cb1 = append(cb1, 0xff, 0xff, 0xff, 0xff, 20, 3, 0x10, 0x27, 0x00)
	cb1 = append(cb1, []byte("/hashpool/")...)
	cb2 := append([]byte{0xff, 0xff, 0xff, 0xff, 1}, make([]byte, 8)...)
	cb2 = append(cb2, 22, 0x00, 0x14)
	cb2 = append(cb2, bytes.Repeat([]byte{0xab}, 20)...)
	cb2 = append(cb2, 0, 0, 0, 0)
	return JobTemplate{PrevHash: [32]byte{prev, 1, 2, 3}, Coinbase1: cb1, Coinbase2: cb2,
		MerkleBranch: [][32]byte{{0x11}, {0x22}}, Version: 0x20000000, NBits: 0x2000ffff, NTime: ntime}
}

// merkleRoot is §5.3.16's algorithm, written for the test.
func merkleRoot(cb []byte, path []sv2.U256) [32]byte {
	root := sha.DoubleSHA256(cb)
	for _, leaf := range path {
		root = sha.DoubleSHA256(append(root[:], leaf[:]...))
	}
	return root
}

func headerHash(version uint32, prev, root [32]byte, ntime, nbits, nonce uint32) [32]byte {
	var h []byte
	h = binary.LittleEndian.AppendUint32(h, version)
	h = append(h, prev[:]...)
	h = append(h, root[:]...)
	h = binary.LittleEndian.AppendUint32(h, ntime)
	h = binary.LittleEndian.AppendUint32(h, nbits)
	h = binary.LittleEndian.AppendUint32(h, nonce)
	return sha.DoubleSHA256(h)
}

func meets(hash [32]byte, target sv2.U256) bool {
	t := sha.HashToTarget(&target)
	return sha.HashMeetsTarget(&hash, &t)
}

// grind finds the first nonce from start whose hash satisfies want.
func grind(t *testing.T, start uint32, hash func(nonce uint32) [32]byte, want func([32]byte) bool) (uint32, [32]byte) {
	t.Helper()
	for n := start; n < start+4_000_000; n++ {
		if h := hash(n); want(h) {
			return n, h
		}
	}
	t.Fatal("no nonce found in 4M tries")
	return 0, [32]byte{}
}

func TestExtendedChannel(t *testing.T) {
	p := startPool(t, 1e-9) // a quarter of all hashes are shares; 1 in 256 is a block
	now := uint32(time.Now().Unix())
	if _, err := p.srv.SetJob(template(1, now)); err != nil {
		t.Fatal(err)
	}
	c, err := dialPool(t, p, p.authority)
	if err != nil {
		t.Fatal(err)
	}
	c.setup(FlagRequiresVersionRolling)
	c.send(sv2.AppendOpenExtendedMiningChannel(nil, &sv2.OpenExtendedMiningChannel{RequestID: 7,
		UserIdentity: []byte("alice.rig1"), NominalHashRate: 1e12, MaxTarget: maxU256(), MinExtranonceSize: 8}))
	var open sv2.OpenExtendedMiningChannelSuccess
	if err := sv2.DecodeOpenExtendedMiningChannelSuccess(c.expect(sv2.MsgOpenExtendedMiningChannelSuccess), &open); err != nil {
		t.Fatal(err)
	}
	if open.RequestID != 7 || open.ExtranonceSize != 8 || len(open.ExtranoncePrefix) != 4 {
		t.Fatalf("%+v", open)
	}
	var job sv2.NewExtendedMiningJob
	if err := sv2.DecodeNewExtendedMiningJob(c.expect(sv2.MsgNewExtendedMiningJob), &job); err != nil {
		t.Fatal(err)
	}
	var prev sv2.SetNewPrevHash
	if err := sv2.DecodeSetNewPrevHash(c.expect(sv2.MsgSetNewPrevHash), &prev); err != nil {
		t.Fatal(err)
	}
	if job.ChannelID != open.ChannelID || job.MinNTime.Valid || prev.JobID != job.JobID || prev.NBits != 0x2000ffff {
		t.Fatalf("job %+v prev %+v", job, prev)
	}
	target := open.Target
	extranonce := []byte{0, 0, 0, 0, 0, 0, 0, 1}
	hashOf := func(j *sv2.NewExtendedMiningJob, en []byte, version, nonce uint32) [32]byte {
		cb := append(append(append(append([]byte(nil), j.CoinbaseTxPrefix...), open.ExtranoncePrefix...), en...), j.CoinbaseTxSuffix...)
		return headerHash(version, prev.PrevHash, merkleRoot(cb, j.MerklePath), prev.MinNTime, prev.NBits, nonce)
	}
	seq := uint32(0)
	submit := func(j *sv2.NewExtendedMiningJob, en []byte, version, nonce uint32) {
		seq++
		c.send(sv2.AppendSubmitSharesExtended(nil, &sv2.SubmitSharesExtended{ChannelID: open.ChannelID, SequenceNumber: seq,
			JobID: j.JobID, Nonce: nonce, NTime: prev.MinNTime, Version: version, Extranonce: en}))
	}
	accepted := func() {
		t.Helper()
		var ok sv2.SubmitSharesSuccess
		if err := sv2.DecodeSubmitSharesSuccess(c.expect(sv2.MsgSubmitSharesSuccess), &ok); err != nil || ok.LastSequenceNumber != seq || ok.NewSubmitsAcceptedCount != 1 {
			t.Fatalf("%+v %v", ok, err)
		}
	}
	rejected := func(code string) {
		t.Helper()
		var e sv2.SubmitSharesError
		if err := sv2.DecodeSubmitSharesError(c.expect(sv2.MsgSubmitSharesError), &e); err != nil || string(e.ErrorCode) != code || e.SequenceNumber != seq {
			t.Fatalf("want %s: %+v (%s) %v", code, e, e.ErrorCode, err)
		}
	}

	// A share, with a rolled version bit.
	ver := job.Version | 0x00002000
	nonce, _ := grind(t, 0, func(n uint32) [32]byte { return hashOf(&job, extranonce, ver, n) }, func(h [32]byte) bool { return meets(h, target) })
	submit(&job, extranonce, ver, nonce)
	accepted()
	// The same share again; one under target; wrong job, extranonce size, version bits.
	submit(&job, extranonce, ver, nonce)
	rejected("duplicate-share")
	low, _ := grind(t, 0, func(n uint32) [32]byte { return hashOf(&job, extranonce, ver, n) }, func(h [32]byte) bool { return !meets(h, target) })
	submit(&job, extranonce, ver, low)
	rejected("difficulty-too-low")
	bad := job
	bad.JobID = 999
	submit(&bad, extranonce, ver, nonce)
	rejected("invalid-job-id")
	submit(&job, extranonce[:7], ver, nonce)
	rejected("invalid-extranonce-size")
	submit(&job, extranonce, job.Version|1, nonce)
	rejected("invalid-version")
	seq++
	c.send(sv2.AppendSubmitSharesExtended(nil, &sv2.SubmitSharesExtended{ChannelID: open.ChannelID + 100, SequenceNumber: seq, JobID: job.JobID}))
	rejected("invalid-channel-id")

	// A block: the pool reports the header the client hashed.
	bn, bh := grind(t, 1_000_000, func(n uint32) [32]byte { return hashOf(&job, extranonce, ver, n) }, func(h [32]byte) bool {
		return meets(h, targetU256(sha.CompactToTarget(prev.NBits)))
	})
	submit(&job, extranonce, ver, bn)
	accepted()
	p.mu.Lock()
	if len(p.shares) != 2 || len(p.blocks) != 1 || p.shares[0].User != "alice.rig1" || !p.shares[0].Extended {
		t.Fatalf("shares %+v blocks %d", p.shares, len(p.blocks))
	}
	b := p.blocks[0]
	p.mu.Unlock()
	if sha.DoubleSHA256(b.Header[:]) != bh || b.Hash != bh || merkleRoot(b.Coinbase, job.MerklePath) != [32]byte(b.Header[36:68]) {
		t.Fatal("block header or coinbase differ from the client's")
	}

	// A new job on the same block arrives active; a new block arrives as a
	// future job plus SetNewPrevHash and makes the old jobs stale.
	p.srv.SetJob(template(1, now+1))
	var job2 sv2.NewExtendedMiningJob
	sv2.DecodeNewExtendedMiningJob(c.expect(sv2.MsgNewExtendedMiningJob), &job2)
	if !job2.MinNTime.Valid || job2.MinNTime.V != now+1 || job2.JobID != job.JobID+1 {
		t.Fatalf("%+v", job2)
	}
	p.srv.SetJob(template(2, now+2))
	var job3 sv2.NewExtendedMiningJob
	sv2.DecodeNewExtendedMiningJob(c.expect(sv2.MsgNewExtendedMiningJob), &job3)
	var prev3 sv2.SetNewPrevHash
	sv2.DecodeSetNewPrevHash(c.expect(sv2.MsgSetNewPrevHash), &prev3)
	if job3.MinNTime.Valid || prev3.JobID != job3.JobID || prev3.PrevHash[0] != 2 {
		t.Fatalf("%+v %+v", job3, prev3)
	}
	submit(&job, extranonce, ver, nonce+1)
	rejected("stale-share")

	// SetTarget reaches the channel and is enforced.
	hard := sha.DiffToTarget(1e6)
	if !p.srv.SetTarget(open.ChannelID, hard) {
		t.Fatal("SetTarget: unknown channel")
	}
	var st sv2.SetTarget
	sv2.DecodeSetTarget(c.expect(sv2.MsgSetTarget), &st)
	if st.MaximumTarget != targetU256(hard) {
		t.Fatal("SetTarget target")
	}
	prev = prev3
	n4, _ := grind(t, 0, func(n uint32) [32]byte { return hashOf(&job3, extranonce, ver, n) }, func(h [32]byte) bool { return meets(h, target) && !meets(h, st.MaximumTarget) })
	submit(&job3, extranonce, ver, n4)
	rejected("difficulty-too-low")

	// A job received active (with min_ntime) keeps the target it was sent
	// under; SetTarget applies to later jobs and to future jobs (§5.3.21).
	p.srv.SetTarget(open.ChannelID, sha.HashToTarget(&target))
	c.expect(sv2.MsgSetTarget)
	p.srv.SetJob(template(2, now+3))
	var job4 sv2.NewExtendedMiningJob
	sv2.DecodeNewExtendedMiningJob(c.expect(sv2.MsgNewExtendedMiningJob), &job4)
	p.srv.SetTarget(open.ChannelID, hard)
	c.expect(sv2.MsgSetTarget)
	hashAt := func(j *sv2.NewExtendedMiningJob, ntime, nonce uint32) [32]byte {
		cb := append(append(append(append([]byte(nil), j.CoinbaseTxPrefix...), open.ExtranoncePrefix...), extranonce...), j.CoinbaseTxSuffix...)
		return headerHash(ver, prev.PrevHash, merkleRoot(cb, j.MerklePath), ntime, prev.NBits, nonce)
	}
	easyOnly := func(h [32]byte) bool { return meets(h, target) && !meets(h, st.MaximumTarget) }
	n5, _ := grind(t, 0, func(n uint32) [32]byte { return hashAt(&job4, now+3, n) }, easyOnly)
	seq++
	c.send(sv2.AppendSubmitSharesExtended(nil, &sv2.SubmitSharesExtended{ChannelID: open.ChannelID, SequenceNumber: seq,
		JobID: job4.JobID, Nonce: n5, NTime: now + 3, Version: ver, Extranonce: extranonce}))
	accepted()
	// (ntime now+4: job3 and job4 differ only in min_ntime, so the same
	// ntime and nonce would be the same header, a duplicate.)
	n6, _ := grind(t, 0, func(n uint32) [32]byte { return hashAt(&job3, now+4, n) }, easyOnly)
	seq++
	c.send(sv2.AppendSubmitSharesExtended(nil, &sv2.SubmitSharesExtended{ChannelID: open.ChannelID, SequenceNumber: seq,
		JobID: job3.JobID, Nonce: n6, NTime: now + 4, Version: ver, Extranonce: extranonce}))
	rejected("difficulty-too-low")
}

func TestStandardChannel(t *testing.T) {
	p := startPool(t, 1e-9)
	now := uint32(time.Now().Unix())
	tmpl := template(5, now)
	p.srv.SetJob(tmpl)
	c, err := dialPool(t, p, p.authority)
	if err != nil {
		t.Fatal(err)
	}
	c.setup(FlagRequiresStandardJobs)
	c.send(sv2.AppendOpenStandardMiningChannel(nil, &sv2.OpenStandardMiningChannel{RequestID: 1, UserIdentity: []byte("bob.s9"), MaxTarget: maxU256()}))
	var open sv2.OpenStandardMiningChannelSuccess
	if err := sv2.DecodeOpenStandardMiningChannelSuccess(c.expect(sv2.MsgOpenStandardMiningChannelSuccess), &open); err != nil || len(open.ExtranoncePrefix) != 12 {
		t.Fatalf("%+v %v", open, err)
	}
	var job sv2.NewMiningJob
	sv2.DecodeNewMiningJob(c.expect(sv2.MsgNewMiningJob), &job)
	var prev sv2.SetNewPrevHash
	sv2.DecodeSetNewPrevHash(c.expect(sv2.MsgSetNewPrevHash), &prev)
	// The pool's merkle root is the one the spec's algorithm gives for this
	// channel's coinbase.
	cb := append(append(append([]byte(nil), tmpl.Coinbase1...), open.ExtranoncePrefix...), tmpl.Coinbase2...)
	path := []sv2.U256{tmpl.MerkleBranch[0], tmpl.MerkleBranch[1]}
	if job.MerkleRoot != merkleRoot(cb, path) || job.ChannelID != open.ChannelID || prev.JobID != job.JobID {
		t.Fatalf("merkle root %x", job.MerkleRoot)
	}
	nonce, _ := grind(t, 0, func(n uint32) [32]byte {
		return headerHash(job.Version, prev.PrevHash, job.MerkleRoot, prev.MinNTime, prev.NBits, n)
	}, func(h [32]byte) bool { return meets(h, open.Target) })
	c.send(sv2.AppendSubmitSharesStandard(nil, &sv2.SubmitSharesStandard{ChannelID: open.ChannelID, SequenceNumber: 1, JobID: job.JobID,
		Nonce: nonce, NTime: prev.MinNTime, Version: job.Version}))
	c.expect(sv2.MsgSubmitSharesSuccess)
	// A standard share on an extended-only message is refused.
	c.send(sv2.AppendSubmitSharesExtended(nil, &sv2.SubmitSharesExtended{ChannelID: open.ChannelID, SequenceNumber: 2, JobID: job.JobID}))
	c.expect(sv2.MsgSubmitSharesError)
}

// TestBadPeers: each misbehaving client gets the spec's error or a closed
// connection, and a good session alive throughout keeps working.
func TestBadPeers(t *testing.T) {
	p := startPool(t, 1e-9)
	now := uint32(time.Now().Unix())
	p.srv.SetJob(template(1, now))
	good, err := dialPool(t, p, p.authority)
	if err != nil {
		t.Fatal(err)
	}
	good.setup(0)
	good.send(sv2.AppendOpenExtendedMiningChannel(nil, &sv2.OpenExtendedMiningChannel{RequestID: 1, MaxTarget: maxU256()}))
	good.expect(sv2.MsgOpenExtendedMiningChannelSuccess)
	good.expect(sv2.MsgNewExtendedMiningJob)
	good.expect(sv2.MsgSetNewPrevHash)

	// Wrong authority key: the client refuses the server.
	other, _ := noise.GenerateKey()
	if _, err := dialPool(t, p, noise.XOnly(other)); err != noise.ErrCertSignature {
		t.Fatalf("wrong authority: %v", err)
	}
	// Not Noise at all.
	nc, _ := net.Dial("tcp", p.addr)
	nc.Write(bytes.Repeat([]byte("GET / HTTP/1.1\r\n"), 8))
	nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	if n, err := nc.Read(make([]byte, 512)); err == nil && n != noise.Act2Len {
		t.Fatalf("garbage got %d bytes", n)
	}
	nc.Close()

	cases := []struct {
		name  string
		frame []byte
		want  uint8 // 0: just closed
		code  string
		flags uint32
	}{
		{"channel open before SetupConnection", sv2.AppendOpenExtendedMiningChannel(nil, &sv2.OpenExtendedMiningChannel{MaxTarget: maxU256()}), 0, "", 0},
		{"other protocol", sv2.AppendSetupConnection(nil, &sv2.SetupConnection{Protocol: 2, MinVersion: 2, MaxVersion: 2}), sv2.MsgSetupConnectionError, "unsupported-protocol", 0},
		{"version 3 only", sv2.AppendSetupConnection(nil, &sv2.SetupConnection{MinVersion: 3, MaxVersion: 3}), sv2.MsgSetupConnectionError, "protocol-version-mismatch", 0},
		{"work selection", sv2.AppendSetupConnection(nil, &sv2.SetupConnection{MinVersion: 2, MaxVersion: 2, Flags: FlagRequiresWorkSelection | FlagRequiresVersionRolling}), sv2.MsgSetupConnectionError, "unsupported-feature-flags", FlagRequiresWorkSelection},
		{"wrong channel bit", func() []byte {
			f := sv2.AppendSetupConnection(nil, &sv2.SetupConnection{MinVersion: 2, MaxVersion: 2})
			f[1] |= 0x80
			return f
		}(), 0, "", 0},
		{"oversized frame", sv2.AppendSetupConnection(nil, &sv2.SetupConnection{MinVersion: 2, MaxVersion: 2, Vendor: make([]byte, 255),
			HardwareVersion: make([]byte, 255), Firmware: make([]byte, 255), DeviceID: make([]byte, 255), EndpointHost: make([]byte, 255)}), 0, "", 0},
		{"server message from a client", sv2.AppendSetTarget(nil, &sv2.SetTarget{ChannelID: 1}), 0, "", 0},
	}
	for _, tc := range cases {
		c, err := dialPool(t, p, p.authority)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		c.send(tc.frame)
		if tc.want != 0 {
			var e sv2.SetupConnectionError
			if err := sv2.DecodeSetupConnectionError(c.expect(tc.want), &e); err != nil || string(e.ErrorCode) != tc.code || e.Flags != tc.flags {
				t.Fatalf("%s: %+v (%s) %v", tc.name, e, e.ErrorCode, err)
			}
		}
		c.closed()
	}
	// Setup then garbage ciphertext: closed.
	c, _ := dialPool(t, p, p.authority)
	c.setup(0)
	c.c.NetConn().Write(make([]byte, 64))
	c.closed()

	// The good session is untouched: it still gets jobs and has its share
	// checked.
	p.srv.SetJob(template(1, now+5))
	var j sv2.NewExtendedMiningJob
	if err := sv2.DecodeNewExtendedMiningJob(good.expect(sv2.MsgNewExtendedMiningJob), &j); err != nil || j.MinNTime.V != now+5 {
		t.Fatalf("%+v %v", j, err)
	}
	good.send(sv2.AppendSubmitSharesExtended(nil, &sv2.SubmitSharesExtended{ChannelID: 1, SequenceNumber: 9, JobID: j.JobID, NTime: now + 5, Version: j.Version, Extranonce: make([]byte, 8)}))
	h, _, err := good.next()
	if err != nil || (h.MsgType != sv2.MsgSubmitSharesSuccess && h.MsgType != sv2.MsgSubmitSharesError) {
		t.Fatalf("good session after the bad peers: %v %v", sv2.MsgName(h.MsgType), err)
	}
	// The bad sessions go away (each closes on its own goroutine).
	deadline := time.Now().Add(30 * time.Second)
	for p.srv.Sessions() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions left, want 1", p.srv.Sessions())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOptionsValidate(t *testing.T) {
	err := Options{ExtranonceLen: 40, PrefixLen: 9, InitialDifficulty: -1, MaxPayload: 1, OutQueue: 1, WriteTimeout: -1}.Validate()
	if err == nil {
		t.Fatal("bad options accepted")
	}
	for _, want := range []string{"Responder", "ExtranonceLen", "PrefixLen", "InitialDifficulty", "MaxPayload", "OutQueue", "WriteTimeout"} {
		if !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("Validate does not mention %s: %v", want, err)
		}
	}
	k, _ := btcec.NewPrivateKey()
	r, _ := noise.NewResponder(k, noise.Certificate{}, nil)
	if err := (Options{Responder: r}).Validate(); err != nil {
		t.Fatal(err)
	}
}
