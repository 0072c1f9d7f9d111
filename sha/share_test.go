package sha

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil/v2"
	"github.com/btcsuite/btcd/chaincfg/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"github.com/hashpool/hashpool/internal/alloctest"
)

func mustDisplay(tb testing.TB, s string) [32]byte {
	tb.Helper()
	h, err := ParseDisplayHex(s)
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// mainnetBlocks are public main-net blocks: header fields, txids (display
// order, coinbase first) and the block hash.
var mainnetBlocks = []struct {
	name              string
	version           uint32
	prev, root        string
	time, bits, nonce uint32
	txids             []string
	hash              string
	difficulty        float64
}{
	{
		name: "genesis", version: 1,
		prev: "0000000000000000000000000000000000000000000000000000000000000000",
		root: "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b",
		time: 1231006505, bits: 0x1d00ffff, nonce: 2083236893,
		txids: []string{"4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"},
		hash:  "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f",
	},
	{
		name: "170 (first bitcoin transfer)", version: 1,
		prev: "000000002a22cfee1f2c846adbd12b3e183d4f97683f85dad08a79780a84bd55",
		root: "7dac2c5666815c17a3b36427de37bb9d2e2c5ccec3f8633eb91a4205cb4c10ff",
		time: 1231731025, bits: 0x1d00ffff, nonce: 1889418792,
		txids: []string{
			"b1fea52486ce0c62bb442b530a3f0132b826c74e473d1f2c220bfa78111c5082",
			"f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16",
		},
		hash: "00000000d1145790a8694403d4063f323d499e655c83426834d4ce2f8dd4a2ee",
	},
	{
		name: "100000", version: 1,
		prev: "000000000002d01c1fccc21636b607dfd930d31d01c3a62104612a1719011250",
		root: "f3e94742aca4b5ef85488dc37c06c3282295ffec960994b2c0d5ac2a25a95766",
		time: 1293623863, bits: 0x1b04864c, nonce: 274148111,
		txids: []string{
			"8c14f0db3df150123e6f3dbbf30f8b955a8249b62ac1d1ff16284aefa3d06d87",
			"fff2525b8931402dd09222c50775608f75787bd2b87e56995a7bdd30f79702c4",
			"6359f0868171b1d194cbee1af2f16ea598ae8fad666d9b012c8ed2b79a236ec4",
			"e9a66845e05d5abc0ad04ec80f774a7e585c6e8db975962d069a522137b80c1d",
		},
		hash: "000000000003ba27aa200b1cecaad478d2b00432346c3f1f3986da1afd33e506",
	},
}

func TestMainnetBlocks(t *testing.T) {
	for _, blk := range mainnetBlocks {
		t.Run(blk.name, func(t *testing.T) {
			txids := make([][32]byte, len(blk.txids))
			for i, s := range blk.txids {
				txids[i] = mustDisplay(t, s)
			}
			root := MerkleRoot(txids[0], MerkleBranch(txids[1:]))
			if got := DisplayHex(root); got != blk.root {
				t.Fatalf("merkle root %s, want %s", got, blk.root)
			}
			prev := mustDisplay(t, blk.prev)
			hdr := AppendHeader(nil, blk.version, &prev, &root, blk.time, blk.bits, blk.nonce)
			hash := DoubleSHA256(hdr)
			if got := DisplayHex(hash); got != blk.hash {
				t.Fatalf("block hash %s, want %s", got, blk.hash)
			}
			netTarget := CompactToTarget(blk.bits)
			if !HashMeetsTarget(&hash, &netTarget) {
				t.Fatalf("block hash does not meet its own bits %08x", blk.bits)
			}
			hash[31]++ // now far above any main-net target
			if HashMeetsTarget(&hash, &netTarget) {
				t.Fatalf("a hash above the target meets it")
			}
		})
	}
}

// TestGenesisShare checks the whole share path against the genesis block,
// whose coinbase btcd carries: the coinbase is cut into coinbase1,
// extranonce1, extranonce2 and coinbase2 at every possible place.
func TestGenesisShare(t *testing.T) {
	g := chaincfg.MainNetParams.GenesisBlock
	var cb bytes.Buffer
	if err := g.Transactions[0].SerializeNoWitness(&cb); err != nil {
		t.Fatal(err)
	}
	raw := cb.Bytes()
	want := mustDisplay(t, "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f")
	var h Hasher
	for cut := 0; cut+12 <= len(raw); cut++ {
		j := NewJob(raw[:cut], raw[cut+12:], nil, 1, [32]byte{}, 0x1d00ffff)
		en1, en2 := raw[cut:cut+4], raw[cut+4:cut+12]
		if got := j.AppendCoinbase(nil, en1, en2); !bytes.Equal(got, raw) {
			t.Fatalf("cut %d: AppendCoinbase differs", cut)
		}
		if got := h.ShareHash(j, en1, en2, 1231006505, 2083236893, 0); got != want {
			t.Fatalf("cut %d: ShareHash %s, want %s", cut, DisplayHex(got), DisplayHex(want))
		}
		// Version rolling: the mask is XORed into the job's version.
		hdr := h.ShareHeader(j, en1, en2, 1231006505, 2083236893, 0x1fffe000)
		if v := uint32(hdr[0]) | uint32(hdr[1])<<8 | uint32(hdr[2])<<16 | uint32(hdr[3])<<24; v != 1^0x1fffe000 {
			t.Fatalf("rolled version %08x", v)
		}
	}
}

// randTx returns a random transaction; with witness set its inputs carry
// witness data, so its wtxid differs from its txid.
func randTx(rng *rand.Rand, witness bool) *wire.MsgTx {
	tx := wire.NewMsgTx(2)
	for i := 0; i < 1+rng.IntN(3); i++ {
		var prev chainhash.Hash
		for j := range prev {
			prev[j] = byte(rng.Uint32())
		}
		script := make([]byte, rng.IntN(120))
		for j := range script {
			script[j] = byte(rng.Uint32())
		}
		var wit [][]byte
		if witness {
			sig := make([]byte, 71)
			key := make([]byte, 33)
			for j := range sig {
				sig[j] = byte(rng.Uint32())
			}
			for j := range key {
				key[j] = byte(rng.Uint32())
			}
			wit = [][]byte{sig, key}
			script = nil
		}
		tx.AddTxIn(wire.NewTxIn(wire.NewOutPoint(&prev, rng.Uint32N(4)), script, wit))
	}
	for i := 0; i < 1+rng.IntN(3); i++ {
		pk := make([]byte, 22)
		pk[0], pk[1] = 0x00, 0x14
		for j := 2; j < len(pk); j++ {
			pk[j] = byte(rng.Uint32())
		}
		tx.AddTxOut(wire.NewTxOut(rng.Int64N(1e8), pk))
	}
	tx.LockTime = rng.Uint32()
	return tx
}

// coinbaseParts builds a segwit-style coinbase with a 12-byte extranonce
// placeholder in its scriptSig and returns the bytes before and after it.
func coinbaseParts(rng *rand.Rand, scriptLen int) (cb1, cb2 []byte) {
	const placeholder = "\xee\xee\xee\xee\xee\xee\xee\xee\xee\xee\xee\xee"
	script := []byte{0x03, byte(rng.Uint32()), byte(rng.Uint32()), 0x0c}
	for len(script) < scriptLen {
		script = append(script, byte(rng.Uint32()))
	}
	script = append(script, placeholder...)
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(wire.NewOutPoint(&chainhash.Hash{}, 0xffffffff), script, [][]byte{make([]byte, 32)}))
	tx.AddTxOut(wire.NewTxOut(312500000+rng.Int64N(1e8), append([]byte{0x00, 0x14}, make([]byte, 20)...)))
	commitment := append([]byte{0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed}, make([]byte, 32)...)
	for j := 6; j < len(commitment); j++ {
		commitment[j] = byte(rng.Uint32())
	}
	tx.AddTxOut(wire.NewTxOut(0, commitment))
	var buf bytes.Buffer
	if err := tx.SerializeNoWitness(&buf); err != nil {
		panic(err)
	}
	raw := buf.Bytes()
	i := bytes.LastIndex(raw, []byte(placeholder))
	return raw[:i], raw[i+len(placeholder):]
}

