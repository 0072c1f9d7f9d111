package baseline

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashpool/hashpool/sha"
)

// maxConfigureExtensions bounds the extensions answered in one
// mining.configure.
const maxConfigureExtensions = 8

// session is one miner connection. The connection goroutine owns every
// field except those under mu, which Broadcast also touches.
type session struct {
	srv  *Server
	conn net.Conn
	en1  [4]byte // extranonce1, big-endian as it goes into the coinbase
	hex1 string  // %08x of en1

	subscribed bool
	vmask      uint32 // negotiated version-rolling mask (answer only)
	hasher     sha.Hasher

	mu         sync.Mutex
	w          *bufio.Writer
	authorized bool
	toldDiff   bool
	broken     bool // a write failed; the connection is closed
}

type response struct {
	ID     json.RawMessage `json:"id"`
	Result any             `json:"result"`
	Error  any             `json:"error"`
}

type notification struct {
	ID     json.RawMessage `json:"id"` // always null
	Method string          `json:"method"`
	Params any             `json:"params"`
}

type request struct {
	ID     json.RawMessage `json:"id"`
	Method json.RawMessage `json:"method"`
	Params json.RawMessage `json:"params"`
}

// handle serves one connection until it closes or times out.
func (s *Server) handle(c net.Conn) {
	defer s.wg.Done()
	defer c.Close()
	en1 := s.nextEN1.Add(1)
	sess := &session{srv: s, conn: c, w: bufio.NewWriter(c), hex1: fmt.Sprintf("%08x", en1)}
	binary.BigEndian.PutUint32(sess.en1[:], en1)
	if !s.add(sess) {
		return
	}
	defer s.remove(sess)
	r := bufio.NewReader(c) // a line longer than its 4 KiB buffer closes the connection
	for {
		timeout := s.opts.AuthorizeTimeout
		if sess.isAuthorized() {
			timeout = s.opts.ReadTimeout
		}
		if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
			return
		}
		line, err := r.ReadSlice('\n')
		if err != nil {
			s.opts.Log.Debug("connection closed", "remote", c.RemoteAddr(), "err", err)
			return
		}
		sess.handleLine(line)
		// Flush once the pipelined requests already read are answered.
		if r.Buffered() == 0 && !sess.flush() {
			return
		}
	}
}

func (sess *session) isAuthorized() bool {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.authorized
}

// handleLine answers one request line (spec §4.4, §4.5).
func (sess *session) handleLine(line []byte) {
	var req request
	if err := json.Unmarshal(line, &req); err != nil {
		return // not JSON: dropped without a reply, as btcpool does
	}
	id := echoID(req.ID)
	var method string
	var params []json.RawMessage
	if json.Unmarshal(req.Method, &method) != nil || method == "" ||
		len(req.Params) == 0 || req.Params[0] != '[' || json.Unmarshal(req.Params, &params) != nil {
		sess.replyError(id, statusIllegalParams)
		return
	}
	switch method {
	case "mining.submit":
		sess.handleSubmit(id, params)
	case "mining.subscribe":
		sess.handleSubscribe(id)
	case "mining.authorize":
		sess.handleAuthorize(id, params)
	case "mining.configure":
		sess.handleConfigure(id, params)
	case "mining.extranonce.subscribe":
		sess.reply(id, true)
	default:
		sess.replyError(id, statusIllegalMethod)
	}
}

// echoID returns the id to answer with: integers and strings as sent,
// anything else null (spec §4.4).
func echoID(raw json.RawMessage) json.RawMessage {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		return raw
	}
	if _, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		return raw
	}
	return json.RawMessage("null")
}

func (sess *session) handleSubscribe(id json.RawMessage) {
	if sess.subscribed {
		sess.replyError(id, statusUnknown)
		return
	}
	sess.subscribed = true
	sess.reply(id, []any{
		[][]string{{"mining.set_difficulty", sess.hex1}, {"mining.notify", sess.hex1}},
		sess.hex1, extraNonce2Size,
	})
}

func (sess *session) handleAuthorize(id json.RawMessage, params []json.RawMessage) {
	if !sess.subscribed || sess.isAuthorized() {
		sess.replyError(id, statusNotSubscribed)
		return
	}
	var name string
	if len(params) == 0 || json.Unmarshal(params[0], &name) != nil || name == "" {
		sess.replyError(id, statusInvalidUser)
		return
	}
	// Every user is accepted. The reply, the state change and the first job
	// go out under one lock so a concurrent Broadcast cannot interleave.
	sess.mu.Lock()
	defer sess.mu.Unlock()
	sess.writeLocked(response{ID: id, Result: true})
	sess.authorized = true
	if lj := sess.srv.latestJob(); lj != nil {
		line, _ := json.Marshal(notification{Method: "mining.notify", Params: lj.notifyParams(true)})
		sess.writeJobLocked(append(line, '\n'))
	}
}

