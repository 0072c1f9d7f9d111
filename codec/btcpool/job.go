package btcpool

import (
	"encoding/hex"
	"errors"
	"math"
	"slices"
	"strconv"

	"github.com/valyala/fastjson"
)

// SubPoolCoinbase is one sub-pool's coinbase split (StratumJob "subPool" entries).
type SubPoolCoinbase struct {
	Coinbase1      string
	Coinbase2      string
	GrandCoinbase1 string
}

// StratumJob is the jobmaker → sserver/blkmaker message (topic BtcJob, spec §3.7). Hashes are
// display hex as btcpool prints them; Branch, PrevHashBytes, Coinbase1Bytes and Coinbase2Bytes
// convert to what share validation needs.
type StratumJob struct {
	JobID          uint64 // upper 32 bits: creation unix time (spec §3.5)
	GbtHash        string // display hex of the template's gbthash
	PrevHash       string // display hex
	PrevHashBeStr  string // 64 hex, mining.notify order (word-swapped)
	Height         int32
	Coinbase1      string // hex, before the 12-byte extranonce slot
	GrandCoinbase1 string // hex or empty
	Coinbase2      string // hex, after the extranonce slot
	SubPool        map[string]SubPoolCoinbase
	MerkleBranch   string // concatenated display hex of each branch hash, 64 characters each
	NVersion       int32
	NBits          uint32
	NTime          uint32
	MinTime        uint32
	CoinbaseValue  int64
	// WitnessCommitment is the GBT default_witness_commitment script hex; DecodeStratumJob keeps
	// it only when it is at least 76 hex characters (38 bytes), like btcpool.
	WitnessCommitment    string
	ProxyExtraNonce2Size uint32
	ProxyJobDifficulty   uint64

	// Merged mining (spec §9); all may stay empty/zero.
	NmcBlockHash   string // display hex; "" is written as the zero hash
	NmcBits        uint32
	NmcHeight      int32
	NmcRpcAddr     string
	NmcRpcUserpass string

	RskBlockHashForMergedMining string
	RskNetworkTarget            string // "0x" + hex; "" is written as "0x" + 64 zeros
	RskFeesForMiner             string
	RskdRpcAddress              string
	RskdRpcUserPwd              string
	IsRskCleanJob               bool
	MergedMiningClean           bool

	VcashBlockHashForMergedMining string
	VcashNetworkTarget            string // "0x" + hex; "" is written as "0x" + 64 zeros
	VcashHeight                   uint64
	VcashdRpcAddress              string
	VcashdRpcUserPwd              string
	IsVcashCleanJob               bool
}

const zeroHashHex = "0000000000000000000000000000000000000000000000000000000000000000"

// MinWitnessCommitmentHex is the shortest witnessCommitment btcpool keeps (a 38-byte script).
const MinWitnessCommitmentHex = 76

