package engine

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/codec/stratum"
	"github.com/hashpool/hashpool/codec/sv2"
	"github.com/hashpool/hashpool/codec/sv2/noise"
	"github.com/hashpool/hashpool/sha"
)

// Stratum V2 pool role on the engine's event loops (see doc.go, "Stratum
// V2"). An SV2 connection is an sv2Conn (the gnet context of connections
// accepted on Options.SV2Listen); each of its mining channels owns an
// engine Session that never touches the socket itself: its session id is
// the channel's extranonce prefix, its job ring and miner are what share
// validation (submit.go) reads, so SV2 shares take exactly the SV1 path
// (duplicates, share records, solved shares with their journal, vardiff,
// events).

// Mining protocol SetupConnection flags (sv2-spec §5.3.1).
const (
	sv2FlagRequiresStandardJobs   uint32 = 1 << 0
	sv2FlagRequiresWorkSelection  uint32 = 1 << 1
	sv2FlagRequiresVersionRolling uint32 = 1 << 2
	// SetupConnection.Success flag: the server does not allow version rolling.
	sv2FlagRequiresFixedVersion uint32 = 1 << 0
)

// sv2GroupID is the group channel of a connection's standard channels when
// the client did not ask for standard jobs: one NewExtendedMiningJob per job
// for all of them. Channel ids start after it.
const sv2GroupID = 1

// Connection states.
const (
	sv2Handshake uint8 = iota // waiting for the Noise act 1
	sv2Setup                  // encrypted, waiting for SetupConnection
	sv2Ready                  // SetupConnection accepted
)

// Error codes (sv2pool's, which are SRI's where SRI has one).
var (
	sv2CodeInvalidChannel   = []byte("invalid-channel-id")
	sv2CodeInvalidJob       = []byte("invalid-job-id")
	sv2CodeStale            = []byte("stale-share")
	sv2CodeDuplicate        = []byte("duplicate-share")
	sv2CodeLowDifficulty    = []byte("difficulty-too-low")
	sv2CodeExtranonceSize   = []byte("invalid-extranonce-size")
	sv2CodeVersion          = []byte("invalid-version")
	sv2CodeTimestamp        = []byte("invalid-timestamp")
	sv2CodeUnknown          = []byte("unknown")
	sv2CodeUnsupportedProto = []byte("unsupported-protocol")
	sv2CodeVersionMismatch  = []byte("protocol-version-mismatch")
	sv2CodeUnsupportedFlags = []byte("unsupported-feature-flags")
	sv2CodeMaxTarget        = []byte("max-target-out-of-range")
	sv2CodeMinExtranonce    = []byte("min-extranonce-size-too-large")
	sv2CodeTooManyChannels  = []byte("too-many-channels")
	sv2CodeUnknownUser      = []byte("unknown-user")
	sv2CodeNoSessionID      = []byte("no-extranonce-prefix-left")
	sv2CodeShuttingDown     = []byte("shutting-down")
	sv2CodeDuplicateRequest = []byte("duplicate-request-id")
)

// sv2State is the server's SV2 part.
type sv2State struct {
	addr   atomic.Value // net.Addr of the SV2 listener once listening
	latest atomic.Pointer[sv2JobFrames]
	cert   sv2Cert // the responder in use and its renewal (sv2cert.go)
}

// sv2Loop is a loop's SV2 part: its connections and scratch space.
type sv2Loop struct {
	conns   []*sv2Conn
	enc     []byte // ciphertext being written
	plain   []byte // plaintext frames for the connection being served
	std     sv2.SubmitSharesStandard
	ext     sv2.SubmitSharesExtended
	lastJob uint64
}