func (sess *session) handleConfigure(id json.RawMessage, params []json.RawMessage) {
	var names []json.RawMessage
	var opts map[string]json.RawMessage
	if len(params) < 2 || json.Unmarshal(params[0], &names) != nil || json.Unmarshal(params[1], &opts) != nil || opts == nil {
		sess.replyError(id, statusIllegalParams)
		return
	}
	result := make(map[string]any) // encoding/json sorts the keys, like btcpool's std::map
	for i, raw := range names {
		if i == maxConfigureExtensions {
			break
		}
		var name string
		if json.Unmarshal(raw, &name) != nil {
			continue
		}
		switch name {
		case "version-rolling":
			var mask string
			var m uint64
			err := json.Unmarshal(opts["version-rolling.mask"], &mask)
			if err == nil {
				m, err = parseHexField(mask, 32)
			}
			if err != nil {
				result[name] = false
				continue
			}
			sess.vmask = uint32(m) & sess.srv.opts.VersionMask
			result[name] = true
			result["version-rolling.mask"] = fmt.Sprintf("%08x", sess.vmask)
		default:
			// minimum-difficulty included: this server has one fixed difficulty.
			result[name] = false
		}
	}
	sess.reply(id, result)
	if sess.vmask != 0 {
		sess.notify("mining.set_version_mask", []string{fmt.Sprintf("%08x", sess.vmask)})
	}
}

// handleSubmit validates a share (spec §4.9): job, duplicate, time and
// version-mask checks, then the header hash against the share target.
func (sess *session) handleSubmit(id json.RawMessage, params []json.RawMessage) {
	srv := sess.srv
	if !sess.isAuthorized() {
		sess.replyError(id, statusUnauthorized)
		sess.notify("client.reconnect", []any{})
		return
	}
	if len(params) < 5 {
		sess.replyError(id, statusIllegalParams)
		return
	}
	var f [6]string
	for i := 0; i < len(params) && i < len(f); i++ {
		if json.Unmarshal(params[i], &f[i]) != nil {
			sess.replyError(id, statusIllegalParams)
			return
		}
	}
	en2, err1 := parseHexField(f[2], 64)
	ntime, err2 := parseHexField(f[3], 32)
	nonce, err3 := parseHexField(f[4], 32)
	var vmask uint64
	var err4 error
	if f[5] != "" {
		vmask, err4 = parseHexField(f[5], 32)
	}
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
		sess.replyError(id, statusIllegalParams)
		return
	}
	lj := srv.job(f[1])
	if lj == nil {
		sess.reject(id, statusJobNotFound)
		return
	}
	j := lj.job
	if ntime == 0 {
		ntime = uint64(j.Time)
	}
	key := shareKey{en1: binary.BigEndian.Uint32(sess.en1[:]), en2: en2, ntime: uint32(ntime), nonce: uint32(nonce), vmask: uint32(vmask)}
	switch {
	case lj.seenBefore(key):
		sess.reject(id, statusDuplicate)
		return
	case uint32(ntime) < j.MinTime:
		sess.reject(id, statusTimeTooOld)
		return
	case uint64(ntime) > uint64(j.Time)+600:
		sess.reject(id, statusTimeTooNew)
		return
	case uint32(vmask)&^srv.opts.VersionMask != 0:
		sess.reject(id, statusIllegalVMask)
		return
	}
	var en2b [extraNonce2Size]byte
	binary.BigEndian.PutUint64(en2b[:], en2)
	hash := sess.hasher.ShareHash(lj.hash, sess.en1[:], en2b[:], uint32(ntime), uint32(nonce), uint32(vmask))
	if sha.HashMeetsTarget(&hash, &lj.network) {
		srv.metrics.Solved.Add(1)
		srv.opts.Log.Info("block solved", "height", j.Height, "hash", sha.DisplayHex(hash))
	} else if !sha.HashMeetsTarget(&hash, &srv.target) {
		sess.reject(id, statusLowDifficulty)
		return
	}
	srv.metrics.Accepted.Add(1)
	sess.reply(id, true)
}

func (sess *session) reject(id json.RawMessage, code shareStatus) {
	sess.srv.metrics.Rejected.Add(1)
	sess.replyError(id, code)
}

func (sess *session) reply(id json.RawMessage, result any) {
	sess.write(response{ID: id, Result: result})
}

func (sess *session) replyError(id json.RawMessage, code shareStatus) {
	sess.write(response{ID: id, Error: []any{int64(code), statusText[code], nil}})
}

func (sess *session) notify(method string, params any) {
	sess.write(notification{Method: method, Params: params})
}

// write queues one JSON line; handle flushes it.
func (sess *session) write(v any) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	sess.writeLocked(v)
}

func (sess *session) writeLocked(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		sess.srv.opts.Log.Error("marshal reply", "err", err)
		return
	}
	sess.w.Write(b) // a failed write shows up in flush
	sess.w.WriteByte('\n')
}

// sendJob writes a broadcast job's notify line if the session is
// authorized.
func (sess *session) sendJob(line []byte) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if !sess.authorized || sess.broken {
		return
	}
	sess.writeJobLocked(line)
	sess.flushLocked()
}

// writeJobLocked writes set_difficulty (the first time) and a notify line.
func (sess *session) writeJobLocked(line []byte) {
	if !sess.toldDiff {
		sess.toldDiff = true
		sess.writeLocked(notification{Method: "mining.set_difficulty", Params: []float64{sess.srv.opts.Difficulty}})
	}
	sess.w.Write(line)
}

// flush sends what is buffered; false means the connection is broken.
func (sess *session) flush() bool {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.flushLocked()
}

func (sess *session) flushLocked() bool {
	if sess.broken {
		return false
	}
	if sess.w.Buffered() == 0 {
		return true
	}
	sess.conn.SetWriteDeadline(time.Now().Add(sess.srv.opts.WriteTimeout))
	if err := sess.w.Flush(); err != nil {
		sess.broken = true
		sess.conn.Close()
		return false
	}
	return true
}
