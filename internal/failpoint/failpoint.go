// Package failpoint lets crash tests kill a real process at a named instant:
// between a journal write and its fsync, after an answer and before the bus
// acknowledged it, after a block was submitted and before it was recorded.
// Killing from outside at random delays finds some of these windows by luck;
// a failpoint finds each of them every time.
//
// A process arms one point from its environment at start:
//
//	HASHPOOL_FAILPOINT=engine.solved.after-fsync        the first time it is hit
//	HASHPOOL_FAILPOINT=blkmaker.after-submit:3          the third time
//	HASHPOOL_FAILPOINT=engine.solved.before-publish@100ms  100 ms after the first hit
//	HASHPOOL_FAILPOINT=bus.mem.before-fsync^engine.solved.before-journal
//	    the first hit after engine.solved.before-journal was hit (points that work done at
//	    start also passes through are armed by a later one)
//
// (the delay lets work already handed to other goroutines, such as an answer queued
// for a socket, happen before the kill; the goroutine at the point waits meanwhile)
// and sends itself SIGKILL when the point is hit, exactly as kill -9 would.
// Unarmed, Hit is one atomic load: it costs nothing on the paths it marks,
// and production processes never set the variable.
package failpoint

import (
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// EnvVar names the environment variable read at start.
const EnvVar = "HASHPOOL_FAILPOINT"

type point struct {
	name  string
	n     int64
	delay time.Duration
	after string      // counting starts once this point was hit ("": at once)
	gate  atomic.Bool // after was hit
	hits  atomic.Int64
}

var armed atomic.Pointer[point]

func init() { Arm(os.Getenv(EnvVar)) }

// Arm arms the point spec names ("name" or "name:n"); "" disarms. Tests of
// this package use it; processes are armed from EnvVar.
func Arm(spec string) {
	if spec == "" {
		armed.Store(nil)
		return
	}
	p := &point{name: spec, n: 1}
	if name, after, ok := strings.Cut(p.name, "^"); ok {
		p.name, p.after = name, after
	}
	if name, d, ok := strings.Cut(p.name, "@"); ok {
		if v, err := time.ParseDuration(d); err == nil && v >= 0 {
			p.name, p.delay = name, v
		}
	}
	if name, n, ok := strings.Cut(p.name, ":"); ok {
		if v, err := strconv.ParseInt(n, 10, 64); err == nil && v > 0 {
			p.name, p.n = name, v
		}
	}
	armed.Store(p)
}

// kill is how a hit point ends the process; tests of this package replace it.
var kill = func() {
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		_ = p.Kill()
	}
	select {} // SIGKILL is asynchronous: never run on past the point
}

// Hit marks the point name. When it is the armed point and this is the armed
// hit, the process is killed here.
func Hit(name string) {
	p := armed.Load()
	if p == nil {
		return
	}
	if p.after != "" && !p.gate.Load() {
		if name == p.after {
			p.gate.Store(true)
		}
		return
	}
	if p.name != name {
		return
	}
	if p.hits.Add(1) == p.n {
		if p.delay > 0 {
			time.Sleep(p.delay)
		}
		kill()
	}
}