// AppendStratumJob appends the JSON of j with btcpool's exact key order and no whitespace.
// Sub-pools are written sorted by name. Strings are JSON-escaped (btcpool's printf did not
// escape; for the hex and address values it writes, the output is identical).
func AppendStratumJob(dst []byte, j *StratumJob) []byte {
	dst = append(dst, `{"jobId":`...)
	dst = strconv.AppendUint(dst, j.JobID, 10)
	dst = appendKey(dst, true, "gbtHash")
	dst = appendJSONString(dst, j.GbtHash)
	dst = appendKey(dst, true, "prevHash")
	dst = appendJSONString(dst, j.PrevHash)
	dst = appendKey(dst, true, "prevHashBeStr")
	dst = appendJSONString(dst, j.PrevHashBeStr)
	dst = appendKey(dst, true, "height")
	dst = strconv.AppendInt(dst, int64(j.Height), 10)
	dst = appendKey(dst, true, "coinbase1")
	dst = appendJSONString(dst, j.Coinbase1)
	dst = appendKey(dst, true, "grandCoinbase1")
	dst = appendJSONString(dst, j.GrandCoinbase1)
	dst = appendKey(dst, true, "coinbase2")
	dst = appendJSONString(dst, j.Coinbase2)
	dst = appendKey(dst, true, "subPool")
	dst = append(dst, '{')
	names := make([]string, 0, len(j.SubPool))
	for name := range j.SubPool {
		names = append(names, name)
	}
	slices.Sort(names)
	for i, name := range names {
		sp := j.SubPool[name]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, name)
		dst = append(dst, `:{"coinbase1":`...)
		dst = appendJSONString(dst, sp.Coinbase1)
		dst = appendKey(dst, true, "coinbase2")
		dst = appendJSONString(dst, sp.Coinbase2)
		dst = appendKey(dst, true, "grandCoinbase1")
		dst = appendJSONString(dst, sp.GrandCoinbase1)
		dst = append(dst, '}')
	}
	dst = append(dst, '}')
	dst = appendKey(dst, true, "merkleBranch")
	dst = appendJSONString(dst, j.MerkleBranch)
	dst = appendKey(dst, true, "nVersion")
	dst = strconv.AppendInt(dst, int64(j.NVersion), 10)
	dst = appendKey(dst, true, "nBits")
	dst = strconv.AppendUint(dst, uint64(j.NBits), 10)
	dst = appendKey(dst, true, "nTime")
	dst = strconv.AppendUint(dst, uint64(j.NTime), 10)
	dst = appendKey(dst, true, "minTime")
	dst = strconv.AppendUint(dst, uint64(j.MinTime), 10)
	dst = appendKey(dst, true, "coinbaseValue")
	dst = strconv.AppendInt(dst, j.CoinbaseValue, 10)
	dst = appendKey(dst, true, "witnessCommitment")
	dst = appendJSONString(dst, j.WitnessCommitment)
	dst = appendKey(dst, true, "proxyExtraNonce2Size")
	dst = strconv.AppendUint(dst, uint64(j.ProxyExtraNonce2Size), 10)
	dst = appendKey(dst, true, "proxyJobDifficulty")
	dst = strconv.AppendUint(dst, j.ProxyJobDifficulty, 10)
	dst = appendKey(dst, true, "nmcBlockHash")
	dst = appendJSONString(dst, orDefault(j.NmcBlockHash, zeroHashHex))
	dst = appendKey(dst, true, "nmcBits")
	dst = strconv.AppendUint(dst, uint64(j.NmcBits), 10)
	dst = appendKey(dst, true, "nmcHeight")
	dst = strconv.AppendInt(dst, int64(j.NmcHeight), 10)
	dst = appendKey(dst, true, "nmcRpcAddr")
	dst = appendJSONString(dst, j.NmcRpcAddr)
	dst = appendKey(dst, true, "nmcRpcUserpass")
	dst = appendJSONString(dst, j.NmcRpcUserpass)
	dst = appendKey(dst, true, "rskBlockHashForMergedMining")
	dst = appendJSONString(dst, j.RskBlockHashForMergedMining)
	dst = appendKey(dst, true, "rskNetworkTarget")
	dst = appendJSONString(dst, orDefault(j.RskNetworkTarget, "0x"+zeroHashHex))
	dst = appendKey(dst, true, "rskFeesForMiner")
	dst = appendJSONString(dst, j.RskFeesForMiner)
	dst = appendKey(dst, true, "rskdRpcAddress")
	dst = appendJSONString(dst, j.RskdRpcAddress)
	dst = appendKey(dst, true, "rskdRpcUserPwd")
	dst = appendJSONString(dst, j.RskdRpcUserPwd)
	dst = appendKey(dst, true, "isRskCleanJob")
	dst = appendBool(dst, j.IsRskCleanJob)
	dst = appendKey(dst, true, "mergedMiningClean")
	dst = appendBool(dst, j.MergedMiningClean)
	dst = appendKey(dst, true, "vcashBlockHashForMergedMining")
	dst = appendJSONString(dst, j.VcashBlockHashForMergedMining)
	dst = appendKey(dst, true, "vcashNetworkTarget")
	dst = appendJSONString(dst, orDefault(j.VcashNetworkTarget, "0x"+zeroHashHex))
	dst = appendKey(dst, true, "vcashHeight")
	dst = strconv.AppendUint(dst, j.VcashHeight, 10)
	dst = appendKey(dst, true, "vcashdRpcAddress")
	dst = appendJSONString(dst, j.VcashdRpcAddress)
	dst = appendKey(dst, true, "vcashdRpcUserPwd")
	dst = appendJSONString(dst, j.VcashdRpcUserPwd)
	dst = appendKey(dst, true, "isVcashCleanJob")
	dst = appendBool(dst, j.IsVcashCleanJob)
	return append(dst, '}')
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// DecodeStratumJob decodes a job message into j (overwritten), with btcpool's rules
// (StratumJobBitcoin::unserializeFromJson):
//   - required: jobId, height, nVersion, nBits, nTime, minTime, coinbaseValue integers (in range
//     of their Go types) and gbtHash, prevHash, prevHashBeStr, coinbase1, coinbase2,
//     merkleBranch strings; beyond btcpool, their hex is checked so that a decoded job is usable
//     (hashes 64 hex characters, coinbases even-length hex, merkleBranch whole 64-character hashes);
//   - everything else is optional and tolerated: unknown keys are ignored, and an optional key
//     of the wrong type counts as absent. As in btcpool, grouped keys are taken only when the
//     whole group is well-typed: proxyExtraNonce2Size+proxyJobDifficulty; the five nmc* keys; the
//     five rsk* keys (rskBlockHashForMergedMining, rskNetworkTarget, rskFeesForMiner,
//     rskdRpcAddress, rskdRpcUserPwd); the five vcash* keys. Sub-pool entries without string
//     coinbase1/coinbase2 are skipped;
//   - witnessCommitment shorter than MinWitnessCommitmentHex is dropped; vcashHeight is 0 when
//     absent.
func DecodeStratumJob(b []byte, j *StratumJob) error {
	p, o, err := parseObject(b, "StratumJob")
	if err != nil {
		return err
	}
	defer parsers.Put(p)
	d := jsonObject{o: o, msg: "StratumJob"}
	var out StratumJob
	out.JobID = d.u64("jobId", true, math.MaxUint64)
	out.GbtHash = d.str("gbtHash", true)
	out.PrevHash = d.str("prevHash", true)
	out.PrevHashBeStr = d.str("prevHashBeStr", true)
	out.Height = int32(d.i64("height", true, math.MinInt32, math.MaxInt32))
	out.Coinbase1 = d.str("coinbase1", true)
	out.Coinbase2 = d.str("coinbase2", true)
	out.MerkleBranch = d.str("merkleBranch", true)
	out.NVersion = int32(d.i64("nVersion", true, math.MinInt32, math.MaxInt32))
	out.NBits = uint32(d.u64("nBits", true, math.MaxUint32))
	out.NTime = uint32(d.u64("nTime", true, math.MaxUint32))
	out.MinTime = uint32(d.u64("minTime", true, math.MaxUint32))
	out.CoinbaseValue = d.i64("coinbaseValue", true, math.MinInt64, math.MaxInt64)
	if d.err == nil {
		switch {
		case !isHashHex(out.GbtHash):
			d.fail("gbtHash", "is not 64 hex characters")
		case !isHashHex(out.PrevHash):
			d.fail("prevHash", "is not 64 hex characters")
		case !isHashHex(out.PrevHashBeStr):
			d.fail("prevHashBeStr", "is not 64 hex characters")
		case !isHex(out.Coinbase1):
			d.fail("coinbase1", "is not hex")
		case !isHex(out.Coinbase2):
			d.fail("coinbase2", "is not hex")
		case len(out.MerkleBranch)%64 != 0 || !isHex(out.MerkleBranch):
			d.fail("merkleBranch", "is not a sequence of 64-character hex hashes")
		}
	}
	if d.err != nil {
		return d.err
	}
	decodeJobOptional(&d, &out)
	*j = out
	return nil
}

