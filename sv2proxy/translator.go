package sv2proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashpool/hashpool/codec/sv2"
	"github.com/hashpool/hashpool/codec/sv2/noise"
)

// Mining protocol SetupConnection flag REQUIRES_VERSION_ROLLING (§5.3.1):
// SV1 miners roll version bits, so every job must allow it.
const flagRequiresVersionRolling uint32 = 1 << 2

// Stats counts what went through the translator. Read with Load.
type Stats struct {
	Miners        atomic.Int64 // connected miners
	Submitted     atomic.Int64 // mining.submit lines that were well-formed
	Forwarded     atomic.Int64 // SubmitSharesExtended sent upstream
	Accepted      atomic.Int64 // shares the pool accepted
	Rejected      atomic.Int64 // shares answered with an error (pool's or ours)
	RejectedStale atomic.Int64 // of those, code 21 (stale, unknown job, pool lost)
	RejectedDup   atomic.Int64 // code 22
	RejectedLow   atomic.Int64 // code 23
	Jobs          atomic.Int64 // NewExtendedMiningJob frames received
	Notifies      atomic.Int64 // mining.notify lines queued to miners
	Connects      atomic.Int64 // upstream sessions established
	DialFailures  atomic.Int64 // dials, handshakes or setups that failed
	UpWireOut     atomic.Int64 // TCP payload bytes written to pools (ciphertext)
	UpWireIn      atomic.Int64 // TCP payload bytes read from pools
	DownWireOut   atomic.Int64 // bytes written to miners
	DownWireIn    atomic.Int64 // bytes read from miners
}

// Translator serves SV1 miners and mines for them on one SV2 upstream.
type Translator struct {
	o     Options
	log   *slog.Logger
	stats Stats

	mu       sync.Mutex
	closed   bool
	lns      []net.Listener
	miners   map[uint32]*miner // by session id
	nextSID  uint32
	up       *upconn             // nil while no pool is connected
	channels map[uint32]*channel // open channels on up, by channel id
	reqs     map[uint32]*channel // channels being opened, by request id
	shared   *channel            // SharedChannel mode: the channel
	nextReq  uint32
	jobSeq   uint64 // SV1 job ids, never reused across upstreams
	lastErr  error
	current  string // address of the connected pool

	wg sync.WaitGroup
}

// New validates o and returns a translator; call Serve for miners and Run
// for the upstream side.
func New(o Options) (*Translator, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o.setDefaults()
	return &Translator{o: o, log: o.Logger, miners: map[uint32]*miner{}, channels: map[uint32]*channel{},
		reqs: map[uint32]*channel{}, nextSID: 1, nextReq: 1}, nil
}

// Stats returns the translator's counters.
func (t *Translator) Stats() *Stats { return &t.stats }

// Upstream returns the address of the connected pool ("" when none) and
// the last upstream error (a dial, handshake, certificate or protocol
// failure).
func (t *Translator) Upstream() (addr string, lastErr error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.current, t.lastErr
}

// Serve accepts miners on ln until ln or the translator is closed.
func (t *Translator) Serve(ln net.Listener) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		ln.Close()
		return net.ErrClosed
	}
	t.lns = append(t.lns, ln)
	t.mu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		t.ServeConn(c)
	}
}

// ServeConn takes over one miner connection (for a caller that accepts
// connections itself) and returns at once; the translator closes c.
func (t *Translator) ServeConn(c net.Conn) {
	m, ok := t.addMiner(c)
	if !ok {
		c.Close()
		return
	}
	t.wg.Add(2)
	go func() { defer t.wg.Done(); m.writer() }()
	go func() { defer t.wg.Done(); m.run() }()
}

