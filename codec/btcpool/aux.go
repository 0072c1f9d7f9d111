package btcpool

import (
	"strconv"
	"unicode/utf8"
)

// Merged-mining messages (spec §1.1, §9): AuxRawGw from nmcauxmaker to jobmaker and
// AuxSolvedShare from sserver to blkmaker, JSON built with btcpool's fixed key order.

// AuxRawGw is an aux chain's work (topic AuxRawGw, LEGACY NMCAuxBlock; spec §9). hashpool's
// auxmaker sets the bus key to the aux chain's name, so several aux chains can share one
// topic; btcpool's consumers ignore the key.
type AuxRawGw struct {
	// CreatedAt is the unix time the work was fetched (jobmaker ignores work older than 60 s).
	CreatedAt uint32
	// Hash is the aux block hash in display hex, as createauxblock returned it (or, from a
	// merged-mining proxy, the aux tree root).
	Hash string
	// Height is the aux block's height.
	Height int32
	// MerkleSize and MerkleNonce are the aux tree's size and nonce: 1 and 0 for one chain,
	// set by a merged-mining proxy that merges several.
	MerkleSize  int32
	MerkleNonce uint32
	// ChainID is the aux chain's id (createauxblock's chainid).
	ChainID int32
	// Bits is the aux block's compact target, 8 hex digits.
	Bits string
	// RPCAddr and RPCUserPass say where blkmaker submits the solved aux block
	// ("http://host:port", "user:password").
	RPCAddr     string
	RPCUserPass string
}

// AppendAuxRawGw appends m as btcpool's nmcauxmaker prints it, spaces included (spec §9):
//
//	{"created_at_ts":T, "hash":"..", "height":H, "merkle_size":S, "merkle_nonce":N, "chainid":C,  "bits":"..", "rpc_addr":"..", "rpc_userpass":".."}
//
// merkle_nonce is printed as a signed 32-bit number (btcpool's %d of an int32).
func AppendAuxRawGw(dst []byte, m *AuxRawGw) []byte {
	dst = append(dst, `{"created_at_ts":`...)
	dst = strconv.AppendUint(dst, uint64(m.CreatedAt), 10)
	dst = append(dst, `, "hash":`...)
	dst = appendJSONString(dst, m.Hash)
	dst = append(dst, `, "height":`...)
	dst = strconv.AppendInt(dst, int64(m.Height), 10)
	dst = append(dst, `, "merkle_size":`...)
	dst = strconv.AppendInt(dst, int64(m.MerkleSize), 10)
	dst = append(dst, `, "merkle_nonce":`...)
	dst = strconv.AppendInt(dst, int64(int32(m.MerkleNonce)), 10)
	dst = append(dst, `, "chainid":`...)
	dst = strconv.AppendInt(dst, int64(m.ChainID), 10)
	dst = append(dst, `,  "bits":`...)
	dst = appendJSONString(dst, m.Bits)
	dst = append(dst, `, "rpc_addr":`...)
	dst = appendJSONString(dst, m.RPCAddr)
	dst = append(dst, `, "rpc_userpass":`...)
	dst = appendJSONString(dst, m.RPCUserPass)
	return append(dst, '}')
}

// DecodeAuxRawGw decodes an AuxRawGw message strictly: created_at_ts (uint32), hash (64 hex),
// height (int32 ≥ 0), chainid (int32 ≥ 0) and bits (8 hex) are required; merkle_size
// (default 1) must be a power of two up to 2^30; merkle_nonce (default 0) may be printed
// signed or unsigned; rpc_addr and rpc_userpass are optional UTF-8 strings. Unknown keys are
// ignored.
func DecodeAuxRawGw(b []byte, m *AuxRawGw) error {
	p, o, err := parseObject(b, "AuxRawGw")
	if err != nil {
		return err
	}
	defer parsers.Put(p)
	j := jsonObject{o: o, msg: "AuxRawGw"}
	out := AuxRawGw{
		CreatedAt:  uint32(j.u64("created_at_ts", true, 1<<32-1)),
		Hash:       j.str("hash", true),
		Height:     int32(j.i64("height", true, 0, 1<<31-1)),
		ChainID:    int32(j.i64("chainid", true, 0, 1<<31-1)),
		Bits:       j.str("bits", true),
		MerkleSize: 1,
	}
	if j.o.Get("merkle_size") != nil {
		out.MerkleSize = int32(j.i64("merkle_size", true, 1, 1<<30))
		if j.err == nil && out.MerkleSize&(out.MerkleSize-1) != 0 {
			j.fail("merkle_size", "is not a power of two")
		}
	}
	if j.o.Get("merkle_nonce") != nil {
		out.MerkleNonce = uint32(j.i64("merkle_nonce", true, -1<<31, 1<<32-1))
	}
	if j.o.Get("rpc_addr") != nil {
		out.RPCAddr = j.str("rpc_addr", true)
	}
	if j.o.Get("rpc_userpass") != nil {
		out.RPCUserPass = j.str("rpc_userpass", true)
	}
	if j.err == nil && !isHexLen(out.Hash, 64) {
		j.fail("hash", "is not 64 hex characters")
	}
	if j.err == nil && !isHexLen(out.Bits, 8) {
		j.fail("bits", "is not 8 hex characters")
	}
	checkUTF8(&j, "rpc_addr", out.RPCAddr)
	checkUTF8(&j, "rpc_userpass", out.RPCUserPass)
	if j.err != nil {
		return j.err
	}
	*m = out
	return nil
}

