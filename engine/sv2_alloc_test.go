package engine

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/hashpool/hashpool/codec/sv2"
	"github.com/hashpool/hashpool/codec/sv2/noise"
)

// offlineSV2 is an SV2 connection on an offline server (no sockets) with
// one extended channel that has the offline job, and the client's half of
// a Noise session with it.
func offlineSV2(tb testing.TB) (*offline, *sv2Conn, *sv2Channel, *noise.Session) {
	tb.Helper()
	k := newSV2Keys(tb)
	o := testOptions(tb)
	o.SV2Responder = k.responder(tb, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	off := newOffline(tb, o)
	client, ns := sv2SessionPair(tb, o.SV2Responder, k.pub)
	now := time.Now().Unix()
	sc := &sv2Conn{srv: off.srv, lp: off.lp, ns: ns, state: sv2Ready, nextID: sv2GroupID + 1, ip: netipLoopback}
	mt := maxTarget()
	sc.openChannel(1, []byte("alice.rig1"), 0, &mt, true, 0, now)
	if len(sc.chans) != 1 {
		tb.Fatalf("channel not opened: %x", off.lp.sv2.plain)
	}
	fr, ok := newSV2JobFrames(off.srv.repo.Latest(), true, now)
	if !ok {
		tb.Fatal("job frames")
	}
	sc.sendChannelJob(sc.chans[0], fr, true, now)
	off.lp.sv2.plain = off.lp.sv2.plain[:0]
	return off, sc, sc.chans[0], client
}

// sv2SessionPair runs a Noise handshake in memory and returns the client's
// and the server's transport sessions.
func sv2SessionPair(tb testing.TB, r *noise.Responder, authority [32]byte) (client, server *noise.Session) {
	tb.Helper()
	ini, err := noise.NewInitiator(authority, nil, time.Minute)
	if err != nil {
		tb.Fatal(err)
	}
	act1, err := ini.WriteAct1(nil)
	if err != nil {
		tb.Fatal(err)
	}
	act2, server, err := r.Respond(nil, act1)
	if err != nil {
		tb.Fatal(err)
	}
	if client, err = ini.ReadAct2(act2, time.Now()); err != nil {
		tb.Fatal(err)
	}
	return client, server
}

// sv2ShareFrame is a SubmitSharesExtended on the offline job; patch writes
// a new extranonce into it (so each share is a new one).
func sv2ShareFrame(off *offline, ch *sv2Channel) (frame []byte, patch func(uint64)) {
	j := off.srv.repo.Latest()
	frame = sv2.AppendSubmitSharesExtended(nil, &sv2.SubmitSharesExtended{ChannelID: ch.id, SequenceNumber: 1,
		JobID: uint32(j.ShortID), NTime: j.Time, Version: j.Hash.Version(), Extranonce: make([]byte, 8)})
	at := len(frame) - 8
	return frame, func(v uint64) { binary.BigEndian.PutUint64(frame[at:], v) }
}

// TestSV2SubmitPathZeroAllocs: decoding a SubmitSharesExtended, validating
// it and encoding its SubmitShares.Success allocate nothing.
func TestSV2SubmitPathZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	off, sc, ch, _ := offlineSV2(t)
	frame, patch := sv2ShareFrame(off, ch)
	h, _ := sv2.ParseHeader(frame)
	now := time.Now().Unix()
	var n uint64
	accepted := uint32(0)
	allocs := testing.AllocsPerRun(200, func() {
		n++
		patch(n)
		off.lp.sv2.plain = off.lp.sv2.plain[:0]
		sc.handle(h, frame[sv2.HeaderLen:], now)
		accepted += ch.accN
		sc.flushAcks(ch)
		off.lp.batch.buf, off.lp.batch.ends = off.lp.batch.buf[:0], off.lp.batch.ends[:0]
	})
	if allocs != 0 {
		t.Fatalf("sv2 submit path: %v allocs per share", allocs)
	}
	if accepted < 190 {
		t.Fatalf("only %d of 201 shares accepted", accepted)
	}
}

// BenchmarkSV2SubmitPath measures one SV2 share from its plaintext frame to
// the SubmitShares.Success frame and the encoded share record (compare
// BenchmarkSubmitPath for a mining.submit line).
func BenchmarkSV2SubmitPath(b *testing.B) {
	off, sc, ch, _ := offlineSV2(b)
	frame, patch := sv2ShareFrame(off, ch)
	h, _ := sv2.ParseHeader(frame)
	now := time.Now().Unix()
	b.ReportAllocs()
	var n uint64
	for b.Loop() {
		n++
		patch(n)
		off.lp.sv2.plain = off.lp.sv2.plain[:0]
		sc.handle(h, frame[sv2.HeaderLen:], now)
		sc.flushAcks(ch)
		if len(off.lp.batch.ends) > 512 {
			off.lp.batch.buf, off.lp.batch.ends = off.lp.batch.buf[:0], off.lp.batch.ends[:0]
		}
	}
}

// BenchmarkSV2SubmitPathNoise adds the transport: the client encrypts the
// share (included: about what the server's decryption costs), the server
// decrypts it in place, validates it and seals its answer.
func BenchmarkSV2SubmitPathNoise(b *testing.B) {
	off, sc, ch, client := offlineSV2(b)
	frame, patch := sv2ShareFrame(off, ch)
	now := time.Now().Unix()
	var ct, enc []byte
	b.ReportAllocs()
	var n uint64
	for b.Loop() {
		n++
		patch(n)
		ct, _ = client.Seal(ct[:0], frame)
		h, p, _, err := sc.ns.OpenFrame(ct, 4096)
		if err != nil {
			b.Fatal(err)
		}
		off.lp.sv2.plain = off.lp.sv2.plain[:0]
		sc.handle(h, p, now)
		sc.flushAcks(ch)
		enc, _ = sc.ns.Seal(enc[:0], off.lp.sv2.plain)
		if len(off.lp.batch.ends) > 512 {
			off.lp.batch.buf, off.lp.batch.ends = off.lp.batch.buf[:0], off.lp.batch.ends[:0]
		}
	}
}
