package gbtmaker

import (
	"context"

	"github.com/hashpool/hashpool/node"
)

// zmq runs the hashblock subscriber and turns every event (a new block, a reconnect, a
// detected gap) into an immediate template. Gaps and reconnects are logged by the subscriber.
func (m *Maker) zmq(ctx context.Context) {
	sub, err := node.NewHashBlockSubscriber(node.ZMQOptions{
		Addr:    m.opts.ZMQAddr,
		Timeout: m.opts.ZMQTimeout,
		Logger:  m.log,
	})
	if err != nil { // Options.Validate checked the address; this is a programming error
		m.log.Error("zmq disabled", "err", err)
		return
	}
	_ = sub.Run(ctx, func(ev node.HashBlockEvent) {
		m.log.Debug("zmq hashblock", "hash", ev.Hash, "seq", ev.Seq, "missed", ev.Missed, "reconnected", ev.Reconnected)
		m.Trigger()
	})
}
