package enginetest

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashpool/hashpool/engine"
)

// TestStartPublishStop: the engine serves stratum on Addr with the jobs
// Publish adds, stops once, and a second engine can take over its address.
func TestStartPublishStop(t *testing.T) {
	e := Start(t, nil)
	if jp := e.AddJob(false); jp.Height != FirstHeight || jp.Bits != 0x1d00ffff {
		t.Fatalf("first job height %d bits %08x", jp.Height, jp.Bits)
	}
	if jp := e.AddJob(true); jp.Height != FirstHeight+1 || jp.Bits != 0x207fffff {
		t.Fatalf("regtest job height %d bits %08x", jp.Height, jp.Bits)
	}
	c, err := net.Dial("tcp", e.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(`{"id":1,"method":"mining.subscribe","params":[]}` + "\n")); err != nil {
		t.Fatal(err)
	}
	if l, err := bufio.NewReader(c).ReadString('\n'); err != nil || !strings.HasPrefix(l, `{"id":1,"result":[`) {
		t.Fatalf("subscribe: %q, %v", l, err)
	}
	c.Close() // else Stop spreads closing it over the grace period

	addr := e.Addr
	e.Stop()
	e.Stop()
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatal("engine still listens after Stop")
	}
	e2 := Start(t, func(o *engine.Options) { o.Listen = addr })
	if e2.Addr != addr {
		t.Fatalf("second engine on %s, want %s", e2.Addr, addr)
	}
}