// decodeJobOptional reads the optional keys; it never fails.
func decodeJobOptional(d *jsonObject, out *StratumJob) {
	out.GrandCoinbase1, _ = d.optStr("grandCoinbase1")
	out.SubPool = decodeSubPools(d)
	if wc, _ := d.optStr("witnessCommitment"); len(wc) >= MinWitnessCommitmentHex {
		out.WitnessCommitment = wc
	}
	if en2, ok1 := d.optU64("proxyExtraNonce2Size", math.MaxUint32); ok1 {
		if diff, ok2 := d.optU64("proxyJobDifficulty", math.MaxUint64); ok2 {
			out.ProxyExtraNonce2Size, out.ProxyJobDifficulty = uint32(en2), diff
		}
	}
	out.MergedMiningClean, _ = d.optBool("mergedMiningClean")
	out.IsRskCleanJob, _ = d.optBool("isRskCleanJob")
	out.IsVcashCleanJob, _ = d.optBool("isVcashCleanJob")

	hash, ok1 := d.optStr("nmcBlockHash")
	bits, ok2 := d.optU64("nmcBits", math.MaxUint32)
	height, ok3 := d.optI64("nmcHeight", math.MinInt32, math.MaxInt32)
	addr, ok4 := d.optStr("nmcRpcAddr")
	userpass, ok5 := d.optStr("nmcRpcUserpass")
	if ok1 && ok2 && ok3 && ok4 && ok5 {
		out.NmcBlockHash, out.NmcBits, out.NmcHeight = hash, uint32(bits), int32(height)
		out.NmcRpcAddr, out.NmcRpcUserpass = addr, userpass
	}

	rskHash, ok1 := d.optStr("rskBlockHashForMergedMining")
	rskTarget, ok2 := d.optStr("rskNetworkTarget")
	rskFees, ok3 := d.optStr("rskFeesForMiner")
	rskAddr, ok4 := d.optStr("rskdRpcAddress")
	rskPwd, ok5 := d.optStr("rskdRpcUserPwd")
	if ok1 && ok2 && ok3 && ok4 && ok5 {
		out.RskBlockHashForMergedMining, out.RskNetworkTarget, out.RskFeesForMiner = rskHash, rskTarget, rskFees
		out.RskdRpcAddress, out.RskdRpcUserPwd = rskAddr, rskPwd
	}

	vHash, ok1 := d.optStr("vcashBlockHashForMergedMining")
	vTarget, ok2 := d.optStr("vcashNetworkTarget")
	vHeight, ok3 := d.optU64("vcashHeight", math.MaxUint64)
	vAddr, ok4 := d.optStr("vcashdRpcAddress")
	vPwd, ok5 := d.optStr("vcashdRpcUserPwd")
	if ok1 && ok2 && ok3 && ok4 && ok5 {
		out.VcashBlockHashForMergedMining, out.VcashNetworkTarget, out.VcashHeight = vHash, vTarget, vHeight
		out.VcashdRpcAddress, out.VcashdRpcUserPwd = vAddr, vPwd
	}
}

