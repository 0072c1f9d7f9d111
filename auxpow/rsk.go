package auxpow

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/hashpool/hashpool/sha"
)

// RSKTag precedes the RSK block hash in the coinbase output ("RSKBLOCK:").
const RSKTag = "RSKBLOCK:"

// RSKScriptSize is the length of the RSK output's script: OP_RETURN, push 41, tag, hash.
const RSKScriptSize = 2 + len(RSKTag) + 32

// ParseRSKHash parses mnr_getWork's blockHashForMergedMining ("0x" and 64 hex digits; the
// prefix is optional) into the 32 bytes that follow the tag, in the order the hex shows
// them (RSK hashes are not byte-reversed).
func ParseRSKHash(s string) ([32]byte, error) {
	d := strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	b, err := hex32(d)
	if err != nil {
		return b, fmt.Errorf("auxpow: RSK hash %q: %w", s, err)
	}
	return b, nil
}

// AppendRSKScript appends the merged-mining script 6a 29 "RSKBLOCK:" ‖ hash (spec §3.6,
// output 4; RSK's implementation guide gives the same bytes).
func AppendRSKScript(dst []byte, hash *[32]byte) []byte {
	dst = append(dst, 0x6a, byte(len(RSKTag)+32))
	dst = append(dst, RSKTag...)
	return append(dst, hash[:]...)
}

// AppendRSKOutput appends the whole coinbase output btcpool adds for RSK: value 0 (8 bytes),
// script length, script (AppendRSKScript). RSK requires it to be the last output, with at
// most 128 bytes of the coinbase after the hash; jobmaker places it after the extranonces,
// so no miner-chosen bytes can fake a tag after it.
func AppendRSKOutput(dst []byte, hash *[32]byte) []byte {
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0, byte(RSKScriptSize))
	return AppendRSKScript(dst, hash)
}

// RSKSubmitParams returns the five string arguments of RSK's
// mnr_submitBitcoinBlockPartialMerkle for a parent block that met the RSK target:
//
//  1. the parent block hash in display hex (RSK only logs it);
//  2. the 80-byte parent header in hex;
//  3. the parent coinbase transaction in hex (the exact bytes hashed, no witness);
//  4. the merkle hashes, space separated, each in memory (internal-order) hex, as btcpool's
//     blkmaker writes them (Bin2Hex of the uint256 bytes): the coinbase txid first, then the
//     coinbase's merkle branch lowest level first (RSK rebuilds a partial merkle tree whose
//     only matched leaf is the coinbase from them);
//  5. the parent block's transaction count, coinbase included, in lower-case hex.
//
// btcpool sends them as JSON-RPC 2.0 ({"jsonrpc":"2.0","id":"1",...}) and at most 2
// submissions a second per RSK node.
func RSKSubmitParams(header *[80]byte, coinbaseTx []byte, branch [][32]byte, txCount int) [5]string {
	blockHash := sha.DoubleSHA256(header[:])
	txid := sha.DoubleSHA256(coinbaseTx)
	var m strings.Builder
	m.Grow(65 * (1 + len(branch)))
	m.WriteString(hex.EncodeToString(txid[:]))
	for i := range branch {
		m.WriteByte(' ')
		m.WriteString(hex.EncodeToString(branch[i][:]))
	}
	return [5]string{
		sha.DisplayHex(blockHash),
		hex.EncodeToString(header[:]),
		hex.EncodeToString(coinbaseTx),
		m.String(),
		strconv.FormatInt(int64(txCount), 16),
	}
}
