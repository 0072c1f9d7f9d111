package sv2pool

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/hashpool/hashpool/codec/sv2"
	"github.com/hashpool/hashpool/codec/sv2/noise"
	"github.com/hashpool/hashpool/sha"
)

// Mining protocol SetupConnection flags (§5.3.1).
const (
	FlagRequiresStandardJobs   uint32 = 1 << 0
	FlagRequiresWorkSelection  uint32 = 1 << 1
	FlagRequiresVersionRolling uint32 = 1 << 2
	// supportedFlags: standard jobs and version rolling are always served;
	// work selection (SetCustomMiningJob) is not.
	supportedFlags = FlagRequiresStandardJobs | FlagRequiresVersionRolling
)

// Server is the pool role's listener: it owns the sessions, their channels
// and the current jobs.
type Server struct {
	o Options

	mu       sync.Mutex
	ln       []net.Listener
	sessions map[*session]struct{}
	channels map[uint32]*channel
	nextChan uint32
	nextPfx  uint32
	jobs     map[uint32]*poolJob // jobs valid on the current prevhash
	blockJob uint32              // first job id of the current prevhash
	nextJob  uint32
	cur      *poolJob // latest job
	closed   bool
	wg       sync.WaitGroup
}

// NewServer validates o and returns a server with no job yet.
func NewServer(o Options) (*Server, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o.setDefaults()
	return &Server{
		o:        o,
		sessions: map[*session]struct{}{},
		channels: map[uint32]*channel{},
		jobs:     map[uint32]*poolJob{},
		nextChan: 1,
		nextPfx:  1,
		nextJob:  1,
	}, nil
}

// Serve accepts connections on ln until ln or the server is closed.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return net.ErrClosed
	}
	s.ln = append(s.ln, ln)
	s.mu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(c)
		}()
	}
}

// Close stops the listeners, closes every session and waits for their
// goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for _, ln := range s.ln {
		ln.Close()
	}
	for ss := range s.sessions {
		ss.c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// Sessions returns the number of established sessions.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// session is one connection after its handshake.
type session struct {
	srv      *Server
	c        *noise.Conn
	out      chan []byte
	done     chan struct{} // closed by close: stop now
	quit     chan struct{} // closed when the reader ends: flush, then stop
	wdone    chan struct{} // closed when the writer has stopped
	once     sync.Once
	setup    bool
	flags    uint32
	channels map[uint32]*channel // owned by the reader goroutine; also in srv.channels
	hasher   sha.Hasher
}

func (s *Server) serveConn(nc net.Conn) {
	log := s.o.Logger.With("remote", nc.RemoteAddr().String())
	c, err := noise.Server(nc, s.o.Responder, noise.ConnOptions{HandshakeTimeout: s.o.HandshakeTimeout, MaxPayload: s.o.MaxPayload})
	if err != nil {
		log.Debug("sv2 handshake failed", "err", err)
		nc.Close()
		return
	}
	ss := &session{srv: s, c: c, out: make(chan []byte, s.o.OutQueue), done: make(chan struct{}),
		quit: make(chan struct{}), wdone: make(chan struct{}), channels: map[uint32]*channel{}}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.Close()
		return
	}
	s.sessions[ss] = struct{}{}
	s.mu.Unlock()

	go ss.writer()
	err = ss.read()
	s.mu.Lock()
	delete(s.sessions, ss)
	for id := range ss.channels {
		delete(s.channels, id)
	}
	s.mu.Unlock()
	// Let the writer flush what is queued (a SetupConnection.Error, say),
	// bounded by WriteTimeout per frame, then close.
	close(ss.quit)
	<-ss.wdone
	ss.close()
	log.Debug("sv2 session closed", "err", err)
}

func (ss *session) close() {
	ss.once.Do(func() {
		close(ss.done)
		ss.c.Close()
	})
}

// send queues a frame without blocking; a full queue closes the session
// (the peer is not reading). The frame must not be modified afterwards.
func (ss *session) send(frame []byte) {
	select {
	case ss.out <- frame:
	default:
		ss.close()
	}
}

func (ss *session) writer() {
	defer close(ss.wdone)
	nc := ss.c.NetConn()
	write := func(f []byte) bool {
		nc.SetWriteDeadline(ss.srv.o.Now().Add(ss.srv.o.WriteTimeout))
		if err := ss.c.WriteFrame(f); err != nil {
			ss.close()
			return false
		}
		return true
	}
	for {
		select {
		case f := <-ss.out:
			if !write(f) {
				return
			}
		case <-ss.quit:
			for {
				select {
				case f := <-ss.out:
					if !write(f) {
						return
					}
				default:
					return
				}
			}
		case <-ss.done:
			return
		}
	}
}

