package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/hashpool/hashpool/codec/agent"
	"github.com/hashpool/hashpool/codec/stratum"
)

// Limits of the upstream link.
const (
	upReadBuf   = 128 << 10 // holds the largest frame (64 KiB) and line (64 KiB)
	upMaxLine   = 64 << 10
	upMaxQueued = 8 << 20 // frames queued for a pool that does not read: the link is dropped
)

// errHandshake wraps handshake failures; errRefused marks a pool that
// refused the sub-account.
var (
	errHandshake = errors.New("upstream handshake")
	errRefused   = errors.New("authorize refused")
)

// pendingShare is a share awaiting the pool's SUBMIT_RESPONSE.
type pendingShare struct {
	m     *Miner
	id    stratum.ID // the miner's request id (cloned)
	index uint16     // the submit index the pool counts with
}

// upConn is one upstream connection: the reader runs on the slot's
// goroutine, the writer on its own, and everything the two share with the
// miners' event loops is under slot.mu.
type upConn struct {
	s    *slot
	pool Pool
	user string   // the sub-account it authorizes as
	conn net.Conn // the protocol stream (TLS or plain)
	raw  net.Conn // the TCP socket under it, for TCP_INFO

	closeOnce sync.Once
	final     atomic.Pointer[Wire] // the socket's counters just before close

	// Negotiated extensions, written and read under s.mu.
	subres, rejonly, zbatch, csub bool

	// Plain Stratum V1 (the pool did not answer agent.get_capabilities):
	// set by the reader before attach, read-only afterwards.
	sv1      bool
	en2Pad   []byte // hex zeros: the pool's extranonce2 bytes beyond the agent's 8
	capsSeen bool   // reader only: the pool answered agent.get_capabilities
	subEn1   []byte // reader only: the subscribe result's extranonce1 (hex)
	subSize  int64  // reader only: ... and extranonce2 size
	early    []byte // reader only: a mining.notify line that came before attach
	gotMask  bool   // reader only: the pool answered mining.configure with a mask

	// Under s.mu.
	jobTime [256]uint32 // nTime of the pool's notify per short job id (0: none seen)
	wbuf    []byte
	index   uint16 // next submit index (btcpool's per-connection counter)
	pending []pendingShare
	phead   int
	pn      int
	dead    bool

	wake chan struct{}
	stop chan struct{}

	// Reader-only.
	en1      []byte // pool extranonce1, 8 hex digits
	attached bool
	authDone chan struct{}
	msg      stratum.Message
	framer   stratum.LineFramer
	spare    []byte // writer-only
	zenc     *zstd.Encoder
	zout     []byte
	zused    time.Time // writer only: when zenc last compressed a batch
	cout     []byte
	cenc     agent.CompactEncoder // csub, writer only
}

func newUpConn(s *slot, p Pool, user string, d dialed) *upConn {
	return &upConn{s: s, pool: p, user: user, conn: d.c, raw: d.raw, wake: make(chan struct{}, 1), stop: make(chan struct{}),
		authDone: make(chan struct{}), framer: stratum.LineFramer{Max: upMaxLine},
		pending: make([]pendingShare, min(s.a.cfg.MaxPending, 1024))}
}

// close samples the socket's kernel counters and closes the connection;
// every close goes through here, so the counters are never lost (any
// goroutine, any number of times; it takes no lock).
func (u *upConn) close() {
	u.closeOnce.Do(func() {
		if w, ok := tcpWire(u.raw); ok {
			u.final.Store(&w)
		}
		u.conn.Close()
		u.raw.Close()
	})
}

// wire returns the socket's counters: live while open, the last sample
// once closed (so they never go backwards).
func (u *upConn) wire() (Wire, bool) {
	if f := u.final.Load(); f != nil {
		return *f, true
	}
	w, ok := tcpWire(u.raw)
	if f := u.final.Load(); f != nil { // closed meanwhile
		return *f, true
	}
	return w, ok
}

// handshakeErr wraps err as a handshake failure, once.
func handshakeErr(err error) error {
	if errors.Is(err, errHandshake) {
		return err
	}
	return fmt.Errorf("%w: %v", errHandshake, err)
}

