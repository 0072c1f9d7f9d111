package sha

import (
	"crypto/sha256"
	"encoding"
	"hash"
	"math/rand/v2"
	"strconv"
	"testing"

	simd "github.com/minio/sha256-simd"
)

var benchSink [32]byte

func BenchmarkDoubleSHA256(b *testing.B) {
	for _, n := range []int{32, 64, 80} {
		b.Run(strconv.Itoa(n)+"B", func(b *testing.B) {
			buf := make([]byte, n)
			b.ReportAllocs()
			b.SetBytes(int64(n))
			for b.Loop() {
				benchSink = DoubleSHA256(buf)
			}
		})
	}
}

// BenchmarkShareHash is the per-share cost: coinbase hash from the job's
// midstate, merkle fold over the branch, header hash. The coinbase is a
// typical btcpool segwit coinbase (about 170 bytes).
func BenchmarkShareHash(b *testing.B) {
	cb1, cb2 := coinbaseParts(rand.New(rand.NewPCG(21, 22)), 40)
	for _, steps := range []int{0, 12} {
		b.Run("branch="+strconv.Itoa(steps), func(b *testing.B) {
			branch := make([][32]byte, steps)
			for i := range branch {
				branch[i] = DoubleSHA256([]byte{byte(i)})
			}
			j := NewJob(cb1, cb2, branch, 0x20000000, [32]byte{1}, 0x17034219)
			var h Hasher
			en1, en2 := []byte{1, 2, 3, 4}, []byte{1, 2, 3, 4, 5, 6, 7, 8}
			b.ReportAllocs()
			nonce := uint32(0)
			for b.Loop() {
				nonce++
				benchSink = h.ShareHash(j, en1, en2, 0x5f5e1000, nonce, 0)
			}
		})
	}
}

// BenchmarkSHA256Block hashes 64 KiB (1024 blocks) with stdlib SHA-256 to
// measure the cost of one 64-byte compression on this machine.
func BenchmarkSHA256Block(b *testing.B) {
	buf := make([]byte, 64<<10)
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		benchSink = sha256.Sum256(buf)
	}
}

// BenchmarkEngine compares the ways to compute the share path's hashes on
// this machine; sha/doc.go records the outcome.
func BenchmarkEngine(b *testing.B) {
	hdr := make([]byte, 80)
	node := make([]byte, 64)
	b.Run("header80/stdlib", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			first := sha256.Sum256(hdr)
			benchSink = sha256.Sum256(first[:])
		}
	})
	b.Run("header80/simd", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			first := simd.Sum256(hdr)
			benchSink = simd.Sum256(first[:])
		}
	})
	for _, lib := range []struct {
		name string
		new  func() hash.Hash
		sum  func([]byte) [32]byte
	}{{"stdlib", sha256.New, sha256.Sum256}, {"simd", simd.New, simd.Sum256}} {
		b.Run("header80/"+lib.name+"-midstate", func(b *testing.B) {
			d := lib.new()
			d.Write(hdr[:64])
			state, err := d.(encoding.BinaryMarshaler).MarshalBinary()
			if err != nil {
				b.Fatal(err)
			}
			u := d.(encoding.BinaryUnmarshaler)
			var first [32]byte
			b.ReportAllocs()
			for b.Loop() {
				if err := u.UnmarshalBinary(state); err != nil {
					b.Fatal(err)
				}
				d.Write(hdr[64:])
				d.Sum(first[:0])
				benchSink = lib.sum(first[:])
			}
		})
	}
	b.Run("header80/shani-kernel", func(b *testing.B) {
		if !useSHANI {
			b.Skip("no SHA-NI")
		}
		b.ReportAllocs()
		for b.Loop() {
			benchSink = dshaSmall(hdr)
		}
	})
	b.Run("node64/stdlib", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			first := sha256.Sum256(node)
			benchSink = sha256.Sum256(first[:])
		}
	})
	b.Run("node64/simd", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			first := simd.Sum256(node)
			benchSink = simd.Sum256(first[:])
		}
	})
	b.Run("node64x12/shani-kernel", func(b *testing.B) {
		if !useSHANI {
			b.Skip("no SHA-NI")
		}
		branch := make([][32]byte, 13)
		b.ReportAllocs()
		for b.Loop() {
			benchSink = MerkleRoot(benchSink, branch)
		}
	})
	for _, on := range []bool{true, false} {
		name := "ShareHash-branch=12/shani-kernel"
		if !on {
			name = "ShareHash-branch=12/stdlib-midstate"
		}
		b.Run(name, func(b *testing.B) {
			if on && !useSHANI {
				b.Skip("no SHA-NI")
			}
			saved := useSHANI
			defer func() { useSHANI = saved }()
			useSHANI = on
			cb1, cb2 := coinbaseParts(rand.New(rand.NewPCG(21, 22)), 40)
			j := NewJob(cb1, cb2, make([][32]byte, 12), 0x20000000, [32]byte{1}, 0x17034219)
			var h Hasher
			en1, en2 := []byte{1, 2, 3, 4}, []byte{1, 2, 3, 4, 5, 6, 7, 8}
			b.ReportAllocs()
			for b.Loop() {
				benchSink = h.ShareHash(j, en1, en2, 0x5f5e1000, 1, 0)
			}
		})
	}
}
