package loadgen

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strconv"

	"github.com/hashpool/hashpool/codec/stratum"
	"github.com/hashpool/hashpool/sha"
)

// Work is one mining.notify as a miner holds it, with the difficulty in
// effect when it arrived (the server credits shares at that difficulty).
type Work struct {
	JobID   string // the notify's job id, echoed in mining.submit
	ShortID uint8  // JobID as the agent protocol's u8 (decimal job ids mod 256)
	Job     *sha.Job
	Time    uint32
	Clean   bool
	// Key identifies the job across miners for fan-out measurement.
	Key string
}

// maxBranch bounds the merkle branch of a notify (a block has < 2^16 txs).
const maxBranch = 32

var errNotify = errors.New("mining.notify: malformed params")

// ParseNotify reads mining.notify params: job id, prevhash as 8 byte-swapped
// 4-byte words (spec §3.6 prevHashBeStr), coinbase1, coinbase2, branch
// (memory-order hex), version, bits, time (%08x), clean_jobs.
func ParseNotify(m *stratum.Message) (*Work, error) {
	if m.NParams < 9 {
		return nil, errNotify
	}
	str := func(i int) ([]byte, bool) {
		b, ok := m.Param(i).Str()
		return b, ok && len(b) <= 16<<10
	}
	jobID, ok1 := str(0)
	prevHex, ok2 := str(1)
	cb1Hex, ok3 := str(2)
	cb2Hex, ok4 := str(3)
	verHex, ok5 := str(5)
	bitsHex, ok6 := str(6)
	timeHex, ok7 := str(7)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) || len(jobID) == 0 || len(jobID) > 64 {
		return nil, errNotify
	}
	var prev [32]byte
	if len(prevHex) != 64 {
		return nil, errNotify
	}
	if _, err := hex.Decode(prev[:], prevHex); err != nil {
		return nil, errNotify
	}
	for w := 0; w < 32; w += 4 { // undo the per-word byte swap
		prev[w], prev[w+1], prev[w+2], prev[w+3] = prev[w+3], prev[w+2], prev[w+1], prev[w]
	}
	cb1, err1 := hex.DecodeString(string(cb1Hex))
	cb2, err2 := hex.DecodeString(string(cb2Hex))
	if err1 != nil || err2 != nil {
		return nil, errNotify
	}
	br := m.Param(4)
	if br.Kind != stratum.KindArray || br.Len() > maxBranch {
		return nil, errNotify
	}
	branch := make([][32]byte, 0, br.Len())
	it := br.Elems()
	for i := 0; i < maxBranch; i++ {
		v, ok := it.Next()
		if !ok {
			break
		}
		s, ok := v.Str()
		var h [32]byte
		if !ok || len(s) != 64 {
			return nil, errNotify
		}
		if _, err := hex.Decode(h[:], s); err != nil {
			return nil, errNotify
		}
		branch = append(branch, h)
	}
	version, ok1 := parseHex32(verHex)
	nbits, ok2 := parseHex32(bitsHex)
	ntime, ok3 := parseHex32(timeHex)
	clean, ok4 := m.Param(8).Bool()
	if !(ok1 && ok2 && ok3 && ok4) {
		return nil, errNotify
	}
	w := &Work{JobID: string(jobID), Job: sha.NewJob(cb1, cb2, branch, version, prev, nbits), Time: ntime, Clean: clean}
	if n, err := strconv.ParseUint(w.JobID, 10, 64); err == nil {
		w.ShortID = uint8(n)
	}
	w.Key = w.JobID + "/" + string(prevHex) + "/" + string(timeHex) + "/" + strconv.Itoa(len(cb1)+len(cb2)) + "/" + string(cb2Hex[max(0, len(cb2Hex)-16):])
	return w, nil
}

func parseHex32(b []byte) (uint32, bool) {
	if len(b) != 8 {
		return 0, false
	}
	v, err := strconv.ParseUint(string(b), 16, 32)
	return uint32(v), err == nil
}

// grinder finds nonces; one per goroutine (sha.Hasher is not shared).
type grinder struct {
	h   sha.Hasher
	hdr [80]byte
}

// grind searches nonces from start for a header hash that meets target,
// trying at most maxHashes and checking ctx every 64Ki hashes. It returns
// the nonce, the number of hashes tried and whether one was found.
func (g *grinder) grind(ctx context.Context, w *Work, en1, en2 []byte, ntime, versionMask uint32, target *sha.Target, start uint32, maxHashes uint64) (nonce uint32, tried uint64, ok bool) {
	// The coinbase and merkle root depend only on en1/en2: build the header
	// once and hash it with each nonce.
	g.hdr = g.h.ShareHeader(w.Job, en1, en2, ntime, start, versionMask)
	return g.search(ctx, target, start, maxHashes)
}

// search grinds the nonce of g.hdr (every other field fixed) from start;
// grind's contract.
func (g *grinder) search(ctx context.Context, target *sha.Target, start uint32, maxHashes uint64) (nonce uint32, tried uint64, ok bool) {
	nonce = start
	for tried < maxHashes {
		binary.LittleEndian.PutUint32(g.hdr[76:], nonce)
		h := sha.DoubleSHA256(g.hdr[:])
		tried++
		if sha.HashMeetsTarget(&h, target) {
			return nonce, tried, true
		}
		nonce++
		if tried&0xffff == 0 && ctx.Err() != nil {
			break
		}
	}
	return 0, tried, false
}

// appendEn2 appends en2 as size big-endian bytes (how miners render their
// extranonce2 counter).
func appendEn2(dst []byte, en2 uint64, size int) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], en2)
	return append(dst, b[8-size:]...)
}