func isHashHex(s string) bool { return len(s) == 64 && isHex(s) }

// decodeSubPools reads the optional "subPool" object; like btcpool it skips entries that are
// not objects with string coinbase1 and coinbase2 (grandCoinbase1 optional).
func decodeSubPools(d *jsonObject) map[string]SubPoolCoinbase {
	v := d.get("subPool", false)
	if v == nil {
		return nil
	}
	o, err := v.Object()
	if err != nil || o.Len() == 0 {
		return nil
	}
	var m map[string]SubPoolCoinbase
	o.Visit(func(key []byte, v *fastjson.Value) {
		so, err := v.Object()
		if err != nil {
			return
		}
		sd := jsonObject{o: so}
		cb1, ok1 := sd.optStr("coinbase1")
		cb2, ok2 := sd.optStr("coinbase2")
		if !ok1 || !ok2 {
			return
		}
		grand, _ := sd.optStr("grandCoinbase1")
		if m == nil {
			m = make(map[string]SubPoolCoinbase, o.Len())
		}
		m[string(key)] = SubPoolCoinbase{Coinbase1: cb1, Coinbase2: cb2, GrandCoinbase1: grand}
	})
	return m
}

var errJobHex = errors.Join(ErrMalformed, errors.New("StratumJob: bad hex field"))

// Branch returns the merkle branch as hashes in internal byte order (each 64-character display
// hex group reversed), ready for folding: root = dSHA(root ‖ step). The slice is newly allocated.
func (j *StratumJob) Branch() ([][32]byte, error) {
	if len(j.MerkleBranch)%64 != 0 {
		return nil, errJobHex
	}
	out := make([][32]byte, len(j.MerkleBranch)/64)
	for i := range out {
		h, ok := decodeDisplayHash(j.MerkleBranch[64*i : 64*i+64])
		if !ok {
			return nil, errJobHex
		}
		out[i] = h
	}
	return out, nil
}

// PrevHashBytes returns the previous block hash in internal byte order (as it goes into the
// header at bytes 4..36).
func (j *StratumJob) PrevHashBytes() ([32]byte, error) {
	h, ok := decodeDisplayHash(j.PrevHash)
	if !ok {
		return h, errJobHex
	}
	return h, nil
}

// Coinbase1Bytes returns the decoded coinbase1 (a new slice).
func (j *StratumJob) Coinbase1Bytes() ([]byte, error) { return decodeHex(j.Coinbase1) }

// Coinbase2Bytes returns the decoded coinbase2 (a new slice).
func (j *StratumJob) Coinbase2Bytes() ([]byte, error) { return decodeHex(j.Coinbase2) }

// JobTime returns the job's creation unix time, the upper 32 bits of JobID.
func (j *StratumJob) JobTime() uint32 { return uint32(j.JobID >> 32) }

func decodeHex(s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, errJobHex
	}
	return b, nil
}