// errClose is returned by a message handler to close the connection: the
// peer broke the protocol (a message out of order or in the wrong direction).
var errClose = errors.New("sv2pool: protocol violation")

func (ss *session) read() error {
	nc := ss.c.NetConn()
	nc.SetReadDeadline(ss.srv.o.Now().Add(ss.srv.o.SetupTimeout))
	for {
		h, p, err := ss.c.ReadFrame()
		if err != nil {
			return err
		}
		if h.Extension() != 0 {
			continue // unknown extension: discard (§3.4.1)
		}
		if err := sv2.CheckHeader(h); err != nil {
			return err
		}
		if !ss.setup && h.MsgType != sv2.MsgSetupConnection {
			return errClose
		}
		if err := ss.handle(h.MsgType, p); err != nil {
			return err
		}
		if ss.setup {
			nc.SetReadDeadline(time.Time{})
		}
	}
}

func (ss *session) reply(frame []byte) { ss.send(frame) }

func (ss *session) handle(t uint8, p []byte) error {
	switch t {
	case sv2.MsgSetupConnection:
		return ss.onSetup(p)
	case sv2.MsgOpenStandardMiningChannel:
		var m sv2.OpenStandardMiningChannel
		if err := sv2.DecodeOpenStandardMiningChannel(p, &m); err != nil {
			return err
		}
		ss.openChannel(m.RequestID, m.UserIdentity, m.MaxTarget, false, 0)
	case sv2.MsgOpenExtendedMiningChannel:
		var m sv2.OpenExtendedMiningChannel
		if err := sv2.DecodeOpenExtendedMiningChannel(p, &m); err != nil {
			return err
		}
		ss.openChannel(m.RequestID, m.UserIdentity, m.MaxTarget, true, int(m.MinExtranonceSize))
	case sv2.MsgSubmitSharesStandard:
		var m sv2.SubmitSharesStandard
		if err := sv2.DecodeSubmitSharesStandard(p, &m); err != nil {
			return err
		}
		ss.submit(m.ChannelID, m.SequenceNumber, m.JobID, m.Nonce, m.NTime, m.Version, nil, false)
	case sv2.MsgSubmitSharesExtended:
		var m sv2.SubmitSharesExtended
		if err := sv2.DecodeSubmitSharesExtended(p, &m); err != nil {
			return err
		}
		ss.submit(m.ChannelID, m.SequenceNumber, m.JobID, m.Nonce, m.NTime, m.Version, m.Extranonce, true)
	case sv2.MsgUpdateChannel:
		var m sv2.UpdateChannel
		if err := sv2.DecodeUpdateChannel(p, &m); err != nil {
			return err
		}
		if _, ok := ss.channels[m.ChannelID]; !ok {
			ss.reply(sv2.AppendUpdateChannelError(nil, &sv2.UpdateChannelError{ChannelID: m.ChannelID, ErrorCode: []byte("invalid-channel-id")}))
			return nil
		}
		ss.srv.updateMaxTarget(m.ChannelID, sha.HashToTarget(&m.MaximumTarget))
	case sv2.MsgCloseChannel:
		var m sv2.CloseChannel
		if err := sv2.DecodeCloseChannel(p, &m); err != nil {
			return err
		}
		ss.srv.mu.Lock()
		delete(ss.srv.channels, m.ChannelID)
		ss.srv.mu.Unlock()
		delete(ss.channels, m.ChannelID)
	case sv2.MsgSetCustomMiningJob:
		var m sv2.SetCustomMiningJob
		if err := sv2.DecodeSetCustomMiningJob(p, &m); err != nil {
			return err
		}
		ss.reply(sv2.AppendSetCustomMiningJobError(nil, &sv2.SetCustomMiningJobError{
			ChannelID: m.ChannelID, RequestID: m.RequestID, ErrorCode: []byte("unsupported-feature-flags")}))
	default:
		return errClose // a server → client message, or SetupConnection twice
	}
	return nil
}

func (ss *session) onSetup(p []byte) error {
	if ss.setup {
		return errClose
	}
	var m sv2.SetupConnection
	if err := sv2.DecodeSetupConnection(p, &m); err != nil {
		return err
	}
	fail := func(flags uint32, code string) error {
		ss.reply(sv2.AppendSetupConnectionError(nil, &sv2.SetupConnectionError{Flags: flags, ErrorCode: []byte(code)}))
		return errors.New("sv2pool: SetupConnection refused: " + code)
	}
	switch {
	case m.Protocol != 0:
		return fail(0, "unsupported-protocol")
	case m.MinVersion > 2 || m.MaxVersion < 2:
		return fail(0, "protocol-version-mismatch")
	case m.Flags&^supportedFlags != 0:
		return fail(m.Flags&^supportedFlags, "unsupported-feature-flags")
	}
	ss.setup, ss.flags = true, m.Flags
	ss.reply(sv2.AppendSetupConnectionSuccess(nil, &sv2.SetupConnectionSuccess{UsedVersion: 2, Flags: 0}))
	return nil
}

