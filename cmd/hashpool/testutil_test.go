package main

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncWriter lets the pool's goroutines log into one builder.
type syncWriter struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// startRun runs `hashpool run args...` in this process until the test ends (then it must stop
// cleanly within 60 s; its log is shown if the test failed) and waits until addr accepts TCP.
func startRun(t *testing.T, addr string, args ...string) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	logw := &syncWriter{b: &strings.Builder{}}
	go func() { runErr <- runCommand(ctx, "run", args, io.Discard, logw) }()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-runErr:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Error("run did not stop within 60 s")
		}
		if t.Failed() {
			t.Logf("pool log:\n%s", lastLines(logw.String(), 60))
		}
	})
	eventually(t, addr+" listening", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}
