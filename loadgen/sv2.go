package loadgen

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashpool/hashpool/codec/sv2"
	"github.com/hashpool/hashpool/codec/sv2/noise"
	"github.com/hashpool/hashpool/sha"
)

// Stratum V2 SetupConnection flags of the Mining protocol (sv2-spec §5.3.1).
const (
	sv2RequiresStandardJobs   uint32 = 1 << 0
	sv2RequiresVersionRolling uint32 = 1 << 2
	// sv2VersionRollingMask is BIP320's general-purpose bits, the ones a
	// miner may roll when a job says version_rolling_allowed.
	sv2VersionRollingMask uint32 = 0x1fffe000
	// sv2MaxJobs bounds the jobs a miner keeps (future and active on the
	// current prevhash); older ones are forgotten.
	sv2MaxJobs = 64
	// sv2MinExtranonce is the extranonce an extended miner asks to roll.
	sv2MinExtranonce = 4
	// sv2RequestID is the request id of the one channel a miner opens.
	sv2RequestID = 1
)

// sv2Job is one NewMiningJob or NewExtendedMiningJob as a miner keeps it.
type sv2Job struct {
	id       uint32
	version  uint32
	rolling  bool
	minNTime sv2.OptionU32
	root     [32]byte // standard job: the merkle root the pool computed
	job      *sha.Job // extended job: coinbase parts and path (prevhash and bits come with SetNewPrevHash)
}

// sv2Work is an active job: what the submit loop grinds on.
type sv2Work struct {
	jobID   uint32
	version uint32
	rolling bool
	ntime   uint32
	bits    uint32
	prev    [32]byte
	root    [32]byte // standard channels
	job     *sha.Job // extended channels (nil for standard)
	prefix  []byte   // the channel's extranonce_prefix when the job became active
	target  sha.Target
}

// sv2Reply is a handshake answer the reader hands to the session.
type sv2Reply struct {
	msg  uint8
	code string // error_code of an .Error answer
}

// sv2Pending is one share awaiting its answer.
type sv2Pending struct {
	seq  uint32
	sent int64 // unix ns
}

// sv2Miner is one Stratum V2 miner session: one Noise connection with one
// standard or extended channel.
type sv2Miner struct {
	e        *env
	worker   string
	c        *net.TCPConn
	nc       *noise.Conn
	extended bool
	hs       chan sv2Reply

	// Set by the reader before it signals the channel's opening.
	chID    uint32
	groupID uint32
	enSize  int

	// Reader only.
	jobs     map[uint32]*sv2Job
	prev     sv2.SetNewPrevHash
	havePrev bool
	nJobs    int
	lastKey  string
	prefix   []byte

	target atomic.Pointer[sha.Target] // the channel's current target (SetTarget)
	work   atomic.Pointer[sv2Work]
	first  chan struct{} // closed at the first active job

	mu      sync.Mutex
	pending []sv2Pending // in sequence order
}

// runSV2Session runs one SV2 connection: Noise handshake, SetupConnection,
// one channel, then shares at the scenario's rate. It returns nil when the
// churn timer ended the session.
func runSV2Session(parent context.Context, e *env, worker string) error {
	return runSession(parent, e, func(c *net.TCPConn) (sessionClient, error) {
		m := &sv2Miner{e: e, worker: worker, c: c, extended: e.s.SV2 == SV2Extended, hs: make(chan sv2Reply, 4),
			jobs: make(map[uint32]*sv2Job), first: make(chan struct{})}
		var err error
		if m.nc, err = noise.Client(c, e.authority, noise.ConnOptions{HandshakeTimeout: e.s.ResponseTimeout}); err != nil {
			return nil, fmt.Errorf("sv2 noise handshake with %s: %w", c.RemoteAddr(), err)
		}
		return m, nil
	})
}

func (m *sv2Miner) firstJob() <-chan struct{} { return m.first }

func (m *sv2Miner) pendingCount() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return int64(len(m.pending))
}

func (m *sv2Miner) write(frame []byte) error {
	_ = m.c.SetWriteDeadline(time.Now().Add(m.e.s.ResponseTimeout))
	return m.nc.WriteFrame(frame)
}

