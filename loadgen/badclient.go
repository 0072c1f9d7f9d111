package loadgen

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashpool/hashpool/codec/stratum"
	"github.com/hashpool/hashpool/sha"
)

// BadCase is the tally of one bad-input check over all bad clients.
type BadCase struct {
	Expected []string `json:"expected"` // acceptable outcomes: "true", "error <code>", "closed", "no reply"
	Pass     int64    `json:"pass"`
	Fail     int64    `json:"fail"`
	LastFail string   `json:"last_fail,omitempty"` // the last unexpected outcome
}

func (r *recorder) badResult(name string, expected []string, got string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.bad[name]
	if c == nil {
		c = &BadCase{Expected: expected}
		r.bad[name] = c
	}
	if slices.Contains(expected, got) {
		c.Pass++
	} else {
		c.Fail++
		c.LastFail = got
	}
}

// probe is a bad client's connection, used synchronously.
type probe struct {
	e      *env
	c      *net.TCPConn
	r      *reader
	msg    stratum.Message
	closed bool
	state  int // 0 fresh, 1 subscribed, 2 authorized
	en1    []byte
	en2    int
	vmask  uint32 // the server's mask from mining.configure (0: unknown)
	diff   float64
	work   *Work
	id     int64
}

func (p *probe) close() {
	if p.c != nil {
		closeConn(p.e.rec, p.c)
		p.c = nil
	}
}

// silence is how long a probe waits when no reply is an acceptable outcome.
func (p *probe) silence() time.Duration { return min(p.e.s.ResponseTimeout, 2*time.Second) }

// send writes data and waits for the reply to id (0: any reply or error
// line) for at most wait. The outcome is "true", "false", "error <code>",
// "closed" or "no reply".
func (p *probe) send(data []byte, id int64, wait time.Duration) string {
	if p.closed {
		return "closed"
	}
	_ = p.c.SetWriteDeadline(time.Now().Add(p.e.s.ResponseTimeout))
	if _, err := p.c.Write(data); err != nil {
		p.closed = true
		return "closed"
	}
	return p.await(id, wait)
}

func (p *probe) await(id int64, wait time.Duration) string {
	_ = p.c.SetReadDeadline(time.Now().Add(wait))
	for range 10000 { // bounded: a server cannot keep us here with notifications
		line, isFrame, err := p.r.next()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return "no reply"
			}
			p.closed = true
			return "closed"
		}
		if isFrame || stratum.Parse(line, &p.msg) != nil {
			continue
		}
		m := &p.msg
		if m.Method.Kind == stratum.KindString {
			switch {
			case m.IsMethod("mining.set_difficulty"):
				if d, ok := m.Param(0).Float64(); ok && d > 0 && !math.IsInf(d, 0) {
					p.diff = d
				}
			case m.IsMethod("mining.notify"):
				if w, err := ParseNotify(m); err == nil {
					p.work = w
				}
			}
			continue
		}
		got, ok := m.ID.Number()
		if id != 0 && (!ok || got != id) {
			continue
		}
		code, accepted := replyStatus(m)
		switch {
		case m.Error.Kind == stratum.KindArray:
			return "error " + strconv.FormatInt(code, 10)
		case accepted:
			if m.Result.Kind == stratum.KindArray { // a subscribe result
				en1, _ := m.Result.Index(1).Str()
				size, _ := m.Result.Index(2).Int64()
				p.en1, _ = hex.DecodeString(string(en1))
				p.en2 = int(size)
			}
			if mask, ok := m.Result.Get("version-rolling.mask").Str(); ok {
				p.vmask, _ = parseHex32(mask)
			}
			return "true"
		}
		return "false"
	}
	return "no reply"
}

// reach brings the probe to state (0 fresh, 1 subscribed, 2 authorized with
// a job), reconnecting when needed.
func (p *probe) reach(ctx context.Context, state int) error {
	if p.c == nil || p.closed || p.state > state {
		p.close()
		c, err := p.e.dial(ctx)
		if err != nil {
			return err
		}
		*p = probe{e: p.e, c: c, r: newReader(c)}
	}
	t := p.e.s.ResponseTimeout
	if p.state < 1 && state >= 1 {
		// Learns the server's version mask; servers without BIP310 may refuse.
		p.send([]byte(`{"id":1000,"method":"mining.configure","params":[["version-rolling"],{"version-rolling.mask":"ffffffff"}]}`+"\n"), 1000, t)
		if got := p.send([]byte(`{"id":1002,"method":"mining.subscribe","params":["loadgen-bad/1.0"]}`+"\n"), 1002, t); got != "true" || len(p.en1) == 0 {
			return fmt.Errorf("bad client subscribe: %s", got)
		}
		p.state = 1
	}
	if p.state < 2 && state >= 2 {
		line := fmt.Sprintf(`{"id":1003,"method":"mining.authorize","params":["%s.bad","%s"]}`+"\n", p.e.s.User, p.e.s.Password)
		if got := p.send([]byte(line), 1003, t); got != "true" {
			return fmt.Errorf("bad client authorize: %s", got)
		}
		for i := 0; i < 20 && p.work == nil && !p.closed; i++ {
			p.await(-1, 250*time.Millisecond) // collect the first notify
		}
		if p.work == nil {
			return errors.New("bad client: no job after authorize")
		}
		p.state = 2
	}
	return nil
}

func (p *probe) nextID() int64 { p.id++; return p.id }

// runBadClient repeats the bad-input script until ctx ends.
func runBadClient(ctx context.Context, e *env, idx int) {
	p := &probe{e: e}
	defer p.close()
	for round := 0; round < 1_000_000 && ctx.Err() == nil; round++ {
		if err := badScript(ctx, p); err != nil && ctx.Err() == nil {
			e.rec.err(fmt.Sprintf("bad client %d", idx), err)
		}
		if !sleepStop(ctx, e.stop, time.Second) {
			return
		}
	}
}

