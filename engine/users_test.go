package engine

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestNewUserBounds: one IP registers at most NewUsersPerIP new names per
// hour; over it authorize gets error 29 and is counted, known names still
// authorize, and another IP is not affected.
func TestNewUserBounds(t *testing.T) {
	opts := testOptions(t)
	opts.NewUsersPerIP = 3
	o := newOffline(t, opts)
	auth := func(ip netip.Addr, id uint32, user string) string {
		s := newSession(o.srv, o.lp, id, ip, time.Now().Unix())
		return o.run(s, `{"id":1,"method":"mining.subscribe","params":[]}`+"\n"+
			fmt.Sprintf(`{"id":2,"method":"mining.authorize","params":["%s.w"]}`, user)+"\n")
	}
	const ok, refused = `{"id":2,"result":true,"error":null}`, `{"id":2,"result":null,"error":[29,"Invalid username",null]}`
	a := netip.MustParseAddr("198.51.100.1")
	for i := 0; i < 3; i++ {
		if out := auth(a, uint32(0x01000000+i), fmt.Sprintf("new%d", i)); !strings.Contains(out, ok) {
			t.Fatalf("name %d refused: %s", i, out)
		}
	}
	if out := auth(a, 0x01000010, "new3"); !strings.Contains(out, refused) {
		t.Fatalf("fourth new name from one IP: %s", out)
	}
	if n := o.srv.metrics.UsersRefused.Load(); n != 1 {
		t.Fatalf("UsersRefused %d, want 1", n)
	}
	if out := auth(a, 0x01000011, "new1"); !strings.Contains(out, ok) {
		t.Fatalf("known name refused: %s", out)
	}
	if out := auth(netip.MustParseAddr("198.51.100.2"), 0x01000012, "new3"); !strings.Contains(out, ok) {
		t.Fatalf("another IP refused: %s", out)
	}
	// The window ends after an hour.
	l := o.srv.newUsers
	if !l.take(a, time.Now().Unix()+3601) {
		t.Fatal("bound not reset after an hour")
	}
	l.sweep(time.Now().Unix() + 7300)
	if len(l.byIP) != 0 {
		t.Fatalf("%d windows left after the sweep", len(l.byIP))
	}
}

// TestNewUserPerConnBound: a connection retrying authorize with new names
// registers at most NewUsersPerConn of them.
func TestNewUserPerConnBound(t *testing.T) {
	opts := testOptions(t)
	opts.NewUsersPerConn = 1
	o := newOffline(t, opts)
	s := o.session(0x01000000)
	o.run(s, `{"id":1,"method":"mining.subscribe","params":[]}`+"\n")
	if _, ok := s.srv.users.(UserRegistry).Register("x"); !ok {
		t.Fatal("register")
	}
	// A registration counts even when authorize fails later; simulate a
	// connection that already registered one name.
	s.newUsers = 1
	out := o.run(s, `{"id":2,"method":"mining.authorize","params":["fresh.w"]}`+"\n")
	if !strings.Contains(out, `[29,"Invalid username",null]`) {
		t.Fatalf("second new name on one connection: %s", out)
	}
	out = o.run(s, `{"id":3,"method":"mining.authorize","params":["x.w"]}`+"\n")
	if !strings.Contains(out, `{"id":3,"result":true,"error":null}`) {
		t.Fatalf("known name: %s", out)
	}
}