// call writes a frame and waits for the reader's answer to it.
func (m *sv2Miner) call(ctx context.Context, frame []byte, what string) (sv2Reply, error) {
	if err := m.write(frame); err != nil {
		return sv2Reply{}, fmt.Errorf("%s: %w", what, err)
	}
	r, ok, err := awaitReply(ctx, m.hs, m.e.s.ResponseTimeout, func(sv2Reply) bool { return true })
	if err == nil && !ok {
		err = fmt.Errorf("%s: no answer within %v", what, m.e.s.ResponseTimeout)
	}
	return r, err
}

// handshake is SetupConnection and the opening of the miner's channel.
func (m *sv2Miner) handshake(ctx context.Context) error {
	s := m.e.s
	flags := uint32(0)
	if !m.extended {
		flags |= sv2RequiresStandardJobs
	}
	if s.VersionRolling {
		flags |= sv2RequiresVersionRolling
	}
	addr := m.c.RemoteAddr().(*net.TCPAddr)
	setup := sv2.SetupConnection{Protocol: 0, MinVersion: 2, MaxVersion: 2, Flags: flags,
		EndpointHost: []byte(addr.IP.String()), EndpointPort: uint16(addr.Port),
		Vendor: []byte("hashpool-loadgen"), HardwareVersion: []byte("cpu"), Firmware: []byte("loadgen/1.0"), DeviceID: []byte(m.worker)}
	r, err := m.call(ctx, sv2.AppendSetupConnection(nil, &setup), "SetupConnection")
	if err != nil {
		return err
	}
	switch r.msg {
	case sv2.MsgSetupConnectionSuccess:
	case sv2.MsgSetupConnectionError:
		return fmt.Errorf("SetupConnection refused: %s", r.code)
	default:
		return fmt.Errorf("SetupConnection answered with %s", sv2.MsgName(r.msg))
	}
	var maxTarget sv2.U256
	for i := range maxTarget {
		maxTarget[i] = 0xff
	}
	var open []byte
	if m.extended {
		open = sv2.AppendOpenExtendedMiningChannel(nil, &sv2.OpenExtendedMiningChannel{RequestID: sv2RequestID,
			UserIdentity: []byte(m.worker), NominalHashRate: 1e9, MaxTarget: maxTarget, MinExtranonceSize: sv2MinExtranonce})
	} else {
		open = sv2.AppendOpenStandardMiningChannel(nil, &sv2.OpenStandardMiningChannel{RequestID: sv2RequestID,
			UserIdentity: []byte(m.worker), NominalHashRate: 1e9, MaxTarget: maxTarget})
	}
	if r, err = m.call(ctx, open, "open channel"); err != nil {
		return err
	}
	switch r.msg {
	case sv2.MsgOpenStandardMiningChannelSuccess, sv2.MsgOpenExtendedMiningChannelSuccess:
		return nil
	case sv2.MsgOpenMiningChannelError:
		return fmt.Errorf("open channel for %s refused: %s", m.worker, r.code)
	}
	return fmt.Errorf("open channel answered with %s", sv2.MsgName(r.msg))
}

// submitLoop submits one share every 1/Rate seconds until ctx ends.
func (m *sv2Miner) submitLoop(ctx context.Context) error {
	if m.e.s.Rate == 0 {
		return errStopped
	}
	p := newPacer(m.e)
	counter := rand.Uint64() & 0xffffffff << 16
	var seq uint32
	var frame []byte
	en := make([]byte, m.enSize)
	for {
		if !p.wait(ctx) {
			return errStopped
		}
		w := m.work.Load()
		if w == nil {
			continue
		}
		// The stricter of the target the job came under and the channel's
		// latest: both rules a pool may apply accept it (§5.3.21).
		target := w.target
		if cur := m.target.Load(); cur != nil && cur.Cmp(&target) < 0 {
			target = *cur
		}
		version := w.version
		if w.rolling && m.e.s.VersionRolling {
			version ^= rand.Uint32() & sv2VersionRollingMask
		}
		var hdr [80]byte
		if w.job != nil {
			counter++
			putCounter(en, counter)
			g := m.e.grind.Get().(*grinder)
			hdr = g.h.ShareHeader(w.job, w.prefix, en, w.ntime, 0, version^w.version)
			m.e.grind.Put(g)
		} else {
			sha.AppendHeader(hdr[:0], version, &w.prev, &w.root, w.ntime, w.bits, 0)
		}
		nonce, ok := m.e.solveHeader(ctx, &hdr, &target)
		if m.e.stopped() {
			return errStopped
		}
		if !ok || !m.stillMeets(&hdr, nonce, &target) {
			continue
		}
		m.mu.Lock()
		full := len(m.pending) >= maxPending
		if !full {
			m.pending = append(m.pending, sv2Pending{seq: seq, sent: time.Now().UnixNano()})
		}
		m.mu.Unlock()
		if full {
			continue
		}
		if w.job != nil {
			frame = sv2.AppendSubmitSharesExtended(frame[:0], &sv2.SubmitSharesExtended{ChannelID: m.chID, SequenceNumber: seq,
				JobID: w.jobID, Nonce: nonce, NTime: w.ntime, Version: version, Extranonce: en})
		} else {
			frame = sv2.AppendSubmitSharesStandard(frame[:0], &sv2.SubmitSharesStandard{ChannelID: m.chID, SequenceNumber: seq,
				JobID: w.jobID, Nonce: nonce, NTime: w.ntime, Version: version})
		}
		seq++
		m.e.rec.submitted.Add(1)
		if err := m.write(frame); err != nil {
			return err
		}
	}
}

