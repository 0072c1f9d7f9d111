package sv2proxy

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"github.com/btcsuite/btcd/btcec/v2"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashpool/hashpool/codec/sv2"
	"github.com/hashpool/hashpool/codec/sv2/noise"
	"github.com/hashpool/hashpool/sha"
)

// scriptPool is an SV2 pool a test drives message by message.
type scriptPool struct {
	t         *testing.T
	addr      string
	key       *btcec.PrivateKey
	authority [32]byte
	conns     chan *noise.Conn
}

func startScriptPool(t *testing.T) *scriptPool {
	t.Helper()
	auth, _ := noise.GenerateKey()
	return startScriptPoolKey(t, auth)
}

// startScriptPoolKey starts a pool whose certificate auth signs.
func startScriptPoolKey(t *testing.T, auth *btcec.PrivateKey) *scriptPool {
	t.Helper()
	static, _ := noise.GenerateKey()
	r, err := noise.NewResponder(static, newCert(t, auth, static, time.Now().Add(-time.Hour), time.Now().Add(time.Hour)), nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	p := &scriptPool{t: t, addr: ln.Addr().String(), key: auth, authority: noise.XOnly(auth), conns: make(chan *noise.Conn, 4)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			nc, err := noise.Server(c, r, noise.ConnOptions{})
			if err != nil {
				c.Close()
				continue
			}
			t.Cleanup(func() { nc.Close() })
			p.conns <- nc
		}
	}()
	return p
}

// accept returns the next session after answering its SetupConnection.
func (p *scriptPool) accept() *noise.Conn {
	p.t.Helper()
	var c *noise.Conn
	select {
	case c = <-p.conns:
	case <-time.After(30 * time.Second):
		p.t.Fatal("no connection from the translator")
	}
	var s sv2.SetupConnection
	if err := sv2.DecodeSetupConnection(p.expect(c, sv2.MsgSetupConnection), &s); err != nil {
		p.t.Fatal(err)
	}
	if s.Protocol != 0 || s.MinVersion != 2 || s.Flags != flagRequiresVersionRolling {
		p.t.Fatalf("SetupConnection %+v", s)
	}
	p.send(c, sv2.AppendSetupConnectionSuccess(nil, &sv2.SetupConnectionSuccess{UsedVersion: 2}))
	return c
}

func (p *scriptPool) expect(c *noise.Conn, typ uint8) []byte {
	p.t.Helper()
	c.NetConn().SetReadDeadline(time.Now().Add(30 * time.Second))
	h, pl, err := c.ReadFrame()
	if err != nil {
		p.t.Fatalf("waiting for %s: %v", sv2.MsgName(typ), err)
	}
	if h.MsgType != typ {
		p.t.Fatalf("got %s, want %s", sv2.MsgName(h.MsgType), sv2.MsgName(typ))
	}
	return append([]byte(nil), pl...)
}

func (p *scriptPool) send(c *noise.Conn, frame []byte) {
	p.t.Helper()
	if err := c.WriteFrame(frame); err != nil {
		p.t.Fatal(err)
	}
}

func u256(t sha.Target) (u sv2.U256) {
	for i := 0; i < 4; i++ {
		binary.LittleEndian.PutUint64(u[8*i:], t[i])
	}
	return u
}

// open answers the next OpenExtendedMiningChannel with channel id and prefix.
func (p *scriptPool) open(c *noise.Conn, id uint32, prefix []byte, enSize uint16, diff float64) sv2.OpenExtendedMiningChannel {
	p.t.Helper()
	var o sv2.OpenExtendedMiningChannel
	if err := sv2.DecodeOpenExtendedMiningChannel(p.expect(c, sv2.MsgOpenExtendedMiningChannel), &o); err != nil {
		p.t.Fatal(err)
	}
	o.UserIdentity = append([]byte(nil), o.UserIdentity...)
	p.send(c, sv2.AppendOpenExtendedMiningChannelSuccess(nil, &sv2.OpenExtendedMiningChannelSuccess{RequestID: o.RequestID,
		ChannelID: id, Target: u256(sha.DiffToTarget(diff)), ExtranonceSize: enSize, ExtranoncePrefix: prefix}))
	return o
}

func testJob(ch, id uint32, ntime uint32) *sv2.NewExtendedMiningJob {
	return &sv2.NewExtendedMiningJob{ChannelID: ch, JobID: id, MinNTime: sv2.OptionU32{Valid: ntime != 0, V: ntime},
		Version: 0x20000000, VersionRollingAllowed: true, MerklePath: []sv2.U256{{1}, {2}},
		CoinbaseTxPrefix: []byte{0xc0, 0xfe}, CoinbaseTxSuffix: []byte{0xee}}
}