// Run keeps an upstream connected until ctx ends, then closes the
// listeners, every miner and the upstream and waits for their goroutines.
func (t *Translator) Run(ctx context.Context) error {
	defer t.shutdown()
	n := len(t.o.Upstreams)
	next, fails := 0, 0
	var redirect *Upstream // where a Reconnect sent us, tried once
	for ctx.Err() == nil {
		u := t.o.Upstreams[next]
		if redirect != nil {
			u, redirect = *redirect, nil
		}
		up, err := t.dial(ctx, u)
		if err == nil {
			fails = 0
			err = t.serveUpstream(ctx, up)
			var rc *reconnectError
			if errors.As(err, &rc) {
				t.log.Info("sv2 pool redirects us", "pool", u.Addr, "to", rc.to.Addr)
				redirect = &rc.to
				if !sleep(ctx, t.o.ReconnectMin) { // a pool that keeps redirecting is not dialed in a loop
					break
				}
				continue
			}
			t.log.Warn("sv2 upstream lost", "pool", u.Addr, "err", err)
			next = (next + 1) % n
			if n == 1 && !sleep(ctx, t.o.ReconnectMin) {
				break
			}
			continue
		}
		t.stats.DialFailures.Add(1)
		t.setErr(fmt.Errorf("%s: %w", u.Addr, err))
		t.log.Warn("sv2 upstream unavailable", "pool", u.Addr, "err", err)
		next = (next + 1) % n
		fails++
		if fails%n == 0 && !sleep(ctx, t.backoff(fails/n)) {
			break
		}
	}
	return nil
}

func (t *Translator) backoff(rounds int) time.Duration {
	d := t.o.ReconnectMin
	for i := 1; i < rounds && d < t.o.ReconnectMax; i++ {
		d *= 2
	}
	return min(d, t.o.ReconnectMax)
}