// stillMeets reports whether a share ground for target still meets the
// channel's target, which a SetTarget may have lowered meanwhile (a miner
// drops such a share rather than send one the pool would reject).
func (m *sv2Miner) stillMeets(hdr *[80]byte, nonce uint32, target *sha.Target) bool {
	cur := m.target.Load()
	if cur == nil || cur.Cmp(target) >= 0 || m.e.s.SimulatorMode || m.e.s.LowDifficulty {
		return true
	}
	binary.LittleEndian.PutUint32(hdr[76:], nonce)
	h := sha.DoubleSHA256(hdr[:])
	return sha.HashMeetsTarget(&h, cur)
}

// putCounter writes v big-endian into the last (at most 8) bytes of b and
// zeroes the rest.
func putCounter(b []byte, v uint64) {
	clear(b)
	var tmp [8]byte
	binary.BigEndian.PutUint64(tmp[:], v)
	n := min(len(b), 8)
	copy(b[len(b)-n:], tmp[8-n:])
}

var (
	errSV2Closed = errors.New("sv2: the server closed the channel")
	errSV2Frame  = errors.New("sv2: malformed message from the server")
)

// read handles everything the server sends until the connection fails.
func (m *sv2Miner) read() error {
	for {
		h, p, err := m.nc.ReadFrame()
		if err != nil {
			return err
		}
		if h.Extension() != 0 {
			continue // an extension we did not negotiate: ignore (§3.4.1)
		}
		if err := sv2.CheckHeader(h); err != nil {
			return fmt.Errorf("sv2: frame from the server: %w", err)
		}
		if err := m.handle(h.MsgType, p); err != nil {
			return err
		}
	}
}

