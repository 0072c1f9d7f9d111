package sv2proxy

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/hashpool/hashpool/codec/stratum"
	"github.com/hashpool/hashpool/codec/sv2"
)

// miner is one downstream SV1 connection. Fields under "reader" belong to
// its reader goroutine; the rest are guarded by Translator.mu.
type miner struct {
	t    *Translator
	c    net.Conn
	sid  uint32
	out  chan []byte
	done chan struct{}
	once sync.Once

	// guarded by Translator.mu
	closed     bool
	authorized bool
	worker     string
	ch         *channel // ChannelPerMiner: this miner's channel on the current pool
	accepted   int64
	rejected   int64
	acceptDiff float64

	// reader
	subscribed bool
	mask       uint32
	bad        int
	framer     stratum.LineFramer
	msg        stratum.Message
	sub        stratum.Submit
	wbuf       []byte
}

// MinerStats is one miner's accounting (Translator.Miners).
type MinerStats struct {
	SessionID  uint32
	Worker     string
	Accepted   int64
	Rejected   int64
	AcceptDiff float64 // sum of the difficulty of accepted shares
}

// Miners returns every connected miner's accounting.
func (t *Translator) Miners() []MinerStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]MinerStats, 0, len(t.miners))
	for _, m := range t.miners {
		out = append(out, MinerStats{SessionID: m.sid, Worker: m.worker, Accepted: m.accepted, Rejected: m.rejected, AcceptDiff: m.acceptDiff})
	}
	return out
}

func (t *Translator) addMiner(c net.Conn) (*miner, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || len(t.miners) >= t.o.MaxMiners {
		return nil, false
	}
	for t.miners[t.nextSID] != nil || t.nextSID == 0 {
		t.nextSID++ // at most MaxMiners steps
	}
	m := &miner{t: t, c: c, sid: t.nextSID, out: make(chan []byte, t.o.MinerQueue), done: make(chan struct{})}
	m.framer.Max = t.o.MaxLine
	t.nextSID++
	t.miners[m.sid] = m
	t.stats.Miners.Add(1)
	return m, true
}

func (m *miner) close() {
	m.once.Do(func() {
		close(m.done)
		if m.c != nil {
			m.c.Close()
		}
	})
}

// send queues a line without blocking; a miner whose queue is full is not
// reading and is closed. The line must not be modified afterwards.
func (m *miner) send(line []byte) {
	select {
	case m.out <- line:
	default:
		m.close()
	}
}

func (m *miner) writer() {
	for {
		select {
		case l := <-m.out:
			m.c.SetWriteDeadline(time.Now().Add(m.t.o.WriteTimeout))
			n, err := m.c.Write(l)
			m.t.stats.DownWireOut.Add(int64(n))
			if err != nil {
				m.close()
				return
			}
		case <-m.done:
			return
		}
	}
}

// run reads the miner until it fails or is closed, then removes it.
func (m *miner) run() {
	t := m.t
	defer t.removeMiner(m)
	start := time.Now()
	buf := make([]byte, 0, 512)
	for {
		if m.authorized0() {
			m.c.SetReadDeadline(time.Now().Add(t.o.MinerReadTimeout))
		} else {
			m.c.SetReadDeadline(start.Add(t.o.AuthorizeTimeout))
		}
		if len(buf) == cap(buf) {
			nb := make([]byte, len(buf), min(2*cap(buf), t.o.MaxLine+1))
			copy(nb, buf)
			buf = nb
		}
		n, err := m.c.Read(buf[len(buf):cap(buf)])
		t.stats.DownWireIn.Add(int64(n))
		buf = buf[:len(buf)+n]
		used, cerr := m.consume(buf)
		buf = buf[:copy(buf, buf[used:])]
		if cerr != nil || err != nil {
			return
		}
	}
}

func (m *miner) authorized0() bool {
	m.t.mu.Lock()
	defer m.t.mu.Unlock()
	return m.authorized
}

func (t *Translator) removeMiner(m *miner) {
	m.close()
	t.mu.Lock()
	defer t.mu.Unlock()
	m.closed = true
	delete(t.miners, m.sid)
	t.stats.Miners.Add(-1)
	if m.ch != nil {
		t.closeChannel(m.ch)
		m.ch = nil
	}
}

// errMinerSpam closes a miner that sends too many lines that are not JSON.
var errMinerSpam = errors.New("sv2proxy: miner sends garbage")

