package loadgen

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashpool/hashpool/codec/agent"
	"github.com/hashpool/hashpool/codec/stratum"
	"github.com/hashpool/hashpool/internal/tcpinfo"
)

// maxLine bounds one line from the server; a notify with a full branch is
// well under 4 KiB.
const maxLine = 64 << 10

// dialer dials the target from the source addresses in turn, at most
// connectRate new connections a second over all goroutines.
type dialer struct {
	target  *net.TCPAddr
	sources []net.IP
	next    atomic.Uint64
	timeout time.Duration

	mu       sync.Mutex
	interval time.Duration
	slot     time.Time
}

func newDialer(target *net.TCPAddr, sources []net.IP, connectRate float64, timeout time.Duration) *dialer {
	d := &dialer{target: target, sources: sources, timeout: timeout}
	if connectRate > 0 {
		d.interval = time.Duration(float64(time.Second) / connectRate)
	}
	return d
}

// wait blocks until this caller's connect slot.
func (d *dialer) wait(ctx context.Context) error {
	if d.interval == 0 {
		return ctx.Err()
	}
	d.mu.Lock()
	now := time.Now()
	if d.slot.Before(now) {
		d.slot = now
	}
	at := d.slot
	d.slot = d.slot.Add(d.interval)
	d.mu.Unlock()
	if wait := time.Until(at); wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return ctx.Err()
}

func (d *dialer) dial(ctx context.Context) (*net.TCPConn, error) {
	if err := d.wait(ctx); err != nil {
		return nil, err
	}
	nd := net.Dialer{Timeout: d.timeout}
	if len(d.sources) > 0 {
		ip := d.sources[(d.next.Add(1)-1)%uint64(len(d.sources))]
		nd.LocalAddr = &net.TCPAddr{IP: ip}
	}
	c, err := nd.DialContext(ctx, "tcp", d.target.String())
	if err != nil {
		return nil, err
	}
	tc := c.(*net.TCPConn)
	_ = tc.SetNoDelay(true)
	return tc, nil
}

// closeConn records the connection's TCP_INFO and closes it.
func closeConn(rec *recorder, c *net.TCPConn) { closeConnAfter(rec, c, nil) }

// setupMark is a miner connection's TCP_INFO read once its handshake and
// first job were through; what the connection carried after it is the
// steady state (shares and new jobs), reported apart from the setup.
type setupMark struct {
	ok bool
	at tcpinfo.Counters
}

// take reads c's counters now.
func (k *setupMark) take(c *net.TCPConn) {
	if t, err := tcpinfo.Conn(c); err == nil {
		k.ok, k.at = true, t
	}
}

// closeConnAfter is closeConn that also records what the connection
// carried after mark (when mark was taken).
func closeConnAfter(rec *recorder, c *net.TCPConn, mark *setupMark) {
	if t, err := tcpinfo.Conn(c); err == nil {
		rec.tcp(t)
		if mark != nil && mark.ok {
			rec.steady(t, mark.at)
		}
	} else {
		rec.err("TCP_INFO", err)
	}
	_ = c.Close()
}

// reader cuts a connection's input into stratum lines and agent frames.
// Not safe for concurrent use; the bytes passed to the callbacks are valid
// only during the call.
type reader struct {
	c      net.Conn
	buf    []byte
	start  int
	end    int
	framer stratum.LineFramer
}

func newReader(c net.Conn) *reader {
	return &reader{c: c, buf: make([]byte, 4096), framer: stratum.LineFramer{Max: maxLine}}
}

var errFrame = errors.New("bad agent frame from server")

// next returns the next line (without '\n') or agent frame. isFrame tells
// which. It blocks on the connection until one is complete.
func (r *reader) next() (msg []byte, isFrame bool, err error) {
	for {
		pending := r.buf[r.start:r.end]
		if len(pending) > 0 {
			if pending[0] == agent.Magic {
				n, err := agent.Split(pending)
				if err != nil {
					return nil, false, errFrame
				}
				if n > 0 {
					r.start += n
					return pending[:n], true, nil
				}
			} else {
				line, n, err := r.framer.Next(pending)
				if err != nil {
					return nil, false, err
				}
				if n > 0 {
					r.start += n
					return line, false, nil
				}
			}
		}
		// Need more bytes: compact, grow (bounded), read.
		if r.start > 0 {
			copy(r.buf, r.buf[r.start:r.end])
			r.end -= r.start
			r.start = 0
			r.framer.Reset()
		}
		if r.end == len(r.buf) {
			if len(r.buf) >= maxLine+agent.MaxFrameLen {
				return nil, false, stratum.ErrLineTooLong
			}
			nb := make([]byte, 2*len(r.buf))
			copy(nb, r.buf[:r.end])
			r.buf = nb
		}
		n, err := r.c.Read(r.buf[r.end:])
		r.end += n
		if err != nil && n == 0 {
			if errors.Is(err, io.EOF) {
				return nil, false, io.EOF
			}
			return nil, false, err
		}
	}
}