// handle applies one message; an error ends the session.
func (m *sv2Miner) handle(t uint8, p []byte) error {
	bad := func(err error) error { return fmt.Errorf("%w: %s: %v", errSV2Frame, sv2.MsgName(t), err) }
	switch t {
	case sv2.MsgSetupConnectionSuccess:
		m.answer(sv2Reply{msg: t})
	case sv2.MsgSetupConnectionError:
		var msg sv2.SetupConnectionError
		if err := sv2.DecodeSetupConnectionError(p, &msg); err != nil {
			return bad(err)
		}
		m.answer(sv2Reply{msg: t, code: string(msg.ErrorCode)})
	case sv2.MsgOpenStandardMiningChannelSuccess:
		var msg sv2.OpenStandardMiningChannelSuccess
		if err := sv2.DecodeOpenStandardMiningChannelSuccess(p, &msg); err != nil {
			return bad(err)
		}
		if msg.RequestID != sv2RequestID || m.extended {
			return bad(errors.New("not the channel asked for"))
		}
		m.opened(msg.ChannelID, msg.GroupChannelID, msg.Target, msg.ExtranoncePrefix, 0)
		m.answer(sv2Reply{msg: t})
	case sv2.MsgOpenExtendedMiningChannelSuccess:
		var msg sv2.OpenExtendedMiningChannelSuccess
		if err := sv2.DecodeOpenExtendedMiningChannelSuccess(p, &msg); err != nil {
			return bad(err)
		}
		if msg.RequestID != sv2RequestID || !m.extended {
			return bad(errors.New("not the channel asked for"))
		}
		if int(msg.ExtranonceSize) < 1 || len(msg.ExtranoncePrefix)+int(msg.ExtranonceSize) > sv2.MaxB32 {
			return bad(fmt.Errorf("extranonce size %d with a %d-byte prefix", msg.ExtranonceSize, len(msg.ExtranoncePrefix)))
		}
		m.opened(msg.ChannelID, msg.GroupChannelID, msg.Target, msg.ExtranoncePrefix, int(msg.ExtranonceSize))
		m.answer(sv2Reply{msg: t})
	case sv2.MsgOpenMiningChannelError:
		var msg sv2.OpenMiningChannelError
		if err := sv2.DecodeOpenMiningChannelError(p, &msg); err != nil {
			return bad(err)
		}
		m.answer(sv2Reply{msg: t, code: string(msg.ErrorCode)})
	case sv2.MsgNewMiningJob:
		var msg sv2.NewMiningJob
		if err := sv2.DecodeNewMiningJob(p, &msg); err != nil {
			return bad(err)
		}
		if !m.mine(msg.ChannelID) {
			return nil
		}
		if m.extended {
			return bad(errors.New("a standard job on an extended channel"))
		}
		m.addJob(&sv2Job{id: msg.JobID, version: msg.Version, rolling: true, minNTime: msg.MinNTime, root: msg.MerkleRoot})
	case sv2.MsgNewExtendedMiningJob:
		var msg sv2.NewExtendedMiningJob
		if err := sv2.DecodeNewExtendedMiningJob(p, &msg); err != nil {
			return bad(err)
		}
		if !m.mine(msg.ChannelID) {
			return nil
		}
		// The decoded fields alias the read buffer; sha.NewJob copies them.
		// Prevhash and bits come with SetNewPrevHash (activate).
		m.addJob(&sv2Job{id: msg.JobID, version: msg.Version, rolling: msg.VersionRollingAllowed, minNTime: msg.MinNTime,
			job: sha.NewJob(msg.CoinbaseTxPrefix, msg.CoinbaseTxSuffix, msg.MerklePath, msg.Version, [32]byte{}, 0)})
	case sv2.MsgSetNewPrevHash:
		var msg sv2.SetNewPrevHash
		if err := sv2.DecodeSetNewPrevHash(p, &msg); err != nil {
			return bad(err)
		}
		if !m.mine(msg.ChannelID) {
			return nil
		}
		m.newPrevHash(&msg)
	case sv2.MsgSetTarget:
		var msg sv2.SetTarget
		if err := sv2.DecodeSetTarget(p, &msg); err != nil {
			return bad(err)
		}
		if !m.mine(msg.ChannelID) {
			return nil
		}
		t := sha.HashToTarget(&msg.MaximumTarget)
		if t.IsZero() {
			return bad(errors.New("zero target"))
		}
		m.target.Store(&t)
		m.e.rec.setDiffs.Add(1)
	case sv2.MsgSetExtranoncePrefix:
		var msg sv2.SetExtranoncePrefix
		if err := sv2.DecodeSetExtranoncePrefix(p, &msg); err != nil {
			return bad(err)
		}
		if m.mine(msg.ChannelID) {
			if len(msg.ExtranoncePrefix)+m.enSize > sv2.MaxB32 {
				return bad(errors.New("prefix too long for the extranonce"))
			}
			m.prefix = append([]byte(nil), msg.ExtranoncePrefix...) // applies to jobs activated from now on
		}
	case sv2.MsgSubmitSharesSuccess:
		var msg sv2.SubmitSharesSuccess
		if err := sv2.DecodeSubmitSharesSuccess(p, &msg); err != nil {
			return bad(err)
		}
		m.accepted(msg.LastSequenceNumber)
	case sv2.MsgSubmitSharesError:
		var msg sv2.SubmitSharesError
		if err := sv2.DecodeSubmitSharesError(p, &msg); err != nil {
			return bad(err)
		}
		m.rejected(msg.SequenceNumber, msg.ErrorCode)
	case sv2.MsgCloseChannel:
		var msg sv2.CloseChannel
		if err := sv2.DecodeCloseChannel(p, &msg); err != nil {
			return bad(err)
		}
		if msg.ChannelID == m.chID {
			return fmt.Errorf("%w: %q", errSV2Closed, msg.ReasonCode)
		}
	case sv2.MsgReconnect:
		return errors.New("sv2: the server asked to reconnect elsewhere (Reconnect)")
	case sv2.MsgChannelEndpointChanged, sv2.MsgSetGroupChannel, sv2.MsgUpdateChannelError:
		// Nothing a simulated miner keeps state for.
	default:
		return fmt.Errorf("sv2: the server sent %s, a message a server does not send", sv2.MsgName(t))
	}
	return nil
}