// sv2Conn is one SV2 connection; it belongs to its event loop.
type sv2Conn struct {
	srv      *Server
	lp       *loop
	c        gnet.Conn
	ns       *noise.Session
	ip       netip.Addr
	agent    string
	state    uint8
	closed   bool
	flags    uint32
	deadline int64
	lpIndex  int
	nextID   uint32
	newUsers int32 // user names this connection's channels added (NewUsersPerConn)
	chans    []*sv2Channel
	prev     [32]byte // prevhash of the last job sent (hasPrev)
	hasPrev  bool
	groupJob bool // the group channel has had a job
}

// sv2Channel is one mining channel.
type sv2Channel struct {
	id       uint32
	reqID    uint32 // the open's request_id: connection-wide unique (§5.3.2)
	extended bool
	grouped  bool // a standard channel in group sv2GroupID
	sentExp  int8 // difficulty of the last SetTarget (or of the open answer)
	sess     Session
	wire     sv2Wire
	// Accepted shares not answered yet: one SubmitShares.Success per channel
	// and read (the spec allows batching).
	accN   uint32
	accSum uint64
	accSeq uint32
}

// sv2Wire is a channel session's conn: what solved.go's releaseHeld writes
// (the held plaintext answers) is sealed with the connection's Noise
// session. OutboundBuffered is 0: write closes a connection over
// MaxOutbound itself.
type sv2Wire struct {
	gnet.Conn
	sc *sv2Conn
}

func (w *sv2Wire) Write(b []byte) (int, error) {
	if !w.sc.closed && !w.sc.write(b) {
		w.sc.closed = true
		_ = w.sc.lp.el.Close(w.sc.c)
	}
	return len(b), nil
}

func (w *sv2Wire) OutboundBuffered() int { return 0 }

// SV2Addr returns the SV2 listener's address once Serve is ready (nil
// before, or without Options.SV2Listen).
func (s *Server) SV2Addr() net.Addr {
	a, _ := s.sv2.addr.Load().(net.Addr)
	return a
}

// isSV2 reports whether c came in on the SV2 listener.
func (s *Server) isSV2(c gnet.Conn) bool {
	a := s.SV2Addr()
	return a != nil && sameAddr(c.LocalAddr(), a)
}

// sv2Open sets up a new SV2 connection (OnOpen).
func (s *Server) sv2Open(c gnet.Conn) ([]byte, gnet.Action) {
	if s.draining.Load() {
		s.metrics.Rejected.Add(1)
		return nil, gnet.Close
	}
	lp := s.loopOf(c.EventLoop())
	if lp.idx >= s.opts.EventLoops {
		return nil, gnet.Close
	}
	sc := &sv2Conn{srv: s, lp: lp, c: c, nextID: sv2GroupID + 1,
		deadline: s.nowSec.Load() + int64(s.opts.SV2HandshakeTimeout.Seconds())}
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		sc.ip, _ = netip.AddrFromSlice(ta.IP)
		sc.ip = sc.ip.Unmap()
	}
	sc.lpIndex = len(lp.sv2.conns)
	lp.sv2.conns = append(lp.sv2.conns, sc)
	c.SetContext(sc)
	s.metrics.SV2Sessions.Add(1)
	return nil, gnet.None
}

// sv2Close is OnClose for an SV2 connection.
func (s *Server) sv2Close(sc *sv2Conn) {
	sc.closed = true
	lp := sc.lp
	last := len(lp.sv2.conns) - 1
	if sc.lpIndex <= last && lp.sv2.conns[sc.lpIndex] == sc {
		lp.sv2.conns[sc.lpIndex] = lp.sv2.conns[last]
		lp.sv2.conns[sc.lpIndex].lpIndex = sc.lpIndex
		lp.sv2.conns[last] = nil
		lp.sv2.conns = lp.sv2.conns[:last]
	}
	for _, ch := range sc.chans {
		sc.dropChannel(ch)
	}
	sc.chans = nil
	s.metrics.SV2Sessions.Add(-1)
}