// badScript runs every bad-input case once.
func badScript(ctx context.Context, p *probe) error {
	e := p.e
	t := e.s.ResponseTimeout
	check := func(name string, state int, expected []string, run func() string) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := p.reach(ctx, state); err != nil {
			return err
		}
		if got := run(); got != "" {
			e.rec.badResult(name, expected, got)
		}
		return nil
	}
	line := func(id int64, method, params string) []byte {
		return []byte(fmt.Sprintf(`{"id":%d,"method":"%s","params":%s}`+"\n", id, method, params))
	}
	steps := []struct {
		name     string
		state    int
		expected []string
		run      func() string
	}{
		{"garbage line, then subscribe", 0, []string{"true", "closed"}, func() string {
			id := p.nextID()
			got := p.send(append([]byte("this is not json at all\n"), line(id, "mining.subscribe", `[]`)...), id, t)
			if got == "true" {
				p.state = 1
			}
			return got
		}},
		{"params not an array", 0, []string{"error 27"}, func() string {
			id := p.nextID()
			return p.send(line(id, "mining.subscribe", `"x"`), id, t)
		}},
		{"authorize before subscribe", 0, []string{"error 25"}, func() string {
			id := p.nextID()
			return p.send(line(id, "mining.authorize", `["`+e.s.User+`.x",""]`), id, t)
		}},
		{"submit before authorize", 0, []string{"error 24"}, func() string {
			id := p.nextID()
			return p.send(line(id, "mining.submit", `["a.b","1","00000000","00000000","00000000"]`), id, t)
		}},
		{"unknown method", 0, []string{"error 26", "no reply"}, func() string {
			id := p.nextID()
			return p.send(line(id, "mining.frobnicate", `[]`), id, p.silence())
		}},
		{"empty user name", 1, []string{"error 29"}, func() string {
			id := p.nextID()
			return p.send(line(id, "mining.authorize", `["",""]`), id, t)
		}},
		{"oversize line (1 MiB, no newline)", 0, []string{"closed"}, func() string {
			return p.send([]byte(strings.Repeat("a", 1<<20+64)), 0, t)
		}},
		{"submit with 3 params", 2, []string{"error 27"}, func() string {
			id := p.nextID()
			return p.send(line(id, "mining.submit", `["`+e.s.User+`.bad","`+p.work.JobID+`","00"]`), id, t)
		}},
		{"unknown job id", 2, []string{"error 21"}, func() string {
			id := p.nextID()
			job := strconv.Itoa((int(p.work.ShortID) + 100) % 256)
			return p.send(p.submit(id, job, 1, p.work.Time, 0, 0), id, t)
		}},
		{"ntime too old", 2, []string{"error 31"}, func() string {
			id := p.nextID()
			return p.send(p.submit(id, p.work.JobID, 2, 1, 0, 0), id, t)
		}},
		{"version bits outside the server's mask", 2, []string{"error 33"}, func() string {
			if p.vmask == 0 || p.vmask == math.MaxUint32 {
				return "" // server mask unknown: skip
			}
			id := p.nextID()
			outside := uint32(1) << bits.TrailingZeros32(^p.vmask)
			return p.send(p.submit(id, p.work.JobID, 3, p.work.Time, 0, outside), id, t)
		}},
		{"low difficulty", 2, []string{"error 23"}, func() string {
			if e.s.SimulatorMode {
				return ""
			}
			nonce, ok := p.lowNonce(4)
			if !ok {
				return "" // every nonce tried meets the share target: cannot test
			}
			id := p.nextID()
			return p.send(p.submit(id, p.work.JobID, 4, p.work.Time, nonce, 0), id, t)
		}},
	}
	for _, s := range steps {
		if err := check(s.name, s.state, s.expected, s.run); err != nil {
			return err
		}
	}
	// A valid share, then the same share again.
	if err := p.reach(ctx, 2); err != nil {
		return err
	}
	en2 := appendEn2(nil, 5, p.en2)
	nonce, ok := e.solve(ctx, p.work, p.en1, en2, p.work.Time, 0, p.diff)
	if !ok {
		return nil
	}
	id := p.nextID()
	sub := p.submit(id, p.work.JobID, 5, p.work.Time, nonce, 0)
	e.rec.badResult("valid share", []string{"true"}, p.send(sub, id, t))
	id2 := p.nextID()
	sub = p.submit(id2, p.work.JobID, 5, p.work.Time, nonce, 0)
	e.rec.badResult("duplicate share", []string{"error 22"}, p.send(sub, id2, t))
	return nil
}

// submit builds a mining.submit for the probe's job with extranonce2 en2.
func (p *probe) submit(id int64, jobID string, en2 uint64, ntime, nonce, vbits uint32) []byte {
	return appendSubmit(nil, id, p.e.s.User+".bad", jobID, appendEn2(nil, en2, p.en2), ntime, nonce, vbits, vbits != 0)
}

// lowNonce finds a nonce whose share misses the difficulty (tries 256).
func (p *probe) lowNonce(en2 uint64) (uint32, bool) {
	var h sha.Hasher
	target := sha.DiffToTarget(p.diff)
	e2 := appendEn2(nil, en2, p.en2)
	for nonce := uint32(0); nonce < 256; nonce++ {
		hash := h.ShareHash(p.work.Job, p.en1, e2, p.work.Time, nonce, 0)
		if !sha.HashMeetsTarget(&hash, &target) {
			return nonce, true
		}
	}
	return 0, false
}
