package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/codec/sv2"
	"github.com/hashpool/hashpool/codec/sv2/noise"
	"github.com/hashpool/hashpool/sha"
)

// sv2Keys is a pool identity generated for a test: the authority key miners
// pin and a responder whose certificate it signed.
type sv2Keys struct {
	authority, static *btcec.PrivateKey
	pub               [32]byte
}

func newSV2Keys(t testing.TB) *sv2Keys {
	t.Helper()
	a, err := noise.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	s, err := noise.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return &sv2Keys{authority: a, static: s, pub: noise.XOnly(a)}
}

// responder signs a certificate valid from..until.
func (k *sv2Keys) responder(t testing.TB, from, until time.Time) *noise.Responder {
	t.Helper()
	cert, err := noise.SignCertificate(k.authority, k.static, 0, uint32(from.Unix()), uint32(until.Unix()))
	if err != nil {
		t.Fatal(err)
	}
	r, err := noise.NewResponder(k.static, cert, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func sv2Options(t *testing.T, k *sv2Keys) Options {
	o := testOptions(t)
	o.SV2Listen = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	o.SV2Responder = k.responder(t, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	return o
}

// sv2Miner is a test SV2 client: a reader goroutine queues every frame.
type sv2Miner struct {
	t      testing.TB
	c      *noise.Conn
	frames chan sv2Frame
	seq    uint32
	// lastReq is the request_id of the last channel open (each is new: the
	// spec wants them unique on a connection).
	lastReq uint32
}

type sv2Frame struct {
	h   sv2.Header
	p   []byte
	err error
}

func dialSV2(t testing.TB, addr net.Addr, authority [32]byte) (*sv2Miner, error) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr.String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c, err := noise.Client(nc, authority, noise.ConnOptions{})
	if err != nil {
		nc.Close()
		return nil, err
	}
	m := &sv2Miner{t: t, c: c, frames: make(chan sv2Frame, 1024)}
	go func() {
		for {
			h, p, err := c.ReadFrame()
			if err != nil {
				m.frames <- sv2Frame{err: err}
				close(m.frames)
				return
			}
			m.frames <- sv2Frame{h: h, p: append([]byte(nil), p...)}
		}
	}()
	t.Cleanup(func() { c.Close() })
	return m, nil
}

func (m *sv2Miner) send(f []byte) {
	m.t.Helper()
	if err := m.c.WriteFrame(f); err != nil {
		m.t.Fatal(err)
	}
}

// expect returns the payload of the next frame of type typ, skipping jobs
// and targets (kept by the caller's miner state through on).
func (m *sv2Miner) expect(typ uint8, on func(sv2.Header, []byte)) []byte {
	m.t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case f, ok := <-m.frames:
			if !ok || f.err != nil {
				m.t.Fatalf("connection ended waiting for %s: %v", sv2.MsgName(typ), f.err)
			}
			if f.h.MsgType == typ {
				return f.p
			}
			if on == nil {
				m.t.Fatalf("got %s, want %s", sv2.MsgName(f.h.MsgType), sv2.MsgName(typ))
			}
			on(f.h, f.p)
		case <-timeout:
			m.t.Fatalf("timed out waiting for %s", sv2.MsgName(typ))
		}
	}
}

// expectClosed waits until the server closes the connection.
func (m *sv2Miner) expectClosed() {
	m.t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case f, ok := <-m.frames:
			if !ok {
				return
			}
			if f.err != nil {
				if !errors.Is(f.err, io.EOF) && !errors.Is(f.err, syscall.ECONNRESET) && !errors.Is(f.err, io.ErrUnexpectedEOF) {
					m.t.Logf("closed with %v", f.err)
				}
				return
			}
		case <-timeout:
			m.t.Fatal("connection not closed by the server")
		}
	}
}

func (m *sv2Miner) setup(flags uint32) {
	m.t.Helper()
	m.send(sv2.AppendSetupConnection(nil, &sv2.SetupConnection{MinVersion: 2, MaxVersion: 2, Flags: flags,
		EndpointHost: []byte("127.0.0.1"), Vendor: []byte("hashpool-test")}))
	var ok sv2.SetupConnectionSuccess
	if err := sv2.DecodeSetupConnectionSuccess(m.expect(sv2.MsgSetupConnectionSuccess, nil), &ok); err != nil || ok.UsedVersion != 2 {
		m.t.Fatalf("%+v %v", ok, err)
	}
}