// sv2Traffic is OnTraffic for an SV2 connection: the Noise handshake, then
// every whole encrypted frame in the input. The answers of one read are
// sealed and written with one Write.
func (s *Server) sv2Traffic(sc *sv2Conn) gnet.Action {
	c := sc.c
	buf, _ := c.Peek(-1)
	lp := sc.lp
	now := s.nowSec.Load()
	consumed := 0
	if sc.state == sv2Handshake {
		if len(buf) < noise.Act1Len {
			return gnet.None
		}
		act2, ns, err := s.sv2Responder().Respond(lp.sv2.enc[:0], buf[:noise.Act1Len])
		lp.sv2.enc = act2[:0]
		if err != nil {
			s.metrics.SV2HandshakeFailures.Add(1)
			return gnet.Close
		}
		_, _ = c.Write(act2)
		sc.ns, sc.state, consumed = ns, sv2Setup, noise.Act1Len
	}
	lp.sv2.plain = lp.sv2.plain[:0]
	ok := true
	for consumed < len(buf) && ok && !sc.closed {
		h, p, n, err := sc.ns.OpenFrame(buf[consumed:], s.opts.SV2MaxPayload)
		if err != nil {
			s.metrics.SV2ProtocolErrors.Add(1)
			ok = false
			break
		}
		if n == 0 {
			break
		}
		consumed += n
		if sc.state == sv2Ready && len(sc.chans) > 0 {
			sc.deadline = now + int64(s.opts.TCPReadTimeout.Seconds())
		}
		if ok = sc.handle(h, p, now); !ok {
			s.metrics.SV2ProtocolErrors.Add(1)
		}
	}
	if consumed > 0 {
		_, _ = c.Discard(consumed)
	}
	for _, ch := range sc.chans {
		sc.flushAcks(ch)
	}
	if len(lp.sv2.plain) > 0 && !sc.closed {
		if !sc.write(lp.sv2.plain) {
			ok = false
		}
	}
	lp.sv2.plain = lp.sv2.plain[:0]
	if !ok || sc.closed {
		sc.closed = true
		return gnet.Close
	}
	return gnet.None
}

// write seals the plaintext frames in plain and writes them. It reports
// false when the connection must be closed (a cipher error, or more than
// MaxOutbound waiting in the socket's buffer).
func (sc *sv2Conn) write(plain []byte) bool {
	lp := sc.lp
	enc := lp.sv2.enc[:0]
	for len(plain) >= sv2.HeaderLen {
		h, err := sv2.ParseHeader(plain)
		if err != nil {
			return false
		}
		n := sv2.HeaderLen + int(h.Length)
		if n > len(plain) {
			return false
		}
		if enc, err = sc.ns.Seal(enc, plain[:n]); err != nil {
			return false
		}
		plain = plain[n:]
	}
	lp.sv2.enc = enc[:0]
	_, _ = sc.c.Write(enc)
	if sc.c.OutboundBuffered() > sc.srv.opts.MaxOutbound {
		sc.srv.metrics.SlowClosed.Add(1)
		return false
	}
	return true
}

