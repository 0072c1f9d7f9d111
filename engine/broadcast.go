package engine

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// broadcast sends j to every session, one task per event loop; each loop
// writes the shared notify line to its own sessions.
func (s *Server) broadcast(j *Job, clean bool) {
	start := time.Now()
	s.loopsMu.Lock()
	loops := append([]*loop(nil), s.loops...)
	s.loopsMu.Unlock()
	var pending atomic.Int32
	pending.Store(int32(len(loops)))
	done := func() {
		if pending.Add(-1) == 0 {
			d := time.Since(start).Nanoseconds()
			s.metrics.Broadcasts.Add(1)
			s.metrics.BroadcastNanos.Add(d)
			s.metrics.LastBroadcastNanos.Store(d)
		}
	}
	for _, lp := range loops {
		lp := lp
		err := lp.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			lp.broadcast(j, clean, s.nowSec.Load(), done)
			return nil
		}))
		if err != nil {
			done()
		}
	}
}

// broadcastChunk is how many sessions a loop writes a notify to before it lets the loop serve
// reads again: a broadcast costs about 10 µs of loop time per session (one write syscall), so
// with 100,000 sessions a new block would otherwise hold every submit of a loop for about a
// second.
const broadcastChunk = 512

// broadcast runs on the loop: per session, what precedes the notify goes to lp.out and both are
// written with one writev. It works through a snapshot of the loop's sessions in chunks, each a
// task of its own, and calls done after the last.
func (lp *loop) broadcast(j *Job, clean bool, now int64, done func()) {
	// A re-send of an older job can reach the loop after a newer job (they
	// are broadcast from different goroutines): it must not replace it.
	if j.ID < lp.lastJob {
		done()
		return
	}
	lp.lastJob = j.ID
	lp.broadcastFrom(j, clean, now, append([]*Session(nil), lp.sessions...), done)
}

func (lp *loop) broadcastFrom(j *Job, clean bool, now int64, sessions []*Session, done func()) {
	if j.ID < lp.lastJob { // a newer job's broadcast took over
		done()
		return
	}
	n := min(len(sessions), broadcastChunk)
	notify := j.Notify(clean)
	for _, sess := range sessions[:n] {
		if sess.state != stateAuthorized || sess.closed {
			continue
		}
		lp.out = lp.out[:0]
		sess.pushJob(j, now)
		c := sess.conn.(gnet.Conn)
		if sess.isNiceHash {
			lp.out = j.AppendNotifyWithID(lp.out, clean, niceHashJobID(j, now))
			_, _ = c.Write(lp.out)
		} else if len(lp.out) > 0 {
			lp.iov[0], lp.iov[1] = lp.out, notify
			_, _ = c.Writev(lp.iov[:])
			lp.iov[0], lp.iov[1] = nil, nil
		} else {
			_, _ = c.Write(notify)
		}
		if c.OutboundBuffered() > lp.srv.opts.MaxOutbound {
			lp.srv.metrics.SlowClosed.Add(1)
			sess.closed = true
			_ = lp.el.Close(c) // OnClose runs now and removes sess from lp.sessions
		}
	}
	lp.out = lp.out[:0]
	rest := sessions[n:]
	if len(rest) == 0 {
		done()
		return
	}
	err := lp.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		lp.broadcastFrom(j, clean, now, rest, done)
		return nil
	}))
	if err != nil {
		done()
	}
}