func maxTarget() (u sv2.U256) {
	for i := range u {
		u[i] = 0xff
	}
	return u
}

// sv2Work is what a test miner mines on: its channel and the jobs it got.
type sv2Work struct {
	chID, group uint32
	prefix      []byte
	enSize      int
	target      sv2.U256
	ext         map[uint32]sv2.NewExtendedMiningJob
	std         map[uint32]sv2.NewMiningJob
	prev        [32]byte
	nbits       uint32
	active      uint32
	ready       bool
}

func newWork() *sv2Work {
	return &sv2Work{ext: map[uint32]sv2.NewExtendedMiningJob{}, std: map[uint32]sv2.NewMiningJob{}}
}

// on applies a job message to w.
func (w *sv2Work) on(t testing.TB) func(sv2.Header, []byte) {
	return func(h sv2.Header, p []byte) {
		switch h.MsgType {
		case sv2.MsgNewExtendedMiningJob:
			var m sv2.NewExtendedMiningJob
			if err := sv2.DecodeNewExtendedMiningJob(p, &m); err != nil {
				t.Fatal(err)
			}
			m.MerklePath = append([]sv2.U256(nil), m.MerklePath...)
			m.CoinbaseTxPrefix = append([]byte(nil), m.CoinbaseTxPrefix...)
			m.CoinbaseTxSuffix = append([]byte(nil), m.CoinbaseTxSuffix...)
			if m.ChannelID != w.chID && m.ChannelID != w.group {
				return
			}
			w.ext[m.JobID] = m
			if m.MinNTime.Valid {
				w.active = m.JobID
			}
		case sv2.MsgNewMiningJob:
			var m sv2.NewMiningJob
			if err := sv2.DecodeNewMiningJob(p, &m); err != nil {
				t.Fatal(err)
			}
			if m.ChannelID != w.chID {
				return
			}
			w.std[m.JobID] = m
			if m.MinNTime.Valid {
				w.active = m.JobID
			}
		case sv2.MsgSetNewPrevHash:
			var m sv2.SetNewPrevHash
			if err := sv2.DecodeSetNewPrevHash(p, &m); err != nil {
				t.Fatal(err)
			}
			if m.ChannelID != w.chID && m.ChannelID != w.group {
				return
			}
			w.prev, w.nbits, w.active, w.ready = m.PrevHash, m.NBits, m.JobID, true
		case sv2.MsgSetTarget:
			var m sv2.SetTarget
			if err := sv2.DecodeSetTarget(p, &m); err != nil {
				t.Fatal(err)
			}
			if m.ChannelID == w.chID {
				w.target = m.MaximumTarget
			}
		}
	}
}

// openExtended opens an extended channel for user and waits for its first
// job.
func (m *sv2Miner) openExtended(user string, w *sv2Work) {
	m.t.Helper()
	m.lastReq++
	m.send(sv2.AppendOpenExtendedMiningChannel(nil, &sv2.OpenExtendedMiningChannel{RequestID: m.lastReq, UserIdentity: []byte(user),
		MaxTarget: maxTarget(), MinExtranonceSize: 4}))
	var ok sv2.OpenExtendedMiningChannelSuccess
	if err := sv2.DecodeOpenExtendedMiningChannelSuccess(m.expect(sv2.MsgOpenExtendedMiningChannelSuccess, w.on(m.t)), &ok); err != nil {
		m.t.Fatal(err)
	}
	w.chID, w.group, w.target, w.enSize = ok.ChannelID, ok.GroupChannelID, ok.Target, int(ok.ExtranonceSize)
	w.prefix = append([]byte(nil), ok.ExtranoncePrefix...)
}

func (m *sv2Miner) openStandard(user string, w *sv2Work) {
	m.t.Helper()
	m.lastReq++
	m.send(sv2.AppendOpenStandardMiningChannel(nil, &sv2.OpenStandardMiningChannel{RequestID: m.lastReq, UserIdentity: []byte(user),
		MaxTarget: maxTarget()}))
	var ok sv2.OpenStandardMiningChannelSuccess
	if err := sv2.DecodeOpenStandardMiningChannelSuccess(m.expect(sv2.MsgOpenStandardMiningChannelSuccess, w.on(m.t)), &ok); err != nil {
		m.t.Fatal(err)
	}
	w.chID, w.group, w.target = ok.ChannelID, ok.GroupChannelID, ok.Target
	w.prefix = append([]byte(nil), ok.ExtranoncePrefix...)
}