// handle runs one client message and reports false when the connection must
// be closed (a protocol violation: a message out of order or in the wrong
// direction, or one that does not decode).
func (sc *sv2Conn) handle(h sv2.Header, p []byte, now int64) bool {
	if h.Extension() != 0 {
		return true // unknown extension: discarded (§3.4.1)
	}
	if sv2.CheckHeader(h) != nil {
		return false
	}
	if sc.state != sv2Ready && h.MsgType != sv2.MsgSetupConnection {
		return false
	}
	lp := sc.lp
	switch h.MsgType {
	case sv2.MsgSubmitSharesStandard:
		m := &lp.sv2.std
		if sv2.DecodeSubmitSharesStandard(p, m) != nil {
			return false
		}
		sc.submit(m.ChannelID, m.SequenceNumber, m.JobID, m.Nonce, m.NTime, m.Version, nil, false, now)
	case sv2.MsgSubmitSharesExtended:
		m := &lp.sv2.ext
		if sv2.DecodeSubmitSharesExtended(p, m) != nil {
			return false
		}
		sc.submit(m.ChannelID, m.SequenceNumber, m.JobID, m.Nonce, m.NTime, m.Version, m.Extranonce, true, now)
	case sv2.MsgSetupConnection:
		return sc.setup(p, now)
	case sv2.MsgOpenStandardMiningChannel:
		var m sv2.OpenStandardMiningChannel
		if sv2.DecodeOpenStandardMiningChannel(p, &m) != nil {
			return false
		}
		sc.openChannel(m.RequestID, m.UserIdentity, m.NominalHashRate, &m.MaxTarget, false, 0, now)
	case sv2.MsgOpenExtendedMiningChannel:
		var m sv2.OpenExtendedMiningChannel
		if sv2.DecodeOpenExtendedMiningChannel(p, &m) != nil {
			return false
		}
		sc.openChannel(m.RequestID, m.UserIdentity, m.NominalHashRate, &m.MaxTarget, true, int(m.MinExtranonceSize), now)
	case sv2.MsgUpdateChannel:
		var m sv2.UpdateChannel
		if sv2.DecodeUpdateChannel(p, &m) != nil {
			return false
		}
		sc.updateChannel(&m, now)
	case sv2.MsgCloseChannel:
		var m sv2.CloseChannel
		if sv2.DecodeCloseChannel(p, &m) != nil {
			return false
		}
		sc.closeChannel(m.ChannelID)
	case sv2.MsgSetCustomMiningJob:
		var m sv2.SetCustomMiningJob
		if sv2.DecodeSetCustomMiningJob(p, &m) != nil {
			return false
		}
		lp.sv2.plain = sv2.AppendSetCustomMiningJobError(lp.sv2.plain, &sv2.SetCustomMiningJobError{
			ChannelID: m.ChannelID, RequestID: m.RequestID, ErrorCode: sv2CodeUnsupportedFlags})
	default:
		return false // a server → client message
	}
	return true
}

// setup answers SetupConnection (sv2pool's rules: the mining protocol,
// version 2, no work selection).
func (sc *sv2Conn) setup(p []byte, now int64) bool {
	if sc.state != sv2Setup {
		return false // SetupConnection twice
	}
	var m sv2.SetupConnection
	if sv2.DecodeSetupConnection(p, &m) != nil {
		return false
	}
	supported := sv2FlagRequiresStandardJobs
	if sc.srv.opts.VersionMask != 0 {
		supported |= sv2FlagRequiresVersionRolling
	}
	lp := sc.lp
	fail := func(flags uint32, code []byte) bool {
		lp.sv2.plain = sv2.AppendSetupConnectionError(lp.sv2.plain, &sv2.SetupConnectionError{Flags: flags, ErrorCode: code})
		sc.srv.metrics.SV2SetupRefused.Add(1)
		if len(lp.sv2.plain) > 0 {
			sc.write(lp.sv2.plain)
			lp.sv2.plain = lp.sv2.plain[:0]
		}
		sc.closed = true
		return true
	}
	switch {
	case m.Protocol != 0:
		return fail(0, sv2CodeUnsupportedProto)
	case m.MinVersion > 2 || m.MaxVersion < 2:
		return fail(0, sv2CodeVersionMismatch)
	case m.Flags&^supported != 0:
		return fail(m.Flags&^supported, sv2CodeUnsupportedFlags)
	}
	sc.state, sc.flags = sv2Ready, m.Flags
	agent := string(m.Vendor)
	if len(m.Firmware) > 0 {
		agent += "/" + string(m.Firmware)
	}
	sc.agent = FilterAgent(agent)
	sc.deadline = now + int64(sc.srv.opts.AuthorizeTimeout.Seconds())
	var flags uint32
	if sc.srv.opts.VersionMask == 0 {
		flags = sv2FlagRequiresFixedVersion
	}
	lp.sv2.plain = sv2.AppendSetupConnectionSuccess(lp.sv2.plain, &sv2.SetupConnectionSuccess{UsedVersion: 2, Flags: flags})
	return true
}