// TestShareHashMatchesBtcd builds segwit-era blocks with btcd's wire types
// (witness transactions, witness commitment in the coinbase) and checks the
// branch, merkle root, header and header hash against btcd's
// BuildMerkleTreeStore and BlockHeader.BlockHash.
func TestShareHashMatchesBtcd(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	var h Hasher
	for _, n := range []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 31, 33, 100, 257, 1000, 2500} {
		cb1, cb2 := coinbaseParts(rng, 4+rng.IntN(80))
		en1 := []byte{byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())}
		en2 := make([]byte, 8)
		for i := range en2 {
			en2[i] = byte(rng.Uint32())
		}
		var prev [32]byte
		for i := range prev {
			prev[i] = byte(rng.Uint32())
		}
		version, bits := uint32(0x20000000|rng.Uint32N(1<<13)), uint32(0x17034219)
		ntime, nonce, mask := rng.Uint32(), rng.Uint32(), rng.Uint32()&0x1fffe000

		coinbase, err := btcutil.NewTxFromBytes(append(append(append(append([]byte(nil), cb1...), en1...), en2...), cb2...))
		if err != nil {
			t.Fatal(err)
		}
		txs := []*btcutil.Tx{coinbase}
		txids := make([][32]byte, 0, n)
		for i := 0; i < n; i++ {
			tx := btcutil.NewTx(randTx(rng, i%3 != 0))
			txs = append(txs, tx)
			txids = append(txids, *tx.Hash())
		}
		store := blockchain.BuildMerkleTreeStore(txs, false)
		branch := MerkleBranch(txids)
		// The branch is the left-most node's sibling at every level below the root.
		var want [][32]byte
		for width, off := nextPow2(len(txs)), 0; width > 1; off, width = off+width, width/2 {
			want = append(want, *store[off+1])
		}
		if len(branch) != len(want) {
			t.Fatalf("n=%d: branch has %d steps, btcd tree %d", n, len(branch), len(want))
		}
		for i := range want {
			if branch[i] != want[i] {
				t.Fatalf("n=%d: step %d = %x, btcd %x", n, i, branch[i], want[i])
			}
		}

		j := NewJob(cb1, cb2, branch, version, prev, bits)
		if got := h.CoinbaseHash(j, en1, en2); got != *coinbase.Hash() {
			t.Fatalf("n=%d: coinbase hash %x, btcd %x", n, got, coinbase.Hash()[:])
		}
		root := h.MerkleRoot(j, en1, en2)
		if root != *store[len(store)-1] || root != MerkleRoot(*coinbase.Hash(), branch) {
			t.Fatalf("n=%d: merkle root %x, btcd %x", n, root, store[len(store)-1][:])
		}
		bh := wire.BlockHeader{
			Version:    int32(version ^ mask),
			PrevBlock:  prev,
			MerkleRoot: root,
			Timestamp:  time.Unix(int64(ntime), 0),
			Bits:       bits,
			Nonce:      nonce,
		}
		var hdrBuf bytes.Buffer
		if err := bh.Serialize(&hdrBuf); err != nil {
			t.Fatal(err)
		}
		hdr := h.ShareHeader(j, en1, en2, ntime, nonce, mask)
		if !bytes.Equal(hdr[:], hdrBuf.Bytes()) {
			t.Fatalf("n=%d: header\n got %x\nbtcd %x", n, hdr, hdrBuf.Bytes())
		}
		if !bytes.Equal(AppendHeader(nil, version^mask, &prev, &root, ntime, bits, nonce), hdr[:]) {
			t.Fatalf("n=%d: AppendHeader differs from ShareHeader", n)
		}
		if got := h.ShareHash(j, en1, en2, ntime, nonce, mask); got != [32]byte(bh.BlockHash()) {
			t.Fatalf("n=%d: share hash %x, btcd %x", n, got, bh.BlockHash())
		}
	}
}

