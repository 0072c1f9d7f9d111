package engine

import (
	"encoding/hex"
	"fmt"

	"github.com/valyala/fastjson"

	"github.com/hashpool/hashpool/auxpow"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/sha"
)

// AuxChain is one aux chain of a job's merged-mining tree (jobmaker's "mergedMining" job key).
type AuxChain struct {
	Name    string
	ChainID int32
	Hash    string     // aux block hash, display hex (what submitauxblock takes)
	Target  sha.Target // the aux block's target
	Slot    uint32     // the chain's index in the aux tree
	Branch  [][32]byte // the chain's aux tree branch (empty for one chain)
	// RPCAddr and RPCUserPass are where the AuxRawGw said to submit (btcpool's rpc_addr).
	RPCAddr, RPCUserPass string
	// RSK marks RSK's entry (btcpool's rsk* job keys, no aux tree): Hash is then
	// rskBlockHashForMergedMining, Target rskNetworkTarget, FeesForMiner rskFeesForMiner, and a
	// share meeting it becomes an RskSolvedShare.
	RSK          bool
	FeesForMiner string
}

// mergedMiningKey is the StratumJob key hashpool's jobmaker adds (jobs/jobmaker.MergedMiningKey).
const mergedMiningKey = "mergedMining"

// maxAuxBranch bounds an aux chain's branch in a job (auxpow's deepest tree).
const maxAuxBranch = auxpow.MaxTreeHeight

// auxChainsFrom reads the aux chains of a job message: hashpool's "mergedMining" key when
// present, else btcpool's single chain from the nmc* keys (nmcBits 0: none).
func auxChainsFrom(value []byte, sj *btcpool.StratumJob) ([]AuxChain, error) {
	v, err := fastjson.ParseBytes(value)
	if err != nil {
		return nil, err
	}
	mm := v.Get(mergedMiningKey)
	if mm == nil {
		if sj.NmcBits == 0 || sj.NmcBlockHash == "" {
			return nil, nil
		}
		t, ok := sha.ParseCompact(sj.NmcBits)
		if !ok {
			return nil, fmt.Errorf("nmcBits %08x is not a target", sj.NmcBits)
		}
		return []AuxChain{{Name: "aux", Hash: sj.NmcBlockHash, Target: t, RPCAddr: sj.NmcRpcAddr, RPCUserPass: sj.NmcRpcUserpass}}, nil
	}
	cv := mm.Get("chains")
	if cv == nil {
		return nil, fmt.Errorf("%s has no chains", mergedMiningKey)
	}
	arr, err := cv.Array()
	if err != nil {
		return nil, fmt.Errorf("%s.chains: %w", mergedMiningKey, err)
	}
	if len(arr) == 0 || len(arr) > auxpow.MaxChains {
		return nil, fmt.Errorf("%s: %d chains, want 1 to %d", mergedMiningKey, len(arr), auxpow.MaxChains)
	}
	out := make([]AuxChain, len(arr))
	for i, c := range arr {
		a := &out[i]
		a.Name = string(c.GetStringBytes("name"))
		a.ChainID = int32(c.GetInt("chainid"))
		a.Hash = string(c.GetStringBytes("hash"))
		a.Slot = uint32(c.GetUint("slot"))
		a.RPCAddr = string(c.GetStringBytes("rpc_addr"))
		a.RPCUserPass = string(c.GetStringBytes("rpc_userpass"))
		if _, err := auxpow.ParseDisplayHash(a.Hash); err != nil || a.Name == "" || len(a.Name) > 64 {
			return nil, fmt.Errorf("%s chain %d: bad name or hash", mergedMiningKey, i)
		}
		t, err := auxpow.ParseTargetBE(string(c.GetStringBytes("target")))
		if err != nil || t.IsZero() {
			return nil, fmt.Errorf("%s chain %d: bad target", mergedMiningKey, i)
		}
		a.Target = t
		br, err := hex.DecodeString(string(c.GetStringBytes("branch")))
		if err != nil || len(br)%32 != 0 || len(br)/32 > maxAuxBranch {
			return nil, fmt.Errorf("%s chain %d: bad branch", mergedMiningKey, i)
		}
		for k := 0; k < len(br); k += 32 {
			a.Branch = append(a.Branch, [32]byte(br[k:k+32]))
		}
	}
	return out, nil
}

