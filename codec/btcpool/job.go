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

// MergedMiningKey is the StratumJob key hashpool's jobmaker adds after btcpool's keys: every
// aux chain of the job's aux merkle tree, so that sservers check every chain's target and
// blkmaker builds every chain's auxpow. btcpool's consumers ignore it; its nmc* keys carry
// the first chain. Its value, as [AppendMergedMining] writes it:
//
//	{"size":S,"nonce":N,"chains":[{"name":"..","chainid":C,"hash":"<display hex>","bits":B,
//	"target":"<64 hex, big-endian>","height":H,"slot":I,"branch":"<hashes, internal order, hex>",
//	"rpc_addr":"..","rpc_userpass":".."},...]}
const MergedMiningKey = "mergedMining"

// Bounds of a decoded "mergedMining" value (auxpow's: at most 16 chains in a tree of at
// most 2^30 slots).
const (
	MaxMergedMiningChains = 16
	MaxMergedMiningHeight = 30
	maxChainName          = 64
)

// MergedMining is the value of the MergedMiningKey job key: the job's aux merkle tree.
type MergedMining struct {
	Size   uint32 // slots in the aux merkle tree, a power of two (1 for one chain)
	Nonce  uint32 // the tree's merkle nonce
	Chains []MergedMiningChain
}

// MergedMiningChain is one aux chain of a job's tree.
type MergedMiningChain struct {
	Name    string // the chain's name (found_nmc_blocks.chain_name), 1 to 64 bytes
	ChainID int32
	Hash    string   // the aux block hash, 64 display-hex digits (what submitauxblock takes)
	Bits    uint32   // the aux block's compact target
	Target  [32]byte // the aux block's target, big-endian; never zero
	Height  int32
	Slot    uint32     // the chain's slot in the tree (below Size)
	Branch  [][32]byte // the chain's tree branch, hashes in internal byte order (empty for one slot)
	// RPCAddr and RPCUserPass are where the AuxRawGw said to submit (btcpool's rpc_addr).
	RPCAddr, RPCUserPass string
}