func sleep(ctx context.Context, d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

func (t *Translator) setErr(err error) {
	t.mu.Lock()
	t.lastErr = err
	t.mu.Unlock()
}

func (t *Translator) shutdown() {
	t.mu.Lock()
	t.closed = true
	for _, ln := range t.lns {
		ln.Close()
	}
	for _, m := range t.miners {
		m.close()
	}
	if t.up != nil {
		t.up.close()
	}
	t.mu.Unlock()
	t.wg.Wait()
}

// upconn is one established upstream session.
type upconn struct {
	c     *noise.Conn
	u     Upstream
	addr  string
	user  string
	out   chan []byte
	done  chan struct{}
	once  sync.Once
	wdone chan struct{}
}

func (u *upconn) close() {
	u.once.Do(func() {
		close(u.done)
		u.c.Close()
	})
}

// send queues a frame without blocking; a full queue ends the session.
func (u *upconn) send(f []byte) {
	select {
	case u.out <- f:
	default:
		u.close()
	}
}

func (t *Translator) writer(u *upconn) {
	defer close(u.wdone)
	nc := u.c.NetConn()
	for {
		select {
		case f := <-u.out:
			nc.SetWriteDeadline(time.Now().Add(t.o.WriteTimeout))
			if err := u.c.WriteFrame(f); err != nil {
				u.close()
				return
			}
		case <-u.done:
			return
		}
	}
}

// countConn counts the bytes a connection carries.
type countConn struct {
	net.Conn
	in, out *atomic.Int64
}

func (c countConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.in.Add(int64(n))
	return n, err
}

func (c countConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.out.Add(int64(n))
	return n, err
}

// ErrSetup is returned when the pool refuses SetupConnection.
var ErrSetup = errors.New("sv2proxy: pool refused SetupConnection")

// dial connects, runs the Noise handshake (certificate checked against the
// authority key) and SetupConnection.
func (t *Translator) dial(ctx context.Context, u Upstream) (*upconn, error) {
	d := net.Dialer{Timeout: t.o.DialTimeout}
	nc, err := d.DialContext(ctx, "tcp", u.Addr)
	if err != nil {
		return nil, err
	}
	cc := countConn{Conn: nc, in: &t.stats.UpWireIn, out: &t.stats.UpWireOut}
	c, err := noise.Client(cc, u.Authority, noise.ConnOptions{HandshakeTimeout: t.o.HandshakeTimeout})
	if err != nil {
		nc.Close()
		return nil, err
	}
	host, port, _ := net.SplitHostPort(u.Addr)
	p, _ := strconv.Atoi(port)
	nc.SetDeadline(time.Now().Add(t.o.HandshakeTimeout))
	err = c.WriteFrame(sv2.AppendSetupConnection(nil, &sv2.SetupConnection{Protocol: 0, MinVersion: 2, MaxVersion: 2,
		Flags: flagRequiresVersionRolling, EndpointHost: []byte(host), EndpointPort: uint16(p),
		Vendor: []byte(t.o.Vendor), Firmware: []byte("sv2proxy")}))
	var h sv2.Header
	var pl []byte
	if err == nil {
		h, pl, err = c.ReadFrame()
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("SetupConnection: %w", err)
	}
	nc.SetDeadline(time.Time{})
	switch h.MsgType {
	case sv2.MsgSetupConnectionSuccess:
		var s sv2.SetupConnectionSuccess
		if err := sv2.DecodeSetupConnectionSuccess(pl, &s); err != nil || s.UsedVersion != 2 {
			nc.Close()
			return nil, fmt.Errorf("%w: bad SetupConnection.Success (version %d, %v)", ErrSetup, s.UsedVersion, err)
		}
	case sv2.MsgSetupConnectionError:
		var e sv2.SetupConnectionError
		sv2.DecodeSetupConnectionError(pl, &e)
		nc.Close()
		return nil, fmt.Errorf("%w: %q (flags %#x)", ErrSetup, e.ErrorCode, e.Flags)
	default:
		nc.Close()
		return nil, fmt.Errorf("%w: got %s", ErrSetup, sv2.MsgName(h.MsgType))
	}
	return &upconn{c: c, u: u, addr: u.Addr, user: u.User, out: make(chan []byte, t.o.UpstreamQueue),
		done: make(chan struct{}), wdone: make(chan struct{})}, nil
}

// serveUpstream attaches up, reads it until it fails, then detaches it.
func (t *Translator) serveUpstream(ctx context.Context, up *upconn) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		up.close()
		return net.ErrClosed
	}
	t.up, t.current, t.lastErr = up, up.addr, nil
	t.stats.Connects.Add(1)
	t.wg.Add(1)
	go func() { defer t.wg.Done(); t.writer(up) }()
	if t.o.Mode == SharedChannel {
		t.shared = t.openChannel(nil)
	} else {
		for _, m := range t.miners {
			if m.authorized {
				m.ch = t.openChannel(m)
			}
		}
	}
	t.mu.Unlock()
	t.log.Info("sv2 upstream connected", "pool", up.addr, "mode", t.o.Mode.String())

	stop := context.AfterFunc(ctx, up.close)
	defer stop()
	err := t.readUpstream(up)
	up.close()
	<-up.wdone

	t.mu.Lock()
	defer t.mu.Unlock()
	for _, ch := range t.channels {
		ch.failPending(t)
	}
	for _, ch := range t.reqs {
		ch.failPending(t)
	}
	clear(t.channels)
	clear(t.reqs)
	t.shared = nil
	for _, m := range t.miners {
		m.ch = nil
	}
	t.up, t.current = nil, ""
	t.lastErr = fmt.Errorf("%s: %w", up.addr, err)
	return err
}