// addRSK appends RSK's entry to p.Aux when the job carries RSK work (btcpool's rsk* keys):
// its target is then checked on every share's hash with the aux chains' (one Targets set).
// A job with bad RSK fields keeps its aux chains and loses RSK, with a warning.
func (s *Server) addRSK(p *JobParams, sj *btcpool.StratumJob) {
	if sj.RskBlockHashForMergedMining == "" {
		return
	}
	c, err := rskChainFrom(sj)
	switch {
	case err != nil:
		s.log.Warn("stratum job's RSK work ignored", "id", sj.JobID, "err", err)
	case len(p.Aux) >= auxpow.MaxChains:
		s.log.Warn("stratum job's RSK work ignored: the job already has the most merged-mining targets", "id", sj.JobID)
	default:
		p.Aux = append(p.Aux, c)
		p.MergedMiningClean = sj.MergedMiningClean
	}
}

// rskChainFrom reads RSK's entry from a job's rsk* keys.
func rskChainFrom(sj *btcpool.StratumJob) (AuxChain, error) {
	if _, err := auxpow.ParseRSKHash(sj.RskBlockHashForMergedMining); err != nil {
		return AuxChain{}, err
	}
	t, err := auxpow.ParseTargetBE(sj.RskNetworkTarget)
	if err != nil || t.IsZero() {
		return AuxChain{}, fmt.Errorf("rskNetworkTarget %q is not a target", sj.RskNetworkTarget)
	}
	return AuxChain{Name: "rsk", Hash: sj.RskBlockHashForMergedMining, Target: t, RSK: true, FeesForMiner: sj.RskFeesForMiner,
		RPCAddr: sj.RskdRpcAddress, RPCUserPass: sj.RskdRpcUserPwd}, nil
}

// auxSolved is called on the loop for a share whose hash meets the aux targets in mask
// (bit i: j.aux[i]), whatever the share's status (spec §4.9 h): one AuxSolvedShare per chain
// goes the solved-share way (journal, answer held until it is on disk, publish until
// acknowledged) to the AuxSolvedShare topic; RSK's entry makes an RskSolvedShare for the
// RskSolvedShare topic the same way.
func (s *Server) auxSolved(sess *Session, m *miner, j *Job, en2 []byte, in *shareInput, mask uint32) {
	hdr := sess.lp.hasher.ShareHeader(j.Hash, sess.en1[:], en2, in.ntime, in.nonce, in.versionMask)
	cb := j.Hash.AppendCoinbase(nil, sess.en1[:], en2)
	for i := range j.aux {
		if mask&(1<<i) == 0 {
			continue
		}
		a := &j.aux[i]
		var it solvedItem
		if a.RSK {
			msg := btcpool.RskSolvedShare{JobID: j.ID, WorkerID: m.workerID, UserID: sess.userID, Height: j.Height, Header: hdr,
				FeesForMiner: a.FeesForMiner, RPCAddress: a.RPCAddr, RPCUserPwd: a.RPCUserPass,
				WorkerFullName: sess.userName + "." + m.worker, Coinbase: cb}
			it = solvedItem{msg: btcpool.AppendRskSolvedShare(nil, &msg), rsk: true}
		} else {
			msg := btcpool.AuxSolvedShare{JobID: j.ID, AuxBlockHash: a.Hash, BlockHeader: hdr, CoinbaseTx: cb,
				RPCAddr: a.RPCAddr, RPCUserPass: a.RPCUserPass, ChainName: a.Name, ChainID: a.ChainID,
				AuxBranch: a.Branch, AuxIndex: a.Slot, CoinbaseBranch: j.branch, HasCoinbaseBranch: true}
			it = solvedItem{msg: btcpool.AppendAuxSolvedShare(nil, &msg), aux: true}
		}
		if sess.conn != nil {
			if sess.holdN == 0 && sess.holdAt < 0 {
				sess.holdAt = len(sess.lp.out)
			}
			sess.holdN++
			it.sess = sess
		}
		s.out.pushSolved(it)
		s.log.Info("aux block found", "chain", a.Name, "aux_hash", a.Hash, "job", j.ID, "worker", sess.userName+"."+m.worker)
	}
}
