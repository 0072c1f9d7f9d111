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

// A loop writes a broadcast in slices of at most broadcastSlice of loop
// time (checked every broadcastCheck sessions, at most broadcastChunk
// sessions) and then lets the loop read its sockets before the next slice.
// A notify costs about 10–15 µs of loop time per session (one write
// syscall), so 10,000 sessions are 100–150 ms: in one piece they would hold
// every submit on the loop that long.
const (
	broadcastSlice = 250 * time.Microsecond
	broadcastCheck = 16
	broadcastChunk = 1024
)

// broadcast runs on the loop: per session, what precedes the notify goes to lp.out and both are
// written with one writev. It works through a snapshot of the loop's sessions in slices, each a
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
	notify := j.Notify(clean)
	start := time.Now()
	n := 0
	for n < len(sessions) && n < broadcastChunk {
		if n%broadcastCheck == broadcastCheck-1 && time.Since(start) >= broadcastSlice {
			break
		}
		sess := sessions[n]
		n++
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
	lp.srv.paceTask(lp, func() { lp.broadcastFrom(j, clean, now, rest, done) }, done)
}

// paced is a loop task handed to the pacer.
type paced struct {
	lp   *loop
	run  func()
	fail func() // called when the loop no longer takes tasks
}

// paceTask queues run as a task of lp by way of the pacer goroutine. A task
// that a loop task queues itself lands in the queue the loop is draining and
// runs before the loop reads a socket again; queued from another goroutine,
// it almost always finds the loop back in epoll_wait, so the loop reads
// every ready socket (submits) before the next slice. When the pacer is
// busy the task is queued directly (never a blocking send on the loop).
func (s *Server) paceTask(lp *loop, run, fail func()) {
	select {
	case s.pace <- paced{lp, run, fail}:
	default:
		s.execute(paced{lp, run, fail})
	}
}

func (s *Server) execute(p paced) {
	err := p.lp.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error { p.run(); return nil }))
	if err != nil {
		p.fail()
	}
}

// runPacer queues the paced tasks until stop is closed.
func (s *Server) runPacer(stop <-chan struct{}) {
	for {
		select {
		case p := <-s.pace:
			s.execute(p)
		case <-stop:
			for {
				select {
				case p := <-s.pace:
					p.fail()
				default:
					return
				}
			}
		}
	}
}
