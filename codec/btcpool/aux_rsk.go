package btcpool

import (
	"errors"
	"strconv"
	"strings"
)

// RskRawGw is RSK's merged-mining work (topic RskRawGw, LEGACY RawGw): mnr_getWork's result
// as btcpool's gwmaker publishes it for jobmaker.
type RskRawGw struct {
	// CreatedAt is the unix time the work was fetched (jobmaker refuses work older than 60 s
	// and drops it from jobs 120 s after).
	CreatedAt uint32
	// ChainType is btcpool HEAD's "chainType" ("RSK"); LEGACY gwmaker had no such key.
	ChainType string
	// RPCAddress and RPCUserPwd say where blkmaker submits (rskdRpcAddress, rskdRpcUserPwd).
	RPCAddress, RPCUserPwd string
	// Target is the RSK target, "0x" and big-endian hex (mnr_getWork's target).
	Target string
	// ParentBlockHash and BlockHashForMergedMining are mnr_getWork's, "0x" and 64 hex digits;
	// the latter follows the RSKBLOCK: tag in the coinbase.
	ParentBlockHash, BlockHashForMergedMining string
	// FeesPaidToMiner is mnr_getWork's feesPaidToMiner as the node wrote it.
	FeesPaidToMiner string
	// Notify is mnr_getWork's notify: the node says every earlier work can be replaced.
	Notify bool
}

// AppendRskRawGw appends m as btcpool HEAD's gwmaker prints it (GwMakerHandlerRsk, no spaces,
// notify as a quoted "true"/"false"):
//
//	{"created_at_ts":T,"chainType":"RSK","rskdRpcAddress":"..","rskdRpcUserPwd":"..","target":"0x..","parentBlockHash":"0x..","blockHashForMergedMining":"0x..","feesPaidToMiner":"..","notify":"true"}
func AppendRskRawGw(dst []byte, m *RskRawGw) []byte {
	dst = append(dst, `{"created_at_ts":`...)
	dst = strconv.AppendUint(dst, uint64(m.CreatedAt), 10)
	dst = append(dst, `,"chainType":`...)
	dst = appendJSONString(dst, m.ChainType)
	dst = append(dst, `,"rskdRpcAddress":`...)
	dst = appendJSONString(dst, m.RPCAddress)
	dst = append(dst, `,"rskdRpcUserPwd":`...)
	dst = appendJSONString(dst, m.RPCUserPwd)
	dst = append(dst, `,"target":`...)
	dst = appendJSONString(dst, m.Target)
	dst = append(dst, `,"parentBlockHash":`...)
	dst = appendJSONString(dst, m.ParentBlockHash)
	dst = append(dst, `,"blockHashForMergedMining":`...)
	dst = appendJSONString(dst, m.BlockHashForMergedMining)
	dst = append(dst, `,"feesPaidToMiner":`...)
	dst = appendJSONString(dst, m.FeesPaidToMiner)
	if m.Notify {
		return append(dst, `,"notify":"true"}`...)
	}
	return append(dst, `,"notify":"false"}`...)
}

// maxRskString is the longest string an RskRawGw field may hold: each lands in an 80-byte
// char array of RskSolvedShareData or the job (79 bytes and the NUL).
const maxRskString = rskStringField - 1

// DecodeRskRawGw decodes an RskRawGw message strictly, with btcpool's RskWork::initFromGw
// checks: created_at_ts (uint32), rskdRpcAddress, rskdRpcUserPwd, target, parentBlockHash,
// blockHashForMergedMining, feesPaidToMiner and notify are required; chainType is optional.
// The hashes must be 64 hex digits and the target 1 to 64 (each with an optional 0x); notify
// is "true" or "false" (btcpool's quoted form) or a JSON boolean; every string is UTF-8 and at
// most 79 bytes. Unknown keys are ignored.
func DecodeRskRawGw(b []byte, m *RskRawGw) error {
	p, o, err := parseObject(b, "RskRawGw")
	if err != nil {
		return err
	}
	defer parsers.Put(p)
	j := jsonObject{o: o, msg: "RskRawGw"}
	out := RskRawGw{
		CreatedAt:                uint32(j.u64("created_at_ts", true, 1<<32-1)),
		RPCAddress:               j.str("rskdRpcAddress", true),
		RPCUserPwd:               j.str("rskdRpcUserPwd", true),
		Target:                   j.str("target", true),
		ParentBlockHash:          j.str("parentBlockHash", true),
		BlockHashForMergedMining: j.str("blockHashForMergedMining", true),
		FeesPaidToMiner:          j.str("feesPaidToMiner", true),
	}
	if j.o.Get("chainType") != nil {
		out.ChainType = j.str("chainType", true)
	}
	if v := j.get("notify", true); v != nil {
		if bv, err := v.Bool(); err == nil {
			out.Notify = bv
		} else if sv, err := v.StringBytes(); err == nil && (string(sv) == "true" || string(sv) == "false") {
			out.Notify = string(sv) == "true"
		} else {
			j.fail("notify", `is not "true", "false" or a boolean`)
		}
	}
	if j.err == nil && !isHexLen(strip0x(out.BlockHashForMergedMining), 64) {
		j.fail("blockHashForMergedMining", "is not 64 hex characters")
	}
	if j.err == nil && !isHexLen(strip0x(out.ParentBlockHash), 64) {
		j.fail("parentBlockHash", "is not 64 hex characters")
	}
	if t := strip0x(out.Target); j.err == nil && (len(t) == 0 || len(t) > 64 || !isHexDigits(t)) {
		j.fail("target", "is not 1 to 64 hex digits")
	}
	for _, f := range []struct{ key, v string }{{"chainType", out.ChainType}, {"rskdRpcAddress", out.RPCAddress},
		{"rskdRpcUserPwd", out.RPCUserPwd}, {"feesPaidToMiner", out.FeesPaidToMiner}} {
		if len(f.v) > maxRskString {
			j.fail(f.key, "is longer than 79 bytes")
		}
		checkUTF8(&j, f.key, f.v)
	}
	if j.err != nil {
		return j.err
	}
	*m = out
	return nil
}