func (m *sv2Miner) answer(r sv2Reply) {
	select {
	case m.hs <- r:
	default:
	}
}

// opened records the channel the server opened.
func (m *sv2Miner) opened(id, group uint32, target sv2.U256, prefix []byte, enSize int) {
	m.chID, m.groupID, m.enSize = id, group, enSize
	m.prefix = append([]byte(nil), prefix...)
	t := sha.HashToTarget(&target)
	m.target.Store(&t)
}

// mine reports whether a channel message is for this miner's channel (or
// its group channel).
func (m *sv2Miner) mine(id uint32) bool {
	return id == m.chID || (m.groupID != 0 && id == m.groupID)
}

// addJob keeps a job; one with a min_ntime is active on the current
// prevhash at once, one without waits for its SetNewPrevHash.
func (m *sv2Miner) addJob(j *sv2Job) {
	m.e.rec.notifies.Add(1)
	if len(m.jobs) >= sv2MaxJobs {
		for id := range m.jobs { // forget any one: a bounded, rare path
			delete(m.jobs, id)
			break
		}
	}
	m.jobs[j.id] = j
	if j.minNTime.Valid && m.havePrev {
		m.activate(j, max(j.minNTime.V, m.prev.MinNTime), hex.EncodeToString(m.prev.PrevHash[:8])+"/"+fmt.Sprint(j.id))
	}
}

// newPrevHash starts a new block: the future job it names becomes active
// and every other job is stale.
func (m *sv2Miner) newPrevHash(msg *sv2.SetNewPrevHash) {
	m.prev, m.havePrev = *msg, true
	j := m.jobs[msg.JobID]
	clear(m.jobs)
	if j == nil {
		m.work.Store(nil) // no job to mine on the new block yet
		return
	}
	m.jobs[j.id] = j
	m.activate(j, msg.MinNTime, hex.EncodeToString(msg.PrevHash[:8]))
}

// activate makes j the work on the current prevhash and records its
// receipt for fan-out (the first job of a session is its join, not a
// broadcast).
func (m *sv2Miner) activate(j *sv2Job, ntime uint32, key string) {
	now := time.Now()
	w := &sv2Work{jobID: j.id, version: j.version, rolling: j.rolling, ntime: ntime, bits: m.prev.NBits, prev: m.prev.PrevHash}
	if t := m.target.Load(); t != nil {
		w.target = *t
	}
	if j.job != nil {
		w.job = sha.NewJob(j.job.Coinbase1(), j.job.Coinbase2(), j.job.Branch(), j.version, m.prev.PrevHash, m.prev.NBits)
		w.prefix = m.prefix
		if !m.extended { // an extended job on a standard channel (a group channel's): the root is ours to compute
			var h sha.Hasher
			w.root, w.job = h.MerkleRoot(w.job, w.prefix, nil), nil
		}
	} else {
		w.root = j.root
	}
	m.work.Store(w)
	m.nJobs++
	if m.nJobs == 1 {
		close(m.first)
	} else if key != m.lastKey {
		m.e.rec.jobReceived("sv2/"+key, now)
	}
	m.lastKey = key
}

// accepted answers every pending share up to last (SubmitShares.Success
// acknowledges a batch).
func (m *sv2Miner) accepted(last uint32) {
	now := time.Now().UnixNano()
	m.mu.Lock()
	n := 0
	for n < len(m.pending) && int32(m.pending[n].seq-last) <= 0 {
		m.e.rec.submitLat.Record(time.Duration(now - m.pending[n].sent))
		n++
	}
	m.pending = append(m.pending[:0], m.pending[n:]...)
	m.mu.Unlock()
	m.e.rec.answered.Add(int64(n))
	m.e.rec.accepted.Add(int64(n))
}

// rejected answers one pending share with its error code.
func (m *sv2Miner) rejected(seq uint32, code []byte) {
	now := time.Now().UnixNano()
	m.mu.Lock()
	found := false
	for i := range m.pending {
		if m.pending[i].seq == seq {
			m.e.rec.submitLat.Record(time.Duration(now - m.pending[i].sent))
			m.pending = append(m.pending[:i], m.pending[i+1:]...)
			found = true
			break
		}
	}
	m.mu.Unlock()
	if !found {
		return
	}
	m.e.rec.answered.Add(1)
	m.e.rec.rejectReason(string(code))
}
