package engine

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/hashpool/hashpool/codec/sv2"
	"github.com/hashpool/hashpool/codec/sv2/noise"
)

// offlineSV2 is an SV2 connection on an offline server (no sockets) with
// one channel, extended or standard (a header-only device: the connection
// set REQUIRES_STANDARD_JOBS), that has the offline job, and the client's
// half of a Noise session with it. The difficulty stays at the minimum
// (2^-32), so nearly every share is accepted however fast they come.
func offlineSV2(tb testing.TB, extended bool) (*offline, *sv2Conn, *sv2Channel, *noise.Session) {
	tb.Helper()
	k := newSV2Keys(tb)
	o := testOptions(tb)
	o.MaxDifficulty = o.MinDifficulty
	o.SV2Responder = k.responder(tb, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	off := newOffline(tb, o)
	client, ns := sv2SessionPair(tb, o.SV2Responder, k.pub)
	now := time.Now().Unix()
	sc := &sv2Conn{srv: off.srv, lp: off.lp, ns: ns, state: sv2Ready, nextID: sv2GroupID + 1, ip: netipLoopback}
	if !extended {
		sc.flags = sv2FlagRequiresStandardJobs
	}
	mt := maxTarget()
	sc.openChannel(1, []byte("alice.rig1"), 0, &mt, extended, 0, now)
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

// sv2Submitter drives one channel's share path offline: a SubmitShares
// frame (Standard or Extended) on the newest job, a new nonce each time.
type sv2Submitter struct {
	off    *offline
	sc     *sv2Conn
	ch     *sv2Channel
	client *noise.Session
	frame  []byte
	h      sv2.Header
	height int32
	nonce  uint32
	now    int64
}

// Payload offsets shared by SubmitSharesStandard and SubmitSharesExtended:
// channel_id, sequence_number, job_id, nonce, ntime, version.
const (
	sv2SubmitJobAt   = sv2.HeaderLen + 8
	sv2SubmitNonceAt = sv2.HeaderLen + 12
	sv2SubmitNTimeAt = sv2.HeaderLen + 16
)

func newSV2Submitter(tb testing.TB, extended bool) *sv2Submitter {
	tb.Helper()
	off, sc, ch, client := offlineSV2(tb, extended)
	j := off.srv.repo.Latest()
	b := &sv2Submitter{off: off, sc: sc, ch: ch, client: client, height: j.Height, now: time.Now().Unix()}
	if extended {
		b.frame = sv2.AppendSubmitSharesExtended(nil, &sv2.SubmitSharesExtended{ChannelID: ch.id, SequenceNumber: 1,
			JobID: uint32(j.ShortID), NTime: j.Time, Version: j.Hash.Version(), Extranonce: make([]byte, 8)})
	} else {
		b.frame = sv2.AppendSubmitSharesStandard(nil, &sv2.SubmitSharesStandard{ChannelID: ch.id, SequenceNumber: 1,
			JobID: uint32(j.ShortID), NTime: j.Time, Version: j.Hash.Version()})
	}
	b.h, _ = sv2.ParseHeader(b.frame)
	return b
}

// rotate adds a new job, as the job feed does (its duplicate sets sized from
// the previous job's), sends it to the channel and moves the shares to it.
func (b *sv2Submitter) rotate(tb testing.TB) {
	tb.Helper()
	b.height++
	p := testJobParams(b.height, false)
	p.ID += uint64(b.height) << 8 // unique within the second
	j, _, err := b.off.srv.repo.Add(p, b.now)
	if err != nil {
		tb.Fatal(err)
	}
	fr, ok := newSV2JobFrames(j, true, b.now)
	if !ok {
		tb.Fatal("job frames")
	}
	b.sc.sendChannelJob(b.ch, fr, false, b.now)
	b.off.lp.sv2.plain = b.off.lp.sv2.plain[:0]
	binary.LittleEndian.PutUint32(b.frame[sv2SubmitJobAt:], uint32(j.ShortID))
	binary.LittleEndian.PutUint32(b.frame[sv2SubmitNTimeAt:], p.Time)
}

// submit decodes, validates and answers one new share (its record goes into
// the loop's batch, emptied as the publisher would).
func (b *sv2Submitter) submit() {
	b.nonce++
	binary.LittleEndian.PutUint32(b.frame[sv2SubmitNonceAt:], b.nonce)
	lp := b.off.lp
	lp.sv2.plain = lp.sv2.plain[:0]
	b.sc.handle(b.h, b.frame[sv2.HeaderLen:], b.now)
	b.sc.flushAcks(b.ch)
	if len(lp.batch.ends) > 512 {
		lp.batch.buf, lp.batch.ends = lp.batch.buf[:0], lp.batch.ends[:0]
	}
}

func (b *sv2Submitter) checkAccepted(tb testing.TB) {
	tb.Helper()
	m := b.off.srv.metrics
	if got := m.SharesAccepted.Load(); got < int64(b.nonce-b.nonce/1000) { // a few hashes miss even 2^-32
		tb.Fatalf("%d of %d shares accepted (stale %d, duplicate %d, low difficulty %d, other %d)", got, b.nonce,
			m.SharesStale.Load(), m.SharesDuplicate.Load(), m.SharesLowDiff.Load(), m.SharesOther.Load())
	}
}

func sv2Kinds() []struct {
	name     string
	extended bool
} {
	return []struct {
		name     string
		extended bool
	}{{"standard", false}, {"extended", true}}
}

// TestSV2SubmitPathZeroAllocs: decoding a SubmitSharesStandard or
// SubmitSharesExtended, validating it, encoding its SubmitShares.Success and
// its share record allocate nothing, across a job change too.
func TestSV2SubmitPathZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	for _, k := range sv2Kinds() {
		t.Run(k.name, func(t *testing.T) {
			b := newSV2Submitter(t, k.extended)
			b.rotate(t)
			for range 1000 { // the predecessor that sizes the next job's sets
				b.submit()
			}
			b.rotate(t)
			if allocs := testing.AllocsPerRun(1000, b.submit); allocs != 0 {
				t.Fatalf("sv2 %s submit path: %v allocs per share", k.name, allocs)
			}
			b.checkAccepted(t)
		})
	}
}

// BenchmarkSV2SubmitPath measures one SV2 share from its plaintext frame to
// the SubmitShares.Success frame and the encoded share record, on one loop,
// as BenchmarkSubmitPath does for a mining.submit line: every
// submitPathJobShares shares a new job arrives (outside the timer) and the
// shares move to it, with a warm-up job before the timer.
func BenchmarkSV2SubmitPath(b *testing.B) {
	for _, k := range sv2Kinds() {
		b.Run(k.name, func(b *testing.B) {
			s := newSV2Submitter(b, k.extended)
			s.rotate(b)
			for range submitPathJobShares {
				s.submit()
			}
			s.rotate(b)
			b.ReportAllocs()
			b.SetBytes(int64(len(s.frame)))
			n := 0
			for b.Loop() {
				if n++; n == submitPathJobShares {
					n = 0
					b.StopTimer()
					s.rotate(b)
					b.StartTimer()
				}
				s.submit()
			}
			s.checkAccepted(b)
		})
	}
}

// BenchmarkSV2SubmitPathNoise adds the transport: the client encrypts the
// share (included: about what the server's decryption costs), the server
// decrypts it in place, validates it and seals its answer.
func BenchmarkSV2SubmitPathNoise(b *testing.B) {
	for _, k := range sv2Kinds() {
		b.Run(k.name, func(b *testing.B) {
			s := newSV2Submitter(b, k.extended)
			s.rotate(b)
			for range submitPathJobShares {
				s.submit()
			}
			s.rotate(b)
			lp := s.off.lp
			var ct, enc []byte
			b.ReportAllocs()
			b.SetBytes(int64(len(s.frame)))
			n := 0
			for b.Loop() {
				if n++; n == submitPathJobShares {
					n = 0
					b.StopTimer()
					s.rotate(b)
					b.StartTimer()
				}
				s.nonce++
				binary.LittleEndian.PutUint32(s.frame[sv2SubmitNonceAt:], s.nonce)
				ct, _ = s.client.Seal(ct[:0], s.frame)
				h, p, _, err := s.sc.ns.OpenFrame(ct, 4096)
				if err != nil {
					b.Fatal(err)
				}
				lp.sv2.plain = lp.sv2.plain[:0]
				s.sc.handle(h, p, s.now)
				s.sc.flushAcks(s.ch)
				enc, _ = s.sc.ns.Seal(enc[:0], lp.sv2.plain)
				if len(lp.batch.ends) > 512 {
					lp.batch.buf, lp.batch.ends = lp.batch.buf[:0], lp.batch.ends[:0]
				}
			}
			s.checkAccepted(b)
		})
	}
}
