package blockmaker

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashpool/hashpool/auxpow"
	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/internal/failpoint"
	"github.com/hashpool/hashpool/node"
	"github.com/hashpool/hashpool/sha"
	"github.com/hashpool/hashpool/store"
)

// DefaultAuxGroup is the consumer group of the AuxSolvedShare consumer.
const DefaultAuxGroup = "blkmaker_btc_aux"

// AuxRecorder stores merged-mined blocks; *store.Store implements it. A duplicate aux block
// hash must succeed without a second row.
type AuxRecorder interface {
	InsertFoundAuxBlock(ctx context.Context, b store.FoundAuxBlock) error
}

// AuxResult is the outcome of one aux solved share.
type AuxResult struct {
	Share    btcpool.AuxSolvedShare
	Block    store.FoundAuxBlock
	Accepted bool  // the aux node answered true
	Err      error // the share could not be submitted (undecodable, no node for its chain)
	Stored   bool
}

// AuxCounters count what blkmaker did with aux solved shares: plain atomics that cmd/
// exports, fed every AuxResult through Options.OnAuxBlock (see Count).
type AuxCounters struct {
	Submitted   atomic.Int64 // aux blocks the aux node gave a verdict on
	Accepted    atomic.Int64 // of those, blocks the node accepted (or already had in its chain)
	Recorded    atomic.Int64 // found_nmc_blocks inserts (a hash already there keeps its one row)
	Unsubmitted atomic.Int64 // aux solved shares that could not be submitted (see AuxResult.Err)
}

// Count adds the outcome of one handled aux solved share.
func (c *AuxCounters) Count(r AuxResult) {
	if r.Err != nil {
		c.Unsubmitted.Add(1)
		return
	}
	c.Submitted.Add(1)
	if r.Accepted {
		c.Accepted.Add(1)
	}
	if r.Stored {
		c.Recorded.Add(1)
	}
}

// AuxCounter is one of AuxCounters with its metric name and help text, for an exporter.
type AuxCounter struct {
	Name, Help string
	V          *atomic.Int64
}

// All lists every counter of c.
func (c *AuxCounters) All() []AuxCounter {
	return []AuxCounter{
		{"aux_submitted_total", "Aux blocks submitted to their chain's node with a verdict.", &c.Submitted},
		{"aux_accepted_total", "Aux blocks the aux node accepted (or already had in its chain).", &c.Accepted},
		{"aux_recorded_total", "found_nmc_blocks inserts (a hash already recorded keeps its one row).", &c.Recorded},
		{"aux_unsubmitted_total", "Aux solved shares that could not be submitted (undecodable, no node for the chain, job unknown).", &c.Unsubmitted},
	}
}

// auxNode is one aux chain's node and the submit RPC it takes.
type auxNode struct {
	c       *node.Client
	methods *node.AuxMethods // nil until the node answered help
}

// newAuxNodes builds a client per configured aux chain.
func newAuxNodes(opts map[string]node.Options) (map[string]*auxNode, error) {
	out := make(map[string]*auxNode, len(opts))
	for name, o := range opts {
		c, err := node.NewClient(o)
		if err != nil {
			return nil, fmt.Errorf("blockmaker: aux node %q: %w", name, err)
		}
		out[name] = &auxNode{c: c}
	}
	return out, nil
}

// consumeAux submits every AuxSolvedShare to its chain's node, records it in found_nmc_blocks
// and only then commits it (spec §9; the parent's durability: a crash leaves it on the topic).
func (m *Maker) consumeAux(ctx context.Context, c bus.Consumer) error {
	return m.consumeMerged(ctx, c, m.opts.Topics.AuxSolvedShare, func(ctx context.Context, value []byte) error {
		res, err := m.handleAux(ctx, value)
		if err != nil {
			return err // ctx ended mid-submit: not committed
		}
		if res.Block.AuxBlockHash != "" {
			if rec, ok := m.db.(AuxRecorder); ok && m.db != nil {
				if err := m.retry(ctx, "cannot record found aux block", "aux_hash", res.Block.AuxBlockHash, func() error {
					return rec.InsertFoundAuxBlock(ctx, res.Block)
				}); err != nil {
					return err
				}
				res.Stored = true
				failpoint.Hit("blkmaker.aux.after-record")
			}
		}
		if m.opts.OnAuxBlock != nil {
			m.opts.OnAuxBlock(res)
		}
		return nil
	})
}

