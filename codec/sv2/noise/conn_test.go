package noise

import (
	"bytes"
	"errors"
	"io"
	"math"
	"net"
	"testing"
	"time"

	"github.com/hashpool/hashpool/codec/sv2"
)

// listen starts a TCP listener on 127.0.0.1 whose accepted connections run
// Server and then serve(conn); it returns the address and a channel of each
// connection's handshake error.
func listen(t *testing.T, r *Responder, o ConnOptions, serve func(*Conn)) (string, chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	errs := make(chan error, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc, err := Server(c, r, o)
				errs <- err
				if err == nil && serve != nil {
					serve(sc)
				}
			}()
		}
	}()
	return ln.Addr().String(), errs
}

func echo(c *Conn) {
	for {
		h, p, err := c.ReadFrame()
		if err != nil {
			return
		}
		f := sv2.AppendHeader(nil, h)
		if c.WriteFrame(append(f, p...)) != nil {
			return
		}
	}
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func waitErr(t *testing.T, errs chan error) error {
	t.Helper()
	select {
	case err := <-errs:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("server handshake did not finish")
		return nil
	}
}

func TestConnOverTCP(t *testing.T) {
	p := newPKI(t, "tcp pool", 0, math.MaxUint32)
	r, err := NewResponder(p.static, p.cert, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr, errs := listen(t, r, ConnOptions{}, echo)
	c, err := Client(dial(t, addr), XOnly(p.authority), ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := waitErr(t, errs); err != nil {
		t.Fatal(err)
	}
	setup := sv2.AppendSetupConnection(nil, &sv2.SetupConnection{MinVersion: 2, MaxVersion: 2, Vendor: []byte("hashpool-test")})
	big := frameOf(60000)
	for _, f := range [][]byte{setup, big, setup} {
		if err := c.WriteFrame(f); err != nil {
			t.Fatal(err)
		}
		h, pl, err := c.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(append(sv2.AppendHeader(nil, h), pl...), f) {
			t.Fatalf("echo of %s differs", sv2.MsgName(h.MsgType))
		}
	}
}

func TestConnFailures(t *testing.T) {
	p := newPKI(t, "tcp pool", 0, math.MaxUint32)
	other := newPKI(t, "other", 0, math.MaxUint32)
	r, _ := NewResponder(p.static, p.cert, nil)
	addr, errs := listen(t, r, ConnOptions{MaxPayload: 1000, HandshakeTimeout: 5 * time.Second}, echo)

	// Wrong authority key: the client refuses; the server sees a closed
	// connection on its first read.
	if _, err := Client(dial(t, addr), XOnly(other.authority), ConnOptions{}); err != ErrCertSignature {
		t.Fatalf("wrong authority: %v", err)
	}
	if err := waitErr(t, errs); err != nil {
		t.Fatalf("server handshake: %v", err)
	}

	// Expired certificate, judged at the client's clock.
	late := func() time.Time { return time.Unix(math.MaxUint32, 0).Add(time.Hour) }
	if _, err := Client(dial(t, addr), XOnly(p.authority), ConnOptions{Now: late}); err != ErrCertExpired {
		t.Fatalf("expired: %v", err)
	}
	waitErr(t, errs)

	// Truncated handshake: 10 bytes then close; the server returns an
	// error and the next client is still served.
	nc := dial(t, addr)
	nc.Write(make([]byte, 10))
	nc.Close()
	if err := waitErr(t, errs); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated handshake: %v", err)
	}

	// Oversized frame: the server's ReadFrame refuses it and closes.
	c, err := Client(dial(t, addr), XOnly(p.authority), ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitErr(t, errs)
	if err := c.WriteFrame(frameOf(2000)); err != nil {
		t.Fatal(err)
	}
	c.NetConn().SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, _, err := c.ReadFrame(); err == nil {
		t.Fatal("server answered an oversized frame")
	}

	// A tampered frame: the server's MAC check fails and it closes.
	c, err = Client(dial(t, addr), XOnly(p.authority), ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitErr(t, errs)
	ct, _ := c.s.Seal(nil, frameOf(10))
	ct[len(ct)-1] ^= 1
	c.NetConn().Write(ct)
	c.NetConn().SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, _, err := c.ReadFrame(); err == nil {
		t.Fatal("server answered a tampered frame")
	}

	// A client that stalls mid-handshake is cut off by HandshakeTimeout.
	stall := dial(t, addr)
	stall.Write(make([]byte, 5))
	if err := waitErr(t, errs); err == nil {
		t.Fatal("stalled handshake succeeded")
	}

	if err := (ConnOptions{MaxPayload: sv2.MaxU24 + 1, ClockSkew: -1, HandshakeTimeout: -1}).Validate(); err == nil ||
		!bytes.Contains([]byte(err.Error()), []byte("MaxPayload")) || !bytes.Contains([]byte(err.Error()), []byte("ClockSkew")) {
		t.Fatalf("Validate: %v", err)
	}
}
