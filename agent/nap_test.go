package agent

import (
	"context"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// A loop's nap sleeps out the coalescing interval since the previous one,
// and a kick (a job or difficulty for many miners) ends it at once.
func TestLoopNap(t *testing.T) {
	n := newLoopNap(time.Hour)
	n.woke = time.Now()
	n.queued = true
	done := make(chan struct{})
	go func() { n.task.Run(context.Background()); close(done) }()
	select {
	case <-done:
		t.Fatal("the nap ended without its interval passing or a kick")
	case <-time.After(50 * time.Millisecond):
	}
	a := &Agent{naps: map[gnet.EventLoop]*loopNap{nil: n}}
	a.wakeLoops()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a kick did not end the nap")
	}
	if n.queued {
		t.Fatal("the nap did not clear queued")
	}

	// After a whole interval without traffic the next nap does not sleep.
	n = newLoopNap(time.Hour)
	n.woke = time.Now().Add(-2 * time.Hour)
	done = make(chan struct{})
	go func() { n.task.Run(context.Background()); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a nap slept although its interval had passed")
	}
}
