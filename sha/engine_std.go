package sha

import (
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"hash"
)

// midstate is a SHA-256 state after a whole number of 64-byte blocks: in the
// stdlib hasher's MarshalBinary form for the portable path, and as the eight
// state words for the SHA-NI kernel.
type midstate struct {
	marshaled []byte
	words     [8]uint32
}

func newMidstate(data []byte) midstate {
	d := sha256.New()
	d.Write(data)
	b, err := d.(encoding.BinaryMarshaler).MarshalBinary()
	// The stdlib format is "sha\x03", the eight state words big-endian, the
	// partial block and the length; a whole number of blocks leaves no
	// partial block.
	if err != nil || len(b) < 36 || string(b[:4]) != "sha\x03" {
		panic("sha: unexpected crypto/sha256 state encoding")
	}
	var m midstate
	m.marshaled = b
	for i := range m.words {
		m.words[i] = binary.BigEndian.Uint32(b[4+4*i:])
	}
	return m
}

// stdScratch is the per-Hasher state of the portable (crypto/sha256) path.
type stdScratch struct {
	d    hash.Hash
	u    encoding.BinaryUnmarshaler
	node [64]byte
	sum  [32]byte
}

func (s *stdScratch) coinbaseHash(j *Job, en1, en2 []byte) [32]byte {
	if s.d == nil {
		s.d = sha256.New()
		s.u = s.d.(encoding.BinaryUnmarshaler)
	}
	if err := s.u.UnmarshalBinary(j.mid.marshaled); err != nil {
		panic("sha: sha256 state does not unmarshal: " + err.Error())
	}
	s.d.Write(j.tail)
	s.d.Write(en1)
	s.d.Write(en2)
	s.d.Write(j.coinbase2)
	s.d.Sum(s.sum[:0])
	return sha256.Sum256(s.sum[:])
}

// merkleNode sets *root = dSHA(*root || *step).
func (s *stdScratch) merkleNode(root, step *[32]byte) {
	copy(s.node[:32], root[:])
	copy(s.node[32:], step[:])
	first := sha256.Sum256(s.node[:])
	*root = sha256.Sum256(first[:])
}

func (s *stdScratch) header(hdr *[80]byte) [32]byte {
	first := sha256.Sum256(hdr[:])
	return sha256.Sum256(first[:])
}
