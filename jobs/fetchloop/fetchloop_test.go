package fetchloop

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLoop: one fetch at start, one per trigger, one per interval after Published, and the
// next tick after Failed.
func TestLoop(t *testing.T) {
	l := New(Timing{RPCInterval: time.Hour, Tick: 5 * time.Millisecond}.WithDefaults(0), nil)
	var mu sync.Mutex
	var reasons []string
	got := make(chan string, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	fail := true
	go func() {
		done <- l.Run(ctx, func(_ context.Context, reason string) {
			mu.Lock()
			reasons = append(reasons, reason)
			mu.Unlock()
			if reason == "startup" {
				l.Published(time.Now())
			} else if reason == "hashblock" && fail {
				fail = false
				l.Failed()
			} else {
				l.Published(time.Now())
			}
			got <- reason
		})
	}()
	want := func(r string) {
		t.Helper()
		select {
		case g := <-got:
			if g != r {
				t.Fatalf("fetch %q, want %q", g, r)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("no fetch %q", r)
		}
	}
	want("startup")
	l.Trigger()
	want("hashblock") // fails: the next tick fetches again
	want("interval")
	select {
	case g := <-got:
		t.Fatalf("fetch %q with an hour's interval", g)
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestTimingProblems(t *testing.T) {
	p := Timing{RPCInterval: time.Millisecond, Tick: -1, ZMQAddr: "host:1", ZMQTimeout: time.Millisecond, PublishTimeout: -1}.Problems("m")
	var all []string
	for _, e := range p {
		all = append(all, e.Error())
	}
	s := strings.Join(all, "\n")
	for _, w := range []string{"m: rpcinterval", "tick", "zmq_addr", "zmq_timeout", "publish timeout"} {
		if !strings.Contains(s, w) {
			t.Errorf("problems lack %q:\n%s", w, s)
		}
	}
	if p := (Timing{}).WithDefaults(time.Second).Problems("m"); len(p) != 0 {
		t.Fatalf("defaults: %v", p)
	}
	if err := New(Timing{}, nil).Run(context.Background(), nil); err != ErrNoFetch {
		t.Fatal(err)
	}
}