// TestJobsTargetsShares scripts one channel: a future job activated by
// SetNewPrevHash, an active job, SetTarget with a fractional difficulty,
// SetExtranoncePrefix, and shares answered out of order by the pool but in
// order to the miner, with btcpool's codes.
func TestJobsTargetsShares(t *testing.T) {
	p := startScriptPool(t)
	_, addr := startTranslator(t, Options{Upstreams: []Upstream{{Addr: p.addr, Authority: p.authority, User: "farm"}}, ExtraNonce2Size: 4})
	c := p.accept()
	m := dialMiner(t, addr, "kevin.rig7", true)
	o := p.open(c, 7, []byte{0xaa, 0xbb}, 10, 1.0/1024) // 2 bytes of padding before the miner's 8
	if string(o.UserIdentity) != "farm.rig7" || o.MinExtranonceSize != 8 {
		t.Fatalf("OpenExtendedMiningChannel %q min %d", o.UserIdentity, o.MinExtranonceSize)
	}
	p.send(c, sv2.AppendNewExtendedMiningJob(nil, testJob(7, 5, 0)))
	prev := sv2.SetNewPrevHash{ChannelID: 7, JobID: 5, PrevHash: sv2.U256{9, 8, 7}, MinNTime: 1700000000, NBits: 0x1d00ffff}
	p.send(c, sv2.AppendSetNewPrevHash(nil, &prev))
	m.waitClean(0)
	if m.diff != 1.0/1024 {
		t.Fatalf("difficulty %v, want 1/1024", m.diff)
	}
	j := m.job
	if hex.EncodeToString(j.cb1) != "c0feaabb0000" || hex.EncodeToString(j.cb2) != "ee" || j.ntime != 1700000000 || j.bits != 0x1d00ffff ||
		j.version != 0x20000000 || j.prev != prev.PrevHash || len(j.branch) != 2 || j.branch[1][0] != 2 {
		t.Fatalf("notify %+v", j)
	}

	// An active job (not clean), then a fractional SetTarget.
	p.send(c, sv2.AppendNewExtendedMiningJob(nil, testJob(7, 6, 1700000100)))
	p.send(c, sv2.AppendSetTarget(nil, &sv2.SetTarget{ChannelID: 7, MaximumTarget: u256(sha.DiffToTarget(1.0 / 65536))}))
	for m.diff != 1.0/65536 {
		m.next()
	}
	if m.job.clean || m.job.ntime != 1700000100 || m.job.id == j.id {
		t.Fatalf("second job %+v", m.job)
	}

	// Shares: A and B forwarded, C for an unknown job (21 at once, but after
	// B), D forwarded; the pool rejects B as a duplicate before it accepts
	// up to D. The miner must get A, B, C, D in order.
	share := func(job *minerJob, nonce, vm uint32) share {
		return share{job: job, en2: []byte{0, 0, 0, byte(nonce)}, ntime: job.ntime, nonce: nonce, vmask: vm}
	}
	bad := *m.job
	bad.id = "999999"
	lines := []string{share(j, 1, 0).line(101, m.user), share(m.job, 2, 0x4000).line(102, m.user),
		share(&bad, 3, 0).line(103, m.user), share(m.job, 4, 0).line(104, m.user)}
	m.send(strings.Join(lines, "\n"))
	var subs []sv2.SubmitSharesExtended
	for range 3 {
		var s sv2.SubmitSharesExtended
		if err := sv2.DecodeSubmitSharesExtended(p.expect(c, sv2.MsgSubmitSharesExtended), &s); err != nil {
			t.Fatal(err)
		}
		s.Extranonce = append([]byte(nil), s.Extranonce...)
		subs = append(subs, s)
	}
	en := append([]byte{0, 0}, m.en1...)
	if s := subs[0]; s.ChannelID != 7 || s.SequenceNumber != 1 || s.JobID != 5 || s.Nonce != 1 || s.NTime != 1700000000 ||
		s.Version != 0x20000000 || !bytes.Equal(s.Extranonce, append(en, 0, 0, 0, 1)) {
		t.Fatalf("first share %+v", s)
	}
	if s := subs[1]; s.SequenceNumber != 2 || s.JobID != 6 || s.Version != 0x20004000 {
		t.Fatalf("second share %+v", s)
	}
	if s := subs[2]; s.SequenceNumber != 3 || s.Nonce != 4 {
		t.Fatalf("third share %+v", s)
	}
	p.send(c, sv2.AppendSubmitSharesError(nil, &sv2.SubmitSharesError{ChannelID: 7, SequenceNumber: 2, ErrorCode: []byte("duplicate-share")}))
	p.send(c, sv2.AppendSubmitSharesSuccess(nil, &sv2.SubmitSharesSuccess{ChannelID: 7, LastSequenceNumber: 3, NewSubmitsAcceptedCount: 2, NewSharesSum: 2}))
	var got []string
	for len(got) < 4 {
		v := m.next()
		if v["method"] != nil {
			continue
		}
		code := "ok"
		if e, ok := v["error"].([]any); ok {
			code = strconv.Itoa(int(e[0].(float64)))
		}
		got = append(got, strconv.Itoa(int(v["id"].(float64)))+":"+code)
	}
	if want := "101:ok 102:22 103:21 104:ok"; strings.Join(got, " ") != want {
		t.Fatalf("answers %v, want %s", got, want)
	}

	// An unmapped pool code is 20 with the pool's code in the message.
	m.send(share(m.job, 5, 0).line(105, m.user))
	p.expect(c, sv2.MsgSubmitSharesExtended)
	p.send(c, sv2.AppendSubmitSharesError(nil, &sv2.SubmitSharesError{ChannelID: 7, SequenceNumber: 4, ErrorCode: []byte("invalid-timestamp")}))
	r := m.reply(105)
	if e := r["error"].([]any); e[0].(float64) != 20 || !strings.Contains(e[1].(string), "invalid-timestamp") {
		t.Fatalf("answer %v", r)
	}

	// SetExtranoncePrefix applies to the jobs that follow it.
	p.send(c, sv2.AppendSetExtranoncePrefix(nil, &sv2.SetExtranoncePrefix{ChannelID: 7, ExtranoncePrefix: []byte{0x11, 0x22}}))
	p.send(c, sv2.AppendNewExtendedMiningJob(nil, testJob(7, 8, 1700000200)))
	for m.job.ntime != 1700000200 {
		m.next()
	}
	if hex.EncodeToString(m.job.cb1) != "c0fe11220000" {
		t.Fatalf("coinbase1 after SetExtranoncePrefix: %x", m.job.cb1)
	}
}

