package node

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/go-zeromq/zmq4"
)

// HashBlockTopic is the ZMQ topic bitcoind publishes new block hashes on (-zmqpubhashblock).
const HashBlockTopic = "hashblock"

// Defaults used by [ZMQOptions.Validate] for zero fields.
const (
	DefaultZMQTimeout    = 1200 * time.Second // btcpool's bitcoind.zmq_timeout
	DefaultZMQMinBackoff = 500 * time.Millisecond
	DefaultZMQMaxBackoff = 30 * time.Second
	zmqDialTimeout       = 5 * time.Second
)

// ZMQOptions configures a [HashBlockSubscriber].
type ZMQOptions struct {
	// Addr is the node's ZMQ endpoint, "tcp://host:port" (bitcoind -zmqpubhashblock=...).
	Addr string
	// Timeout is how long the socket may stay silent before it is closed and dialled again
	// (default 1200 s). Blocks come every 10 minutes on average, so keep it well above that.
	Timeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between two connection attempts; it doubles
	// after each failure and resets after a message arrives.
	MinBackoff, MaxBackoff time.Duration
	// Logger receives connection problems and sequence gaps; nil means silent.
	Logger *slog.Logger
}

// Validate fills zero fields with their defaults and reports every problem at once.
func (o *ZMQOptions) Validate() error {
	if o.Timeout == 0 {
		o.Timeout = DefaultZMQTimeout
	}
	if o.MinBackoff == 0 {
		o.MinBackoff = DefaultZMQMinBackoff
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = DefaultZMQMaxBackoff
	}
	var errs []error
	if !strings.HasPrefix(o.Addr, "tcp://") && !strings.HasPrefix(o.Addr, "ipc://") {
		errs = append(errs, fmt.Errorf("node: ZMQ address %q: want tcp://host:port or ipc://path", o.Addr))
	}
	if o.Timeout < 0 {
		errs = append(errs, fmt.Errorf("node: ZMQ timeout %v is negative", o.Timeout))
	}
	if o.MinBackoff < 0 || o.MaxBackoff < o.MinBackoff {
		errs = append(errs, fmt.Errorf("node: ZMQ backoff %v..%v: want 0 <= min <= max", o.MinBackoff, o.MaxBackoff))
	}
	return errors.Join(errs...)
}

// HashBlockEvent is one thing the subscriber tells its caller. Every event is a reason to
// fetch a new template.
type HashBlockEvent struct {
	// Hash is the new block's hash in display hex; empty for a Reconnected event.
	Hash string
	// Seq is the publisher's sequence number of this message.
	Seq uint32
	// Missed is how many hashblock messages were lost before this one, judged by the
	// sequence numbers (ZMQ PUB/SUB drops messages silently under load or on reconnect).
	Missed uint32
	// Reconnected is set on the event sent after the socket was dialled again: blocks may
	// have come and gone while it was down.
	Reconnected bool
}

// HashBlockSubscriber receives bitcoind's ZMQ hashblock notifications over a SUB socket,
// detects lost messages by sequence number, and reconnects with backoff.
type HashBlockSubscriber struct {
	opts ZMQOptions
	log  *slog.Logger
}

// NewHashBlockSubscriber validates opts and returns a subscriber. It does not connect.
func NewHashBlockSubscriber(opts ZMQOptions) (*HashBlockSubscriber, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &HashBlockSubscriber{opts: opts, log: log}, nil
}

// Run connects, subscribes to hashblock and calls fn for every event until ctx ends; then it
// returns ctx.Err(). fn runs on Run's goroutine: a slow fn delays reception (ZMQ may then drop
// messages, which shows up as Missed). Connection failures, silence longer than Timeout and
// malformed messages are logged and lead to a reconnect, never to a return.
func (s *HashBlockSubscriber) Run(ctx context.Context, fn func(HashBlockEvent)) error {
	backoff := s.opts.MinBackoff
	var last uint32
	haveLast := false
	connects := 0
	for ctx.Err() == nil {
		got, err := s.session(ctx, connects > 0, &last, &haveLast, fn)
		connects++
		if ctx.Err() != nil {
			break
		}
		if got {
			backoff = s.opts.MinBackoff
		}
		s.log.Warn("zmq hashblock subscription lost; reconnecting", "addr", s.opts.Addr, "in", backoff, "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		backoff = min(2*backoff, s.opts.MaxBackoff)
	}
	return ctx.Err()
}

// errSilent is the reason for a reconnect after Timeout without a message.
var errSilent = errors.New("no message within the ZMQ timeout")

// session dials once and reads until an error. It reports whether any message arrived.
func (s *HashBlockSubscriber) session(ctx context.Context, reconnect bool, last *uint32, haveLast *bool, fn func(HashBlockEvent)) (got bool, err error) {
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sub := zmq4.NewSub(sctx, zmq4.WithDialerMaxRetries(0), zmq4.WithAutomaticReconnect(false),
		zmq4.WithDialerTimeout(zmqDialTimeout))
	defer sub.Close()
	if err := sub.SetOption(zmq4.OptionSubscribe, HashBlockTopic); err != nil {
		return false, err
	}
	if err := sub.Dial(s.opts.Addr); err != nil {
		return false, err
	}
	s.log.Debug("zmq subscribed", "addr", s.opts.Addr, "topic", HashBlockTopic)
	if reconnect {
		fn(HashBlockEvent{Reconnected: true})
	}
	watchdog := time.AfterFunc(s.opts.Timeout, func() { cancel(errSilent) })
	defer watchdog.Stop()
	for {
		msg, err := sub.Recv()
		if err != nil {
			if c := context.Cause(sctx); c != nil && ctx.Err() == nil {
				return got, c
			}
			return got, err
		}
		watchdog.Reset(s.opts.Timeout)
		ev, err := parseHashBlock(msg.Frames)
		if err != nil {
			s.log.Warn("zmq: ignoring malformed message", "addr", s.opts.Addr, "err", err)
			continue
		}
		got = true
		if *haveLast {
			switch {
			case ev.Seq == *last+1:
			case ev.Seq <= *last:
				// The node restarted and its counter began again (or it repeated itself).
				s.log.Info("zmq hashblock sequence went back (node restart?)", "seq", ev.Seq, "previous", *last)
			default:
				ev.Missed = ev.Seq - *last - 1
				s.log.Warn("zmq hashblock messages lost", "missed", ev.Missed, "seq", ev.Seq, "previous", *last)
			}
		}
		*last, *haveLast = ev.Seq, true
		fn(ev)
	}
}

// parseHashBlock checks the three frames bitcoind sends: topic, 32-byte hash (display
// order), 4-byte little-endian sequence number.
func parseHashBlock(frames [][]byte) (HashBlockEvent, error) {
	if len(frames) != 3 {
		return HashBlockEvent{}, fmt.Errorf("%d frames, want 3", len(frames))
	}
	if string(frames[0]) != HashBlockTopic {
		return HashBlockEvent{}, fmt.Errorf("topic %q, want %q", quoteStart(frames[0]), HashBlockTopic)
	}
	if len(frames[1]) != 32 {
		return HashBlockEvent{}, fmt.Errorf("hash is %d bytes, want 32", len(frames[1]))
	}
	if len(frames[2]) != 4 {
		return HashBlockEvent{}, fmt.Errorf("sequence is %d bytes, want 4", len(frames[2]))
	}
	return HashBlockEvent{Hash: hex.EncodeToString(frames[1]), Seq: binary.LittleEndian.Uint32(frames[2])}, nil
}