// consumeMerged is the loop of a merged-mining solved-share topic (aux, RSK): handle submits
// one share until its node gives a verdict and records it; only then is the share committed.
// An error from handle (ctx ended mid-submit) ends the loop with the share uncommitted. As
// submitLoop, after Drain a poll that stays empty for DrainIdle ends the loop with nil.
func (m *Maker) consumeMerged(ctx context.Context, c bus.Consumer, topic string, handle func(ctx context.Context, value []byte) error) error {
	inc := &bus.Incident{Log: m.opts.Logger, What: "blockmaker: polling " + topic}
	cinc := &bus.Incident{Log: m.opts.Logger, What: "blockmaker: committing " + topic}
	for {
		draining := m.drainCtx.Err() != nil
		var pctx context.Context
		var cancel context.CancelFunc
		stop := func() bool { return true }
		if draining {
			pctx, cancel = context.WithTimeout(ctx, m.opts.DrainIdle)
		} else {
			pctx, cancel = context.WithCancel(ctx)
			stop = context.AfterFunc(m.drainCtx, cancel)
		}
		msgs, err := bus.Poll(pctx, c, inc)
		stop()
		cut := pctx.Err() != nil
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !cut {
				return fmt.Errorf("blockmaker: polling %s: %w", topic, err)
			}
			if draining && !inc.Failing() {
				m.opts.Logger.Info("blockmaker: drained: every merged-mining solved share on the topic is handled", "topic", topic)
				return nil
			}
			continue
		}
		for _, msg := range msgs {
			if err := handle(ctx, msg.Value); err != nil {
				return err
			}
			msg.Key, msg.Value = nil, nil
			if err := bus.Commit(ctx, c, cinc, m.opts.CommitLimit, msg); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if bus.IsPermanent(err) {
					return fmt.Errorf("blockmaker: commit on %s: %w", topic, err)
				}
				m.opts.Logger.Warn("blockmaker: commit of a handled merged-mining solved share failed; it may be handled again (harmless)",
					"topic", topic, "offset", msg.Offset, "err", err)
			}
		}
	}
}

// handleAux builds the auxpow of one AuxSolvedShare and submits it until the aux node gives
// a verdict (or ctx ends: the error is returned and the share is not committed).
func (m *Maker) handleAux(ctx context.Context, value []byte) (AuxResult, error) {
	var res AuxResult
	s := &res.Share
	if err := btcpool.DecodeAuxSolvedShare(value, s); err != nil {
		res.Err = err
		m.opts.Logger.Error("blockmaker: AUX SOLVED SHARE UNDECODABLE", "err", err, "value_hex", hex.EncodeToString(value))
		return res, nil
	}
	name := s.ChainName
	if name == "" {
		name = m.opts.AuxChainName
	}
	log := m.opts.Logger.With("chain", name, "aux_hash", s.AuxBlockHash, "job_id", s.JobID)
	an := m.auxNodes[name]
	if an == nil && len(m.auxNodes) == 1 && s.ChainName == "" {
		for _, n := range m.auxNodes {
			an = n
		}
	}
	if an == nil && s.RPCAddr != "" { // btcpool submits to the rpc_addr the share carries
		o := node.Options{URL: s.RPCAddr}
		o.User, o.Password, _ = strings.Cut(s.RPCUserPass, ":")
		c, err := node.NewClient(o)
		if err == nil {
			an = &auxNode{c: c}
		}
	}
	if an == nil {
		res.Err = fmt.Errorf("blockmaker: no aux node for chain %q", name)
		log.Error("blockmaker: AUX BLOCK NOT SUBMITTED: no node configured for its chain", "err", res.Err,
			"header_hex", hex.EncodeToString(s.BlockHeader[:]), "coinbase_hex", hex.EncodeToString(s.CoinbaseTx))
		return res, nil
	}
	branch := s.CoinbaseBranch
	if !s.HasCoinbaseBranch { // a btcpool sserver's share: the branch comes from the job's template
		t, _, err := m.lookup(ctx, s.JobID)
		if err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			res.Err = err
			log.Error("blockmaker: AUX BLOCK NOT SUBMITTED: job or template unknown", "err", err)
			return res, nil
		}
		branch = sha.MerkleBranch(t.TxIDs)
	}
	ap := auxpow.AuxPow{CoinbaseTx: s.CoinbaseTx, CoinbaseBranch: branch, ChainBranch: s.AuxBranch,
		ChainIndex: s.AuxIndex, ParentHeader: s.BlockHeader}
	apHex := hex.EncodeToString(auxpow.AppendAuxPow(make([]byte, 0, ap.Size()), &ap))
	parent := sha.DisplayHex(ap.ParentHash())

	ok, verdict := m.submitAux(ctx, an, s.AuxBlockHash, apHex, log)
	failpoint.Hit("blkmaker.aux.after-submit")
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if !ok && verdict != "" && an.inMainChain(ctx, s.AuxBlockHash) {
		// A share handled again (a crash after its submit, before its commit): the node
		// answers a block it already has as unknown or a duplicate, but the block is in its
		// chain, so the first submit was accepted. The row says so.
		log.Info("blockmaker: aux block already in the aux chain (share handled again): recorded as accepted", "response", verdict)
		ok, verdict = true, "true"
	}
	res.Accepted = ok
	res.Block = store.FoundAuxBlock{BitcoinBlockHash: parent, AuxBlockHash: strings.ToLower(s.AuxBlockHash), AuxPow: apHex,
		ChainName: name, SubmitResponse: verdict, CreatedAt: time.Now().UTC().Truncate(time.Second)}
	if len(res.Block.AuxPow) > 65535 {
		res.Block.AuxPow = "" // store refuses more; the log line below keeps it
	}
	log.Info("blockmaker: aux block submitted", "accepted", ok, "response", verdict, "parent_hash", parent, "auxpow_hex", apHex)
	return res, nil
}