// channel returns the open channel id, or nil.
func (sc *sv2Conn) channel(id uint32) *sv2Channel {
	for _, ch := range sc.chans {
		if ch.id == id {
			return ch
		}
	}
	return nil
}

// sv2Target converts a share target to the protocol's little-endian U256.
func sv2Target(t *sha.Target) (u sv2.U256) {
	for i := 0; i < 4; i++ {
		binary.LittleEndian.PutUint64(u[8*i:], t[i])
	}
	return u
}

func expTarget(e int8) sv2.U256 { return sv2Target(&shareTargets[int(e)-MinDiffExp]) }

// maxTargetExp is the smallest difficulty exponent whose target is at or
// below max (ok false: max is harder than MaxDifficulty allows).
func (s *Server) maxTargetExp(max *sv2.U256) (int, bool) {
	t := sha.HashToTarget(max)
	if t.IsZero() {
		return 0, false
	}
	e := DiffExp(t.Difficulty())
	for e < MaxDiffExp && shareTargets[e-MinDiffExp].Cmp(&t) > 0 {
		e++
	}
	if shareTargets[e-MinDiffExp].Cmp(&t) > 0 || e > DiffExp(s.opts.MaxDifficulty) {
		return 0, false
	}
	return e, true
}

// openChannel answers OpenStandardMiningChannel and
// OpenExtendedMiningChannel. The channel's extranonce prefix is a session
// id from the engine's allocator (4 bytes, SV1's extranonce1); an extended
// channel's miner rolls ExtraNonce2Size bytes after it, a standard
// channel's extranonce is the prefix and that many zero bytes.
func (sc *sv2Conn) openChannel(reqID uint32, user []byte, hashRate float32, maxTarget *sv2.U256, extended bool, minEN int, now int64) {
	srv, lp := sc.srv, sc.lp
	fail := func(code []byte) {
		srv.metrics.SV2ChannelsRefused.Add(1)
		lp.sv2.plain = sv2.AppendOpenMiningChannelError(lp.sv2.plain, &sv2.OpenMiningChannelError{RequestID: reqID, ErrorCode: code})
	}
	for _, ch := range sc.chans {
		if ch.reqID == reqID {
			fail(sv2CodeDuplicateRequest) // the open channel keeps it
			return
		}
	}
	minExp, ok := srv.maxTargetExp(maxTarget)
	switch {
	case srv.draining.Load():
		fail(sv2CodeShuttingDown)
		return
	case len(sc.chans) >= srv.opts.SV2MaxChannels || sc.nextID <= sv2GroupID: // or 2^32 opens: ids wrapped
		fail(sv2CodeTooManyChannels)
		return
	case !ok:
		fail(sv2CodeMaxTarget)
		return
	case extended && minEN > srv.opts.ExtraNonce2Size:
		fail(sv2CodeMinExtranonce)
		return
	}
	id, ok := srv.ids.Alloc()
	if !ok {
		fail(sv2CodeNoSessionID)
		return
	}
	ch := &sv2Channel{id: sc.nextID, reqID: reqID, extended: extended}
	ch.grouped = !extended && sc.flags&sv2FlagRequiresStandardJobs == 0
	ch.wire = sv2Wire{Conn: sc.c, sc: sc}
	ch.sess = *newSession(srv, lp, id, sc.ip, now)
	s := &ch.sess
	s.conn = &ch.wire
	s.m.agent = sc.agent
	name, worker := srv.opts.Names.SplitWorkerName(string(user))
	s.newUsers = sc.newUsers // NewUsersPerConn bounds the connection, not each channel
	uid, known, refused := s.lookupUser(name)
	sc.newUsers = s.newUsers
	if refused {
		srv.metrics.UsersRefused.Add(1)
	}
	if !known || len(user) == 0 {
		srv.ids.FreeOn(id, lp.idx)
		fail(sv2CodeUnknownUser)
		return
	}
	sc.nextID++
	s.userName, s.userID = name, uid
	s.m.worker, s.m.workerID = worker, WorkerID(worker)
	s.state = stateAuthorized
	if hashRate > 0 && !(float64(hashRate) > 1e21) {
		// Start where the nominal hash rate finds a share every
		// ShareAvgSeconds (difficulty 1 is 2^32 hashes).
		s.m.vd.Reset(DiffExp(float64(hashRate) * float64(srv.opts.ShareAvgSeconds) / (1 << 32)))
	}
	s.m.vd.SetMin(max(minExp, s.m.vd.MinExp()))
	ch.sentExp = int8(s.m.vd.Calc(now))
	sc.chans = append(sc.chans, ch)
	sc.deadline = now + int64(srv.opts.TCPReadTimeout.Seconds())
	srv.metrics.SV2Channels.Add(1)
	srv.metrics.Authorized.Add(1)
	srv.out.event(btcpool.ActionMinerConnect, btcpool.DescNewConn, s, &s.m)

	target := expTarget(ch.sentExp)
	var prefix [4 + 8]byte
	copy(prefix[:4], s.en1[:])
	if extended {
		lp.sv2.plain = sv2.AppendOpenExtendedMiningChannelSuccess(lp.sv2.plain, &sv2.OpenExtendedMiningChannelSuccess{
			RequestID: reqID, ChannelID: ch.id, Target: target, ExtranonceSize: uint16(srv.opts.ExtraNonce2Size),
			ExtranoncePrefix: prefix[:4]})
	} else {
		group := uint32(0)
		if ch.grouped {
			group = sv2GroupID
		}
		lp.sv2.plain = sv2.AppendOpenStandardMiningChannelSuccess(lp.sv2.plain, &sv2.OpenStandardMiningChannelSuccess{
			RequestID: reqID, ChannelID: ch.id, Target: target, ExtranoncePrefix: prefix[:4+srv.opts.ExtraNonce2Size],
			GroupChannelID: group})
	}
	// The current job, as a future job activated by SetNewPrevHash (§5.3.17:
	// a prevhash is sent when a new downstream opens a channel). A stale
	// newest job is not handed out (as for SV1 sessions).
	if fr := srv.sv2.latest.Load(); fr != nil && !fr.job.Stale() && !fr.job.Expired() {
		sc.sendChannelJob(ch, fr, true, now)
	}
}

