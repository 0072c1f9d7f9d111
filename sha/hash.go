package sha

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
)

// DoubleSHA256 returns SHA-256(SHA-256(b)), Bitcoin's hash for headers,
// transactions and merkle nodes, in internal byte order.
func DoubleSHA256(b []byte) [32]byte {
	if useSHANI && len(b) <= 119 {
		return dshaSmall(b)
	}
	first := sha256.Sum256(b)
	return sha256.Sum256(first[:])
}

// MerkleBranch returns the merkle path of the coinbase (index 0) for a block
// whose other transactions have the given txids (internal byte order, in block
// order, coinbase not included). This is btcpool's algorithm (spec §3.6): at
// each level the first hash is a step of the path, the level is made odd by
// duplicating its last hash, and the hashes after the first are paired up.
// An empty list gives an empty branch. The result is a new slice; txids is
// not modified.
func MerkleBranch(txids [][32]byte) [][32]byte {
	if len(txids) == 0 {
		return nil
	}
	level := make([][32]byte, len(txids), len(txids)+1)
	copy(level, txids)
	var steps [][32]byte
	var node [64]byte
	for len(level) > 1 {
		steps = append(steps, level[0])
		if len(level)%2 == 0 {
			level = append(level, level[len(level)-1])
		}
		// level has odd length n; pairs are (1,2), (3,4), ... (n-2, n-1).
		n := (len(level) - 1) / 2
		for i := 0; i < n; i++ {
			copy(node[:32], level[2*i+1][:])
			copy(node[32:], level[2*i+2][:])
			level[i] = DoubleSHA256(node[:])
		}
		level = level[:n]
	}
	if len(level) == 1 {
		steps = append(steps, level[0])
	}
	return steps
}

// MerkleRoot folds a coinbase hash with a merkle branch:
// root = dSHA(root || step) for each step in order.
func MerkleRoot(coinbaseHash [32]byte, branch [][32]byte) [32]byte {
	if useSHANI && len(branch) > 0 {
		return foldSHANI(&coinbaseHash, branch)
	}
	root := coinbaseHash
	var node [64]byte
	for i := range branch {
		copy(node[:32], root[:])
		copy(node[32:], branch[i][:])
		root = DoubleSHA256(node[:])
	}
	return root
}

// AppendHeader appends the 80-byte block header made of the given fields to
// dst and returns the extended slice. Integer fields are little-endian;
// prevHash and merkleRoot are in internal byte order.
func AppendHeader(dst []byte, version uint32, prevHash, merkleRoot *[32]byte, ntime, bits, nonce uint32) []byte {
	dst = appendLE32(dst, version)
	dst = append(dst, prevHash[:]...)
	dst = append(dst, merkleRoot[:]...)
	dst = appendLE32(dst, ntime)
	dst = appendLE32(dst, bits)
	return appendLE32(dst, nonce)
}

func appendLE32(dst []byte, v uint32) []byte {
	return append(dst, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
}

func putLE32(b []byte, v uint32) {
	_ = b[3]
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

// DisplayHex returns the display form of a 32-byte hash: the bytes reversed
// and hex-encoded in lower case, as Bitcoin Core's GetHex and block explorers
// show it.
func DisplayHex(h [32]byte) string {
	var buf [64]byte
	return string(AppendDisplayHex(buf[:0], &h))
}

// AppendDisplayHex appends the 64-character display form of h to dst.
func AppendDisplayHex(dst []byte, h *[32]byte) []byte {
	const digits = "0123456789abcdef"
	for i := 31; i >= 0; i-- {
		dst = append(dst, digits[h[i]>>4], digits[h[i]&15])
	}
	return dst
}

// ErrDisplayHex reports a display hash that is not exactly 64 hex digits.
var ErrDisplayHex = errors.New("sha: display hash must be exactly 64 hex digits")

// ParseDisplayHex parses the display form of a 32-byte hash (64 hex digits,
// either case) into internal byte order. Anything else returns ErrDisplayHex.
func ParseDisplayHex(s string) ([32]byte, error) {
	var h [32]byte
	if len(s) != 64 {
		return h, ErrDisplayHex
	}
	var raw [32]byte
	if _, err := hex.Decode(raw[:], []byte(s)); err != nil {
		return [32]byte{}, ErrDisplayHex
	}
	for i := range raw {
		h[31-i] = raw[i]
	}
	return h, nil
}
