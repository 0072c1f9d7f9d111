package sha

import "encoding/binary"

// ivWords is SHA-256's initial state.
var ivWords = [8]uint32{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19}

var zeros [64]byte

// scratch is the per-Hasher state of the hash engine. With SHA-NI the whole
// coinbase-to-root computation is one call into the kernel; without it the
// crypto/sha256 path runs.
type scratch struct {
	std stdScratch
	buf []byte    // coinbase remainder and padding, grown once, then reused
	hdr [128]byte // header and padding; bytes 81..125 stay zero
}

// padCoinbase fills s.buf with the part of the coinbase after the job's
// midstate, plus SHA-256 padding, and returns the number of blocks.
func (s *scratch) padCoinbase(j *Job, en1, en2 []byte) int {
	total := len(j.coinbase1) + len(en1) + len(en2) + len(j.coinbase2)
	b := append(s.buf[:0], j.tail...)
	b = append(b, en1...)
	b = append(b, en2...)
	b = append(b, j.coinbase2...)
	b = append(b, 0x80)
	b = append(b, zeros[:(56-len(b)%64+64)%64]...)
	b = binary.BigEndian.AppendUint64(b, uint64(total)*8)
	s.buf = b
	return len(b) / 64
}

func (s *scratch) coinbaseHash(j *Job, en1, en2 []byte) [32]byte {
	if !useSHANI {
		return s.std.coinbaseHash(j, en1, en2)
	}
	var out [32]byte
	n := s.padCoinbase(j, en1, en2)
	merkleSHANI(&out, &j.mid.words, &s.buf[0], n, nil, 0)
	return out
}

func (s *scratch) merkleRoot(j *Job, en1, en2 []byte) [32]byte {
	if !useSHANI {
		root := s.std.coinbaseHash(j, en1, en2)
		for i := range j.branch {
			s.std.merkleNode(&root, &j.branch[i])
		}
		return root
	}
	var out [32]byte
	var step *[32]byte
	if len(j.branch) > 0 {
		step = &j.branch[0]
	}
	n := s.padCoinbase(j, en1, en2)
	merkleSHANI(&out, &j.mid.words, &s.buf[0], n, step, len(j.branch))
	return out
}

func (s *scratch) header(hdr *[80]byte) [32]byte {
	if !useSHANI {
		return s.std.header(hdr)
	}
	copy(s.hdr[:80], hdr[:])
	s.hdr[80] = 0x80
	s.hdr[126], s.hdr[127] = 0x02, 0x80 // 640 bits
	var out [32]byte
	merkleSHANI(&out, &ivWords, &s.hdr[0], 2, nil, 0)
	return out
}

// dshaSmall returns dSHA(b) for len(b) <= 119 with the SHA-NI kernel.
func dshaSmall(b []byte) [32]byte {
	var buf [128]byte
	copy(buf[:], b)
	buf[len(b)] = 0x80
	n := 1
	if len(b) > 55 {
		n = 2
	}
	binary.BigEndian.PutUint64(buf[64*n-8:], uint64(len(b))*8)
	var out [32]byte
	merkleSHANI(&out, &ivWords, &buf[0], n, nil, 0)
	return out
}

// foldSHANI returns MerkleRoot(first, branch) for a non-empty branch: the
// first node goes through the generic block path, the rest through the
// kernel's merkle loop.
func foldSHANI(first *[32]byte, branch [][32]byte) [32]byte {
	var buf [128]byte
	copy(buf[:32], first[:])
	copy(buf[32:64], branch[0][:])
	buf[64] = 0x80
	buf[126] = 0x02 // 512 bits
	var out [32]byte
	var rest *[32]byte
	if len(branch) > 1 {
		rest = &branch[1]
	}
	merkleSHANI(&out, &ivWords, &buf[0], 2, rest, len(branch)-1)
	return out
}