// channel is one open mining channel.
type channel struct {
	id        uint32
	ss        *session
	extended  bool
	user      string
	prefix    []byte // extranonce_prefix
	enSize    int    // miner's extranonce bytes (extended channels)
	target    sha.Target
	maxTarget sha.Target
	seen      map[[32]byte]struct{} // share hashes on the current prevhash
	// jobTarget holds the target in force when each job was sent active
	// (with min_ntime): SetTarget does not apply to those (§5.3.21). Jobs
	// sent as future jobs follow the channel's latest target.
	jobTarget map[uint32]sha.Target
}

func targetU256(t sha.Target) (u sv2.U256) {
	for i := 0; i < 4; i++ {
		binary.LittleEndian.PutUint64(u[8*i:], t[i])
	}
	return u
}

func (ss *session) openChannel(reqID uint32, user []byte, maxTarget sv2.U256, extended bool, minEN int) {
	s := ss.srv
	fail := func(code string) {
		ss.reply(sv2.AppendOpenMiningChannelError(nil, &sv2.OpenMiningChannelError{RequestID: reqID, ErrorCode: []byte(code)}))
	}
	max := sha.HashToTarget(&maxTarget)
	enSize := s.o.ExtranonceLen - s.o.PrefixLen
	switch {
	case len(ss.channels) >= s.o.MaxChannels:
		fail("too-many-channels")
		return
	case max.IsZero():
		fail("max-target-out-of-range")
		return
	case extended && minEN > enSize:
		fail("min-extranonce-size-too-large")
		return
	}
	target := sha.DiffToTarget(s.o.InitialDifficulty)
	if max.Cmp(&target) < 0 {
		target = max
	}
	s.mu.Lock()
	ch := &channel{id: s.nextChan, ss: ss, extended: extended, user: string(user), target: target, maxTarget: max,
		seen: map[[32]byte]struct{}{}, jobTarget: map[uint32]sha.Target{}}
	s.nextChan++
	pfxLen := s.o.ExtranonceLen
	if extended {
		pfxLen, ch.enSize = s.o.PrefixLen, enSize
	}
	ch.prefix = make([]byte, pfxLen)
	var ctr [4]byte
	binary.BigEndian.PutUint32(ctr[:], s.nextPfx)
	s.nextPfx++
	copy(ch.prefix, ctr[4-s.o.PrefixLen:])
	s.channels[ch.id] = ch
	ss.channels[ch.id] = ch
	tu := targetU256(target)
	if extended {
		ss.reply(sv2.AppendOpenExtendedMiningChannelSuccess(nil, &sv2.OpenExtendedMiningChannelSuccess{
			RequestID: reqID, ChannelID: ch.id, Target: tu, ExtranonceSize: uint16(enSize), ExtranoncePrefix: ch.prefix}))
	} else {
		ss.reply(sv2.AppendOpenStandardMiningChannelSuccess(nil, &sv2.OpenStandardMiningChannelSuccess{
			RequestID: reqID, ChannelID: ch.id, Target: tu, ExtranoncePrefix: ch.prefix}))
	}
	// The current job, as a future job activated by SetNewPrevHash (§5.3.17:
	// a prevhash is sent when a new downstream opens a channel).
	if j := s.cur; j != nil {
		ss.reply(s.jobFrame(j, ch, true))
		ss.reply(s.prevHashFrame(j, ch.id))
	}
	s.mu.Unlock()
}

// SetTarget changes a channel's share target (capped at its max_target) and
// sends SetTarget. Shares for jobs the channel already received with a
// min_ntime keep the target they were sent under (§5.3.21). It reports
// whether the channel exists.
func (s *Server) SetTarget(channelID uint32, t sha.Target) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.channels[channelID]
	if !ok {
		return false
	}
	if ch.maxTarget.Cmp(&t) < 0 {
		t = ch.maxTarget
	}
	ch.target = t
	ch.ss.send(sv2.AppendSetTarget(nil, &sv2.SetTarget{ChannelID: channelID, MaximumTarget: targetU256(t)}))
	return true
}

func (s *Server) updateMaxTarget(channelID uint32, max sha.Target) {
	if max.IsZero() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.channels[channelID]
	if !ok {
		return
	}
	ch.maxTarget = max
	if max.Cmp(&ch.target) < 0 {
		ch.target = max
		ch.ss.send(sv2.AppendSetTarget(nil, &sv2.SetTarget{ChannelID: channelID, MaximumTarget: targetU256(max)}))
	}
}
