package blockmaker

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/node"
	"github.com/hashpool/hashpool/sha"
	"github.com/hashpool/hashpool/store"

	"github.com/hashpool/hashpool/internal/failpoint"
)

// solvedBacklog bounds the solved shares already submitted but not yet recorded and committed
// (while the database is unreachable).
const solvedBacklog = 1024

// handled is a solved share whose block has been submitted (or which cannot become a block),
// waiting to be recorded and committed.
type handled struct {
	res         Result
	record      bool              // a block was built and some node answered: it goes into found_blocks
	unbuildable *UnbuildableShare // the share cannot become a block: it goes into UnbuildableFile
	msg         bus.Message
}

// consumeSolved submits every solved share as it arrives and hands it to a recorder goroutine,
// which inserts the found_blocks row (or the unbuildable-share line) and then commits the
// share's offset, in order. A database outage thus delays only the bookkeeping, never the
// submission of a later block (btcpool also inserts in a thread of its own); a share is
// committed only once it is submitted and recorded.
func (m *Maker) consumeSolved(ctx context.Context, c bus.Consumer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	queue := make(chan handled, solvedBacklog)
	var recErr error
	recDone := make(chan struct{})
	go func() {
		defer close(recDone)
		recErr = m.recordLoop(ctx, c, queue)
		if recErr != nil {
			cancel()
		}
	}()
	err := m.submitLoop(ctx, c, queue)
	if err != nil {
		cancel()
	}
	// Drained (err == nil): the recorder finishes what is queued before it returns.
	close(queue)
	<-recDone
	if recErr != nil && !errors.Is(recErr, context.Canceled) {
		return recErr
	}
	return err
}

// submitLoop polls solved shares and handles them one by one. After Drain it polls with a
// DrainIdle deadline and returns nil at the first poll that stays empty without a bus error.
func (m *Maker) submitLoop(ctx context.Context, c bus.Consumer, queue chan<- handled) error {
	inc := &bus.Incident{Log: m.opts.Logger, What: "blockmaker: polling " + m.opts.Topics.SolvedShare}
	for {
		draining := m.drainCtx.Err() != nil
		var pctx context.Context
		var cancel context.CancelFunc
		stop := func() bool { return true }
		if draining {
			pctx, cancel = context.WithTimeout(ctx, m.opts.DrainIdle)
		} else {
			pctx, cancel = context.WithCancel(ctx)
			stop = context.AfterFunc(m.drainCtx, cancel) // Drain ends a poll that is waiting
		}
		msgs, err := bus.Poll(pctx, c, inc)
		stop()
		cut := pctx.Err() != nil // the poll's own deadline or Drain ended it
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !cut {
				return fmt.Errorf("blockmaker: polling %s: %w", m.opts.Topics.SolvedShare, err) // permanent
			}
			if draining && !inc.Failing() {
				m.opts.Logger.Info("blockmaker: drained: every solved share on the topic is handed to the recorder")
				return nil
			}
			continue // Drain was called, or the bus is failing while draining: poll again
		}
		for _, msg := range msgs {
			h, err := m.handle(ctx, msg)
			if err != nil {
				return err // not committed: a restart handles this share again
			}
			msg.Key, msg.Value = nil, nil // valid only until the next Poll; Commit needs the offset
			h.msg = msg
			select {
			case queue <- h:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}

func (m *Maker) recordLoop(ctx context.Context, c bus.Consumer, queue <-chan handled) error {
	inc := &bus.Incident{Log: m.opts.Logger, What: "blockmaker: committing " + m.opts.Topics.SolvedShare}
	for h := range queue {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if h.unbuildable != nil && m.unbuild.path != "" {
			if err := m.retry(ctx, "cannot write the unbuildable-share file", "file", m.unbuild.path, func() error {
				return m.unbuild.append(h.unbuildable)
			}); err != nil {
				return err
			}
		}
		if h.record && m.db != nil {
			if err := m.retry(ctx, "cannot record found block", "hash", h.res.Block.Hash, func() error {
				return m.db.InsertFoundBlock(ctx, h.res.Block)
			}); err != nil {
				return err
			}
			h.res.Stored = true
			failpoint.Hit("blkmaker.after-record")
		}
		if m.opts.OnBlock != nil {
			m.opts.OnBlock(h.res)
		}
		if err := bus.Commit(ctx, c, inc, m.opts.CommitLimit, h.msg); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if bus.IsPermanent(err) {
				return fmt.Errorf("blockmaker: commit solved share: %w", err)
			}
			// The share may be delivered again (to this maker or another member): handling it
			// twice submits a duplicate and inserts nothing, so this is not a reason to stop.
			m.opts.Logger.Warn("blockmaker: commit of a handled solved share failed; it may be handled again (harmless)",
				"offset", h.msg.Offset, "err", err)
		}
	}
	return nil
}

// retry calls f until it succeeds or ctx ends, logging every failure at ERROR.
func (m *Maker) retry(ctx context.Context, what, key, val string, f func() error) error {
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil {
			return nil
		}
		m.opts.Logger.Error("blockmaker: "+what+"; retrying", key, val, "attempt", attempt, "err", err)
		if !node.Sleep(ctx, m.opts.RetryDelay) {
			return fmt.Errorf("blockmaker: %s %s: %w", what, val, err)
		}
	}
}