func nextPow2(n int) int {
	p := 1
	for p < n {
		p <<= 1
	}
	return p
}

// naiveShareHash is the share hash computed the obvious way.
func naiveShareHash(cb1, cb2 []byte, branch [][32]byte, version uint32, prev [32]byte, bits uint32, en1, en2 []byte, ntime, nonce, mask uint32) [32]byte {
	cb := append(append(append(append([]byte(nil), cb1...), en1...), en2...), cb2...)
	root := MerkleRoot(DoubleSHA256(cb), branch)
	return DoubleSHA256(AppendHeader(nil, version^mask, &prev, &root, ntime, bits, nonce))
}

func FuzzShareHash(f *testing.F) {
	f.Add([]byte("coinbase1"), []byte("coinbase2"), []byte{1, 2, 3, 4}, []byte{5, 6, 7, 8, 9, 10, 11, 12}, uint8(3), uint32(0x20000000), uint32(1), uint32(2), uint32(0x1fffe000))
	f.Add(make([]byte, 64), make([]byte, 55), []byte{}, []byte{}, uint8(0), uint32(1), uint32(0), uint32(0), uint32(0))
	f.Add(make([]byte, 119), make([]byte, 200), make([]byte, 8), make([]byte, 4), uint8(12), uint32(4), uint32(9), uint32(9), uint32(1))
	f.Fuzz(func(t *testing.T, cb1, cb2, en1, en2 []byte, steps uint8, version, ntime, nonce, mask uint32) {
		branch := make([][32]byte, steps%20)
		for i := range branch {
			branch[i] = DoubleSHA256([]byte{byte(i), steps})
		}
		prev := DoubleSHA256(cb2)
		j := NewJob(cb1, cb2, branch, version, prev, 0x1d00ffff)
		var h Hasher
		saved := useSHANI
		defer func() { useSHANI = saved }()
		useSHANI = false
		want := naiveShareHash(cb1, cb2, branch, version, prev, 0x1d00ffff, en1, en2, ntime, nonce, mask)
		for _, on := range []bool{false, saved} {
			useSHANI = on
			if got := h.ShareHash(j, en1, en2, ntime, nonce, mask); got != want {
				t.Fatalf("SHA-NI %v: ShareHash %x, naive %x", on, got, want)
			}
		}
	})
}