func (t *Translator) readUpstream(up *upconn) error {
	nc := up.c.NetConn()
	for {
		nc.SetReadDeadline(time.Now().Add(t.o.UpstreamReadTimeout))
		h, p, err := up.c.ReadFrame()
		if err != nil {
			return err
		}
		if h.Extension() != 0 {
			continue // an extension we did not negotiate: ignore (§3.4.1)
		}
		if err := sv2.CheckHeader(h); err != nil {
			return err
		}
		t.mu.Lock()
		err = t.handleUpstream(up, h.MsgType, p)
		t.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// reconnectError is returned when the pool sends Reconnect (§3.6.5): the
// new server is dialed with the same authority key and sub-account, so a
// Reconnect can never move the hashrate to another pool.
type reconnectError struct{ to Upstream }

func (e *reconnectError) Error() string { return "sv2proxy: pool sent Reconnect to " + e.to.Addr }

// redirect resolves a Reconnect's host and port against the current address.
func redirect(cur Upstream, m *sv2.Reconnect) Upstream {
	host, port, _ := net.SplitHostPort(cur.Addr)
	if len(m.NewHost) > 0 {
		host = string(m.NewHost)
	}
	if m.NewPort != 0 {
		port = strconv.Itoa(int(m.NewPort))
	}
	cur.Addr = net.JoinHostPort(host, port)
	return cur
}

// ErrProtocol is wrapped by every error about a message the pool should not
// have sent.
var ErrProtocol = errors.New("sv2proxy: pool broke the protocol")

// handleUpstream applies one message from the pool. Caller holds t.mu.
func (t *Translator) handleUpstream(up *upconn, typ uint8, p []byte) error {
	switch typ {
	case sv2.MsgOpenExtendedMiningChannelSuccess:
		var m sv2.OpenExtendedMiningChannelSuccess
		if err := sv2.DecodeOpenExtendedMiningChannelSuccess(p, &m); err != nil {
			return err
		}
		return t.channelOpened(&m)
	case sv2.MsgOpenMiningChannelError:
		var m sv2.OpenMiningChannelError
		if err := sv2.DecodeOpenMiningChannelError(p, &m); err != nil {
			return err
		}
		ch := t.reqs[m.RequestID]
		if ch == nil {
			return nil
		}
		delete(t.reqs, m.RequestID)
		if ch.owner == nil {
			return fmt.Errorf("%w: shared channel refused: %q", ErrProtocol, m.ErrorCode)
		}
		t.log.Warn("sv2 channel refused; closing the miner", "worker", ch.owner.worker, "code", string(m.ErrorCode))
		ch.owner.close()
	case sv2.MsgNewExtendedMiningJob:
		var m sv2.NewExtendedMiningJob
		if err := sv2.DecodeNewExtendedMiningJob(p, &m); err != nil {
			return err
		}
		t.stats.Jobs.Add(1)
		for _, ch := range t.target(m.ChannelID) {
			ch.newJob(t, &m)
		}
	case sv2.MsgSetNewPrevHash:
		var m sv2.SetNewPrevHash
		if err := sv2.DecodeSetNewPrevHash(p, &m); err != nil {
			return err
		}
		for _, ch := range t.target(m.ChannelID) {
			ch.newPrevHash(t, &m)
		}
	case sv2.MsgSetTarget:
		var m sv2.SetTarget
		if err := sv2.DecodeSetTarget(p, &m); err != nil {
			return err
		}
		for _, ch := range t.target(m.ChannelID) {
			ch.setTarget(t, m.MaximumTarget)
		}
	case sv2.MsgSetExtranoncePrefix:
		var m sv2.SetExtranoncePrefix
		if err := sv2.DecodeSetExtranoncePrefix(p, &m); err != nil {
			return err
		}
		if ch := t.channels[m.ChannelID]; ch != nil {
			ch.prefix = append(ch.prefix[:0:0], m.ExtranoncePrefix...)
		}
	case sv2.MsgSubmitSharesSuccess:
		var m sv2.SubmitSharesSuccess
		if err := sv2.DecodeSubmitSharesSuccess(p, &m); err != nil {
			return err
		}
		if ch := t.channels[m.ChannelID]; ch != nil {
			ch.accepted(t, m.LastSequenceNumber)
		}
	case sv2.MsgSubmitSharesError:
		var m sv2.SubmitSharesError
		if err := sv2.DecodeSubmitSharesError(p, &m); err != nil {
			return err
		}
		if ch := t.channels[m.ChannelID]; ch != nil {
			ch.rejected(t, m.SequenceNumber, m.ErrorCode)
		}
	case sv2.MsgCloseChannel:
		var m sv2.CloseChannel
		if err := sv2.DecodeCloseChannel(p, &m); err != nil {
			return err
		}
		ch := t.channels[m.ChannelID]
		if ch == nil {
			return nil
		}
		t.log.Info("sv2 pool closed a channel; reopening", "channel", m.ChannelID, "reason", string(m.ReasonCode))
		ch.failPending(t)
		delete(t.channels, m.ChannelID)
		if ch.owner == nil {
			t.shared = t.openChannel(nil)
		} else {
			ch.owner.ch = t.openChannel(ch.owner)
		}
	case sv2.MsgReconnect:
		var m sv2.Reconnect
		if err := sv2.DecodeReconnect(p, &m); err != nil {
			return err
		}
		return &reconnectError{to: redirect(up.u, &m)}
	case sv2.MsgSetGroupChannel, sv2.MsgChannelEndpointChanged, sv2.MsgUpdateChannelError:
		// Group membership is learnt from OpenExtendedMiningChannel.Success;
		// the rest need no action from a translator.
	default:
		return fmt.Errorf("%w: unexpected %s", ErrProtocol, sv2.MsgName(typ))
	}
	return nil
}

// target returns the channels a channel message addresses: the channel
// itself, or every member of a group channel.
func (t *Translator) target(id uint32) []*channel {
	if ch := t.channels[id]; ch != nil {
		return []*channel{ch}
	}
	var out []*channel
	for _, ch := range t.channels {
		if ch.group == id && id != 0 {
			out = append(out, ch)
		}
	}
	return out
}

// openChannel asks the pool for an extended channel for owner (nil: the
// shared channel). Caller holds t.mu and t.up is set.
func (t *Translator) openChannel(owner *miner) *channel {
	ch := &channel{owner: owner, reqID: t.nextReq}
	t.nextReq++
	t.reqs[ch.reqID] = ch
	user := t.up.user
	if owner != nil {
		user = identity(t.up.user, owner.worker)
	}
	if user == "" {
		user = "sv2proxy"
	}
	var max sv2.U256
	for i := range max {
		max[i] = 0xff
	}
	t.up.send(sv2.AppendOpenExtendedMiningChannel(nil, &sv2.OpenExtendedMiningChannel{RequestID: ch.reqID,
		UserIdentity: []byte(user), MaxTarget: max, MinExtranonceSize: uint16(minerPartLen + t.o.ExtraNonce2Size)}))
	return ch
}

// identity is the channel's user_identity: user.worker, or the worker name
// alone when no sub-account is configured.
func identity(user, worker string) string {
	switch {
	case user == "":
		return worker
	case worker == "":
		return user
	}
	return user + "." + worker
}

func (t *Translator) channelOpened(m *sv2.OpenExtendedMiningChannelSuccess) error {
	ch := t.reqs[m.RequestID]
	if ch == nil {
		return fmt.Errorf("%w: OpenExtendedMiningChannel.Success for unknown request %d", ErrProtocol, m.RequestID)
	}
	delete(t.reqs, m.RequestID)
	if int(m.ExtranonceSize) < minerPartLen+t.o.ExtraNonce2Size || int(m.ExtranonceSize)+len(m.ExtranoncePrefix) > sv2.MaxB32 {
		return fmt.Errorf("%w: channel extranonce size %d, want at least %d", ErrProtocol, m.ExtranonceSize, minerPartLen+t.o.ExtraNonce2Size)
	}
	if _, dup := t.channels[m.ChannelID]; dup {
		return fmt.Errorf("%w: channel id %d opened twice", ErrProtocol, m.ChannelID)
	}
	ch.id, ch.open, ch.group = m.ChannelID, true, m.GroupChannelID
	ch.prefix = append([]byte(nil), m.ExtranoncePrefix...)
	ch.enSize = int(m.ExtranonceSize)
	ch.pad = ch.enSize - minerPartLen - t.o.ExtraNonce2Size
	t.channels[ch.id] = ch
	if ch.owner != nil && ch.owner.closed {
		t.closeChannel(ch)
		return nil
	}
	ch.setTarget(t, m.Target)
	return nil
}

// closeChannel tells the pool a channel is no longer used. Caller holds t.mu.
func (t *Translator) closeChannel(ch *channel) {
	if ch.open {
		delete(t.channels, ch.id)
		if t.up != nil {
			t.up.send(sv2.AppendCloseChannel(nil, &sv2.CloseChannel{ChannelID: ch.id, ReasonCode: []byte("miner-disconnected")}))
		}
	}
	// A channel still being opened stays in t.reqs: its Success finds the
	// owner closed and closes the channel then.
	ch.open = false
}