// TestBounds: an overlong line closes that miner, a miner that does not read
// is closed when its queue fills, MaxMiners refuses the next connection, and
// the other miners keep working.
func TestBounds(t *testing.T) {
	p := startScriptPool(t)
	tr, addr := startTranslator(t, Options{Upstreams: []Upstream{{Addr: p.addr, Authority: p.authority}},
		Mode: SharedChannel, MaxMiners: 3, MinerQueue: 4, MaxLine: 1024})
	c := p.accept()
	p.open(c, 1, []byte{1}, 8, 1)
	good := dialMiner(t, addr, "a.good", false)

	long, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer long.Close()
	long.Write(bytes.Repeat([]byte("x"), 2000))
	long.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := long.Read(make([]byte, 1)); err == nil {
		t.Fatal("the translator answered an overlong line instead of closing")
	}
	eventually(t, "the long-line miner removed", func() bool { return tr.Stats().Miners.Load() == 1 })

	slow, err := net.Dial("tcp", addr) // never reads
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	slow.Write([]byte(`{"id":1,"method":"mining.subscribe","params":[]}` + "\n" + `{"id":2,"method":"mining.authorize","params":["a.slow",""]}` + "\n"))
	eventually(t, "the slow miner authorized", func() bool {
		for _, ms := range tr.Miners() {
			if ms.Worker == "slow" {
				return true
			}
		}
		return false
	})
	third := dialMiner(t, addr, "a.third", false)
	_ = third
	refused, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer refused.Close()
	refused.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := refused.Read(make([]byte, 1)); err == nil {
		t.Fatal("a fourth miner was served with MaxMiners 3")
	}

	// Big jobs, each sent once the good miners have read the previous one,
	// until the slow miner's socket and queue are full and it is closed.
	p.send(c, sv2.AppendSetNewPrevHash(nil, &sv2.SetNewPrevHash{ChannelID: 1, JobID: 0, MinNTime: 1, NBits: 1}))
	big := testJob(1, 1, 1)
	big.CoinbaseTxPrefix = bytes.Repeat([]byte{0xab}, 60000)
	slowGone := func() bool {
		for _, ms := range tr.Miners() {
			if ms.Worker == "slow" {
				return false
			}
		}
		return true
	}
	for i := uint32(2); !slowGone(); i++ {
		if i > 2000 {
			t.Fatal("the slow miner was not closed after 2000 jobs of 120 KB")
		}
		big.JobID, big.MinNTime.V = i, i
		p.send(c, sv2.AppendNewExtendedMiningJob(nil, big))
		for _, m := range []*sv1Miner{good, third} {
			for m.job == nil || m.job.ntime != i {
				m.next()
			}
		}
	}
	if n := tr.Stats().Miners.Load(); n != 2 {
		t.Fatalf("%d miners, want the two that read", n)
	}
}
