package btcpool

import (
	"errors"
)

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