func strip0x(s string) string { return strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X") }

// isHexDigits reports whether s is only hex digits (any length, odd included).
func isHexDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if unhex(s[i]) > 15 {
			return false
		}
	}
	return true
}

// RskSolvedShareDataSize is the size of btcpool's RskSolvedShareData struct that starts an
// RskSolvedShare message.
//
// Layout (x86-64, little-endian, no padding), read from btcpool HEAD's
// src/rsk/RskSolvedShareData.h (headerData_ is the 80-byte header in Bitcoin builds); the
// spec (§1.1, §9) names the struct without its fields, and no btcpool runs here to confirm it:
//
//	0   jobId          uint64
//	8   workerId       int64
//	16  userId         int32
//	20  height         int32
//	24  header80       [80]byte
//	104 workerFullName char[40]
//	144 feesForMiner   char[80]
//	224 rpcAddress     char[80]
//	304 rpcUserPwd     char[80]
const RskSolvedShareDataSize = 384

const rskStringField = 80

// RskSolvedShare is a share whose hash met the RSK target (topic RskSolvedShare): the fixed
// RskSolvedShareData struct followed by the parent coinbase transaction.
type RskSolvedShare struct {
	JobID    uint64
	WorkerID int64
	UserID   int32
	Height   int32
	// Header is the parent block's 80-byte header as hashed.
	Header [80]byte
	// FeesForMiner is mnr_getWork's feesPaidToMiner; RPCAddress and RPCUserPwd say where
	// blkmaker submits. Each is written NUL-padded into 80 bytes (at most 79 kept).
	FeesForMiner, RPCAddress, RPCUserPwd string
	// WorkerFullName is "user.worker" (at most 39 bytes kept).
	WorkerFullName string
	// Coinbase is the parent coinbase that was hashed (no witness).
	Coinbase []byte
}

// AppendRskSolvedShare appends the binary message: RskSolvedShareData then the coinbase.
func AppendRskSolvedShare(dst []byte, m *RskSolvedShare) []byte {
	dst = appendFoundBlock(dst, m.JobID, m.WorkerID, m.UserID, m.Height, &m.Header, m.WorkerFullName)
	dst = appendCString(dst, m.FeesForMiner, rskStringField)
	dst = appendCString(dst, m.RPCAddress, rskStringField)
	dst = appendCString(dst, m.RPCUserPwd, rskStringField)
	return append(dst, m.Coinbase...)
}

// appendCString appends s truncated to size-1 bytes and NUL-padded to size.
func appendCString(dst []byte, s string, size int) []byte {
	if len(s) > size-1 {
		s = s[:size-1]
	}
	dst = append(dst, s...)
	for range size - len(s) {
		dst = append(dst, 0)
	}
	return dst
}

// cString reads a NUL-terminated string from a char[len(b)] field, at most len(b)-1 bytes
// (what appendCString writes; a field without a NUL would overrun in btcpool's C++).
func cString(b []byte) string {
	b = b[:len(b)-1]
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

var errRskSolvedShort = errors.Join(ErrMalformed, errors.New("RskSolvedShare: message must be longer than the 384-byte RskSolvedShareData"))

// DecodeRskSolvedShare decodes an RskSolvedShare message into m. It requires a coinbase of at
// least one byte after the struct; strings are read up to their first NUL (at most size-1 bytes). Coinbase is copied
// (m.Coinbase's storage is reused when large enough), so m does not alias b.
func DecodeRskSolvedShare(b []byte, m *RskSolvedShare) error {
	if len(b) <= RskSolvedShareDataSize {
		return errRskSolvedShort
	}
	decodeFoundBlock(b, &m.JobID, &m.WorkerID, &m.UserID, &m.Height, &m.Header)
	m.WorkerFullName = cString(b[104:144])
	m.FeesForMiner = cString(b[144:224])
	m.RPCAddress = cString(b[224:304])
	m.RPCUserPwd = cString(b[304:384])
	m.Coinbase = append(m.Coinbase[:0], b[RskSolvedShareDataSize:]...)
	return nil
}