// dropChannel releases a channel's session id and reports its worker gone.
func (sc *sv2Conn) dropChannel(ch *sv2Channel) {
	s := &ch.sess
	s.closed = true
	sc.srv.ids.FreeOn(s.id, sc.lp.idx)
	sc.srv.metrics.SV2Channels.Add(-1)
	sc.srv.out.event(btcpool.ActionMinerDead, btcpool.DescDelConn, s, &s.m)
}

// closeChannel handles CloseChannel (a channel id, or the group's id for
// every channel in the group).
func (sc *sv2Conn) closeChannel(id uint32) {
	kept := sc.chans[:0]
	for _, ch := range sc.chans {
		if ch.id == id || (id == sv2GroupID && ch.grouped) {
			sc.dropChannel(ch)
			continue
		}
		kept = append(kept, ch)
	}
	clear(sc.chans[len(kept):])
	sc.chans = kept
}

// updateChannel handles UpdateChannel: a new maximum target bounds the
// channel's difficulty from below.
func (sc *sv2Conn) updateChannel(m *sv2.UpdateChannel, now int64) {
	lp := sc.lp
	ch := sc.channel(m.ChannelID)
	if ch == nil {
		lp.sv2.plain = sv2.AppendUpdateChannelError(lp.sv2.plain, &sv2.UpdateChannelError{ChannelID: m.ChannelID, ErrorCode: sv2CodeInvalidChannel})
		return
	}
	e, ok := sc.srv.maxTargetExp(&m.MaximumTarget)
	if !ok {
		lp.sv2.plain = sv2.AppendUpdateChannelError(lp.sv2.plain, &sv2.UpdateChannelError{ChannelID: m.ChannelID, ErrorCode: sv2CodeMaxTarget})
		return
	}
	vd := &ch.sess.m.vd
	vd.SetMin(max(e, DiffExp(sc.srv.opts.MinDifficulty)))
	sc.retarget(ch, int8(vd.Calc(now)))
}