// maxCoinbaseHex bounds coinbase_tx in an AuxSolvedShare (a 1 MB coinbase, hex).
const maxCoinbaseHex = 2 << 20

// AuxSolvedShare is a share whose hash met an aux chain's target (topic AuxSolvedShare,
// LEGACY NMCSolvedShare; spec §9). The sserver sends it whatever the parent share's status.
//
// The first six fields are btcpool's. The rest are hashpool extensions, written only when
// set, so that blkmaker can build the auxpow of a multi-chain tree without the job: btcpool's
// blkmaker ignores unknown keys, and a message without them is byte-identical to btcpool's.
type AuxSolvedShare struct {
	JobID        uint64
	AuxBlockHash string // display hex, as the aux node returned it
	// BlockHeader is the parent block's 80-byte header as hashed.
	BlockHeader [80]byte
	// CoinbaseTx is the parent coinbase that was hashed (no witness).
	CoinbaseTx  []byte
	RPCAddr     string
	RPCUserPass string

	// ChainName is the aux chain's name (found_nmc_blocks.chain_name). Key "chain_name".
	ChainName string
	// ChainID is the aux chain's id. Key "chainid", written with ChainName.
	ChainID int32
	// AuxBranch and AuxIndex are the aux chain's branch and slot in the aux merkle tree.
	// Keys "aux_merkle_branch" (concatenated memory hex) and "aux_merkle_index", written
	// when AuxBranch is not empty.
	AuxBranch [][32]byte
	AuxIndex  uint32
	// CoinbaseBranch is the parent coinbase's merkle branch. Key "coinbase_merkle_branch"
	// (concatenated memory hex, like StratumJob's merkleBranch), written when HasCoinbaseBranch.
	CoinbaseBranch    [][32]byte
	HasCoinbaseBranch bool
}

// AppendAuxSolvedShare appends m with btcpool's key order:
// {"job_id":N,"aux_block_hash":"..","block_header":"..","coinbase_tx":"..","rpc_addr":"..","rpc_userpass":".."}
// followed by the extension keys that are set.
func AppendAuxSolvedShare(dst []byte, m *AuxSolvedShare) []byte {
	dst = append(dst, `{"job_id":`...)
	dst = strconv.AppendUint(dst, m.JobID, 10)
	dst = append(dst, `,"aux_block_hash":`...)
	dst = appendJSONString(dst, m.AuxBlockHash)
	dst = append(dst, `,"block_header":"`...)
	dst = appendAuxHex(dst, m.BlockHeader[:])
	dst = append(dst, `","coinbase_tx":"`...)
	dst = appendAuxHex(dst, m.CoinbaseTx)
	dst = append(dst, `","rpc_addr":`...)
	dst = appendJSONString(dst, m.RPCAddr)
	dst = append(dst, `,"rpc_userpass":`...)
	dst = appendJSONString(dst, m.RPCUserPass)
	if m.ChainName != "" {
		dst = append(dst, `,"chain_name":`...)
		dst = appendJSONString(dst, m.ChainName)
		dst = append(dst, `,"chainid":`...)
		dst = strconv.AppendInt(dst, int64(m.ChainID), 10)
	}
	if len(m.AuxBranch) > 0 {
		dst = append(dst, `,"aux_merkle_branch":"`...)
		for i := range m.AuxBranch {
			dst = appendAuxHex(dst, m.AuxBranch[i][:])
		}
		dst = append(dst, `","aux_merkle_index":`...)
		dst = strconv.AppendUint(dst, uint64(m.AuxIndex), 10)
	}
	if m.HasCoinbaseBranch {
		dst = append(dst, `,"coinbase_merkle_branch":"`...)
		for i := range m.CoinbaseBranch {
			dst = appendAuxHex(dst, m.CoinbaseBranch[i][:])
		}
		dst = append(dst, '"')
	}
	return append(dst, '}')
}

