package jobmaker

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/hashpool/hashpool/auxpow"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/sha"
)

// MaxAuxAge is how old (by created_at_ts) an aux chain's work may be and still go into a job
// (btcpool: 60 s, spec §9).
const MaxAuxAge = 60 * time.Second

// Merged-mining notify policies (btcpool aux_merged_mining_notify, spec §9).
const (
	AuxNotifyNever  = 0 // aux work never triggers a job; it rides on the next one
	AuxNotifyHeight = 1 // a job at once when an aux chain's height rises
	AuxNotifyHash   = 2 // a job at once when an aux chain's block hash changes
)

// MaxCoinbaseInfoAux is the longest coinbase_info that fits beside the 44-byte merged-mining
// commitment.
const MaxCoinbaseInfoAux = MaxCoinbaseInfo - auxpow.CommitmentSize

// auxEntry is the latest accepted work of one aux chain.
type auxEntry struct {
	work      auxpow.Work
	raw       btcpool.AuxRawGw
	createdAt int64
}

// auxBook holds every aux chain's latest work, keyed by chain id.
type auxBook struct {
	policy int
	chains map[int32]*auxEntry
}

// acceptAux takes one AuxRawGw message (key: the chain's name) and reports whether the notify
// policy asks for a job now.
func (a *auxBook) acceptAux(key, value []byte, now int64) (notify bool, err error) {
	var raw btcpool.AuxRawGw
	if err := btcpool.DecodeAuxRawGw(value, &raw); err != nil {
		return false, err
	}
	if age := now - int64(raw.CreatedAt); age > int64(MaxAuxAge/time.Second) {
		return false, fmt.Errorf("jobmaker: AuxRawGw of chain %d is %d s old (limit %v)", raw.ChainID, age, MaxAuxAge)
	}
	if raw.MerkleSize != 1 || raw.MerkleNonce != 0 {
		return false, fmt.Errorf("jobmaker: AuxRawGw of chain %d carries a merkle tree (size %d, nonce %d): hashpool builds the tree itself", raw.ChainID, raw.MerkleSize, raw.MerkleNonce)
	}
	name := string(key)
	if name == "" || len(name) > 20 {
		name = "aux" + strconv.Itoa(int(raw.ChainID))
	}
	w, err := auxpow.NewWork(name, raw.ChainID, raw.Hash, raw.Bits, raw.Height)
	if err != nil {
		return false, fmt.Errorf("jobmaker: AuxRawGw of chain %d: %w", raw.ChainID, err)
	}
	if a.chains == nil {
		a.chains = make(map[int32]*auxEntry)
	}
	prev := a.chains[raw.ChainID]
	if prev != nil && raw.CreatedAt < prev.raw.CreatedAt {
		return false, fmt.Errorf("jobmaker: AuxRawGw of chain %d older than the one held", raw.ChainID)
	}
	if len(a.chains) >= auxpow.MaxChains && prev == nil {
		return false, fmt.Errorf("jobmaker: more than %d aux chains", auxpow.MaxChains)
	}
	a.chains[raw.ChainID] = &auxEntry{work: w, raw: raw, createdAt: int64(raw.CreatedAt)}
	switch a.policy {
	case AuxNotifyHeight:
		notify = prev == nil || raw.Height > prev.raw.Height
	case AuxNotifyHash:
		notify = prev == nil || raw.Hash != prev.raw.Hash
	}
	return notify, nil
}

// current returns the work of every chain not older than MaxAuxAge at now, sorted by chain
// id (so the first chain, the one in btcpool's nmc* keys, is stable), and merged.
func (a *auxBook) current(now int64) (*auxpow.Merged, []*auxEntry, error) {
	var live []*auxEntry
	for id, e := range a.chains {
		if now-e.createdAt > int64(MaxAuxAge/time.Second) {
			delete(a.chains, id)
			continue
		}
		live = append(live, e)
	}
	if len(live) == 0 {
		return nil, nil, nil
	}
	slices.SortFunc(live, func(x, y *auxEntry) int { return int(x.work.ChainID) - int(y.work.ChainID) })
	works := make([]auxpow.Work, len(live))
	for i, e := range live {
		works[i] = e.work
	}
	m, err := auxpow.Merge(works, auxpow.TreeOptions{})
	if err != nil {
		return nil, nil, err
	}
	return m, live, nil
}

// setAuxFields fills btcpool's nmc* keys from the first chain.
func setAuxFields(j *btcpool.StratumJob, live []*auxEntry) {
	first := live[0]
	j.NmcBlockHash = first.raw.Hash
	j.NmcBits = first.work.Bits
	j.NmcHeight = first.raw.Height
	j.NmcRpcAddr = first.raw.RPCAddr
	j.NmcRpcUserpass = first.raw.RPCUserPass
}

// appendMergedMining appends `,"mergedMining":{...}` for the tree m of the chains live
// ([btcpool.AppendMergedMining]).
func appendMergedMining(dst []byte, m *auxpow.Merged, live []*auxEntry) []byte {
	mm := btcpool.MergedMining{Size: m.Tree.Size(), Nonce: m.Tree.Nonce(), Chains: make([]btcpool.MergedMiningChain, len(live))}
	for i, e := range live {
		mm.Chains[i] = btcpool.MergedMiningChain{Name: e.work.Name, ChainID: e.work.ChainID, Hash: sha.DisplayHex(e.work.Hash),
			Bits: e.work.Bits, Target: e.work.Target.Bytes(), Height: e.work.Height, Slot: m.Slot(i), Branch: m.Branch(i),
			RPCAddr: e.raw.RPCAddr, RPCUserPass: e.raw.RPCUserPass}
	}
	return btcpool.AppendMergedMining(dst, &mm)
}