// retarget sends SetTarget when the channel's difficulty changed. The
// target is the channel's, not a job's (§5.3.20): jobs already sent are
// checked at the easier of their own and the new difficulty from now on.
func (sc *sv2Conn) retarget(ch *sv2Channel, e int8) {
	if e == ch.sentExp {
		return
	}
	ch.sentExp = e
	m := &ch.sess.m
	for k := range m.exps {
		if m.has&(1<<k) != 0 && m.exps[k] > e {
			m.exps[k] = e
		}
	}
	sc.lp.sv2.plain = sv2.AppendSetTarget(sc.lp.sv2.plain, &sv2.SetTarget{ChannelID: ch.id, MaximumTarget: expTarget(e)})
}

// submit checks one share with the engine's validation (submit.go) and
// answers it: accepted shares are batched into one SubmitShares.Success per
// channel and read, rejects get SubmitShares.Error at once. A channel
// whose solved share is not journaled yet has its answers held (solved.go).
func (sc *sv2Conn) submit(chID, seq, jobID, nonce, ntime, version uint32, en []byte, extended bool, now int64) {
	srv, lp := sc.srv, sc.lp
	ch := sc.channel(chID)
	if ch == nil || ch.extended != extended {
		srv.metrics.countShare(stratum.StatusJobNotFound)
		lp.sv2.plain = sv2.AppendSubmitSharesError(lp.sv2.plain, &sv2.SubmitSharesError{ChannelID: chID, SequenceNumber: seq, ErrorCode: sv2CodeInvalidChannel})
		return
	}
	if extended && len(en) != srv.opts.ExtraNonce2Size {
		srv.metrics.countShare(stratum.StatusIllegalParams)
		sc.shareError(ch, seq, sv2CodeExtranonceSize)
		return
	}
	s := &ch.sess
	idx := -1
	if jobID <= 0xff {
		for i := 0; i < localJobs; i++ {
			k := (int(s.jobHead) - i + localJobs) % localJobs
			if j := s.jobs[k]; j != nil && uint32(j.ShortID) == jobID && s.m.has&(1<<k) != 0 {
				idx = k
				break
			}
		}
	}
	if idx < 0 {
		srv.metrics.countShare(stratum.StatusJobNotFound)
		sc.shareError(ch, seq, sv2CodeInvalidJob)
		return
	}
	j := s.jobs[idx]
	var en2 uint64
	for _, b := range en {
		en2 = en2<<8 | uint64(b)
	}
	in := shareInput{short: uint8(jobID), en2: en2 & srv.en2Mask, ntime: ntime, nonce: nonce, versionMask: version ^ j.Hash.Version()}
	if in.ntime == 0 {
		in.ntime = 1 // 0 means "the job's time" to validateShare; SV2 always sends one
	}
	held := s.holdN > 0
	st := s.checkShare(&s.m, &in, now)
	s.holdAt = -1
	if st.IsAccepted() {
		if !held && s.holdN > 0 {
			sc.flushAcksTo(ch, false) // the earlier shares' answer is not held
			srv.metrics.HeldAnswers.Add(1)
		}
		ch.accN++
		ch.accSum += creditDiff(s.m.exps[idx])
		ch.accSeq = seq
		return
	}
	code := sv2CodeUnknown
	switch st {
	case stratum.StatusJobNotFound, stratum.StatusStaleShare:
		code = sv2CodeStale
	case stratum.StatusDuplicateShare:
		code = sv2CodeDuplicate
	case stratum.StatusLowDifficulty:
		code = sv2CodeLowDifficulty
	case stratum.StatusTimeTooOld, stratum.StatusTimeTooNew:
		code = sv2CodeTimestamp
	case stratum.StatusIllegalVersionMask:
		code = sv2CodeVersion
	}
	sc.shareError(ch, seq, code)
}