// handshakeLines are btcagent's bootstrap requests (spec §5.1), sent at once.
func (u *upConn) handshakeLines() []byte {
	cfg := &u.s.a.cfg
	if cfg.UpstreamProtocol == ProtoStratum {
		var b []byte
		b = stratum.AppendRequest(b, stratum.StringID([]byte("sub")), stratum.MethodSubscribe,
			append(stratum.AppendJSONString([]byte("["), sv1AgentString), ']'))
		b = stratum.AppendRequest(b, stratum.StringID([]byte("conf")), stratum.MethodConfigure,
			[]byte(`[["version-rolling"],{"version-rolling.mask":"1fffe000","version-rolling.min-bit-count":2}]`))
		return stratum.AppendRequest(b, stratum.StringID([]byte("auth")), stratum.MethodAuthorize,
			append(stratum.AppendJSONString([]byte("["), u.user), `,"x"]`...))
	}
	caps := `[["verrol"`
	if cfg.SubmitResponseFromServer {
		caps += `,"subres"`
	}
	for _, e := range cfg.Extensions {
		if e != ExtRejOnly || cfg.SubmitResponseFromServer {
			caps += `,"` + e + `"`
		}
	}
	caps += `]]`
	// Subscribe first: a plain pool (ckpool) drops a client whose first
	// request is anything else; btcpool answers these in any order.
	var b []byte
	b = stratum.AppendRequest(b, stratum.StringID([]byte("sub")), stratum.MethodSubscribe,
		append(stratum.AppendJSONString([]byte("["), cfg.AgentString), ']'))
	b = stratum.AppendRequest(b, stratum.StringID([]byte("caps")), stratum.MethodGetCapabilities, []byte(caps))
	b = stratum.AppendRequest(b, stratum.StringID([]byte("conf")), stratum.MethodConfigure,
		[]byte(`[["version-rolling"],{"version-rolling.mask":"ffffffff","version-rolling.min-bit-count":0}]`))
	b = stratum.AppendRequest(b, stratum.StringID([]byte("auth")), stratum.MethodAuthorize,
		append(stratum.AppendJSONString([]byte("["), u.user), `,""]`...))
	if cfg.SubmitResponseFromServer {
		// btcpool honours "subres" only after authorize, so btcagent asks again.
		b = stratum.AppendRequest(b, stratum.StringID([]byte("caps_again")), stratum.MethodGetCapabilities, []byte(caps))
	}
	return b
}

// run performs the handshake and serves the connection until it fails or
// ctx ends. It reports whether the handshake passed.
func (u *upConn) run(ctx context.Context) (attached bool, err error) {
	a := u.s.a
	readErr := make(chan error, 1)
	go func() { readErr <- u.readLoop() }()
	stopConn := context.AfterFunc(ctx, u.close)
	defer stopConn()
	hs := u.handshakeLines()
	u.conn.SetWriteDeadline(time.Now().Add(time.Duration(a.cfg.HandshakeTimeout) * time.Second))
	if _, err := u.conn.Write(hs); err != nil {
		u.close()
		<-readErr
		return false, handshakeErr(err)
	}
	a.stats.UpBytesOut.Add(int64(len(hs)))
	a.stats.UpWrites.Add(1)
	timer := time.NewTimer(time.Duration(a.cfg.HandshakeTimeout) * time.Second)
	select {
	case <-u.authDone:
		timer.Stop()
	case err := <-readErr:
		timer.Stop()
		u.close()
		return false, handshakeErr(err)
	case <-timer.C:
		u.close()
		<-readErr
		return false, fmt.Errorf("%w: no authorize answer within %ds", errHandshake, a.cfg.HandshakeTimeout)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); u.writeLoop() }()
	err = <-readErr
	u.close()
	close(u.stop)
	wg.Wait()
	return true, err
}

// readLoop reads lines and frames until the connection fails.
func (u *upConn) readLoop() error {
	a := u.s.a
	buf := make([]byte, 0, upReadBuf)
	readTimeout := time.Duration(a.cfg.UpstreamReadSec) * time.Second
	for {
		u.conn.SetReadDeadline(time.Now().Add(readTimeout))
		n, err := u.conn.Read(buf[len(buf):cap(buf)])
		if n > 0 {
			a.stats.UpBytesIn.Add(int64(n))
			a.stats.UpReads.Add(1)
			buf = buf[:len(buf)+n]
			used, perr := u.consume(buf)
			if perr != nil {
				return perr
			}
			buf = buf[:copy(buf, buf[used:])]
		}
		if err != nil {
			return err
		}
	}
}

