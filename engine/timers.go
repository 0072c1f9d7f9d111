package engine

import (
	"context"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// tick runs the once-a-second timers: job refresh and expiry, read
// timeouts, and handing share records to the publisher.
func (s *Server) tick(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	rec := time.NewTicker(200 * time.Millisecond)
	defer rec.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-rec.C:
			s.eachLoop(func(lp *loop) { lp.flushRecords() })
		case now := <-t.C:
			sec := now.Unix()
			s.nowSec.Store(sec)
			if sec%60 == 0 {
				s.newUsers.sweep(sec)
			}
			resend, expired := s.repo.Tick(sec)
			if resend != nil {
				s.broadcast(resend, resend.Clean)
			}
			s.eachLoop(func(lp *loop) {
				for _, j := range expired {
					j.seen[lp.idx] = dupSet{}
				}
				lp.sweep(sec)
			})
		}
	}
}

func (s *Server) eachLoop(f func(lp *loop)) {
	s.loopsMu.Lock()
	loops := append([]*loop(nil), s.loops...)
	s.loopsMu.Unlock()
	for _, lp := range loops {
		lp := lp
		_ = lp.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error { f(lp); return nil }))
	}
}

// sweep closes the loop's sessions whose read deadline passed.
func (lp *loop) sweep(now int64) {
	for i := 0; i < len(lp.sessions); i++ {
		sess := lp.sessions[i]
		if now > sess.deadline {
			lp.srv.metrics.TimedOut.Add(1)
			sess.closed = true
			_ = lp.el.Close(sess.conn.(gnet.Conn))
			i--
		}
	}
}