func (sc *sv2Conn) shareError(ch *sv2Channel, seq uint32, code []byte) {
	sc.flushAcks(ch)
	s := &ch.sess
	m := sv2.SubmitSharesError{ChannelID: ch.id, SequenceNumber: seq, ErrorCode: code}
	if s.holdN > 0 {
		s.held = sv2.AppendSubmitSharesError(s.held, &m)
		sc.checkHeld(s)
		return
	}
	sc.lp.sv2.plain = sv2.AppendSubmitSharesError(sc.lp.sv2.plain, &m)
}

// flushAcks answers the channel's accepted shares not answered yet.
func (sc *sv2Conn) flushAcks(ch *sv2Channel) { sc.flushAcksTo(ch, ch.sess.holdN > 0) }

// flushAcksTo answers them in the channel's held answers or in the read's
// output.
func (sc *sv2Conn) flushAcksTo(ch *sv2Channel, held bool) {
	if ch.accN == 0 {
		return
	}
	m := sv2.SubmitSharesSuccess{ChannelID: ch.id, LastSequenceNumber: ch.accSeq, NewSubmitsAcceptedCount: ch.accN, NewSharesSum: ch.accSum}
	ch.accN, ch.accSum = 0, 0
	s := &ch.sess
	if held {
		s.held = sv2.AppendSubmitSharesSuccess(s.held, &m)
		sc.checkHeld(s)
		return
	}
	sc.lp.sv2.plain = sv2.AppendSubmitSharesSuccess(sc.lp.sv2.plain, &m)
}

func (sc *sv2Conn) checkHeld(s *Session) {
	if len(s.held) > sc.srv.opts.MaxOutbound {
		sc.srv.metrics.SlowClosed.Add(1)
		sc.closed = true
	}
}

// sv2Sweep closes the loop's SV2 connections whose deadline passed
// (handshake and SetupConnection: SV2HandshakeTimeout; the first channel:
// AuthorizeTimeout; then TCPReadTimeout without input).
func (lp *loop) sv2Sweep(now int64) {
	for i := 0; i < len(lp.sv2.conns); i++ {
		sc := lp.sv2.conns[i]
		if now > sc.deadline && !sc.closed {
			lp.srv.metrics.TimedOut.Add(1)
			sc.closed = true
			_ = lp.el.Close(sc.c) // OnClose removes sc from lp.sv2.conns
			i--
		}
	}
}

// sv2Run is the SV2 side's timer: the certificate's renewal (sv2cert.go),
// the periodic job send (a job that did not go out at once,
// mining_notify_interval) and the connection deadlines.
func (s *Server) sv2Run(stop <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	s.sv2CheckCert(time.Now())
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			s.sv2CheckCert(time.Now())
			now := time.Now().Unix()
			if j := s.repo.Latest(); j != nil && !j.Stale() && !j.Expired() {
				if fr := s.sv2.latest.Load(); fr == nil || (fr.job != j && fr.sentAt+s.opts.MiningNotifyPeriod <= now) {
					s.sv2Broadcast(j)
				}
			}
			s.eachLoop(func(lp *loop) { lp.sv2Sweep(now) })
		}
	}
}
