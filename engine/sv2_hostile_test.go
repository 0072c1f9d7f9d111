package engine

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashpool/hashpool/codec/sv2"
	"github.com/hashpool/hashpool/codec/sv2/noise"
)

// Hostile SV2 peers against a running server: every case is a real TCP
// client on 127.0.0.1 written here, and after each one an SV2 miner and an
// SV1 miner on the same server must still get their shares answered (and,
// at the end, a new job).

// sv2Bystanders are the miners that must not notice the hostile ones.
type sv2Bystanders struct {
	t     *testing.T
	p     *testPool
	m     *sv2Miner
	w     *sv2Work
	n     uint32
	v1    *client
	v1en1 uint32
	v1job string // short id of the SV1 miner's newest job
	v1id  int
	job   *JobParams // the newest job
}

var notifyJobRe = regexp.MustCompile(`^\{"id":null,"method":"mining.notify","params":\["([0-9]+)",`)

func newSV2Bystanders(t *testing.T, p *testPool, k *sv2Keys, job *JobParams) *sv2Bystanders {
	t.Helper()
	by := &sv2Bystanders{t: t, p: p, w: newWork(), job: job}
	m, err := dialSV2(t, p.srv.SV2Addr(), k.pub)
	if err != nil {
		t.Fatal(err)
	}
	by.m = m
	m.setup(0)
	m.openExtended("alice.bystander2", by.w)
	m.waitJob(by.w)

	by.v1 = p.dial()
	by.v1.send(`{"id":1,"method":"mining.subscribe","params":["bystander/1"]}`)
	sub := subscribeEn1Re.FindStringSubmatch(by.v1.recv())
	if sub == nil {
		t.Fatal("no extranonce1 in the subscribe answer")
	}
	fmt.Sscanf(sub[1], "%08x", &by.v1en1)
	by.v1.send(`{"id":2,"method":"mining.authorize","params":["alice.bystander1"]}`)
	by.v1id = 2
	by.v1answer()
	for by.v1job == "" {
		by.v1line()
	}
	by.check()
	return by
}

// v1line reads one SV1 line, noting jobs; it returns the line.
func (by *sv2Bystanders) v1line() string {
	l := by.v1.recv()
	if m := notifyJobRe.FindStringSubmatch(l); m != nil {
		by.v1job = m[1]
	}
	return l
}

// v1answer reads SV1 lines until the answer to request v1id, which must be
// true.
func (by *sv2Bystanders) v1answer() {
	by.t.Helper()
	want := fmt.Sprintf(`{"id":%d,"result":true,"error":null}`, by.v1id)
	for {
		l := by.v1line()
		if strings.HasPrefix(l, fmt.Sprintf(`{"id":%d,`, by.v1id)) {
			if l != want {
				by.t.Fatalf("SV1 bystander: got %s, want %s", l, want)
			}
			return
		}
	}
}

// check submits one share from each bystander and expects both accepted.
func (by *sv2Bystanders) check() {
	by.t.Helper()
	by.n++
	by.m.send(by.m.share(by.w, by.n*100000, []byte{1, 2, 3, 4, 5, 6, 7, byte(by.n)}, true))
	by.m.accepted(by.w, 1)

	j := by.p.srv.repo.Latest()
	var short int
	fmt.Sscanf(by.v1job, "%d", &short)
	if int(j.ShortID) != short {
		by.t.Fatalf("SV1 bystander mines job %s, newest is %d", by.v1job, j.ShortID)
	}
	en2 := uint64(by.n)
	nonce := findNonce(by.t, by.job, by.v1en1, en2, by.job.Time, -32, true)
	by.v1id++
	by.v1.send(fmt.Sprintf(`{"id":%d,"method":"mining.submit","params":["alice.bystander1","%s","%016x","%08x","%08x"]}`,
		by.v1id, by.v1job, en2, by.job.Time, nonce))
	by.v1answer()
}