// waitJob reads frames until w has an active job on a prevhash.
func (m *sv2Miner) waitJob(w *sv2Work) {
	m.t.Helper()
	timeout := time.After(20 * time.Second)
	for !w.ready || !w.has(w.active) {
		select {
		case f, ok := <-m.frames:
			if !ok || f.err != nil {
				m.t.Fatalf("connection ended waiting for a job: %v", f.err)
			}
			w.on(m.t)(f.h, f.p)
		case <-timeout:
			m.t.Fatal("timed out waiting for a job")
		}
	}
}

func (w *sv2Work) has(id uint32) bool {
	if _, ok := w.ext[id]; ok {
		return true
	}
	_, ok := w.std[id]
	return ok
}

// root is the merkle root of the active job for extranonce en (the
// extended job's coinbase with the channel prefix, or the standard job's).
func (w *sv2Work) root(job uint32, en []byte) ([32]byte, uint32) {
	if j, ok := w.std[job]; ok {
		return j.MerkleRoot, j.Version
	}
	j := w.ext[job]
	cb := append(append(append(append([]byte(nil), j.CoinbaseTxPrefix...), w.prefix...), en...), j.CoinbaseTxSuffix...)
	root := sha.DoubleSHA256(cb)
	for _, leaf := range j.MerklePath {
		root = sha.DoubleSHA256(append(root[:], leaf[:]...))
	}
	return root, j.Version
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

// share finds a nonce from start on the active job whose hash meets the
// channel target (want true) or misses it (want false) and returns the
// SubmitShares frame.
func (m *sv2Miner) share(w *sv2Work, start uint32, en []byte, want bool) []byte {
	m.t.Helper()
	job := w.active
	root, version := w.root(job, en)
	ntime := uint32(time.Now().Unix())
	target := sha.HashToTarget(&w.target)
	for n := start; n < start+4_000_000; n++ {
		h := headerHash(version, w.prev, root, ntime, w.nbits, n)
		if sha.HashMeetsTarget(&h, &target) == want {
			m.seq++
			if en == nil {
				return sv2.AppendSubmitSharesStandard(nil, &sv2.SubmitSharesStandard{ChannelID: w.chID, SequenceNumber: m.seq,
					JobID: job, Nonce: n, NTime: ntime, Version: version})
			}
			return sv2.AppendSubmitSharesExtended(nil, &sv2.SubmitSharesExtended{ChannelID: w.chID, SequenceNumber: m.seq,
				JobID: job, Nonce: n, NTime: ntime, Version: version, Extranonce: en})
		}
	}
	m.t.Fatal("no nonce found in 4M tries")
	return nil
}

// accepted expects SubmitShares.Success for n shares up to the last sent.
func (m *sv2Miner) accepted(w *sv2Work, n uint32) {
	m.t.Helper()
	var ok sv2.SubmitSharesSuccess
	var got uint32
	for got < n {
		p := m.expect(sv2.MsgSubmitSharesSuccess, func(h sv2.Header, p []byte) {
			if h.MsgType == sv2.MsgSubmitSharesError {
				var e sv2.SubmitSharesError
				_ = sv2.DecodeSubmitSharesError(p, &e)
				m.t.Fatalf("share %d refused: %s", e.SequenceNumber, e.ErrorCode)
			}
			w.on(m.t)(h, p)
		})
		if err := sv2.DecodeSubmitSharesSuccess(p, &ok); err != nil || ok.ChannelID != w.chID {
			m.t.Fatalf("%+v %v", ok, err)
		}
		got += ok.NewSubmitsAcceptedCount
	}
	if got != n || ok.LastSequenceNumber != m.seq {
		m.t.Fatalf("accepted %d shares up to %d, want %d up to %d", got, ok.LastSequenceNumber, n, m.seq)
	}
}

// refused expects SubmitShares.Error with code.
func (m *sv2Miner) refused(w *sv2Work, code string) {
	m.t.Helper()
	var e sv2.SubmitSharesError
	if err := sv2.DecodeSubmitSharesError(m.expect(sv2.MsgSubmitSharesError, w.on(m.t)), &e); err != nil {
		m.t.Fatal(err)
	}
	if string(e.ErrorCode) != code || e.SequenceNumber != m.seq {
		m.t.Fatalf("refused share %d with %q, want %d with %q", e.SequenceNumber, e.ErrorCode, m.seq, code)
	}
}

func startSV2Pool(t *testing.T, o Options) *testPool {
	t.Helper()
	p := startPool(t, o)
	if p.srv.SV2Addr() == nil {
		t.Fatal("no sv2 listener")
	}
	return p
}

// nextShareRecord reads share records until one from session id sid.
func nextShareRecord(t *testing.T, p *testPool, sid uint32) btcpool.Share {
	t.Helper()
	for i := 0; i < 1000; i++ {
		if sh := p.nextShare(); sh.SessionID == sid {
			return sh
		}
	}
	t.Fatal("no share record")
	return btcpool.Share{}
}

func TestSV2ExtendedChannel(t *testing.T) {
	k := newSV2Keys(t)
	p := startSV2Pool(t, sv2Options(t, k))
	m, err := dialSV2(t, p.srv.SV2Addr(), k.pub)
	if err != nil {
		t.Fatal(err)
	}
	m.setup(sv2FlagRequiresVersionRolling)
	w := newWork()
	m.openExtended("alice.sv2ext", w)
	if len(w.prefix) != 4 || w.enSize != 8 {
		t.Fatalf("prefix %x, extranonce size %d", w.prefix, w.enSize)
	}
	job := testJobParams(300, false)
	if err := p.srv.AddJob(job); err != nil {
		t.Fatal(err)
	}
	m.waitJob(w)

	en := []byte{0, 0, 0, 0, 0, 0, 0, 1}
	m.send(m.share(w, 0, en, true))
	m.accepted(w, 1)
	sid := binary.BigEndian.Uint32(w.prefix)
	rec := nextShareRecord(t, p, sid)
	if rec.Status != btcpool.StatusAccept || rec.JobID != job.ID || rec.UserID <= 0 || rec.WorkerHashID != WorkerID("sv2ext") {
		t.Fatalf("share record %+v", rec)
	}

	// Several shares in one write: one batched answer.
	var batch []byte
	for i := uint32(1); i <= 5; i++ {
		batch = append(batch, m.share(w, i*1000, en, true)...)
	}
	f := m.share(w, 9000, en, true)
	batch = append(batch, f...)
	m.sendFrames(batch)
	m.accepted(w, 6)

	m.send(f) // the same share again
	m.refused(w, "duplicate-share")
	m.send(sv2.AppendSubmitSharesExtended(nil, &sv2.SubmitSharesExtended{ChannelID: w.chID, SequenceNumber: m.bump(), JobID: 999, NTime: uint32(time.Now().Unix()), Extranonce: en}))
	m.refused(w, "invalid-job-id")
	m.send(sv2.AppendSubmitSharesExtended(nil, &sv2.SubmitSharesExtended{ChannelID: w.chID, SequenceNumber: m.bump(), JobID: w.active, NTime: uint32(time.Now().Unix()), Extranonce: en[:4]}))
	m.refused(w, "invalid-extranonce-size")
	m.send(sv2.AppendSubmitSharesExtended(nil, &sv2.SubmitSharesExtended{ChannelID: w.chID + 100, SequenceNumber: m.bump(), JobID: w.active, Extranonce: en}))
	m.refused(w, "invalid-channel-id")
	m.send(sv2.AppendSubmitSharesExtended(nil, &sv2.SubmitSharesExtended{ChannelID: w.chID, SequenceNumber: m.bump(), JobID: w.active,
		NTime: uint32(time.Now().Unix()), Version: 0x20000000 ^ 0x40000000, Extranonce: en}))
	m.refused(w, "invalid-version")
	m.send(sv2.AppendSubmitSharesExtended(nil, &sv2.SubmitSharesExtended{ChannelID: w.chID, SequenceNumber: m.bump(), JobID: w.active,
		NTime: job.MinTime - 10, Version: 0x20000000, Extranonce: en}))
	m.refused(w, "invalid-timestamp")

	// A new block: future job and SetNewPrevHash; a share on the old job is stale.
	old := w.active
	job2 := testJobParams(301, false)
	job2.PrevHash[0] = 0x22
	if err := p.srv.AddJob(job2); err != nil {
		t.Fatal(err)
	}
	for w.active == old {
		m.waitJobChange(w, old)
	}
	if w.prev != job2.PrevHash {
		t.Fatalf("prevhash %x, want %x", w.prev, job2.PrevHash)
	}
	m.send(m.share(w, 0, en, true))
	m.accepted(w, 1)
	w2 := *w
	w2.active = old
	m.send(m.share(&w2, 50000, en, true))
	m.refused(w, "stale-share")
	if n := p.srv.metrics.SV2Channels.Load(); n != 1 {
		t.Fatalf("%d channels open", n)
	}
}

func (m *sv2Miner) bump() uint32 { m.seq++; return m.seq }

// sendFrames writes several frames at once (one TCP write).
func (m *sv2Miner) sendFrames(b []byte) {
	m.t.Helper()
	for len(b) > 0 {
		h, err := sv2.ParseHeader(b)
		if err != nil {
			m.t.Fatal(err)
		}
		n := sv2.HeaderLen + int(h.Length)
		m.send(b[:n])
		b = b[n:]
	}
}

func (m *sv2Miner) waitJobChange(w *sv2Work, old uint32) {
	m.t.Helper()
	timeout := time.After(20 * time.Second)
	for w.active == old {
		select {
		case f, ok := <-m.frames:
			if !ok || f.err != nil {
				m.t.Fatalf("connection ended waiting for a job: %v", f.err)
			}
			w.on(m.t)(f.h, f.p)
		case <-timeout:
			m.t.Fatal("timed out waiting for the next job")
		}
	}
}

func TestSV2StandardChannel(t *testing.T) {
	k := newSV2Keys(t)
	p := startSV2Pool(t, sv2Options(t, k))
	job := testJobParams(310, false)
	if err := p.srv.AddJob(job); err != nil {
		t.Fatal(err)
	}
	m, err := dialSV2(t, p.srv.SV2Addr(), k.pub)
	if err != nil {
		t.Fatal(err)
	}
	m.setup(sv2FlagRequiresStandardJobs)
	w := newWork()
	m.openStandard("alice.sv2std", w)
	if w.group != 0 || len(w.prefix) != 12 {
		t.Fatalf("group %d prefix %x", w.group, w.prefix)
	}
	m.waitJob(w)
	// The pool's merkle root is the coinbase with the channel's full extranonce.
	j := w.std[w.active]
	cb := append(append(append([]byte(nil), job.Coinbase1...), w.prefix...), job.Coinbase2...)
	root := sha.MerkleRoot(sha.DoubleSHA256(cb), job.Branch)
	if j.MerkleRoot != root {
		t.Fatalf("merkle root %x, want %x", j.MerkleRoot, root)
	}
	m.send(m.share(w, 0, nil, true))
	m.accepted(w, 1)
	rec := nextShareRecord(t, p, binary.BigEndian.Uint32(w.prefix))
	if rec.Status != btcpool.StatusAccept || rec.WorkerHashID != WorkerID("sv2std") {
		t.Fatalf("share record %+v", rec)
	}
	// An extended share on a standard channel is refused.
	m.send(sv2.AppendSubmitSharesExtended(nil, &sv2.SubmitSharesExtended{ChannelID: w.chID, SequenceNumber: m.bump(), JobID: w.active, Extranonce: make([]byte, 8)}))
	m.refused(w, "invalid-channel-id")
}

func TestSV2GroupChannel(t *testing.T) {
	k := newSV2Keys(t)
	p := startSV2Pool(t, sv2Options(t, k))
	m, err := dialSV2(t, p.srv.SV2Addr(), k.pub)
	if err != nil {
		t.Fatal(err)
	}
	m.setup(0) // no REQUIRES_STANDARD_JOBS: standard channels are grouped
	ws := []*sv2Work{newWork(), newWork(), newWork()}
	for i, w := range ws {
		m.openStandard("alice.grp"+string(rune('a'+i)), w)
		if w.group != sv2GroupID {
			t.Fatalf("group %d", w.group)
		}
	}
	job := testJobParams(320, false)
	if err := p.srv.AddJob(job); err != nil {
		t.Fatal(err)
	}
	// One NewExtendedMiningJob for the group serves every channel.
	jobs := 0
	timeout := time.After(20 * time.Second)
	for !ws[0].ready {
		select {
		case f := <-m.frames:
			if f.err != nil {
				t.Fatal(f.err)
			}
			if f.h.MsgType == sv2.MsgNewMiningJob {
				t.Fatal("a grouped standard channel got NewMiningJob")
			}
			if f.h.MsgType == sv2.MsgNewExtendedMiningJob {
				jobs++
			}
			for _, w := range ws {
				w.on(t)(f.h, f.p)
			}
		case <-timeout:
			t.Fatal("no group job")
		}
	}
	if jobs != 1 {
		t.Fatalf("%d extended jobs for the group, want 1", jobs)
	}
	for i, w := range ws {
		// A standard channel's header: the group's coinbase with its full extranonce.
		pfx := w.prefix
		w.prefix = nil
		root, _ := w.root(w.active, pfx)
		w.std[w.active] = sv2.NewMiningJob{ChannelID: w.chID, JobID: w.active, Version: w.ext[w.active].Version, MerkleRoot: root}
		m.send(m.share(w, uint32(i)*100000, nil, true))
		m.accepted(w, 1)
		w.prefix = pfx
	}
}

func TestSV2SolvedShareJournaled(t *testing.T) {
	k := newSV2Keys(t)
	o := sv2Options(t, k)
	p := startSV2Pool(t, o)
	m, err := dialSV2(t, p.srv.SV2Addr(), k.pub)
	if err != nil {
		t.Fatal(err)
	}
	m.setup(0)
	w := newWork()
	m.openExtended("alice.sv2blk", w)
	job := testJobParams(330, true)
	if err := p.srv.AddJob(job); err != nil {
		t.Fatal(err)
	}
	m.waitJob(w)
	en := []byte{9, 9, 9, 9, 9, 9, 9, 9}
	f := m.share(w, 0, en, true)
	var sub sv2.SubmitSharesExtended
	_ = sv2.DecodeSubmitSharesExtended(f[sv2.HeaderLen:], &sub)
	m.send(f)
	m.accepted(w, 1)
	// The answer came after the journal's fsync: the share is in it.
	entries, err := ReadJournal(filepath.Join(o.DataDir, journalFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("%d journal entries", len(entries))
	}
	var solved btcpool.SolvedShare
	if err := btcpool.DecodeSolvedShare(entries[0].Msg, &solved); err != nil {
		t.Fatal(err)
	}
	root, version := w.root(sub.JobID, en)
	wantHdr := headerBytes(version, w.prev, root, sub.NTime, w.nbits, sub.Nonce)
	if solved.Header != wantHdr || solved.JobID != job.ID || solved.WorkerFullName != "alice.sv2blk" {
		t.Fatalf("solved share %+v", solved)
	}
	msgs := pollN(t, p.solved, 1)
	if len(msgs) != 1 {
		t.Fatal("solved share not published")
	}
	if p.srv.metrics.SharesSolved.Load() != 1 {
		t.Fatal("not counted")
	}
}

func headerBytes(version uint32, prev, root [32]byte, ntime, nbits, nonce uint32) (h [80]byte) {
	binary.LittleEndian.PutUint32(h[0:], version)
	copy(h[4:], prev[:])
	copy(h[36:], root[:])
	binary.LittleEndian.PutUint32(h[68:], ntime)
	binary.LittleEndian.PutUint32(h[72:], nbits)
	binary.LittleEndian.PutUint32(h[76:], nonce)
	return h
}

func pollN(t *testing.T, c bus.Consumer, n int) []bus.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []bus.Message
	for len(out) < n {
		msgs, err := c.Poll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, msgs...)
	}
	return out
}

