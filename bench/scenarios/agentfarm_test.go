package scenarios

import (
	"io"
	"math"
	"net"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"
)

func TestParseProcNetTCP(t *testing.T) {
	const table = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0D05 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0000000000000000 100 0 0 10 0
   1: 0100007F:9C40 0100007F:0D05 01 00000000:00000000 00:00000000 00000000     0        0 1002 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:9C41 0100007F:0D05 06 00000000:00000000 00:00000000 00000000     0        0 0 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:9C42 0100007F:0D06 01 00000000:00000000 00:00000000 00000000     0        0 1004 1 0000000000000000 20 4 30 10 -1
   4: 0100007F:9C43 0100007F:0D05 08 00000000:00000000 00:00000000 00000000     0        0 1005 1 0000000000000000 20 4 30 10 -1
   5: short line
   6: 0100007F:9C44 0100007F:ZZZZ 01 00000000:00000000 00:00000000 00000000     0        0 1006 1 0000000000000000 20 4 30 10 -1
   7: 0500007F:0D05 0200007F:0D05 01 00000000:00000000 00:00000000 00000000     0        0 1007 1 0000000000000000 20 4 30 10 -1
   8: 0100007F:9C45 0100007F:ZZZZ 01 00000000:00000000 00:00000000 00000000     0        0 1006 1 0000000000000000 20 4 30 10 -1
`
	for _, tc := range []struct {
		name string
		port int
		want []uint64
	}{
		{"to 127.0.0.1:3333 (established, close-wait; listener, time-wait and a miner from 127.0.0.2:3333 skipped)", 3333, []uint64{1002, 1005}},
		{"other port", 3334, []uint64{1004}},
		{"none", 1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := map[uint64]bool{}
			if err := parseProcNetTCP([]byte(table), tc.port, got); err != nil {
				t.Fatal(err)
			}
			var ids []uint64
			for k := range got {
				ids = append(ids, k)
			}
			slices.Sort(ids)
			if !slices.Equal(ids, tc.want) {
				t.Fatalf("inodes %v, want %v", ids, tc.want)
			}
		})
	}
}

// TestUpstreamWire reads this process's own client socket the way the
// scenario reads the agent's: real TCP on loopback.
func TestUpstreamWire(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("TCP_INFO through pidfd_getfd is Linux only")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	got, done := make(chan int64, 1), make(chan struct{})
	defer close(done)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		c.Write([]byte("pong!"))
		n, _ := io.CopyN(io.Discard, c, 1000)
		got <- n
		<-done // keep it open: the client side stays ESTABLISHED
		c.Close()
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 5)); err != nil {
		t.Fatal(err)
	}
	if n := <-got; n != 1000 {
		t.Fatalf("server read %d", n)
	}
	var w map[uint64]sockWire
	for range 50 { // the peer's ACK of the last bytes may lag the read
		if w, err = upstreamWire(os.Getpid(), port); err != nil {
			t.Skipf("pidfd_getfd not permitted here: %v", err)
		}
		if len(w) == 1 && firstWire(w).BytesOut >= 1000 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(w) != 1 {
		t.Fatalf("%d sockets to port %d, want 1 (the client side)", len(w), port)
	}
	sw := firstWire(w)
	// tcpi_bytes_acked counts the SYN's sequence number: 1 + 1000.
	if sw.BytesOut != 1001 || sw.BytesIn != 5 || sw.SegsOut < 2 || sw.SegsIn < 2 {
		t.Fatalf("wire %+v, want 1001 B acked out (SYN + 1000), 5 B in, ≥ 2 segments each way (handshake included)", sw)
	}
}

func firstWire(w map[uint64]sockWire) sockWire {
	for _, v := range w {
		return v
	}
	return sockWire{}
}

func TestDelta(t *testing.T) {
	at := time.Unix(1000, 0)
	a := &agentSample{At: at, Wire: sockWire{BytesOut: 100, BytesIn: 50, SegsOut: 10, SegsIn: 5}}
	b := &agentSample{At: at.Add(10 * time.Second), Wire: sockWire{BytesOut: 10_100, BytesIn: 2_050, SegsOut: 110, SegsIn: 55}}
	d := delta(a, b)
	// up: (10,000 + 52 × 100) × 8 / 1000 / 10 = 12.16; down: (2,000 + 52 × 50) × 8 / 1000 / 10 = 3.68
	if d.Seconds != 10 || d.BytesOut != 10_000 || d.SegsIn != 50 || math.Abs(d.UpKbps-12.16) > 1e-9 || math.Abs(d.DownKbps-3.68) > 1e-9 {
		t.Fatalf("delta %+v", d)
	}
}
