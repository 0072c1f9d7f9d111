package engine

import (
	"bufio"
	"fmt"
	"net"
	"testing"
)

func (p *testPool) dialProxy() *client {
	p.t.Helper()
	c, err := net.Dial("tcp", p.srv.ProxyAddr().String())
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { c.Close() })
	return &client{t: p.t, conn: c, r: bufio.NewReader(c)}
}

// TestProxyListenerRequiresHeader: on ProxyListen the PROXY v1 line is
// required and gives the session its IP; without it the connection is
// closed; the plain listener on the same loops is unaffected.
func TestProxyListenerRequiresHeader(t *testing.T) {
	o := testOptions(t)
	o.ProxyListen = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p := startPool(t, o)
	job := testJobParams(740, false)
	if err := p.srv.AddJob(job); err != nil {
		t.Fatal(err)
	}
	if p.srv.ProxyAddr() == nil || p.srv.ProxyAddr().String() == p.srv.Addr().String() {
		t.Fatalf("proxy addr %v, addr %v", p.srv.ProxyAddr(), p.srv.Addr())
	}
	c := p.dialProxy()
	c.send("PROXY TCP4 203.0.113.9 127.0.0.1 51234 443\r")
	c.subscribeAuthorize("", "hank.w")
	c.script(`
<~ .*set_difficulty.*
<~ .*mining.notify.*`)
	c.script(fmt.Sprintf(`
> {"id":3,"method":"mining.submit","params":["hank.w","0","00000000000000aa","%08x","00000001"]}
<~ \{"id":3,.*`, job.Time))
	if sh := p.nextShare(); sh.IP.String() != "203.0.113.9" {
		t.Fatalf("share record ip %v, want the PROXY source", sh.IP)
	}
	for _, first := range []string{
		`{"id":1,"method":"mining.subscribe","params":[]}`, // no header
		"PROXY UNKNOWN\r",                     // not TCP4/TCP6
		"PROXY TCP4 nonsense 127.0.0.1 1 2\r", // bad address
	} {
		bad := p.dialProxy()
		bad.send(first)
		bad.expectClosed()
	}
	if n := p.srv.metrics.ProxyRefused.Load(); n != 3 {
		t.Fatalf("ProxyRefused %d, want 3", n)
	}
	// An agent frame before the header is refused too.
	bad := p.dialProxy()
	bad.conn.Write([]byte{0x7f, 0x01, 0x08, 0x00, 0, 0, 0, 0})
	bad.expectClosed()
	// The plain listener needs no header.
	plain := p.dial()
	plain.subscribeAuthorize("", "hank.w2")
}