// sv2Mining starts a miner on an extended channel that keeps mining: each
// call of mine submits one share and checks its answer.
func sv2Mining(t *testing.T, p *testPool, k *sv2Keys, user string) func() {
	m, err := dialSV2(t, p.srv.SV2Addr(), k.pub)
	if err != nil {
		t.Fatal(err)
	}
	m.setup(0)
	w := newWork()
	m.openExtended(user, w)
	m.waitJob(w)
	var n uint32
	return func() {
		t.Helper()
		n++
		m.send(m.share(w, n*100000, []byte{1, 2, 3, 4, 5, 6, 7, byte(n)}, true))
		m.accepted(w, 1)
	}
}

// TestSV2Refusals: SetupConnection and channel opens the pool cannot
// serve get the spec's error messages; hostile input is in
// sv2_hostile_test.go.
func TestSV2Refusals(t *testing.T) {
	k := newSV2Keys(t)
	p := startSV2Pool(t, sv2Options(t, k))
	if err := p.srv.AddJob(testJobParams(340, false)); err != nil {
		t.Fatal(err)
	}
	good := sv2Mining(t, p, k, "alice.good")
	good()

	t.Run("setup refused", func(t *testing.T) {
		for _, c := range []struct {
			m    sv2.SetupConnection
			code string
		}{
			{sv2.SetupConnection{Protocol: 1, MinVersion: 2, MaxVersion: 2}, "unsupported-protocol"},
			{sv2.SetupConnection{MinVersion: 3, MaxVersion: 4}, "protocol-version-mismatch"},
			{sv2.SetupConnection{MinVersion: 2, MaxVersion: 2, Flags: sv2FlagRequiresWorkSelection}, "unsupported-feature-flags"},
		} {
			m, err := dialSV2(t, p.srv.SV2Addr(), k.pub)
			if err != nil {
				t.Fatal(err)
			}
			m.send(sv2.AppendSetupConnection(nil, &c.m))
			var e sv2.SetupConnectionError
			if err := sv2.DecodeSetupConnectionError(m.expect(sv2.MsgSetupConnectionError, nil), &e); err != nil || string(e.ErrorCode) != c.code {
				t.Fatalf("%+v %v, want %s", e, err, c.code)
			}
			m.expectClosed()
		}
		good()
	})
	t.Run("channel refused", func(t *testing.T) {
		m, err := dialSV2(t, p.srv.SV2Addr(), k.pub)
		if err != nil {
			t.Fatal(err)
		}
		m.setup(0)
		var tiny sv2.U256
		tiny[0] = 1
		m.send(sv2.AppendOpenExtendedMiningChannel(nil, &sv2.OpenExtendedMiningChannel{RequestID: 3, UserIdentity: []byte("alice.x"), MaxTarget: tiny}))
		var e sv2.OpenMiningChannelError
		if err := sv2.DecodeOpenMiningChannelError(m.expect(sv2.MsgOpenMiningChannelError, nil), &e); err != nil || string(e.ErrorCode) != "max-target-out-of-range" || e.RequestID != 3 {
			t.Fatalf("%+v %v", e, err)
		}
		m.send(sv2.AppendOpenExtendedMiningChannel(nil, &sv2.OpenExtendedMiningChannel{RequestID: 4, UserIdentity: []byte("alice.x"), MaxTarget: maxTarget(), MinExtranonceSize: 9}))
		if err := sv2.DecodeOpenMiningChannelError(m.expect(sv2.MsgOpenMiningChannelError, nil), &e); err != nil || string(e.ErrorCode) != "min-extranonce-size-too-large" {
			t.Fatalf("%+v %v", e, err)
		}
		good()
	})
}

func TestSV2LowDifficulty(t *testing.T) {
	k := newSV2Keys(t)
	o := sv2Options(t, k)
	o.MinDifficulty, o.DefaultDifficulty = math.Ldexp(1, -28), math.Ldexp(1, -28) // one hash in 16 is a share
	p := startSV2Pool(t, o)
	if err := p.srv.AddJob(testJobParams(350, false)); err != nil {
		t.Fatal(err)
	}
	m, err := dialSV2(t, p.srv.SV2Addr(), k.pub)
	if err != nil {
		t.Fatal(err)
	}
	m.setup(0)
	w := newWork()
	m.openExtended("alice.low", w)
	m.waitJob(w)
	en := make([]byte, 8)
	m.send(m.share(w, 0, en, false))
	m.refused(w, "difficulty-too-low")
	m.send(m.share(w, 0, en, true))
	m.accepted(w, 1)
}

func TestSV2OptionsValidate(t *testing.T) {
	o := testOptions(t)
	o.SV2Listen = o.Listen
	o.SV2MaxChannels = 0
	err := o.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"Noise responder", "already the stratum", "max channels"} {
		if !containsStr(err.Error(), want) {
			t.Errorf("%v: missing %q", err, want)
		}
	}
}

func containsStr(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
