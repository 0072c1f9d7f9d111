package jobmaker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/hashpool/hashpool/auxpow"
)

// Extranonce layout inside the coinbase scriptSig (spec §3.6): 4 bytes of
// extranonce1 (session id) followed by 8 bytes of extranonce2.
const (
	ExtraNonce1Size = 4
	ExtraNonce2Size = 8
	placeholderSize = ExtraNonce1Size + ExtraNonce2Size

	// maxScriptSigSize and maxCoinbaseSize are btcpool's limits: the
	// scriptSig must be shorter than 100 bytes (consensus allows 2..100) and
	// the whole coinbase shorter than 500 bytes.
	maxScriptSigSize = 100
	maxCoinbaseSize  = 500

	// coinbaseTxVersion is CTransaction::CURRENT_VERSION of the Bitcoin Core
	// library btcpool links (v0.16.3).
	coinbaseTxVersion = 2

	// MaxCoinbaseInfo is the longest coinbase_info tag that always fits in
	// a scriptSig shorter than 100 bytes: 99 - 5 (height push, up to 2^31-1)
	// - 6 (time push, up to 2^32-1) - 12 (placeholder) = 76.
	MaxCoinbaseInfo = maxScriptSigSize - 1 - 5 - 6 - placeholderSize
)

// witnessCommitmentHeader is OP_RETURN, push 36, and the BIP141 magic
// aa21a9ed that starts a witness commitment output script.
var witnessCommitmentHeader = []byte{0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed}

// placeholder marks where the miner's extranonce1 and extranonce2 go.
var placeholder = bytes.Repeat([]byte{0xee}, placeholderSize)

var (
	errScriptSigTooLong = errors.New("jobmaker: coinbase scriptSig is 100 bytes or longer")
	errCoinbaseTooLong  = errors.New("jobmaker: coinbase transaction is 500 bytes or longer")
)

// appendScriptInt appends what Bitcoin Core's `CScript << int64` appends:
// OP_0 for 0, OP_1NEGATE for -1, OP_1..OP_16 for 1..16, and otherwise a
// minimal push of the CScriptNum encoding. This is the BIP34 height push.
func appendScriptInt(dst []byte, n int64) []byte {
	switch {
	case n == 0:
		return append(dst, 0x00)
	case n == -1:
		return append(dst, 0x4f)
	case n >= 1 && n <= 16:
		return append(dst, byte(0x50+n))
	}
	return appendScriptNum(dst, n)
}

// appendScriptNum appends what `CScript << CScriptNum(n)` appends: a direct
// push of the minimal little-endian sign-magnitude encoding of n (no OP_n
// shortcut; an empty push, OP_0, for zero).
func appendScriptNum(dst []byte, n int64) []byte {
	var buf [9]byte
	num := scriptNumBytes(buf[:0], n)
	dst = append(dst, byte(len(num)))
	return append(dst, num...)
}

// scriptNumBytes appends the CScriptNum serialization of n: little-endian
// magnitude, with the sign in the top bit of the last byte (an extra byte is
// added when the magnitude already uses that bit).
func scriptNumBytes(dst []byte, n int64) []byte {
	if n == 0 {
		return dst
	}
	neg := n < 0
	mag := uint64(n)
	if neg {
		mag = uint64(-n) // -MinInt64 wraps to itself, which is its magnitude as uint64
	}
	for mag > 0 {
		dst = append(dst, byte(mag))
		mag >>= 8
	}
	last := len(dst) - 1
	switch {
	case dst[last]&0x80 != 0:
		if neg {
			dst = append(dst, 0x80)
		} else {
			dst = append(dst, 0x00)
		}
	case neg:
		dst[last] |= 0x80
	}
	return dst
}

// coinbaseInput is everything that varies between coinbase transactions.
type coinbaseInput struct {
	height     int32     // BIP34 height
	now        uint32    // unix time pushed after the height (btcpool issue #5)
	info       []byte    // coinbase_info, inserted verbatim
	payout     []byte    // scriptPubKey of the pool's payout address
	value      int64     // coinbasevalue
	commitment []byte    // full witness commitment script, or nil
	aux        []byte    // the 44-byte merged-mining commitment, or nil
	rsk        *[32]byte // RSK's hash for merged mining: the RSKBLOCK: output, last; or nil
}

// buildCoinbase serializes the coinbase transaction of spec §3.6 (without
// witness) with the 12-byte 0xEE placeholder, and splits it at the last
// occurrence of the placeholder into coinbase1 and coinbase2. The two
// returned slices share one new backing array.
func buildCoinbase(in coinbaseInput) (cb1, cb2 []byte, err error) {
	script := make([]byte, 0, maxScriptSigSize)
	script = appendScriptInt(script, int64(in.height))
	script = appendScriptNum(script, int64(in.now))
	script = append(script, in.info...)
	script = append(script, in.aux...)
	script = append(script, placeholder...)
	if len(script) >= maxScriptSigSize {
		return nil, nil, fmt.Errorf("%w (%d bytes; coinbase_info is %d bytes)", errScriptSigTooLong, len(script), len(in.info))
	}

	tx := make([]byte, 0, 256)
	tx = binary.LittleEndian.AppendUint32(tx, coinbaseTxVersion)
	tx = auxpow.AppendCompactSize(tx, 1) // one input
	tx = append(tx, make([]byte, 32)...) // null prevout hash
	tx = binary.LittleEndian.AppendUint32(tx, 0xffffffff)
	tx = auxpow.AppendCompactSize(tx, uint64(len(script)))
	placeAt := len(tx) + len(script) - placeholderSize
	tx = append(tx, script...)
	tx = binary.LittleEndian.AppendUint32(tx, 0xffffffff) // sequence
	outputs := uint64(1)
	if len(in.commitment) > 0 {
		outputs++
	}
	if in.rsk != nil {
		outputs++
	}
	tx = auxpow.AppendCompactSize(tx, outputs)
	tx = appendTxOut(tx, in.value, in.payout)
	if len(in.commitment) > 0 {
		tx = appendTxOut(tx, 0, in.commitment)
	}
	if in.rsk != nil { // RSK wants it last, after the extranonces (spec §3.6 output 4)
		tx = auxpow.AppendRSKOutput(tx, in.rsk)
	}
	tx = binary.LittleEndian.AppendUint32(tx, 0) // lock time
	if len(tx) >= maxCoinbaseSize {
		return nil, nil, fmt.Errorf("%w (%d bytes)", errCoinbaseTooLong, len(tx))
	}

	// btcpool splits at the last occurrence. An output script that happens
	// to hold twelve 0xEE bytes would move the split into the output and
	// break every share, so refuse to build such a job.
	at := bytes.LastIndex(tx, placeholder)
	if at != placeAt {
		return nil, nil, fmt.Errorf("jobmaker: an output script contains the extranonce placeholder (at %d, want %d)", at, placeAt)
	}
	return tx[:at:at], tx[at+placeholderSize:], nil
}

func appendTxOut(dst []byte, value int64, script []byte) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, uint64(value))
	dst = auxpow.AppendCompactSize(dst, uint64(len(script)))
	return append(dst, script...)
}
