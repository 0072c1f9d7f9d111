package tcpinfo

import (
	"io"
	"net"
	"runtime"
	"testing"
	"time"
)

// TestConnCountsPayload sends a known payload over loopback and checks the
// counters of both ends once the peer has acknowledged it.
func TestConnCountsPayload(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("TCP_INFO is Linux's")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	defer s.Close()
	const n = 1000
	if _, err := c.Write(make([]byte, n)); err != nil {
		t.Fatal(err)
	}
	s.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadFull(s, make([]byte, n)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	var out Counters
	for {
		out, err = Conn(c)
		if err != nil {
			t.Fatal(err)
		}
		if out.BytesOut >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond) // the ACK is on its way
	}
	// The kernel counts the SYN as one acknowledged byte.
	if out.BytesOut < n || out.BytesOut > n+1 || out.SegsOut < 2 {
		t.Fatalf("sender counters %+v: want %d (+1 for the SYN) bytes acknowledged in ≥ 2 segments", out, n)
	}
	in, err := Conn(s)
	if err != nil {
		t.Fatal(err)
	}
	if in.BytesIn < n || in.BytesIn > n+1 || in.SegsIn < 2 {
		t.Fatalf("receiver counters %+v: want %d bytes received", in, n)
	}
	if _, err := Conn(fakeConn{}); err == nil {
		t.Fatal("a conn without a socket: want an error")
	}
}

type fakeConn struct{ net.Conn }