// consume handles every complete line and frame at the front of buf.
func (u *upConn) consume(buf []byte) (int, error) {
	used := 0
	for used < len(buf) { // each round consumes at least one byte or returns
		rest := buf[used:]
		if rest[0] == agent.Magic {
			n, err := agent.Split(rest)
			if err != nil {
				return used, fmt.Errorf("pool sent a bad frame: %w", err)
			}
			if n == 0 {
				return used, nil
			}
			u.s.a.stats.UpFramesIn.Add(1)
			u.handleFrame(rest[:n])
			used += n
			continue
		}
		line, n, err := u.framer.Next(rest)
		if err != nil {
			return used, err
		}
		if n == 0 {
			return used, nil
		}
		used += n
		u.s.a.stats.UpLinesIn.Add(1)
		if err := u.handleLine(line); err != nil {
			return used, err
		}
	}
	return used, nil
}

func (u *upConn) handleFrame(f []byte) {
	switch agent.FrameCmd(f) {
	case agent.CmdMiningSetDiff:
		var d agent.SetDiff
		if agent.DecodeSetDiff(f, &d) != nil {
			return
		}
		u.s.setMinerDiffs(u, &d)
	case agent.CmdSubmitResponse:
		idx, st, err := agent.DecodeSubmitResponse(f)
		if err != nil {
			return
		}
		u.s.submitResponse(u, idx, stratum.Status(st))
	}
}

func (u *upConn) handleLine(line []byte) error {
	m := &u.msg
	if stratum.Parse(line, m) != nil {
		return nil // btcpool drops lines that are not JSON; so do we
	}
	if m.Method.Kind == stratum.KindString {
		switch string(m.Method.Raw) {
		case stratum.MethodNotify:
			if !u.attached {
				// Plain pools (ckpool) send the first job right after
				// subscribe, before the authorize answer: keep it for attach.
				if len(line) <= upMaxLine {
					u.early = append(u.early[:0], line...)
				}
				return nil
			}
			u.s.relayNotify(u, m)
		case stratum.MethodSetDifficulty:
			if d, ok := m.Param(0).Float64(); ok && d > 0 {
				u.s.setDefaultDiff(u, d)
			}
		case stratum.MethodSetVersionMask:
			if v, ok := m.Param(0).Str(); ok {
				if mask, err := strconv.ParseUint(string(v), 16, 32); err == nil {
					u.s.setVersionMask(uint32(mask))
				}
			}
		case stratum.MethodReconnect:
			return errors.New("pool sent client.reconnect")
		case "mining.set_extranonce":
			// The miners' view does not depend on the pool's extranonce1:
			// reconnecting gets the new one, and the next job carries it.
			return errors.New("pool sent mining.set_extranonce: reconnecting")
		}
		return nil
	}
	id, ok := m.ID.String()
	if !ok {
		if n, isNum := m.ID.Number(); isNum && u.sv1 && u.attached {
			u.s.submitResponse(u, uint16(n), sv1Status(m, line))
		}
		return nil
	}
	switch string(id) {
	case "caps", "caps_again":
		cfg := &u.s.a.cfg
		if m.Result.Get("capabilities").Kind == stratum.KindArray {
			u.capsSeen = true
		}
		var subres, rejonly, zbatch, csub bool
		it := m.Result.Get("capabilities").Elems()
		for i := 0; i < 32; i++ {
			v, ok := it.Next()
			if !ok {
				break
			}
			c, _ := v.Str()
			switch string(c) {
			case "subres":
				subres = cfg.SubmitResponseFromServer
			case ExtRejOnly:
				rejonly = cfg.SubmitResponseFromServer && cfg.wants(ExtRejOnly)
			case ExtZstd:
				zbatch = cfg.wants(ExtZstd)
			case ExtCompact:
				csub = cfg.wants(ExtCompact)
			}
		}
		u.s.setCaps(u, subres, rejonly, zbatch, csub)
	case "conf":
		if v, ok := m.Result.Get("version-rolling.mask").Str(); ok {
			if mask, err := strconv.ParseUint(string(v), 16, 32); err == nil {
				u.gotMask = true
				u.s.setVersionMask(uint32(mask))
			}
		}
	case "sub":
		if m.Error.Exists() && !m.Error.IsNull() {
			return fmt.Errorf("%w: subscribe refused: %s", errHandshake, m.Error.Raw)
		}
		en1, ok := m.Result.Index(1).Str()
		size, ok2 := m.Result.Index(2).Int64()
		if !ok || !ok2 || !isHex(en1) || len(en1)%2 != 0 || len(en1) < 2 || len(en1) > 2*maxSV1En1 {
			return fmt.Errorf("%w: bad subscribe result %s", errHandshake, m.Result.Raw)
		}
		u.subEn1, u.subSize = append([]byte(nil), en1...), size
	case "auth":
		if u.attached {
			return nil // a repeated answer changes nothing
		}
		if b, ok := m.Result.Bool(); !ok || !b {
			return fmt.Errorf("%w: %w: pool refused user %q: %s", errHandshake, errRefused, u.user, m.Error.Raw)
		}
		if u.subEn1 == nil {
			return fmt.Errorf("%w: authorized before subscribe", errHandshake)
		}
		if err := u.decideProtocol(); err != nil {
			return err
		}
		if u.sv1 {
			if !u.gotMask {
				u.s.setVersionMask(0) // the pool offered no version rolling
			}
			// A plain pool answers every mining.submit: relayed when asked.
			u.s.setCaps(u, u.s.a.cfg.SubmitResponseFromServer, false, false, false)
		}
		u.attached = true
		u.s.attach(u)
		close(u.authDone)
		if u.early != nil {
			var em stratum.Message
			if stratum.Parse(u.early, &em) == nil {
				u.s.relayNotify(u, &em)
			}
			u.early = nil
		}
	}
	return nil
}