// consume handles every complete line of buf and returns the bytes used.
func (m *miner) consume(buf []byte) (int, error) {
	used := 0
	for {
		line, n, err := m.framer.Next(buf[used:])
		if err != nil {
			return used, err
		}
		if n == 0 {
			return used, nil
		}
		used += n
		if err := m.handleLine(line); err != nil {
			return used, err
		}
	}
}

func blank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' {
			return false
		}
	}
	return true
}

// reply queues a line built in m.wbuf (copied: the queue keeps it).
func (m *miner) reply(line []byte) {
	m.wbuf = line[:0]
	m.send(append([]byte(nil), line...))
}

func (m *miner) handleLine(line []byte) error {
	if blank(line) {
		return nil
	}
	msg := &m.msg
	switch err := stratum.ParseRequest(line, msg); err {
	case nil:
	case stratum.ErrIllegalParams:
		m.reply(stratum.AppendError(m.wbuf[:0], msg.ID, stratum.StatusIllegalParams))
		return nil
	default:
		if m.bad++; m.bad > 16 {
			return errMinerSpam
		}
		return nil
	}
	id := msg.ID
	switch {
	case msg.IsMethod(stratum.MethodSubmit):
		m.submit()
	case msg.IsMethod(stratum.MethodSubscribe):
		m.subscribed = true
		m.reply(stratum.AppendSubscribeResult(m.wbuf[:0], id, m.sid, m.t.o.ExtraNonce2Size))
	case msg.IsMethod(stratum.MethodAuthorize):
		m.authorize()
	case msg.IsMethod(stratum.MethodConfigure):
		m.configure()
	case msg.IsMethod(stratum.MethodExtranonceSubscribe):
		m.reply(stratum.AppendExtranonceSubscribeResult(m.wbuf[:0], id))
	case msg.IsMethod(stratum.MethodSuggestDifficulty), msg.IsMethod(stratum.MethodSuggestTarget):
		// The pool sets targets; an SV2 channel's max_target is fixed at open.
		m.reply(stratum.AppendResultTrue(m.wbuf[:0], id))
	default:
		m.reply(stratum.AppendError(m.wbuf[:0], id, stratum.StatusIllegalMethod))
	}
	return nil
}

