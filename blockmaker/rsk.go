package blockmaker

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashpool/hashpool/auxpow"
	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/node"
	"github.com/hashpool/hashpool/sha"
	"github.com/hashpool/hashpool/store"
)

// DefaultRSKGroup is the consumer group of the RskSolvedShare consumer.
const DefaultRSKGroup = "blkmaker_btc_rsk"

// rskSubmitsPerSecond is btcpool's anti-flooding bound: at most 2 submissions a second to
// an RSK node. btcpool drops the excess; hashpool waits instead (a dropped share may be an
// RSK block).
const rskSubmitsPerSecond = 2

// RSKRecorder stores RSK blocks; *store.Store implements it. A parent hash already stored
// must succeed without a second row.
type RSKRecorder interface {
	InsertFoundRSKBlock(ctx context.Context, b store.FoundRSKBlock) error
}

// RSKResult is the outcome of one RSK solved share.
type RSKResult struct {
	Share    btcpool.RskSolvedShare
	Block    store.FoundRSKBlock
	Params   [5]string         // the mnr_submitBitcoinBlockPartialMerkle arguments sent
	Answer   node.RSKSubmitted // the node's result when it accepted
	Accepted bool              // the node returned a result (not an error)
	Err      error             // the share could not be submitted (undecodable, unknown job, bad merkle root)
	Stored   bool
}

// rskTag is what precedes the RSK hash in the coinbase.
var rskTag = []byte(auxpow.RSKTag)

// consumeRSK submits every RskSolvedShare to the RSK node, records it in found_rsk_blocks and
// only then commits it: the parent's durability, as for aux chains.
func (m *Maker) consumeRSK(ctx context.Context, c bus.Consumer) error {
	var sent []time.Time // the last submissions, for the 2-a-second bound
	return m.consumeMerged(ctx, c, m.opts.Topics.RskSolvedShare, func(ctx context.Context, value []byte) error {
		if len(sent) == rskSubmitsPerSecond {
			if wait := time.Until(sent[0].Add(time.Second)); wait > 0 && !node.Sleep(ctx, wait) {
				return ctx.Err()
			}
			sent = sent[1:]
		}
		res, err := m.handleRSK(ctx, value)
		if err != nil {
			return err
		}
		sent = append(sent, time.Now())
		if res.Block.BitcoinBlockHash != "" {
			if rec, ok := m.db.(RSKRecorder); ok && m.db != nil {
				if err := m.retry(ctx, "cannot record found RSK block", "parent_hash", res.Block.BitcoinBlockHash, func() error {
					return rec.InsertFoundRSKBlock(ctx, res.Block)
				}); err != nil {
					return err
				}
				res.Stored = true
			}
		}
		if m.opts.OnRSKBlock != nil {
			m.opts.OnRSKBlock(res)
		}
		return nil
	})
}

// handleRSK rebuilds the partial merkle proof of one RskSolvedShare (the coinbase branch and
// transaction count from the job's template, as btcpool's blkmaker) and submits it until the
// RSK node gives a verdict; an error is returned only when ctx ended (not committed).
func (m *Maker) handleRSK(ctx context.Context, value []byte) (RSKResult, error) {
	var res RSKResult
	s := &res.Share
	if err := btcpool.DecodeRskSolvedShare(value, s); err != nil {
		res.Err = err
		m.opts.Logger.Error("blockmaker: RSK SOLVED SHARE UNDECODABLE", "err", err, "value_hex", hex.EncodeToString(value))
		return res, nil
	}
	parent := sha.DisplayHex(sha.DoubleSHA256(s.Header[:]))
	log := m.opts.Logger.With("job_id", s.JobID, "parent_hash", parent, "worker", s.WorkerFullName)
	unsent := func(err error, what string) (RSKResult, error) {
		res.Err = err
		log.Error("blockmaker: RSK BLOCK NOT SUBMITTED: "+what, "err", err,
			"header_hex", hex.EncodeToString(s.Header[:]), "coinbase_hex", hex.EncodeToString(s.Coinbase))
		return res, nil
	}
	at := bytes.LastIndex(s.Coinbase, rskTag)
	if at < 0 || len(s.Coinbase) < at+len(rskTag)+32 {
		return unsent(errors.New("blockmaker: the coinbase has no RSKBLOCK: tag"), "no RSK hash in the coinbase")
	}
	rskHash := hex.EncodeToString(s.Coinbase[at+len(rskTag) : at+len(rskTag)+32])
	t, _, err := m.lookup(ctx, s.JobID)
	if err != nil {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		return unsent(err, "job or template unknown")
	}
	branch := sha.MerkleBranch(t.TxIDs)
	if root := auxpow.BranchRoot(sha.DoubleSHA256(s.Coinbase), branch, 0); !bytes.Equal(root[:], s.Header[36:68]) {
		return unsent(fmt.Errorf("blockmaker: the header's merkle root is not the coinbase's with template %s", t.GbtHash), "merkle root mismatch")
	}
	res.Params = auxpow.RSKSubmitParams(&s.Header, s.Coinbase, branch, len(t.TxIDs)+1)

	c, err := m.rskClient(s)
	if err != nil {
		return unsent(err, "no RSK node")
	}
	var response string
	m.untilVerdict(ctx, c.URL(), "RSK BLOCK", log, func() (bool, error) {
		ans, raw, err := c.RSKSubmitBitcoinBlockPartialMerkle(ctx, res.Params)
		var rpcErr *node.RPCError
		switch {
		case err == nil:
			res.Answer, res.Accepted, response = ans, true, raw
			return true, nil
		case errors.As(err, &rpcErr):
			response = rpcErr.Error()
			return true, nil
		}
		return false, err
	})
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	res.Block = store.FoundRSKBlock{BitcoinBlockHash: parent, RSKBlockHash: rskHash, Height: s.Height, JobID: s.JobID,
		PUID: s.UserID, WorkerID: s.WorkerID, WorkerFullName: s.WorkerFullName, FeesForMiner: s.FeesForMiner,
		SubmitResponse: response, CreatedAt: time.Now().UTC().Truncate(time.Second)}
	log.Info("blockmaker: RSK block submitted", "accepted", res.Accepted, "rsk_hash", rskHash, "response", response)
	return res, nil
}

// rskClient returns the configured RSK node's client, else (btcpool) one for the address
// the share carries.
func (m *Maker) rskClient(s *btcpool.RskSolvedShare) (*node.Client, error) {
	if m.rskNode != nil {
		return m.rskNode, nil
	}
	if s.RPCAddress == "" {
		return nil, errors.New("blockmaker: no RSK node configured and the share carries no rpc address")
	}
	o := node.Options{URL: s.RPCAddress}
	o.User, o.Password, _ = strings.Cut(s.RPCUserPwd, ":")
	return node.NewClient(o)
}