// decideProtocol picks the agent protocol or plain stratum once the pool
// answered authorize (by then it answered agent.get_capabilities, sent
// before it, if it speaks the agent protocol) and checks the subscribe
// result for that protocol.
func (u *upConn) decideProtocol() error {
	cfg := &u.s.a.cfg
	agentProto := u.capsSeen && cfg.UpstreamProtocol != ProtoStratum
	if !agentProto && cfg.UpstreamProtocol == ProtoAgent {
		return fmt.Errorf("%w: the pool does not speak the agent protocol (no agent.get_capabilities answer) and upstream_protocol is %q", errHandshake, ProtoAgent)
	}
	en1, size := u.subEn1, u.subSize
	if agentProto {
		if len(en1) != 8 {
			return fmt.Errorf("%w: pool extranonce1 %q: an agent needs 4 bytes", errHandshake, en1)
		}
		if size != 8 {
			return fmt.Errorf("%w: pool extranonce2 size %d, an agent needs 8", errHandshake, size)
		}
		u.en1 = en1
		return nil
	}
	// Plain Stratum V1: the pool's extranonce2 is split into 4 bytes of
	// agent session id (the miner's extranonce1) and the miner's 4, after
	// zero padding when the pool gives more than 8.
	if size < 8 || size > 16 {
		return fmt.Errorf("%w: pool extranonce2 size %d: plain stratum mode needs 8..16 (4 bytes per miner prefix + the miner's 4)", errHandshake, size)
	}
	u.sv1 = true
	u.en2Pad = make([]byte, 2*(size-8))
	for i := range u.en2Pad {
		u.en2Pad[i] = '0'
	}
	u.en1 = append(en1, u.en2Pad...)
	return nil
}

// Upstream protocols (upstream_protocol).
const (
	ProtoAuto    = "auto"    // the agent protocol when the pool answers agent.get_capabilities, plain stratum otherwise
	ProtoAgent   = "agent"   // the agent protocol only
	ProtoStratum = "stratum" // plain Stratum V1 only (not announced as an agent)
)

// sv1AgentString is the subscribe agent with upstream_protocol "stratum":
// not "btccom-agent/", so a btcpool-compatible pool serves a plain session.
const sv1AgentString = "hashpool-btcagent/1.0"

// maxSV1En1 bounds a plain pool's extranonce1 (bytes).
const maxSV1En1 = 16

// sv1Status reads a plain pool's answer to mining.submit: result true is
// an accept; otherwise the error's code when it is a reject code, or its
// text (ckpool sets "reject-reason": "Above target", "Stale",
// "Duplicate", "Invalid JobID" ...), else "reject, no reason".
func sv1Status(m *stratum.Message, line []byte) stratum.Status {
	if b, ok := m.Result.Bool(); ok && b {
		return stratum.StatusAccept
	}
	if c, ok := m.Error.Index(0).Int64(); ok && c > 0 && c < 100 {
		return stratum.Status(c)
	}
	text, ok := m.Error.Str()
	if !ok {
		text, _ = m.Error.Index(1).Str()
	}
	if len(text) == 0 { // ckpool: a top-level "reject-reason" beside "result":false
		const key = `"reject-reason":`
		if i := bytes.Index(line, []byte(key)); i >= 0 {
			r := bytes.TrimLeft(line[i+len(key):], " ")
			if len(r) > 0 && r[0] == '"' {
				if j := bytes.IndexByte(r[1:], '"'); j >= 0 && j < 64 {
					text = r[1 : 1+j]
				}
			}
		}
	}
	t := strings.ToLower(string(text))
	switch {
	case strings.Contains(t, "target") || strings.Contains(t, "diff"):
		return stratum.StatusLowDifficulty
	case strings.Contains(t, "dup"):
		return stratum.StatusDuplicateShare
	case strings.Contains(t, "stale") || strings.Contains(t, "job"):
		return stratum.StatusJobNotFoundOrStale
	case strings.Contains(t, "ntime") || strings.Contains(t, "time"):
		return stratum.StatusTimeTooOld
	}
	return stratum.StatusRejectNoReason
}