// inMainChain reports whether the aux node has the block hash (display hex) in its main
// chain (getblockheader: one confirmation or more). Any error is a no.
func (an *auxNode) inMainChain(ctx context.Context, hash string) bool {
	var hdr struct {
		Confirmations int64 `json:"confirmations"`
	}
	return an.c.Call(ctx, "getblockheader", []any{strings.ToLower(hash), true}, &hdr) == nil && hdr.Confirmations >= 1
}

// submitAux submits until the node gives a verdict: true/false, or an RPC error (the node
// refused the block: an unknown or stale hash).
func (m *Maker) submitAux(ctx context.Context, an *auxNode, hash, apHex string, log alarmLogger) (bool, string) {
	var ok bool
	var verdict string
	m.untilVerdict(ctx, an.c.URL(), "AUX BLOCK", log, func() (bool, error) {
		if an.methods == nil {
			am, err := an.c.GetAuxMethods(ctx)
			if err != nil {
				return false, err
			}
			an.methods = &am
		}
		var err error
		if an.methods.UseCreate() || !an.methods.GetAuxBlock {
			ok, err = an.c.SubmitAuxBlock(ctx, hash, apHex)
		} else {
			ok, err = an.c.GetAuxBlockSubmit(ctx, hash, apHex)
		}
		var rpcErr *node.RPCError
		switch {
		case err == nil:
			verdict = fmt.Sprint(ok)
			return true, nil
		case errors.As(err, &rpcErr):
			ok, verdict = false, rpcErr.Error()
			return true, nil
		}
		return false, err
	})
	return ok, verdict
}

// alarmLogger is what untilVerdict logs to.
type alarmLogger interface {
	Warn(string, ...any)
	Error(string, ...any)
}

// untilVerdict calls try until it reports a verdict (true) or ctx ends (it then returns false).
// While the node does not answer (try returns false and the error) it retries with a backoff
// up to MaxRetryDelay and an ERROR line every AlarmInterval, for as long as ctx lasts (like
// parent blocks): the share stays uncommitted meanwhile.
func (m *Maker) untilVerdict(ctx context.Context, url, what string, log alarmLogger, try func() (bool, error)) bool {
	delay := m.opts.RetryDelay
	start := time.Now()
	var lastAlarm time.Time
	for attempt := 1; ; attempt++ {
		done, err := try()
		if done {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if now := time.Now(); now.Sub(lastAlarm) >= m.opts.AlarmInterval {
			lastAlarm = now
			log.Error("blockmaker: "+what+" NOT YET SUBMITTED: the node does not answer; retrying (the share stays uncommitted)",
				"node", url, "attempts", attempt, "for", now.Sub(start).Round(time.Millisecond), "err", err)
		}
		if !node.Sleep(ctx, delay) {
			return false
		}
		delay = min(2*delay, m.opts.MaxRetryDelay)
	}
}