// handle turns one solved share into a block on every node; the found_blocks row is left to
// recordLoop. It returns an error only when the share must be handled again (ctx ended); a share
// that cannot become a block is reported in the Result and logged with what recovery needs.
func (m *Maker) handle(ctx context.Context, msg bus.Message) (handled, error) {
	var res Result
	value := msg.Value
	if err := btcpool.DecodeSolvedShare(value, &res.Share); err != nil {
		res.Err = err
		m.opts.Logger.Error("blockmaker: SOLVED SHARE UNDECODABLE: recover it by hand from value_hex", "err", err,
			"offset", msg.Offset, "value_hex", hex.EncodeToString(value))
		return handled{res: res, unbuildable: newUnbuildable("decode", err, msg, nil, "")}, nil
	}
	s := &res.Share
	m.submitted.Add(1)
	hash := sha.DoubleSHA256(s.Header[:])
	log := m.opts.Logger.With("job_id", s.JobID, "height", s.Height, "hash", sha.DisplayHex(hash), "worker", s.WorkerFullName)

	t, job, err := m.lookup(ctx, s.JobID)
	if err != nil {
		if ctx.Err() != nil {
			return handled{}, ctx.Err()
		}
		res.Err = err
		log.Error("blockmaker: SOLVED SHARE CANNOT BE REBUILT: recover it by hand from the header, the coinbase and the template of this job",
			"err", err, "header_hex", hex.EncodeToString(s.Header[:]), "coinbase_hex", hex.EncodeToString(s.Coinbase),
			"user_id", s.UserID, "worker_id", s.WorkerID, "gbthash", job.gbtHash, "file", m.unbuild.path)
		return handled{res: res, unbuildable: newUnbuildable("lookup", err, msg, s, job.gbtHash)}, nil
	}
	blk, err := Assemble(s.Header, s.Coinbase, t)
	if err != nil {
		res.Err = err
		log.Error("blockmaker: SOLVED SHARE CANNOT BE ASSEMBLED", "err", err, "header_hex", hex.EncodeToString(s.Header[:]),
			"coinbase_hex", hex.EncodeToString(s.Coinbase), "gbthash", t.GbtHash, "file", m.unbuild.path)
		return handled{res: res, unbuildable: newUnbuildable("assemble", err, msg, s, t.GbtHash)}, nil
	}
	res.Nodes = m.submitAll(ctx, blk, log)
	failpoint.Hit("blkmaker.after-submit")
	if ctx.Err() != nil {
		return handled{}, ctx.Err() // shutting down mid-submit: not committed, handled again after a restart
	}
	accepted := false
	for _, n := range res.Nodes {
		if n.Err != nil {
			continue
		}
		if n.Submit.Status != node.SubmitRejected {
			res.OnTip = res.OnTip || n.BestHash == sha.DisplayHex(blk.Hash)
			accepted = true
		}
	}
	if accepted {
		m.accepted.Add(1)
	}

	res.Block = store.FoundBlock{
		PUID:           s.UserID,
		WorkerID:       s.WorkerID,
		WorkerFullName: s.WorkerFullName,
		JobID:          s.JobID,
		Height:         int32(job.height),
		Hash:           sha.DisplayHex(blk.Hash),
		Rewards:        blk.Rewards,
		Size:           int32(len(blk.Bytes)),
		PrevHash:       prevHashDisplay(&s.Header),
		Bits:           leUint32(s.Header[72:76]),
		Version:        int32(leUint32(s.Header[0:4])),
		CreatedAt:      time.Now().UTC().Truncate(time.Second),
	}
	log.Info("blockmaker: block submitted", "accepted", accepted, "on_tip", res.OnTip, "size", res.Block.Size, "rewards", blk.Rewards)
	return handled{res: res, record: true}, nil
}

