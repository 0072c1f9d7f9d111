package sha

// Job is the part of a stratum job that share checking needs, prepared once
// per job so each share only hashes what differs. A Job is immutable after
// NewJob and safe for concurrent use by many Hashers.
type Job struct {
	coinbase1 []byte
	coinbase2 []byte
	branch    [][32]byte
	version   uint32
	bits      uint32
	prevHash  [32]byte

	// mid is the SHA-256 state after the whole 64-byte blocks of coinbase1;
	// tail is what remains of coinbase1 after them.
	mid  midstate
	tail []byte
}

// NewJob prepares a job. coinbase1 and coinbase2 are the raw coinbase halves
// around the extranonces, branch is the coinbase's merkle path (as from
// MerkleBranch), prevHash is in internal byte order. NewJob copies its
// arguments; the caller may reuse them.
func NewJob(coinbase1, coinbase2 []byte, branch [][32]byte, version uint32, prevHash [32]byte, bits uint32) *Job {
	j := &Job{
		coinbase1: append([]byte(nil), coinbase1...),
		coinbase2: append([]byte(nil), coinbase2...),
		branch:    append([][32]byte(nil), branch...),
		version:   version,
		bits:      bits,
		prevHash:  prevHash,
	}
	whole := len(j.coinbase1) &^ 63
	j.mid = newMidstate(j.coinbase1[:whole])
	j.tail = j.coinbase1[whole:]
	return j
}

// Version returns the job's block version (before version rolling).
func (j *Job) Version() uint32 { return j.version }

// Bits returns the job's compact network target.
func (j *Job) Bits() uint32 { return j.bits }

// PrevHash returns the previous block hash in internal byte order.
func (j *Job) PrevHash() [32]byte { return j.prevHash }

// Branch returns the job's merkle branch. The slice is shared with the Job
// and must not be modified.
func (j *Job) Branch() [][32]byte { return j.branch }

// Coinbase1 returns the coinbase bytes before the extranonces. The slice is
// shared with the Job and must not be modified.
func (j *Job) Coinbase1() []byte { return j.coinbase1 }

// Coinbase2 returns the coinbase bytes after the extranonces. The slice is
// shared with the Job and must not be modified.
func (j *Job) Coinbase2() []byte { return j.coinbase2 }

// CoinbaseLen returns the length of the coinbase for the given extranonce
// sizes.
func (j *Job) CoinbaseLen(extraNonce1Len, extraNonce2Len int) int {
	return len(j.coinbase1) + extraNonce1Len + extraNonce2Len + len(j.coinbase2)
}

// AppendCoinbase appends the full coinbase transaction,
// coinbase1 || extraNonce1 || extraNonce2 || coinbase2, to dst.
func (j *Job) AppendCoinbase(dst, extraNonce1, extraNonce2 []byte) []byte {
	dst = append(dst, j.coinbase1...)
	dst = append(dst, extraNonce1...)
	dst = append(dst, extraNonce2...)
	return append(dst, j.coinbase2...)
}

// Hasher holds the scratch space for checking shares. It is not safe for
// concurrent use: keep one per goroutine or event loop. The zero value is
// ready to use.
type Hasher struct {
	s scratch
}

// CoinbaseHash returns the txid (internal byte order) of the coinbase built
// from the job and the extranonces.
func (h *Hasher) CoinbaseHash(j *Job, extraNonce1, extraNonce2 []byte) [32]byte {
	return h.s.coinbaseHash(j, extraNonce1, extraNonce2)
}

// MerkleRoot returns the merkle root of the block built from the job and the
// extranonces.
func (h *Hasher) MerkleRoot(j *Job, extraNonce1, extraNonce2 []byte) [32]byte {
	return h.s.merkleRoot(j, extraNonce1, extraNonce2)
}

// ShareHeader returns the 80-byte header a share describes: version =
// job version XOR versionMask, the job's prevhash and bits, the merkle root
// of coinbase1||extraNonce1||extraNonce2||coinbase2 and the job's branch,
// ntime and nonce.
func (h *Hasher) ShareHeader(j *Job, extraNonce1, extraNonce2 []byte, ntime, nonce, versionMask uint32) [80]byte {
	root := h.MerkleRoot(j, extraNonce1, extraNonce2)
	var hdr [80]byte
	putLE32(hdr[0:4], j.version^versionMask)
	copy(hdr[4:36], j.prevHash[:])
	copy(hdr[36:68], root[:])
	putLE32(hdr[68:72], ntime)
	putLE32(hdr[72:76], j.bits)
	putLE32(hdr[76:80], nonce)
	return hdr
}

// ShareHash returns the double SHA-256 of ShareHeader's header, in internal
// byte order (compare it with HashMeetsTarget). It does not allocate.
func (h *Hasher) ShareHash(j *Job, extraNonce1, extraNonce2 []byte, ntime, nonce, versionMask uint32) [32]byte {
	hdr := h.ShareHeader(j, extraNonce1, extraNonce2, ntime, nonce, versionMask)
	return h.s.header(&hdr)
}
