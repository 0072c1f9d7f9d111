package jobmaker

import (
	"fmt"
	"time"

	"github.com/hashpool/hashpool/auxpow"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/sha"
)

// RSK merged mining (btcpool's JobMakerHandlerBitcoin with RskWork, spec §3.3 and §9).
const (
	// MaxRSKAcceptAge is how old (by created_at_ts) an RskRawGw may be when it arrives
	// (RskWork::initFromGw: 60 s).
	MaxRSKAcceptAge = 60 * time.Second
	// MaxRSKAge is how long RSK work stays in jobs after its created_at_ts (btcpool drops RSK
	// works older than 120 s).
	MaxRSKAge = 120 * time.Second
)

// RSK notify policies (btcpool rsk_merged_mining_notify).
const (
	RSKNotifyNever = 0 // RSK work never triggers a job; it rides on the next one
	RSKNotifyFlag  = 1 // a job at once when the RSK node sets notify
	RSKNotifyHash  = 2 // a job at once when the RSK block hash changes
)

// rskWork is one accepted RskRawGw, parsed.
type rskWork struct {
	raw    btcpool.RskRawGw
	hash   [32]byte   // what follows the RSKBLOCK: tag
	target sha.Target // the RSK target
}

// rskBook keeps btcpool's previous and current RSK work.
type rskBook struct {
	policy    int
	prev, cur *rskWork
	// clean is set when the policy asked for a job; the next job carries isRskCleanJob.
	clean bool
}

// accept takes one RskRawGw message and reports whether the notify policy asks for a job now.
func (r *rskBook) accept(value []byte, now int64) (notify bool, err error) {
	var w rskWork
	if err := btcpool.DecodeRskRawGw(value, &w.raw); err != nil {
		return false, err
	}
	if age := now - int64(w.raw.CreatedAt); age > int64(MaxRSKAcceptAge/time.Second) {
		return false, fmt.Errorf("jobmaker: RskRawGw is %d s old (limit %v)", age, MaxRSKAcceptAge)
	}
	if r.cur != nil && w.raw.CreatedAt < r.cur.raw.CreatedAt {
		return false, fmt.Errorf("jobmaker: RskRawGw older than the one held")
	}
	if w.hash, err = auxpow.ParseRSKHash(w.raw.BlockHashForMergedMining); err != nil {
		return false, fmt.Errorf("jobmaker: RskRawGw: %w", err)
	}
	if w.target, err = auxpow.ParseTargetBE(w.raw.Target); err != nil || w.target.IsZero() {
		return false, fmt.Errorf("jobmaker: RskRawGw target %q is not a usable target", w.raw.Target)
	}
	r.prev, r.cur = r.cur, &w
	switch r.policy {
	case RSKNotifyFlag:
		notify = w.raw.Notify
	case RSKNotifyHash:
		notify = r.prev == nil || r.prev.hash != w.hash
	}
	if notify {
		r.clean = true
	}
	return notify, nil
}

// current returns the RSK work for a job made at now: nil when there is none or it is older
// than MaxRSKAge (it is then dropped).
func (r *rskBook) current(now int64) *rskWork {
	if r.cur != nil && now-int64(r.cur.raw.CreatedAt) > int64(MaxRSKAge/time.Second) {
		r.prev, r.cur = nil, nil
	}
	return r.cur
}

// setRSKFields fills btcpool's rsk* job keys; rskNetworkTarget is "0x" and 64 hex digits, as
// btcpool prints its uint256.
func setRSKFields(j *btcpool.StratumJob, w *rskWork, clean bool) {
	j.RskBlockHashForMergedMining = w.raw.BlockHashForMergedMining
	j.RskNetworkTarget = "0x" + w.target.String()
	j.RskFeesForMiner = w.raw.FeesPaidToMiner
	j.RskdRpcAddress = w.raw.RPCAddress
	j.RskdRpcUserPwd = w.raw.RPCUserPwd
	j.IsRskCleanJob = clean
}