// AppendMergedMining appends `,"mergedMining":{...}` (MergedMiningKey with m as its value):
// the last key of a StratumJob object, written where AppendStratumJob's closing brace was
// (the caller drops that brace first and appends it again after).
func AppendMergedMining(dst []byte, m *MergedMining) []byte {
	dst = appendKey(dst, true, MergedMiningKey)
	dst = append(dst, `{"size":`...)
	dst = strconv.AppendUint(dst, uint64(m.Size), 10)
	dst = appendKey(dst, true, "nonce")
	dst = strconv.AppendUint(dst, uint64(m.Nonce), 10)
	dst = appendKey(dst, true, "chains")
	dst = append(dst, '[')
	for i := range m.Chains {
		c := &m.Chains[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"name":`...)
		dst = appendJSONString(dst, c.Name)
		dst = appendKey(dst, true, "chainid")
		dst = strconv.AppendInt(dst, int64(c.ChainID), 10)
		dst = appendKey(dst, true, "hash")
		dst = appendJSONString(dst, c.Hash)
		dst = appendKey(dst, true, "bits")
		dst = strconv.AppendUint(dst, uint64(c.Bits), 10)
		dst = appendKey(dst, true, "target")
		dst = append(dst, '"')
		dst = hex.AppendEncode(dst, c.Target[:])
		dst = append(dst, '"')
		dst = appendKey(dst, true, "height")
		dst = strconv.AppendInt(dst, int64(c.Height), 10)
		dst = appendKey(dst, true, "slot")
		dst = strconv.AppendUint(dst, uint64(c.Slot), 10)
		dst = appendKey(dst, true, "branch")
		dst = append(dst, '"')
		for k := range c.Branch {
			dst = hex.AppendEncode(dst, c.Branch[k][:])
		}
		dst = append(dst, '"')
		dst = appendKey(dst, true, "rpc_addr")
		dst = appendJSONString(dst, c.RPCAddr)
		dst = appendKey(dst, true, "rpc_userpass")
		dst = appendJSONString(dst, c.RPCUserPass)
		dst = append(dst, '}')
	}
	return append(dst, "]}"...)
}

// DecodeMergedMining reads the MergedMiningKey of the StratumJob message job into m
// (overwritten). It reports false, nil when the job has no such key, and an error wrapping
// ErrMalformed when the key is there but unusable: unlike btcpool's optional keys, a
// malformed tree is reported (hashpool's own key; the caller keeps the job without merged
// mining). Required: size (a power of two up to 2^30), nonce, and 1 to MaxMergedMiningChains
// chains, each with name (1 to 64 bytes), chainid, hash (64 hex), a non-zero 64-hex target,
// slot (below size) and branch (whole 32-byte hashes, at most log2(size) of them); bits,
// height, rpc_addr and rpc_userpass may be absent (zero, "").
func DecodeMergedMining(job []byte, m *MergedMining) (bool, error) {
	p, o, err := parseObject(job, "StratumJob")
	if err != nil {
		return false, err
	}
	defer parsers.Put(p)
	v := o.Get(MergedMiningKey)
	if v == nil {
		return false, nil
	}
	mo, err := v.Object()
	if err != nil {
		return true, &fieldError{msg: "StratumJob", key: MergedMiningKey, what: "is not an object"}
	}
	d := jsonObject{o: mo, msg: "StratumJob " + MergedMiningKey}
	var out MergedMining
	out.Size = uint32(d.u64("size", true, 1<<MaxMergedMiningHeight))
	out.Nonce = uint32(d.u64("nonce", true, math.MaxUint32))
	if out.Size == 0 || out.Size&(out.Size-1) != 0 {
		d.fail("size", "is not a power of two") // kept behind an earlier error
	}
	height := 0
	for height < MaxMergedMiningHeight && 1<<height < out.Size {
		height++
	}
	var arr []*fastjson.Value
	if cv := d.get("chains", true); cv != nil {
		if arr, err = cv.Array(); err != nil {
			d.fail("chains", "is not an array")
		} else if len(arr) == 0 || len(arr) > MaxMergedMiningChains {
			d.fail("chains", "does not hold 1 to "+strconv.Itoa(MaxMergedMiningChains)+" chains")
		}
	}
	if d.err != nil {
		return true, d.err
	}
	out.Chains = make([]MergedMiningChain, len(arr))
	for i, cv := range arr {
		co, err := cv.Object()
		if err != nil {
			return true, &fieldError{msg: "StratumJob " + MergedMiningKey, key: "chains", what: "holds a chain that is not an object"}
		}
		cd := jsonObject{o: co, msg: "StratumJob " + MergedMiningKey + " chain " + strconv.Itoa(i)}
		decodeMergedMiningChain(&cd, &out.Chains[i], out.Size, height)
		if cd.err != nil {
			return true, cd.err
		}
	}
	*m = out
	return true, nil
}

func decodeMergedMiningChain(d *jsonObject, c *MergedMiningChain, size uint32, height int) {
	c.Name = d.str("name", true)
	c.ChainID = int32(d.i64("chainid", true, math.MinInt32, math.MaxInt32))
	c.Hash = d.str("hash", true)
	c.Bits = uint32(d.u64("bits", false, math.MaxUint32))
	target := d.str("target", true)
	c.Height = int32(d.i64("height", false, math.MinInt32, math.MaxInt32))
	c.Slot = uint32(d.u64("slot", true, math.MaxUint32))
	branch := d.str("branch", true)
	c.RPCAddr = d.str("rpc_addr", false)
	c.RPCUserPass = d.str("rpc_userpass", false)
	if d.err != nil {
		return
	}
	switch {
	case c.Name == "" || len(c.Name) > maxChainName:
		d.fail("name", "is not 1 to 64 bytes")
	case !isHashHex(c.Hash):
		d.fail("hash", "is not 64 hex characters")
	case !isHashHex(target):
		d.fail("target", "is not 64 hex characters")
	case c.Slot >= size:
		d.fail("slot", "is not below the tree size")
	case len(branch)%64 != 0 || len(branch)/64 > height || !isHex(branch):
		d.fail("branch", "is not at most log2(size) 64-character hex hashes")
	}
	if d.err != nil {
		return
	}
	_, _ = hex.Decode(c.Target[:], []byte(target))
	if c.Target == ([32]byte{}) {
		d.fail("target", "is zero")
		return
	}
	if n := len(branch) / 64; n > 0 {
		c.Branch = make([][32]byte, n)
		for k := range c.Branch {
			_, _ = hex.Decode(c.Branch[k][:], []byte(branch[64*k:64*k+64]))
		}
	}
}
