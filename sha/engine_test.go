package sha

import (
	"crypto/sha256"
	"math/rand/v2"
	"testing"
)

// engines runs f once with the SHA-NI kernel (when the CPU has it) and once
// with the portable crypto/sha256 path.
func engines(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	saved := useSHANI
	defer func() { useSHANI = saved }()
	for _, e := range []struct {
		name string
		on   bool
	}{{"shani", true}, {"portable", false}} {
		if e.on && !saved {
			t.Logf("no SHA-NI on this CPU/build; kernel not tested")
			continue
		}
		useSHANI = e.on
		t.Run(e.name, f)
	}
}

func TestEngines(t *testing.T) {
	t.Logf("SHA-NI kernel selected on this machine: %v", useSHANI)
	for name, f := range map[string]func(*testing.T){
		"DoubleSHA256":     TestDoubleSHA256MatchesChainhash,
		"MainnetBlocks":    TestMainnetBlocks,
		"GenesisShare":     TestGenesisShare,
		"ShareHashBtcd":    TestShareHashMatchesBtcd,
		"ShareHashRandom":  TestShareHashRandom,
		"MerkleRootRandom": testMerkleRootRandom,
		"ShareHashAllocs":  TestShareHashAllocs,
	} {
		t.Run(name, func(t *testing.T) { engines(t, f) })
	}
}

// testMerkleRootRandom checks MerkleRoot against a fold of crypto/sha256.
func testMerkleRootRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	for n := 0; n < 40; n++ {
		branch := make([][32]byte, n)
		for i := range branch {
			for j := range branch[i] {
				branch[i][j] = byte(rng.Uint32())
			}
		}
		var cb [32]byte
		for j := range cb {
			cb[j] = byte(rng.Uint32())
		}
		want := cb
		for i := range branch {
			first := sha256.Sum256(append(want[:], branch[i][:]...))
			want = sha256.Sum256(first[:])
		}
		if got := MerkleRoot(cb, branch); got != want {
			t.Fatalf("n=%d: %x, want %x", n, got, want)
		}
	}
}