// appendSV1Submit appends a plain mining.submit for a miner's share: the
// pool's extranonce2 is pad + the agent session id + the miner's.
func appendSV1Submit(dst []byte, index uint16, user string, job, pad []byte, sub *agent.Submit) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendUint(dst, uint64(index), 10)
	dst = append(dst, `,"method":"mining.submit","params":[`...)
	dst = stratum.AppendJSONString(dst, user)
	dst = append(dst, `,"`...)
	dst = append(dst, job...)
	dst = append(dst, `","`...)
	dst = append(dst, pad...)
	dst = appendHex32(dst, uint32(sub.SessionID))
	dst = appendHex32(dst, sub.ExtraNonce2)
	dst = append(dst, `","`...)
	dst = appendHex32(dst, sub.Time)
	dst = append(dst, `","`...)
	dst = appendHex32(dst, sub.Nonce)
	if sub.HasVersionMask {
		dst = append(dst, `","`...)
		dst = appendHex32(dst, sub.VersionMask)
	}
	return append(dst, "\"]}\n"...)
}

func appendHex32(dst []byte, v uint32) []byte {
	const hex = "0123456789abcdef"
	for s := 28; s >= 0; s -= 4 {
		dst = append(dst, hex[v>>uint(s)&0xf])
	}
	return dst
}