// newJob adds a job and waits until both bystanders have it.
func (by *sv2Bystanders) newJob(job *JobParams) {
	by.t.Helper()
	old, oldV1 := by.w.active, by.v1job
	if err := by.p.srv.AddJob(job); err != nil {
		by.t.Fatal(err)
	}
	by.job = job
	by.m.waitJobChange(by.w, old)
	for by.v1job == oldV1 {
		by.v1line()
	}
	by.check()
}

// sv2Raw is a hostile client: the handshake by hand, then frames sealed
// (or not) as the case wants.
type sv2Raw struct {
	t  *testing.T
	c  net.Conn
	ns *noise.Session
}

func dialRaw(t *testing.T, p *testPool) *sv2Raw {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.srv.SV2Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &sv2Raw{t: t, c: c}
}

// handshake runs the Noise handshake against authority.
func (r *sv2Raw) handshake(authority [32]byte) {
	r.t.Helper()
	ini, err := noise.NewInitiator(authority, nil, -1)
	if err != nil {
		r.t.Fatal(err)
	}
	act1, _ := ini.WriteAct1(nil)
	r.write(act1)
	act2 := make([]byte, noise.Act2Len)
	r.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.ReadFull(r.c, act2); err != nil {
		r.t.Fatal(err)
	}
	if r.ns, err = ini.ReadAct2(act2, time.Now()); err != nil {
		r.t.Fatal(err)
	}
}

func (r *sv2Raw) write(b []byte) {
	r.t.Helper()
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

func (r *sv2Raw) seal(frame []byte) []byte {
	r.t.Helper()
	ct, err := r.ns.Seal(nil, frame)
	if err != nil {
		r.t.Fatal(err)
	}
	return ct
}

// read returns the next frame from the server (20 s at most).
func (r *sv2Raw) read() (sv2.Header, []byte) {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	hdr := make([]byte, noise.HeaderCiphertextLen)
	if _, err := io.ReadFull(r.c, hdr); err != nil {
		r.t.Fatalf("reading a frame: %v", err)
	}
	h, err := r.ns.OpenHeader(hdr)
	if err != nil {
		r.t.Fatal(err)
	}
	ct := make([]byte, noise.CiphertextLen(int(h.Length)))
	if _, err := io.ReadFull(r.c, ct); err != nil {
		r.t.Fatal(err)
	}
	p, err := r.ns.OpenPayload(ct, int(h.Length))
	if err != nil {
		r.t.Fatal(err)
	}
	return h, p
}

// expect reads frames until one of type typ, skipping jobs and targets.
func (r *sv2Raw) expect(typ uint8) []byte {
	r.t.Helper()
	for i := 0; i < 100; i++ {
		h, p := r.read()
		if h.MsgType == typ {
			return p
		}
		switch h.MsgType {
		case sv2.MsgNewExtendedMiningJob, sv2.MsgNewMiningJob, sv2.MsgSetNewPrevHash, sv2.MsgSetTarget:
		default:
			r.t.Fatalf("got %s, want %s", sv2.MsgName(h.MsgType), sv2.MsgName(typ))
		}
	}
	r.t.Fatalf("no %s in 100 frames", sv2.MsgName(typ))
	return nil
}

func (r *sv2Raw) setup(flags uint32) {
	r.t.Helper()
	r.write(r.seal(sv2.AppendSetupConnection(nil, &sv2.SetupConnection{MinVersion: 2, MaxVersion: 2, Flags: flags,
		EndpointHost: []byte("127.0.0.1"), Vendor: []byte("hostile")})))
	r.expect(sv2.MsgSetupConnectionSuccess)
}

// expectClosed reads until the server closes the connection: EOF or a
// reset, within 30 s (any handshake or authorize timeout of these tests is
// shorter), reading at most what the server may still send.
func (r *sv2Raw) expectClosed() {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	n, err := io.Copy(io.Discard, io.LimitReader(r.c, 1<<20))
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		r.t.Fatalf("connection not closed by the server: %v (after %d bytes)", err, n)
	}
	if err == nil && n == 1<<20 {
		r.t.Fatal("the server kept writing")
	}
}

