package jobmaker

import (
	"encoding/hex"

	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/sha"
)

// jobParams is what the jobmaker's options contribute to every job.
type jobParams struct {
	info         []byte    // coinbase_info
	payout       []byte    // payout scriptPubKey
	blockVersion int32     // forced nVersion, 0 = the template's
	aux          []byte    // this job's merged-mining commitment, nil without aux work
	rsk          *[32]byte // this job's RSK hash for merged mining, nil without RSK work
}

// buildJob builds the job for template t at unix time now with job id id
// (spec §3.6), with the fields of btcpool's StratumJob that a Bitcoin pool
// without merged mining, sub-pools or a grand pool fills in.
func buildJob(t *Template, p jobParams, now uint32, id uint64) (*btcpool.StratumJob, error) {
	cb1, cb2, err := buildCoinbase(coinbaseInput{
		height:     t.Height,
		now:        now,
		info:       p.info,
		payout:     p.payout,
		value:      t.CoinbaseValue,
		commitment: t.Commitment,
		aux:        p.aux,
		rsk:        p.rsk,
	})
	if err != nil {
		return nil, err
	}
	version := t.Version
	if p.blockVersion != 0 {
		version = p.blockVersion
	}
	return &btcpool.StratumJob{
		JobID:             id,
		GbtHash:           sha.DisplayHex(t.GbtHash),
		PrevHash:          sha.DisplayHex(t.PrevHash),
		PrevHashBeStr:     prevHashBeStr(t.PrevHash),
		Height:            t.Height,
		Coinbase1:         hex.EncodeToString(cb1),
		Coinbase2:         hex.EncodeToString(cb2),
		MerkleBranch:      t.branchHex,
		NVersion:          version,
		NBits:             t.Bits,
		NTime:             t.CurTime,
		MinTime:           t.MinTime,
		CoinbaseValue:     t.CoinbaseValue,
		WitnessCommitment: hex.EncodeToString(t.Commitment),
	}, nil
}