// TestShareHashRandom compares ShareHash with the naive computation over
// coinbase halves of every length around the 64-byte block boundaries.
func TestShareHashRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	var h Hasher
	buf := make([]byte, 400)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	for l1 := 0; l1 <= 260; l1++ {
		l2 := rng.IntN(140)
		en1 := buf[300 : 300+rng.IntN(9)]
		en2 := buf[320 : 320+rng.IntN(17)]
		branch := make([][32]byte, rng.IntN(14))
		for i := range branch {
			branch[i] = DoubleSHA256(buf[i : i+7])
		}
		prev := DoubleSHA256(buf[l1 : l1+3])
		version, ntime, nonce, mask := rng.Uint32(), rng.Uint32(), rng.Uint32(), rng.Uint32()
		j := NewJob(buf[:l1], buf[l1:l1+l2], branch, version, prev, 0x17034219)
		want := naiveShareHash(buf[:l1], buf[l1:l1+l2], branch, version, prev, 0x17034219, en1, en2, ntime, nonce, mask)
		if got := h.ShareHash(j, en1, en2, ntime, nonce, mask); got != want {
			t.Fatalf("len(cb1)=%d len(cb2)=%d: %x, naive %x", l1, l2, got, want)
		}
	}
}

func TestShareHashAllocs(t *testing.T) {
	cb1, cb2 := coinbaseParts(rand.New(rand.NewPCG(19, 20)), 40)
	branch := make([][32]byte, 12)
	j := NewJob(cb1, cb2, branch, 0x20000000, [32]byte{1}, 0x17034219)
	var h Hasher
	en1, en2 := []byte{1, 2, 3, 4}, []byte{1, 2, 3, 4, 5, 6, 7, 8}
	var sink [32]byte
	alloctest.Zero(t, "ShareHash + DiffToTarget + HashMeetsTarget", 1000, func() {
		sink = h.ShareHash(j, en1, en2, 1, 2, 0x2000)
		tgt := DiffToTarget(0.001)
		if HashMeetsTarget(&sink, &tgt) {
			sink[0]++
		}
	})
}