// sv1JobID reports whether a job id a miner echoes can be relayed as is
// (what pools use: hex and a few separators, at most 64 bytes).
func sv1JobID(b []byte) bool {
	if len(b) == 0 || len(b) > 64 {
		return false
	}
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '-' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

func isHex(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// writeLoop writes the queued frames, at most once per batch interval.
func (u *upConn) writeLoop() {
	a := u.s.a
	interval := a.cfg.batchInterval()
	var timer *time.Timer
	if interval > 0 {
		timer = time.NewTimer(interval)
		timer.Stop()
	}
	for {
		select {
		case <-u.wake:
		case <-u.stop:
			return
		}
		if timer != nil {
			timer.Reset(interval)
			select {
			case <-timer.C:
			case <-u.stop:
				return
			}
		}
		u.s.mu.Lock()
		out := u.wbuf
		u.wbuf = u.spare[:0]
		zbatch, csub := u.zbatch, u.csub
		u.s.mu.Unlock()
		if len(out) == 0 {
			continue
		}
		wire := out
		if csub {
			u.cout = u.compact(u.cout[:0], wire)
			wire = u.cout
		}
		switch {
		case zbatch && worthCompressing(wire):
			u.zout = u.compress(u.zout[:0], wire)
			wire = u.zout
			u.zused = time.Now()
		case u.zenc != nil && time.Since(u.zused) > zstdIdle:
			u.zenc = nil // ~5 MB of encoder state, needed again only for a burst
		}
		u.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
		n, err := u.conn.Write(wire)
		a.stats.UpBytesOut.Add(int64(n))
		a.stats.UpWrites.Add(1)
		if err != nil {
			u.close() // the reader sees the error and the slot reconnects
			return
		}
		u.spare = out[:0]
	}
}

// queued is called after frames were appended to wbuf (caller holds s.mu;
// wasEmpty is whether wbuf was empty before): it wakes the writer for the
// first frame of a batch and drops a link whose pool stopped reading.
func (u *upConn) queued(wasEmpty bool) {
	u.s.a.stats.UpFramesOut.Add(1)
	if len(u.wbuf) > upMaxQueued {
		u.wbuf = u.wbuf[:0]
		u.close()
		return
	}
	if wasEmpty {
		select {
		case u.wake <- struct{}{}:
		default:
		}
	}
}

// pushPending records a share awaiting a response; caller holds s.mu.
// It reports false when the queue is full (the share is then answered at once).
func (u *upConn) pushPending(p pendingShare) bool {
	if u.pn == len(u.pending) {
		if len(u.pending) >= u.s.a.cfg.MaxPending {
			return false
		}
		grown := make([]pendingShare, min(2*len(u.pending), u.s.a.cfg.MaxPending))
		for i := 0; i < u.pn; i++ {
			grown[i] = u.pending[(u.phead+i)%len(u.pending)]
		}
		u.pending, u.phead = grown, 0
	}
	u.pending[(u.phead+u.pn)%len(u.pending)] = p
	u.pn++
	return true
}

// popPending removes and returns the oldest pending share; caller holds s.mu.
func (u *upConn) popPending() (pendingShare, bool) {
	if u.pn == 0 {
		return pendingShare{}, false
	}
	p := u.pending[u.phead]
	u.pending[u.phead] = pendingShare{}
	u.phead = (u.phead + 1) % len(u.pending)
	u.pn--
	return p, true
}

// peekPending returns the oldest pending share; caller holds s.mu.
func (u *upConn) peekPending() (*pendingShare, bool) {
	if u.pn == 0 {
		return nil, false
	}
	return &u.pending[u.phead], true
}

// cmdZstdBatch is the "zstd" extension's frame (agent.CmdZstdBatch).
const cmdZstdBatch = agent.CmdZstdBatch

// zstdChunk bounds the raw frames compressed into one ZSTD_BATCH frame, so
// that even incompressible input fits the u16 frame length.
const zstdChunk = 32 << 10

// zstdMinRaw is how many bytes of frames other than SUBMIT_COMPACT a batch
// needs before it is compressed, and zstdIdle how long an unused encoder is
// kept. Compact submits are dense bit fields that zstd cannot shrink, so
// with csub a farm's steady batches go out as they are (no encoder CPU, no
// encoder memory); what compresses well are bursts of REGISTER_WORKER
// frames when miners connect or move to another pool.
const (
	zstdMinRaw = 256
	zstdIdle   = time.Minute
)

// worthCompressing reports whether frames hold at least zstdMinRaw bytes
// of frames other than SUBMIT_COMPACT.
func worthCompressing(frames []byte) bool {
	other := 0
	for len(frames) > 0 {
		l, err := agent.Split(frames)
		if err != nil || l == 0 {
			return true // cannot happen with the agent's own frames
		}
		if agent.FrameCmd(frames[:l]) != cmdCompactSubmits {
			other += l
			if other >= zstdMinRaw {
				return true
			}
		}
		frames = frames[l:]
	}
	return false
}

// compress appends frames as ZSTD_BATCH frames, cutting at frame
// boundaries every zstdChunk bytes; a chunk that does not shrink is
// appended plainly. frames holds only well-formed frames the agent built.
func (u *upConn) compress(dst, frames []byte) []byte {
	if u.zenc == nil {
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false),
			zstd.WithLowerEncoderMem(true), zstd.WithEncoderLevel(zstd.SpeedBetterCompression),
			zstd.WithWindowSize(1<<17))
		if err != nil {
			return append(dst, frames...)
		}
		u.zenc = enc
	}
	for len(frames) > 0 { // each round consumes at least one frame
		n := 0
		for n < len(frames) {
			l, err := agent.Split(frames[n:])
			if err != nil || l == 0 || (n > 0 && n+l > zstdChunk) {
				break
			}
			n += l
		}
		if n == 0 { // cannot happen with our own frames; send the rest as is
			return append(dst, frames...)
		}
		start := len(dst)
		dst = append(dst, agent.Magic, byte(cmdZstdBatch), 0, 0)
		dst = u.zenc.EncodeAll(frames[:n], dst)
		if l := len(dst) - start; l < n && l <= agent.MaxFrameLen {
			dst[start+2], dst[start+3] = byte(l), byte(l>>8)
		} else {
			dst = append(dst[:start], frames[:n]...)
		}
		frames = frames[n:]
	}
	return dst
}

// cmdCompactSubmits is the "csub" extension's frame (agent.CmdCompactSubmits
// documents the layout).
const cmdCompactSubmits = agent.CmdCompactSubmits

// compact appends frames with every run of submit frames rewritten as
// SUBMIT_COMPACT frames (codec/agent.CompactEncoder). Writer goroutine
// only: the encoder's counters must follow exactly what the pool decodes.
func (u *upConn) compact(dst, frames []byte) []byte { return u.cenc.Append(dst, frames) }
