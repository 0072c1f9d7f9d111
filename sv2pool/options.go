package sv2pool

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hashpool/hashpool/codec/sv2"
	"github.com/hashpool/hashpool/codec/sv2/noise"
)

// Options configures a Server. The zero value of every field but Responder
// means its default.
type Options struct {
	// Responder holds the pool's static key and certificate (required).
	Responder *noise.Responder
	// ExtranonceLen is the extranonce space between a JobTemplate's
	// Coinbase1 and Coinbase2 (default 12: btcpool's 4-byte extranonce1 and
	// 8-byte extranonce2).
	ExtranonceLen int
	// PrefixLen is the part of it the pool assigns to each extended channel
	// (default 4); the miner rolls the remaining ExtranonceLen-PrefixLen
	// bytes. Standard channels get all ExtranonceLen bytes as their prefix.
	PrefixLen int
	// InitialDifficulty is a new channel's share difficulty (default 1),
	// lowered to the channel's max_target when that is smaller.
	InitialDifficulty float64
	// MaxChannels bounds the channels one connection may open (default 64).
	MaxChannels int
	// MaxPayload bounds a received frame's payload (default 4096: clients
	// send nothing bigger than an OpenExtendedMiningChannel).
	MaxPayload int
	// HandshakeTimeout bounds the Noise handshake (default 10s) and
	// SetupTimeout the wait for SetupConnection after it (default 30s).
	HandshakeTimeout, SetupTimeout time.Duration
	// WriteTimeout bounds one frame's write (default 10s).
	WriteTimeout time.Duration
	// OutQueue is each session's output queue in frames (default 256); a
	// session whose queue is full is closed.
	OutQueue int
	// MaxFutureTime is how far a share's ntime may run ahead of the clock
	// (default 2h, Bitcoin's MAX_FUTURE_BLOCK_TIME).
	MaxFutureTime time.Duration
	// OnShare and OnBlock receive accepted shares and shares that meet the
	// network target; they run on the connection's reader goroutine.
	OnShare func(Share)
	OnBlock func(Block)
	// Logger receives connection-level events; nil means silent.
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (o *Options) setDefaults() {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.ExtranonceLen, 12)
	def(&o.PrefixLen, 4)
	def(&o.MaxChannels, 64)
	def(&o.MaxPayload, 4096)
	def(&o.OutQueue, 256)
	defD(&o.HandshakeTimeout, 10*time.Second)
	defD(&o.SetupTimeout, 30*time.Second)
	defD(&o.WriteTimeout, 10*time.Second)
	defD(&o.MaxFutureTime, 2*time.Hour)
	if o.InitialDifficulty == 0 {
		o.InitialDifficulty = 1
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Validate reports every problem with o (after defaults) at once.
func (o Options) Validate() error {
	o.setDefaults()
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf("sv2pool: "+format, a...)) }
	if o.Responder == nil {
		add("Responder is required (the pool's static key and certificate)")
	}
	if o.ExtranonceLen < 1 || o.ExtranonceLen > sv2.MaxB32 {
		add("ExtranonceLen %d is outside 1..32", o.ExtranonceLen)
	}
	if o.PrefixLen < 1 || o.PrefixLen > 4 || o.PrefixLen >= o.ExtranonceLen {
		add("PrefixLen %d must be 1..4 and below ExtranonceLen %d", o.PrefixLen, o.ExtranonceLen)
	}
	if !(o.InitialDifficulty > 0) {
		add("InitialDifficulty %v must be positive", o.InitialDifficulty)
	}
	if o.MaxChannels < 1 {
		add("MaxChannels %d must be positive", o.MaxChannels)
	}
	if o.MaxPayload < 64 || o.MaxPayload > sv2.MaxU24 {
		add("MaxPayload %d is outside 64..%d", o.MaxPayload, sv2.MaxU24)
	}
	if o.OutQueue < 4 {
		add("OutQueue %d must be at least 4", o.OutQueue)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"HandshakeTimeout", o.HandshakeTimeout}, {"SetupTimeout", o.SetupTimeout}, {"WriteTimeout", o.WriteTimeout}, {"MaxFutureTime", o.MaxFutureTime}} {
		if d.v < 0 {
			add("%s %v is negative", d.name, d.v)
		}
	}
	return errors.Join(errs...)
}
