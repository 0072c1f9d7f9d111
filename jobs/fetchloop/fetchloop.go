package fetchloop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/node"
)

// Defaults shared by the makers (btcpool's gbtmaker.cfg and GbtMaker.cc).
const (
	DefaultTick           = time.Second        // the main loop's period
	DefaultZMQTimeout     = 1200 * time.Second // bitcoind.zmq_timeout
	DefaultPublishTimeout = 10 * time.Second
)

// Timing is when a maker fetches and how long it waits for the bus. Makers embed it in their
// options.
type Timing struct {
	// RPCInterval is the longest time between two published works (btcpool's rpcinterval):
	// work is fetched and published when the last one is this old, whatever else happened.
	RPCInterval time.Duration
	// Tick is the period of the loop that checks RPCInterval (btcpool: 1 s).
	Tick time.Duration
	// ZMQAddr is the node's ZMQ hashblock endpoint (-zmqpubhashblock, e.g.
	// "tcp://127.0.0.1:28332"); every message makes work at once. Empty disables ZMQ.
	ZMQAddr string
	// ZMQTimeout is how long ZMQ may stay silent before the subscriber reconnects (1200 s).
	ZMQTimeout time.Duration
	// PublishTimeout bounds waiting for the bus to acknowledge one message.
	PublishTimeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// WithDefaults returns t with every zero field set to its default; rpcInterval is the maker's
// own default interval.
func (t Timing) WithDefaults(rpcInterval time.Duration) Timing {
	if t.RPCInterval == 0 {
		t.RPCInterval = rpcInterval
	}
	if t.Tick == 0 {
		t.Tick = DefaultTick
	}
	if t.ZMQTimeout == 0 {
		t.ZMQTimeout = DefaultZMQTimeout
	}
	if t.PublishTimeout == 0 {
		t.PublishTimeout = DefaultPublishTimeout
	}
	if t.Now == nil {
		t.Now = time.Now
	}
	return t
}

// Problems returns every problem with t (after WithDefaults), each prefixed with who ("gbtmaker").
func (t Timing) Problems(who string) []error {
	var errs []error
	if t.RPCInterval < time.Second {
		errs = append(errs, fmt.Errorf("%s: rpcinterval %v is below 1s", who, t.RPCInterval))
	}
	if t.Tick <= 0 || t.Tick > t.RPCInterval {
		errs = append(errs, fmt.Errorf("%s: tick %v must be positive and at most rpcinterval", who, t.Tick))
	}
	if t.ZMQAddr != "" && !strings.HasPrefix(t.ZMQAddr, "tcp://") && !strings.HasPrefix(t.ZMQAddr, "ipc://") {
		errs = append(errs, fmt.Errorf("%s: zmq_addr %q: want tcp://host:port or ipc://path", who, t.ZMQAddr))
	}
	if t.ZMQTimeout < time.Second {
		errs = append(errs, fmt.Errorf("%s: zmq_timeout %v is below 1s", who, t.ZMQTimeout))
	}
	if t.PublishTimeout <= 0 {
		errs = append(errs, fmt.Errorf("%s: publish timeout %v is not positive", who, t.PublishTimeout))
	}
	return errs
}

// Loop runs a maker's fetches. Create it with New; Trigger, Published and Failed may be called
// from any goroutine.
type Loop struct {
	t       Timing
	log     *slog.Logger
	trigger chan struct{}

	mu   sync.Mutex
	last time.Time // when the last work was published (zero: never)

	published, fetchErrors, publishErrors atomic.Uint64
	failing                               atomic.Bool // in a streak of failed fetches (log once)
}

// New returns a loop with timing t (after WithDefaults) logging to log (nil: silent).
func New(t Timing, log *slog.Logger) *Loop {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if t.Now == nil {
		t.Now = time.Now
	}
	return &Loop{t: t, log: log, trigger: make(chan struct{}, 1)}
}

// ErrNoFetch is returned by Run when fetch is nil.
var ErrNoFetch = errors.New("fetchloop: fetch is nil")

// Run calls fetch(ctx, "startup"), then fetch(ctx, "hashblock") on every trigger (ZMQ or
// Trigger) and fetch(ctx, "interval") whenever the last Published is RPCInterval old, until ctx
// ends; it returns nil then. Fetches run one at a time on Run's goroutine; fetch reports its
// outcome with Published or Failed.
func (l *Loop) Run(ctx context.Context, fetch func(ctx context.Context, reason string)) error {
	if fetch == nil {
		return ErrNoFetch
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	if l.t.ZMQAddr != "" {
		wg.Go(func() { l.zmq(ctx) })
	}
	fetch(ctx, "startup")
	tick := time.NewTicker(l.t.Tick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-l.trigger:
			fetch(ctx, "hashblock")
		case <-tick.C:
			if l.due() {
				fetch(ctx, "interval")
			}
		}
	}
}

// due reports whether the last work is RPCInterval old. Half a tick of slack: Published is
// called after the fetch and the bus's acknowledgement, so without it every interval would
// slip by one tick (btcpool compares whole seconds, which has the same effect).
func (l *Loop) due() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.last.Add(l.t.RPCInterval - l.t.Tick/2).After(l.t.Now())
}