// counterDelta runs f and returns how much c grew meanwhile.
func counterDelta(c interface{ Load() int64 }, f func()) int64 {
	before := c.Load()
	f()
	return c.Load() - before
}

func hostileOptions(t *testing.T, k *sv2Keys) Options {
	o := sv2Options(t, k)
	o.SV2HandshakeTimeout = time.Second
	o.AuthorizeTimeout = 2 * time.Second
	return o
}

func TestSV2HostileInput(t *testing.T) {
	k := newSV2Keys(t)
	p := startSV2Pool(t, hostileOptions(t, k))
	job := testJobParams(400, false)
	if err := p.srv.AddJob(job); err != nil {
		t.Fatal(err)
	}
	by := newSV2Bystanders(t, p, k, job)
	m := p.srv.metrics
	sessions := m.SV2Sessions.Load()
	run := func(name string, f func(t *testing.T)) {
		t.Run(name, func(t *testing.T) {
			f(t)
			waitFor(t, "the hostile connections to be gone", func() bool { return m.SV2Sessions.Load() == sessions })
			by.check()
		})
	}

	run("certificate of another authority", func(t *testing.T) {
		other := newSV2Keys(t)
		_, err := dialSV2(t, p.srv.SV2Addr(), other.pub)
		if !errors.Is(err, noise.ErrCertSignature) {
			t.Fatalf("dial with another authority key: %v, want %v", err, noise.ErrCertSignature)
		}
	})
	run("bad MAC in a frame header", func(t *testing.T) {
		r := dialRaw(t, p)
		r.handshake(k.pub)
		r.setup(0)
		junk := make([]byte, noise.HeaderCiphertextLen)
		rand.Read(junk)
		if d := counterDelta(&m.SV2ProtocolErrors, func() { r.write(junk); r.expectClosed() }); d != 1 {
			t.Fatalf("%d protocol errors counted, want 1", d)
		}
	})
	run("bad MAC in a payload", func(t *testing.T) {
		r := dialRaw(t, p)
		r.handshake(k.pub)
		r.setup(0)
		ct := r.seal(sv2.AppendSubmitSharesExtended(nil, &sv2.SubmitSharesExtended{ChannelID: 2, Extranonce: make([]byte, 8)}))
		ct[len(ct)-1] ^= 1
		if d := counterDelta(&m.SV2ProtocolErrors, func() { r.write(ct); r.expectClosed() }); d != 1 {
			t.Fatalf("%d protocol errors counted, want 1", d)
		}
	})
	run("replayed frame", func(t *testing.T) {
		r := dialRaw(t, p)
		r.handshake(k.pub)
		ct := r.seal(sv2.AppendSetupConnection(nil, &sv2.SetupConnection{MinVersion: 2, MaxVersion: 2, Vendor: []byte("hostile")}))
		r.write(ct)
		r.expect(sv2.MsgSetupConnectionSuccess)
		r.write(ct) // the same ciphertext again: the nonce moved on, so its MAC fails
		r.expectClosed()
	})
	run("frame over the payload limit", func(t *testing.T) {
		r := dialRaw(t, p)
		r.handshake(k.pub)
		r.setup(0)
		big := sv2.AppendSetCustomMiningJob(nil, &sv2.SetCustomMiningJob{CoinbaseTxOutputs: make([]byte, 8<<10)})
		if len(big) < 8<<10 {
			t.Fatalf("frame of %d bytes", len(big))
		}
		if d := counterDelta(&m.SV2ProtocolErrors, func() { r.write(r.seal(big)); r.expectClosed() }); d != 1 {
			t.Fatalf("%d protocol errors counted, want 1", d)
		}
	})
	run("header declaring 256 KiB, payload never sent", func(t *testing.T) {
		const declared = 256 << 10 // over the 4 KiB limit and over one Noise block
		huge := make([]byte, sv2.HeaderLen+declared)
		copy(huge, sv2.AppendHeader(nil, sv2.Header{MsgType: sv2.MsgSetCustomMiningJob, Length: declared}))
		r := dialRaw(t, p)
		r.handshake(k.pub)
		r.setup(0)
		ct := r.seal(huge)
		// Closed as soon as the header is read (a protocol error), not by
		// the authorize timeout while waiting for the payload.
		timedOut := m.TimedOut.Load()
		if d := counterDelta(&m.SV2ProtocolErrors, func() { r.write(ct[:noise.HeaderCiphertextLen]); r.expectClosed() }); d != 1 {
			t.Fatalf("%d protocol errors counted, want 1", d)
		}
		if m.TimedOut.Load() != timedOut {
			t.Fatal("closed by a timeout, not by the frame limit")
		}
	})
	run("mining message before SetupConnection", func(t *testing.T) {
		r := dialRaw(t, p)
		r.handshake(k.pub)
		r.write(r.seal(sv2.AppendOpenExtendedMiningChannel(nil, &sv2.OpenExtendedMiningChannel{RequestID: 1,
			UserIdentity: []byte("alice.early"), MaxTarget: maxTarget()})))
		r.expectClosed()
	})
	run("share on an unknown channel", func(t *testing.T) {
		r := dialRaw(t, p)
		r.handshake(k.pub)
		r.setup(0)
		for i, f := range [][]byte{
			sv2.AppendSubmitSharesStandard(nil, &sv2.SubmitSharesStandard{ChannelID: 5, SequenceNumber: 1}),
			sv2.AppendSubmitSharesExtended(nil, &sv2.SubmitSharesExtended{ChannelID: sv2GroupID, SequenceNumber: 2, Extranonce: make([]byte, 8)}),
		} {
			r.write(r.seal(f))
			var e sv2.SubmitSharesError
			if err := sv2.DecodeSubmitSharesError(r.expect(sv2.MsgSubmitSharesError), &e); err != nil ||
				string(e.ErrorCode) != "invalid-channel-id" || e.SequenceNumber != uint32(i+1) {
				t.Fatalf("%+v %v", e, err)
			}
		}
		r.c.Close()
	})
	run("channel opened twice with one request id", func(t *testing.T) {
		mm, err := dialSV2(t, p.srv.SV2Addr(), k.pub)
		if err != nil {
			t.Fatal(err)
		}
		mm.setup(0)
		w := newWork()
		mm.openExtended("alice.twice", w)
		mm.send(sv2.AppendOpenExtendedMiningChannel(nil, &sv2.OpenExtendedMiningChannel{RequestID: mm.lastReq,
			UserIdentity: []byte("alice.twice2"), MaxTarget: maxTarget()}))
		var e sv2.OpenMiningChannelError
		if err := sv2.DecodeOpenMiningChannelError(mm.expect(sv2.MsgOpenMiningChannelError, w.on(t)), &e); err != nil ||
			string(e.ErrorCode) != "duplicate-request-id" || e.RequestID != mm.lastReq {
			t.Fatalf("%+v %v", e, err)
		}
		// The first channel is untouched.
		mm.waitJob(w)
		mm.send(mm.share(w, 0, make([]byte, 8), true))
		mm.accepted(w, 1)
		mm.c.Close()
	})
	run("new user names bounded per connection, not per channel", func(t *testing.T) {
		mm, err := dialSV2(t, p.srv.SV2Addr(), k.pub)
		if err != nil {
			t.Fatal(err)
		}
		mm.setup(0)
		limit := p.srv.opts.NewUsersPerConn
		for i := 0; i < limit; i++ {
			mm.openExtended(fmt.Sprintf("newuser%d.rig", i), newWork())
		}
		mm.lastReq++
		mm.send(sv2.AppendOpenExtendedMiningChannel(nil, &sv2.OpenExtendedMiningChannel{RequestID: mm.lastReq,
			UserIdentity: []byte("onetoomany.rig"), MaxTarget: maxTarget()}))
		var e sv2.OpenMiningChannelError
		if err := sv2.DecodeOpenMiningChannelError(mm.expect(sv2.MsgOpenMiningChannelError, func(sv2.Header, []byte) {}), &e); err != nil ||
			string(e.ErrorCode) != "unknown-user" {
			t.Fatalf("%+v %v", e, err)
		}
		mm.openExtended("newuser0.rig2", newWork()) // a known user still opens
		mm.c.Close()
	})
	run("second SetupConnection", func(t *testing.T) {
		r := dialRaw(t, p)
		r.handshake(k.pub)
		r.setup(0)
		r.write(r.seal(sv2.AppendSetupConnection(nil, &sv2.SetupConnection{MinVersion: 2, MaxVersion: 2})))
		r.expectClosed()
	})
	run("server message from the client", func(t *testing.T) {
		r := dialRaw(t, p)
		r.handshake(k.pub)
		r.setup(0)
		r.write(r.seal(sv2.AppendSetTarget(nil, &sv2.SetTarget{ChannelID: 2})))
		r.expectClosed()
	})
	run("unknown message type", func(t *testing.T) {
		r := dialRaw(t, p)
		r.handshake(k.pub)
		r.setup(0)
		r.write(r.seal(sv2.AppendHeader(nil, sv2.Header{MsgType: 0x7e})))
		r.expectClosed()
	})
	run("unknown extension is ignored", func(t *testing.T) {
		r := dialRaw(t, p)
		r.handshake(k.pub)
		r.write(r.seal(append(sv2.AppendHeader(nil, sv2.Header{ExtensionType: 0x4001, MsgType: 1, Length: 3}), 1, 2, 3)))
		r.setup(0) // still answered: §3.4.1 says discard, not close
		r.c.Close()
	})
	run("truncated handshake", func(t *testing.T) {
		r := dialRaw(t, p)
		r.write(make([]byte, noise.Act1Len/2))
		r.c.(*net.TCPConn).CloseWrite()
		r.expectClosed()
	})
	run("garbage before the handshake", func(t *testing.T) {
		r := dialRaw(t, p)
		junk := make([]byte, 300)
		rand.Read(junk)
		// Any 64 bytes are an ElligatorSwift key: the server answers them,
		// then the next 22 bytes fail as a frame header.
		if d := counterDelta(&m.SV2ProtocolErrors, func() { r.write(junk); r.expectClosed() }); d != 1 {
			t.Fatalf("%d protocol errors counted, want 1", d)
		}
	})
	run("stratum v1 on the sv2 port", func(t *testing.T) {
		r := dialRaw(t, p)
		r.write([]byte(`{"id":1,"method":"mining.subscribe","params":[]}` + "\n")) // 51 bytes: not even a handshake
		if d := counterDelta(&m.TimedOut, r.expectClosed); d != 1 {
			t.Fatalf("%d timeouts counted, want 1", d)
		}
	})
	run("stalled handshakes are timed out", func(t *testing.T) {
		const n = 20
		rs := make([]*sv2Raw, n)
		for i := range rs {
			rs[i] = dialRaw(t, p)
			switch i % 3 {
			case 0: // nothing at all
			case 1: // half an act 1
				rs[i].write(make([]byte, noise.Act1Len/2))
			case 2: // act 1, then nothing (no SetupConnection)
				rs[i].handshake(k.pub)
			}
		}
		d := counterDelta(&m.TimedOut, func() {
			for _, r := range rs {
				r.expectClosed()
			}
		})
		if d != n {
			t.Fatalf("%d timeouts counted, want %d", d, n)
		}
	})
	run("stalled mid-frame after SetupConnection", func(t *testing.T) {
		r := dialRaw(t, p)
		r.handshake(k.pub)
		r.setup(0)
		ct := r.seal(sv2.AppendOpenExtendedMiningChannel(nil, &sv2.OpenExtendedMiningChannel{RequestID: 1,
			UserIdentity: []byte("alice.slow"), MaxTarget: maxTarget()}))
		r.write(ct[:len(ct)-5])
		if d := counterDelta(&m.TimedOut, r.expectClosed); d != 1 {
			t.Fatalf("%d timeouts counted, want 1", d)
		}
	})

	by.newJob(testJobParams(401, false))
	if n := m.SV2Channels.Load(); n != 1 {
		t.Fatalf("%d SV2 channels open, want the bystander's", n)
	}
}
