package engine

import (
	"context"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// Shutdown stops the server in order and returns once Serve has returned
// (or ctx ended first, with ctx's error):
//
//  1. it stops accepting: the listening sockets are closed at once, so a
//     new connection is refused by the kernel (not accepted and reset);
//  2. it drains: sessions are closed spread over GracePeriod (bounded by
//     ctx), while the open ones go on submitting and being answered; a
//     session whose answer waits for a solved share's journal record is
//     closed only after it was written;
//  3. it stops the job consumer and the timers, flushes every loop's share
//     records to the producer and stops the event loops;
//  4. it waits, bounded by ctx (by SolvedWait when ctx has no deadline),
//     until every solved share is journaled and acknowledged by the bus (the
//     journal keeps the rest for the next start), then closes the outputs.
//
// The caller closes the producer after Shutdown returned (the producer
// flushes the share records handed to it), then stops the components that
// consume the server's output. Shutdown may be called once Serve runs;
// calling it again waits again.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutOnce.Do(func() {
		s.shutCtx = ctx
		close(s.shutStart)
	})
	select {
	case <-s.served:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// shutdown runs steps 1–4 of Shutdown; stopRun ends the job consumer and
// the timers, wg waits for them.
func (s *Server) shutdown(ctx context.Context, stopRun context.CancelFunc, wg *sync.WaitGroup) {
	s.draining.Store(true)
	if n, err := stopListening(s.listenSAs); err != nil {
		s.log.Warn("closing the listening sockets failed; new connections are accepted and closed until the server stops",
			"closed", n, "err", err)
	} else {
		s.log.Info("stopped accepting connections", "listeners", n)
	}
	close(s.listenStopped)
	s.drain(ctx)
	stopRun()
	wg.Wait()
	s.eachLoopWait(func(lp *loop) { lp.flushRecords() })
	stopCtx, stopCancel := context.WithTimeout(context.Background(), 10*time.Second)
	if err := s.eng.Stop(stopCtx); err != nil {
		s.log.Warn("event loops did not stop in time", "err", err)
	}
	stopCancel()
	solvedCtx := ctx
	if _, ok := ctx.Deadline(); !ok {
		c, cancel := context.WithTimeout(ctx, s.opts.SolvedWait)
		defer cancel()
		solvedCtx = c
	}
	if !s.out.waitSolved(solvedCtx) {
		s.log.Error("shutdown: solved shares not acknowledged by the bus in time; they stay in the journal for the next start",
			"pending", s.out.inflight.Load(), "journal", s.out.journalPath)
	}
}

// drain closes the sessions spread over GracePeriod (or until ctx's
// deadline, if sooner). Sessions whose answers are held for the journal are
// closed last, after the journal wrote their shares.
func (s *Server) drain(ctx context.Context) {
	grace := s.opts.GracePeriod
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < grace {
		grace = max(time.Until(dl)/2, 0)
	}
	deadline := time.Now().Add(grace)
	const rounds = 10
	for r := 1; r <= rounds; r++ {
		if s.metrics.Sessions.Load() == 0 {
			break
		}
		if r == rounds {
			s.waitJournaled(ctx)
		}
		frac := float64(r) / rounds
		s.eachLoopWait(func(lp *loop) {
			n := int(float64(len(lp.sessions)) * frac)
			if r == rounds {
				n = len(lp.sessions)
			}
			for i := len(lp.sessions) - 1; i >= 0 && n > 0; i-- {
				sess := lp.sessions[i]
				if sess.holdN > 0 && r < rounds {
					continue
				}
				n--
				sess.closed = true
				_ = lp.el.Close(sess.conn.(gnet.Conn))
			}
		})
		if r < rounds {
			select {
			case <-time.After(time.Until(deadline) / time.Duration(rounds-r+1)):
			case <-ctx.Done():
			}
		}
	}
}

// waitJournaled waits (at most 2 s, or until ctx ends) until the journal
// goroutine took every solved share handed to it and the loops ran the
// tasks that release the held answers.
func (s *Server) waitJournaled(ctx context.Context) {
	limit := time.Now().Add(2 * time.Second)
	for s.out.unjournaled.Load() > 0 && time.Now().Before(limit) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	s.eachLoopWait(func(*loop) {})
}

func (s *Server) snapshotLoops() []*loop {
	s.loopsMu.Lock()
	defer s.loopsMu.Unlock()
	return append([]*loop(nil), s.loops...)
}

// eachLoopWait runs f on every loop and waits (at most 5 s) for all of them.
func (s *Server) eachLoopWait(f func(lp *loop)) {
	loops := s.snapshotLoops()
	var wg sync.WaitGroup
	for _, lp := range loops {
		lp := lp
		wg.Add(1)
		if lp.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error { f(lp); wg.Done(); return nil })) != nil {
			wg.Done()
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
}

// fdAddr returns the local address of a (dup'ed) listener fd, raw and as a
// net.Addr, and closes the fd.
func fdAddr(fd int) (syscall.Sockaddr, net.Addr) {
	defer syscall.Close(fd)
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		return nil, nil
	}
	switch a := sa.(type) {
	case *syscall.SockaddrInet4:
		return sa, &net.TCPAddr{IP: net.IP(a.Addr[:]).To16(), Port: a.Port}
	case *syscall.SockaddrInet6:
		return sa, &net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}
	}
	return nil, nil
}

// sameAddr reports whether a and b are the same TCP address.
func sameAddr(a, b net.Addr) bool {
	ta, ok1 := a.(*net.TCPAddr)
	tb, ok2 := b.(*net.TCPAddr)
	return ok1 && ok2 && ta.Port == tb.Port && ta.IP.Equal(tb.IP)
}

// sameSockaddr reports whether a and b are the same IPv4 or IPv6 address.
func sameSockaddr(a, b syscall.Sockaddr) bool {
	switch x := a.(type) {
	case *syscall.SockaddrInet4:
		y, ok := b.(*syscall.SockaddrInet4)
		return ok && x.Port == y.Port && x.Addr == y.Addr
	case *syscall.SockaddrInet6:
		y, ok := b.(*syscall.SockaddrInet6)
		return ok && x.Port == y.Port && x.Addr == y.Addr && x.ZoneId == y.ZoneId
	}
	return false
}