// Trigger asks Run to fetch at once. It never blocks; triggers that arrive while one is
// pending are merged.
func (l *Loop) Trigger() {
	select {
	case l.trigger <- struct{}{}:
	default:
	}
}

// Published records that work was published (acknowledged by the bus) at at.
func (l *Loop) Published(at time.Time) {
	l.mu.Lock()
	l.last = at
	l.mu.Unlock()
}

// Failed makes the next tick fetch again instead of waiting a whole interval.
func (l *Loop) Failed() {
	l.mu.Lock()
	l.last = l.t.Now().Add(-l.t.RPCInterval)
	l.mu.Unlock()
}

// zmq turns every hashblock event (a new block, a reconnect, a detected gap) into a trigger.
// Gaps and reconnects are logged by the subscriber.
func (l *Loop) zmq(ctx context.Context) {
	sub, err := node.NewHashBlockSubscriber(node.ZMQOptions{Addr: l.t.ZMQAddr, Timeout: l.t.ZMQTimeout, Logger: l.log})
	if err != nil { // Problems checked the address; a programming error
		l.log.Error("zmq disabled", "err", err)
		return
	}
	_ = sub.Run(ctx, func(ev node.HashBlockEvent) {
		l.log.Debug("zmq hashblock", "hash", ev.Hash, "seq", ev.Seq, "missed", ev.Missed, "reconnected", ev.Reconnected)
		l.Trigger()
	})
}

// FetchFailed records a failed fetch (nothing when ctx ended): counted, logged at Warn at the
// start of a streak of failures and at Debug after, and retried at the next tick.
func (l *Loop) FetchFailed(ctx context.Context, what, reason string, err error) {
	if ctx.Err() != nil {
		return
	}
	l.fetchErrors.Add(1)
	if !l.failing.Swap(true) {
		l.log.Warn(what+" failed; retrying every tick", "reason", reason, "err", err)
	} else {
		l.log.Debug(what+" failed", "reason", reason, "err", err)
	}
	l.Failed()
}

// FetchOK ends a streak of failed fetches, with one Info line.
func (l *Loop) FetchOK(what string, args ...any) {
	if l.failing.Swap(false) {
		l.log.Info(what+" works again", args...)
	}
}

// Publish hands value to prod on topic and waits up to PublishTimeout for the bus's
// acknowledgement. On success it counts the message and records now as the last publish
// (Published); a failure is counted and logged (unless ctx ended). It reports success.
func (l *Loop) Publish(ctx context.Context, prod bus.Producer, topic string, key, value []byte, now time.Time) bool {
	pctx, cancel := context.WithTimeout(ctx, l.t.PublishTimeout)
	err := prod.PublishSync(pctx, topic, key, value)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			l.publishErrors.Add(1)
			l.log.Warn("work not acknowledged by the bus", "topic", topic, "err", err)
		}
		return false
	}
	l.published.Add(1)
	l.Published(now)
	return true
}

// Counts returns the messages published, the failed fetches and the failed publishes since New.
func (l *Loop) Counts() (published, fetchErrors, publishErrors uint64) {
	return l.published.Load(), l.fetchErrors.Load(), l.publishErrors.Load()
}

// NodeClient returns a client for a maker's node; the node logs to log unless o has a logger.
func NodeClient(o node.Options, log *slog.Logger) (*node.Client, error) {
	if o.Logger == nil {
		o.Logger = log
	}
	return node.NewClient(o)
}

// Advertise fills what a maker's messages tell blkmaker about where to submit, when empty:
// url with the node's URL (http:// added to a bare host:port), userPass with "user:password"
// (left empty without a user).
func Advertise(o node.Options, url, userPass *string) {
	if *url == "" && o.URL != "" {
		*url = o.URL
		if !strings.Contains(*url, "://") {
			*url = "http://" + *url
		}
	}
	if *userPass == "" && o.User != "" {
		*userPass = o.User + ":" + o.Password
	}
}

// CountFetchError counts a failed fetch the maker handles itself (a long poll with its own
// backoff).
func (l *Loop) CountFetchError() { l.fetchErrors.Add(1) }