// workerName takes the worker from an SV1 user name the way btcagent does
// ("john.a001" → "a001"; no dot: the whole name), keeping at most 64
// printable ASCII bytes other than quotes and backslashes.
func workerName(raw []byte) string {
	for i, c := range raw {
		if c == '.' {
			raw = raw[i+1:]
			break
		}
	}
	out := make([]byte, 0, min(len(raw), 64))
	for _, c := range raw {
		if len(out) == 64 {
			break
		}
		if c > 0x20 && c < 0x7f && c != '"' && c != '\\' {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return "default"
	}
	return string(out)
}

func (m *miner) authorize() {
	msg := &m.msg
	if !m.subscribed {
		m.reply(stratum.AppendError(m.wbuf[:0], msg.ID, stratum.StatusNotSubscribed))
		return
	}
	name, ok := msg.Param(0).Str()
	if !ok || len(name) == 0 {
		m.reply(stratum.AppendError(m.wbuf[:0], msg.ID, stratum.StatusInvalidUsername))
		return
	}
	t := m.t
	t.mu.Lock()
	defer t.mu.Unlock()
	// The answer goes first: the miner's difficulty and job follow it.
	m.reply(stratum.AppendResultTrue(m.wbuf[:0], msg.ID))
	if m.authorized {
		return // one worker per connection
	}
	m.authorized = true
	m.worker = workerName(name)
	switch {
	case t.up == nil:
	case t.o.Mode == SharedChannel:
		if t.shared != nil && t.shared.open {
			t.shared.join(t, m)
		}
	default:
		m.ch = t.openChannel(m)
	}
}

func (m *miner) configure() {
	msg := &m.msg
	var entries []stratum.ConfigureEntry
	it := msg.Param(0).Elems()
	opts := msg.Param(1)
	for n := 0; n < 16; n++ {
		v, ok := it.Next()
		if !ok {
			break
		}
		name, ok := v.Str()
		if !ok {
			continue
		}
		if string(name) != "version-rolling" {
			entries = append(entries, stratum.ConfigureEntry{Key: name, Result: false})
			continue
		}
		mask, ok := opts.Get("version-rolling.mask").Str()
		var want uint64
		if ok && len(mask) <= 8 {
			want = stratum.ParseSubmitHex(mask)
		} else {
			want = uint64(m.t.o.VersionMask) // no mask given: offer ours
		}
		m.mask = uint32(want) & m.t.o.VersionMask
		entries = append(entries, stratum.ConfigureEntry{Key: name, Result: true},
			stratum.ConfigureEntry{Key: []byte("version-rolling.mask"), IsMask: true, Mask: m.mask})
	}
	m.reply(stratum.AppendConfigureResult(m.wbuf[:0], msg.ID, entries))
}

func (m *miner) submit() {
	msg, s, t := &m.msg, &m.sub, m.t
	if err := msg.Submit(s); err != nil {
		m.reply(stratum.AppendError(m.wbuf[:0], msg.ID, stratum.StatusIllegalParams))
		return
	}
	var en2 [8]byte
	e2 := t.o.ExtraNonce2Size
	if len(s.ExtraNonce2) != 2*e2 {
		m.reply(stratum.AppendError(m.wbuf[:0], msg.ID, stratum.StatusIllegalParams))
		return
	}
	if _, err := hex.Decode(en2[:e2], s.ExtraNonce2); err != nil {
		m.reply(stratum.AppendError(m.wbuf[:0], msg.ID, stratum.StatusIllegalParams))
		return
	}
	jobID := stratum.ParseSubmitDecimal(s.JobID)
	ntime := uint32(stratum.ParseSubmitHex(s.Time))
	nonce := uint32(stratum.ParseSubmitHex(s.Nonce))
	var vm uint32
	if s.VersionMask != nil {
		vm = uint32(stratum.ParseSubmitHex(s.VersionMask))
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !m.authorized {
		m.reply(stratum.AppendError(m.wbuf[:0], msg.ID, stratum.StatusUnauthorized))
		return
	}
	t.stats.Submitted.Add(1)
	ch := m.ch
	if t.o.Mode == SharedChannel {
		ch = t.shared
	}
	if ch == nil || !ch.open || t.up == nil {
		m.answer(t, msg.ID, codeStale, "", 0) // no pool to judge it; nothing of ours is queued
		return
	}
	local := int16(0)
	j := ch.find(jobID)
	switch {
	case j == nil:
		local = codeStale
	case vm&^m.mask != 0:
		local = int16(stratum.StatusIllegalVersionMask)
	case len(ch.pend) >= t.o.MaxPending:
		local = codeOther
	}
	p := pending{m: m, id: msg.ID.Clone(), diff: ch.diff, code: local}
	if local != 0 {
		// Behind this miner's earlier shares, so that answers stay in order.
		if len(ch.pend) == 0 || len(ch.pend) >= t.o.MaxPending {
			m.answer(t, p.id, local, "", 0)
			return
		}
		ch.pend = append(ch.pend, p)
		return
	}
	version := j.version
	if j.rolling {
		version ^= vm
	}
	var en [sv2.MaxB32]byte
	n := ch.pad
	binary.BigEndian.PutUint32(en[n:], m.sid)
	n += minerPartLen
	n += copy(en[n:], en2[:e2])
	ch.seq++
	p.seq = ch.seq
	ch.pend = append(ch.pend, p)
	t.up.send(sv2.AppendSubmitSharesExtended(make([]byte, 0, 64), &sv2.SubmitSharesExtended{ChannelID: ch.id,
		SequenceNumber: ch.seq, JobID: j.sv2, Nonce: nonce, NTime: ntime, Version: version, Extranonce: en[:n]}))
	t.stats.Forwarded.Add(1)
}

// answer sends a share's answer and accounts it. Caller holds t.mu.
func (m *miner) answer(t *Translator, id stratum.ID, code int16, msg string, diff float64) {
	if code == codeOK {
		t.stats.Accepted.Add(1)
		m.accepted++
		m.acceptDiff += diff
		if !m.closed {
			m.send(stratum.AppendResultTrue(make([]byte, 0, 48), id))
		}
		return
	}
	t.stats.Rejected.Add(1)
	m.rejected++
	switch code {
	case codeStale:
		t.stats.RejectedStale.Add(1)
	case codeDup:
		t.stats.RejectedDup.Add(1)
	case codeLow:
		t.stats.RejectedLow.Add(1)
	}
	if m.closed {
		return
	}
	if msg == "" {
		if code == codeOther {
			msg = "Other/Unknown"
		} else {
			msg = stratum.Status(code).String()
		}
	}
	m.send(stratum.AppendErrorMessage(make([]byte, 0, 80), id, int64(code), msg))
}
