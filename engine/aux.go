package engine

import (
	"encoding/binary"
	"fmt"

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

// maxAuxBranch bounds an aux chain's branch in a job (auxpow's deepest tree).
const maxAuxBranch = auxpow.MaxTreeHeight

// auxChainsFrom reads the aux chains of a job message: hashpool's "mergedMining" key when
// present (codec/btcpool owns its format), else btcpool's single chain from the nmc* keys
// (nmcBits 0: none).
func auxChainsFrom(value []byte, sj *btcpool.StratumJob) ([]AuxChain, error) {
	var mm btcpool.MergedMining
	ok, err := btcpool.DecodeMergedMining(value, &mm)
	if err != nil {
		return nil, err
	}
	if !ok {
		if sj.NmcBits == 0 || sj.NmcBlockHash == "" {
			return nil, nil
		}
		t, ok := sha.ParseCompact(sj.NmcBits)
		if !ok {
			return nil, fmt.Errorf("nmcBits %08x is not a target", sj.NmcBits)
		}
		return []AuxChain{{Name: "aux", Hash: sj.NmcBlockHash, Target: t, RPCAddr: sj.NmcRpcAddr, RPCUserPass: sj.NmcRpcUserpass}}, nil
	}
	out := make([]AuxChain, len(mm.Chains))
	for i, c := range mm.Chains {
		var t sha.Target
		for k := range t { // big-endian bytes to little-endian limbs
			t[k] = binary.BigEndian.Uint64(c.Target[24-8*k:])
		}
		out[i] = AuxChain{Name: c.Name, ChainID: c.ChainID, Hash: c.Hash, Target: t, Slot: c.Slot, Branch: c.Branch,
			RPCAddr: c.RPCAddr, RPCUserPass: c.RPCUserPass}
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
		s.metrics.AuxSolved.Add(1)
		s.log.Info("aux block found", "chain", a.Name, "aux_hash", a.Hash, "job", j.ID, "worker", sess.userName+"."+m.worker)
	}
}