// submitAll submits blk to every node at once and confirms each answer with the node's best
// block. It returns once at least one node has answered (a node that does not answer is then
// tried SubmitAttempts times in all), or when ctx ends: while no node at all has answered, every
// node keeps being tried with a pause doubling from RetryDelay to MaxRetryDelay, however long,
// with an ERROR line per node every AlarmInterval.
func (m *Maker) submitAll(ctx context.Context, blk *Block, log *slog.Logger) []NodeResult {
	blockHex := hex.EncodeToString(blk.Bytes)
	out := make([]NodeResult, len(m.nodes))
	var answered atomic.Bool
	answeredCh := make(chan struct{})
	var once sync.Once
	start := time.Now()
	var wg sync.WaitGroup
	for i, c := range m.nodes {
		wg.Go(func() {
			r := NodeResult{URL: c.URL()}
			delay := m.opts.RetryDelay
			var lastAlarm time.Time
			for attempt := 1; ; attempt++ {
				r.Submit, r.Err = c.SubmitBlock(ctx, blockHex)
				if r.Err == nil {
					answered.Store(true)
					once.Do(func() { close(answeredCh) })
					break
				}
				if ctx.Err() != nil {
					break
				}
				if attempt >= m.opts.SubmitAttempts && answered.Load() {
					log.Warn("blockmaker: node gave no answer; another node has answered", "node", r.URL, "attempts", attempt, "err", r.Err)
					break
				}
				switch now := time.Now(); {
				case attempt < m.opts.SubmitAttempts:
					log.Warn("blockmaker: submitblock got no answer", "node", r.URL, "attempt", attempt, "err", r.Err)
				case !answered.Load() && now.Sub(lastAlarm) >= m.opts.AlarmInterval:
					lastAlarm = now
					log.Error("blockmaker: BLOCK NOT YET SUBMITTED: no node has answered; retrying until one does (the share stays uncommitted)",
						"node", r.URL, "attempts", attempt, "for", now.Sub(start).Round(time.Millisecond), "err", r.Err)
				}
				wake := answeredCh
				if attempt+1 < m.opts.SubmitAttempts {
					wake = nil // the first attempts are made whatever the other nodes do
				}
				if !sleepUnless(ctx, delay, wake) && ctx.Err() != nil {
					break
				}
				if attempt >= m.opts.SubmitAttempts {
					delay = min(2*delay, m.opts.MaxRetryDelay)
				}
			}
			if r.Err == nil {
				if best, err := c.GetBestBlockHash(ctx); err == nil {
					r.BestHash = best
				}
				log.Info("blockmaker: node answered", "node", r.URL, "status", r.Submit.Status.String(), "reason", r.Submit.Reason,
					"best", r.BestHash, "attempts_for", time.Since(start).Round(time.Millisecond))
			}
			out[i] = r
		})
	}
	wg.Wait()
	return out
}

// sleepUnless waits d; it returns false early when ctx ends or wake is closed.
func sleepUnless(ctx context.Context, d time.Duration, wake <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-wake:
		return false
	}
}

func leUint32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func prevHashDisplay(h *[80]byte) string {
	var p [32]byte
	copy(p[:], h[4:36])
	return sha.DisplayHex(p)
}