// DecodeAuxSolvedShare decodes an AuxSolvedShare strictly: job_id, aux_block_hash (64 hex),
// block_header (160 hex) and coinbase_tx (non-empty hex, at most 2 MiB of it) are required;
// rpc_addr and rpc_userpass are optional strings; the extension keys are checked when
// present (a branch of at most 30 aux or 32 coinbase hashes).
func DecodeAuxSolvedShare(b []byte, m *AuxSolvedShare) error {
	p, o, err := parseObject(b, "AuxSolvedShare")
	if err != nil {
		return err
	}
	defer parsers.Put(p)
	j := jsonObject{o: o, msg: "AuxSolvedShare"}
	var out AuxSolvedShare
	out.JobID = j.u64("job_id", true, 1<<64-1)
	out.AuxBlockHash = j.str("aux_block_hash", true)
	header := j.str("block_header", true)
	coinbase := j.str("coinbase_tx", true)
	if j.o.Get("rpc_addr") != nil {
		out.RPCAddr = j.str("rpc_addr", true)
	}
	if j.o.Get("rpc_userpass") != nil {
		out.RPCUserPass = j.str("rpc_userpass", true)
	}
	if j.o.Get("chain_name") != nil {
		out.ChainName = j.str("chain_name", true)
		out.ChainID = int32(j.i64("chainid", true, 0, 1<<31-1))
	}
	auxBranch, hasAux := "", j.o.Get("aux_merkle_branch") != nil
	if hasAux {
		auxBranch = j.str("aux_merkle_branch", true)
		out.AuxIndex = uint32(j.u64("aux_merkle_index", true, 1<<30-1))
	}
	cbBranch := ""
	if j.o.Get("coinbase_merkle_branch") != nil {
		cbBranch = j.str("coinbase_merkle_branch", true)
		out.HasCoinbaseBranch = true
	}
	if j.err == nil && !isHexLen(out.AuxBlockHash, 64) {
		j.fail("aux_block_hash", "is not 64 hex characters")
	}
	if j.err == nil && !isHexLen(header, 160) {
		j.fail("block_header", "is not 160 hex characters (an 80-byte header)")
	}
	if j.err == nil && (coinbase == "" || len(coinbase) > maxCoinbaseHex || !isHex(coinbase)) {
		j.fail("coinbase_tx", "is not hex of 1 byte to 1 MiB")
	}
	checkUTF8(&j, "rpc_addr", out.RPCAddr)
	checkUTF8(&j, "rpc_userpass", out.RPCUserPass)
	checkUTF8(&j, "chain_name", out.ChainName)
	if j.err == nil && hasAux {
		out.AuxBranch = decodeBranch(&j, "aux_merkle_branch", auxBranch, 30)
	}
	if j.err == nil && out.HasCoinbaseBranch {
		out.CoinbaseBranch = decodeBranch(&j, "coinbase_merkle_branch", cbBranch, 32)
	}
	if j.err != nil {
		return j.err
	}
	decodeHexInto(out.BlockHeader[:], header)
	out.CoinbaseTx = make([]byte, len(coinbase)/2)
	decodeHexInto(out.CoinbaseTx, coinbase)
	*m = out
	return nil
}

// decodeBranch parses concatenated 64-hex-character hashes (memory order) into a new slice.
func decodeBranch(j *jsonObject, key, s string, max int) [][32]byte {
	if len(s)%64 != 0 || len(s)/64 > max || !isHex(s) {
		j.fail(key, "is not up to "+strconv.Itoa(max)+" hashes of 64 hex characters")
		return nil
	}
	if s == "" {
		return nil
	}
	out := make([][32]byte, len(s)/64)
	for i := range out {
		decodeHexInto(out[i][:], s[64*i:64*i+64])
	}
	return out
}

// checkUTF8 fails key when s is not valid UTF-8: such text could not be written back (the
// encoder replaces it), and no address, credential or chain name needs it.
func checkUTF8(j *jsonObject, key, s string) {
	if j.err == nil && !utf8.ValidString(s) {
		j.fail(key, "is not valid UTF-8")
	}
}

// isHexLen reports whether s is exactly n hex characters.
func isHexLen(s string, n int) bool { return len(s) == n && isHex(s) }

func appendAuxHex(dst, b []byte) []byte {
	for _, c := range b {
		dst = append(dst, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return dst
}

// decodeHexInto decodes checked hex text s into dst (len(dst) == len(s)/2).
func decodeHexInto(dst []byte, s string) {
	for i := range dst {
		dst[i] = unhex(s[2*i])<<4 | unhex(s[2*i+1])
	}
}
