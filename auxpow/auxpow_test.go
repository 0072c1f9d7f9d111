package auxpow

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/hashpool/hashpool/sha"

	"github.com/hashpool/hashpool/internal/alloctest"
)

func TestExpectedIndexReference(t *testing.T) {
	// Reference: the same recurrence in 64-bit arithmetic reduced mod 2^32 at the end, as
	// old Namecoin builds computed it on 64-bit systems (Core's comment: both agree).
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 10000; i++ {
		nonce, id, h := r.Uint32(), int32(r.Uint32()), uint(r.IntN(31))
		x := uint64(nonce)*1103515245 + 12345
		x += uint64(uint32(id))
		x = x*1103515245 + 12345
		want := uint32(x % (1 << 32) % (1 << h))
		if got := ExpectedIndex(nonce, id, h); got != want {
			t.Fatalf("ExpectedIndex(%d, %d, %d) = %d, want %d", nonce, id, h, got, want)
		}
	}
	if ExpectedIndex(123, 1, 0) != 0 {
		t.Fatal("height 0 must give slot 0")
	}
}

func TestNonceNeverSeparatesChains(t *testing.T) {
	// Two chains collide at height h for one nonce iff for every nonce.
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 2000; i++ {
		a, b, h := int32(r.IntN(64)), int32(r.IntN(64)), uint(1+r.IntN(5))
		first := ExpectedIndex(0, a, h) == ExpectedIndex(0, b, h)
		for nonce := uint32(1); nonce < 50; nonce++ {
			if (ExpectedIndex(nonce, a, h) == ExpectedIndex(nonce, b, h)) != first {
				t.Fatalf("ids %d,%d height %d: nonce %d changes whether they collide", a, b, h, nonce)
			}
		}
		if first != ((a-b)%(1<<h) == 0) {
			t.Fatalf("ids %d,%d height %d: collide=%v, want id1 ≡ id2 mod 2^h", a, b, h, first)
		}
	}
}

func TestBuildTreeSizes(t *testing.T) {
	cases := []struct {
		ids    []int32
		opts   TreeOptions
		height uint
	}{
		{[]int32{1}, TreeOptions{}, 0},
		{[]int32{1}, TreeOptions{MinHeight: 2}, 2},
		{[]int32{1, 2}, TreeOptions{}, 1},
		{[]int32{1, 3}, TreeOptions{}, 2},                       // 1 ≡ 3 mod 2
		{[]int32{1, 2, 3}, TreeOptions{}, 2},                    // three chains need 4 slots
		{[]int32{1, 9, 17}, TreeOptions{}, 5},                   // equal mod 8 and 16, distinct mod 32
		{[]int32{1, 0x62, 0x1000, 7}, TreeOptions{Nonce: 5}, 2}, // 1,2,0,3 mod 4
	}
	for _, tc := range cases {
		chains := make([]Chain, len(tc.ids))
		for i, id := range tc.ids {
			chains[i] = Chain{ID: id, Hash: [32]byte{byte(i + 1)}}
		}
		tr, err := BuildTree(chains, tc.opts)
		if err != nil {
			t.Fatalf("%v: %v", tc.ids, err)
		}
		if tr.Height() != tc.height || tr.Size() != 1<<tc.height || tr.Nonce() != tc.opts.Nonce {
			t.Fatalf("%v: height %d size %d nonce %d, want height %d", tc.ids, tr.Height(), tr.Size(), tr.Nonce(), tc.height)
		}
		seen := map[uint32]bool{}
		for _, c := range chains {
			slot, ok := tr.Slot(c.ID)
			if !ok || slot != ExpectedIndex(tc.opts.Nonce, c.ID, tr.Height()) || seen[slot] {
				t.Fatalf("%v: chain %d at slot %d (ok %v)", tc.ids, c.ID, slot, ok)
			}
			seen[slot] = true
			br := tr.AppendBranch(nil, slot)
			if len(br) != int(tr.Height()) {
				t.Fatalf("branch length %d, want %d", len(br), tr.Height())
			}
			if BranchRoot(c.Hash, br, slot) != tr.Root() {
				t.Fatalf("%v: chain %d's branch does not lead to the root", tc.ids, c.ID)
			}
		}
	}
}

func TestBuildTreeMatchesMerkleRoot(t *testing.T) {
	// A full tree of 4 leaves: root = H(H(l0,l1), H(l2,l3)).
	chains := []Chain{{ID: 1, Hash: [32]byte{1}}, {ID: 2, Hash: [32]byte{2}}, {ID: 3, Hash: [32]byte{3}}, {ID: 4, Hash: [32]byte{4}}}
	tr, err := BuildTree(chains, TreeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var leaves [4][32]byte
	for _, c := range chains {
		s, _ := tr.Slot(c.ID)
		leaves[s] = c.Hash
	}
	h := func(a, b [32]byte) [32]byte { return sha.DoubleSHA256(append(a[:], b[:]...)) }
	if want := h(h(leaves[0], leaves[1]), h(leaves[2], leaves[3])); tr.Root() != want {
		t.Fatal("root differs from the merkle root of the leaves")
	}
}

func TestBuildTreeErrors(t *testing.T) {
	if _, err := BuildTree(nil, TreeOptions{}); err == nil {
		t.Fatal("no chains: want an error")
	}
	if _, err := BuildTree([]Chain{{ID: 5}, {ID: 5}}, TreeOptions{}); err == nil || !strings.Contains(err.Error(), "chain id 5") {
		t.Fatalf("duplicate ids: %v", err)
	}
	if _, err := BuildTree([]Chain{{ID: 1}, {ID: 1 + 1<<10}}, TreeOptions{}); !errors.Is(err, ErrSlotCollision) {
		t.Fatalf("ids equal mod 2^10: %v, want ErrSlotCollision", err)
	}
	if _, err := BuildTree([]Chain{{ID: 1}}, TreeOptions{MaxHeight: 31}); err == nil {
		t.Fatal("max height 31: want an error")
	}
	many := make([]Chain, MaxChains+1)
	for i := range many {
		many[i].ID = int32(i)
	}
	if _, err := BuildTree(many, TreeOptions{}); err == nil {
		t.Fatal("too many chains: want an error")
	}
}

func TestCommitmentGolden(t *testing.T) {
	// btcpool's 44 bytes for one chain (spec §3.6 item 4): the aux hash as the node printed it.
	const display = "6fe0a8c0f8d4d1ae5b2aa6b1cb7d0f1f1d2c3b4a5968778695a4b3c2d1e0f001"
	h, err := ParseDisplayHash(display)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := BuildTree([]Chain{{ID: 1, Hash: h}}, TreeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := tr.AppendCommitment(nil)
	want := "fabe6d6d" + display + "01000000" + "00000000"
	if hex.EncodeToString(got) != want || len(got) != CommitmentSize {
		t.Fatalf("commitment\n got %x\nwant %s", got, want)
	}
	got = AppendCommitment(nil, &h, 8, 0x01020304)
	if hex.EncodeToString(got[36:]) != "0800000004030201" {
		t.Fatalf("size/nonce bytes %x", got[36:])
	}
}

func sampleAuxPow(t testing.TB) AuxPow {
	coinbase, _ := hex.DecodeString("02000000010000000000000000000000000000000000000000000000000000000000000000ffffffff0403393000ffffffff0100f2052a01000000160014000000000000000000000000000000000000000000000000")
	a := AuxPow{
		CoinbaseTx:     coinbase,
		CoinbaseBranch: [][32]byte{{1}, {2}},
		ChainBranch:    [][32]byte{{3}, {4}, {5}},
		ChainIndex:     6,
	}
	for i := range a.ParentHeader {
		a.ParentHeader[i] = byte(i)
	}
	return a
}

func TestAuxPowLayout(t *testing.T) {
	a := sampleAuxPow(t)
	b := AppendAuxPow(nil, &a)
	if len(b) != a.Size() {
		t.Fatalf("len %d, Size %d", len(b), a.Size())
	}
	off := len(a.CoinbaseTx)
	if !bytes.Equal(b[:off], a.CoinbaseTx) {
		t.Fatal("coinbase first")
	}
	ph := a.ParentHash()
	for i := 0; i < 32; i++ { // btcpool's quirk: display order
		if b[off+i] != ph[31-i] {
			t.Fatal("parent hash is not in display order")
		}
	}
	off += 32
	if b[off] != 2 || b[off+1] != 1 || b[off+33] != 2 {
		t.Fatal("coinbase branch")
	}
	off += 1 + 64
	if binary.LittleEndian.Uint32(b[off:]) != 0 {
		t.Fatal("coinbase index must be 0")
	}
	off += 4
	if b[off] != 3 || b[off+1] != 3 {
		t.Fatal("chain branch")
	}
	off += 1 + 96
	if binary.LittleEndian.Uint32(b[off:]) != 6 {
		t.Fatal("chain index")
	}
	off += 4
	if !bytes.Equal(b[off:], a.ParentHeader[:]) {
		t.Fatal("header last")
	}
	var back AuxPow
	if err := DecodeAuxPow(b, &back); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(AppendAuxPow(nil, &back), b) {
		t.Fatal("round trip differs")
	}
}

func TestDecodeAuxPowRejects(t *testing.T) {
	a := sampleAuxPow(t)
	good := AppendAuxPow(nil, &a)
	cb := len(a.CoinbaseTx)
	bad := map[string][]byte{
		"empty":          nil,
		"truncated":      good[:len(good)-1],
		"trailing":       append(append([]byte(nil), good...), 0),
		"no inputs":      append([]byte{2, 0, 0, 0, 0}, good[5:]...),
		"huge branch":    append(append(append([]byte(nil), good[:cb+32]...), 0xfe, 0xff, 0xff, 0xff, 0x7f), good[cb+33:]...),
		"nonzero index":  func() []byte { b := append([]byte(nil), good...); b[cb+32+1+64] = 1; return b }(),
		"noncanonical n": append(append(append([]byte(nil), good[:cb+32]...), 0xfd, 2, 0), good[cb+33:]...),
	}
	for name, b := range bad {
		var out AuxPow
		if err := DecodeAuxPow(b, &out); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

func TestTargetsCheck(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for round := 0; round < 200; round++ {
		var ts Targets
		n := r.IntN(MaxChains + 1)
		bigs := make([]*big.Int, n)
		for i := 0; i < n; i++ {
			tg := sha.Target{r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64() >> r.UintN(64)}
			if _, err := ts.Add(tg); err != nil {
				t.Fatal(err)
			}
			b := tg.Bytes()
			bigs[i] = new(big.Int).SetBytes(b[:])
		}
		for k := 0; k < 50; k++ {
			var h [32]byte
			for i := range h {
				h[i] = byte(r.Uint32())
			}
			h[31] >>= r.UintN(8)
			rev := make([]byte, 32)
			for i := range rev {
				rev[i] = h[31-i]
			}
			hv := new(big.Int).SetBytes(rev)
			var want uint32
			for i, b := range bigs {
				if hv.Cmp(b) <= 0 {
					want |= 1 << i
				}
			}
			if got := ts.Check(&h); got != want {
				t.Fatalf("Check = %b, want %b", got, want)
			}
		}
	}
	var full Targets
	for i := 0; i < MaxChains; i++ {
		if _, err := full.Add(sha.Target{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := full.Add(sha.Target{}); !errors.Is(err, ErrTooManyTargets) {
		t.Fatalf("Add past MaxChains: %v", err)
	}
}

func TestTargetsCheckAllocs(t *testing.T) {
	var ts Targets
	for _, bits := range []string{"207fffff", "1d00ffff", "1b0404cb"} {
		tg, _ := BitsTarget(bits)
		ts.Add(tg)
	}
	h := [32]byte{31: 0x00}
	alloctest.Zero(t, "Targets.Check", 1000, func() { _ = ts.Check(&h) })
}

func TestTargetParsers(t *testing.T) {
	tg, err := BitsTarget("207fffff")
	if err != nil || tg != sha.CompactToTarget(0x207fffff) {
		t.Fatalf("BitsTarget: %v %v", tg, err)
	}
	for _, s := range []string{"", "207fff", "zzzzzzzz", "00000000", "04923456"} {
		if _, err := BitsTarget(s); err == nil {
			t.Errorf("BitsTarget(%q): want an error", s)
		}
	}
	// createauxblock's _target for bits 207fffff, least significant byte first.
	le := "0000000000000000000000000000000000000000000000000000000000ffff7f"
	if got, err := ParseTargetLE(le); err != nil || got != tg {
		t.Fatalf("ParseTargetLE = %v, %v; want %v", got, err, tg)
	}
	be, err := ParseTargetBE("0x7fffff0000000000000000000000000000000000000000000000000000000000")
	if err != nil || be != tg {
		t.Fatalf("ParseTargetBE = %v, %v", be, err)
	}
	if small, err := ParseTargetBE("0x10"); err != nil || small != (sha.Target{16}) {
		t.Fatalf("ParseTargetBE short = %v %v", small, err)
	}
	// An odd number of digits, and one that spans two limbs.
	if odd, err := ParseTargetBE("0XaBc"); err != nil || odd != (sha.Target{0xabc}) {
		t.Fatalf("ParseTargetBE odd = %v %v", odd, err)
	}
	if two, err := ParseTargetBE("1" + strings.Repeat("0", 16)); err != nil || two != (sha.Target{0, 1}) {
		t.Fatalf("ParseTargetBE two limbs = %v %v", two, err)
	}
	for _, s := range []string{"", "0x", "0xg0", "0x" + strings.Repeat("f", 65)} {
		if _, err := ParseTargetBE(s); err == nil {
			t.Errorf("ParseTargetBE(%q): want an error", s)
		}
	}
}

func TestRSKOutputGolden(t *testing.T) {
	// RSK's implementation guide: RskBlockInfo e5aad3...a174 gives this script.
	h, err := ParseRSKHash("0xe5aad3b6b9dc71a3eb98a069bd29ca32211aee8b03fd462f4ffbbe97cc75a174")
	if err != nil {
		t.Fatal(err)
	}
	const want = "6a2952534b424c4f434b3ae5aad3b6b9dc71a3eb98a069bd29ca32211aee8b03fd462f4ffbbe97cc75a174"
	if got := hex.EncodeToString(AppendRSKScript(nil, &h)); got != want {
		t.Fatalf("script %s, want %s", got, want)
	}
	out := AppendRSKOutput(nil, &h)
	if hex.EncodeToString(out) != "0000000000000000"+"2b"+want || len(out) != 9+RSKScriptSize {
		t.Fatalf("output %x", out)
	}
	if _, err := ParseRSKHash("0x1234"); err == nil {
		t.Fatal("short RSK hash: want an error")
	}
}

func TestRSKSubmitParams(t *testing.T) {
	a := sampleAuxPow(t)
	txids := [][32]byte{{9}, {8}, {7}}
	branch := sha.MerkleBranch(txids)
	p := RSKSubmitParams(&a.ParentHeader, a.CoinbaseTx, branch, 1+len(txids))
	if p[0] != sha.DisplayHex(sha.DoubleSHA256(a.ParentHeader[:])) {
		t.Fatal("param 1: parent hash in display hex")
	}
	if p[1] != hex.EncodeToString(a.ParentHeader[:]) || p[2] != hex.EncodeToString(a.CoinbaseTx) {
		t.Fatal("params 2 and 3: header and coinbase hex")
	}
	hs := strings.Split(p[3], " ")
	if len(hs) != 1+len(branch) || hs[0] != hexHash(sha.DoubleSHA256(a.CoinbaseTx)) {
		t.Fatalf("param 4: %q", p[3])
	}
	for i, s := range hs[1:] {
		if s != hexHash(branch[i]) {
			t.Fatalf("param 4 hash %d", i+1)
		}
	}
	if p[4] != "4" {
		t.Fatalf("param 5 = %q, want 4", p[4])
	}
	if p := RSKSubmitParams(&a.ParentHeader, a.CoinbaseTx, nil, 300); p[4] != "12c" || strings.Contains(p[3], " ") {
		t.Fatalf("lone coinbase: %q %q", p[3], p[4])
	}
}

// hexHash is a hash in memory (internal-order) hex.
func hexHash(h [32]byte) string { return hex.EncodeToString(h[:]) }

func TestMerge(t *testing.T) {
	a, err := NewWork("nmc", 1, strings.Repeat("11", 32), "207fffff", 5)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewWork("b", 2, strings.Repeat("22", 32), "1d00ffff", 6)
	if a.Bits != 0x207fffff || a.Target != sha.CompactToTarget(0x207fffff) || a.Hash[0] != 0x11 {
		t.Fatalf("NewWork = %+v", a)
	}
	m, err := Merge([]Work{a, b}, TreeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Targets.Len() != 2 || m.Targets.Target(1) != b.Target || m.Tree.Size() != 2 {
		t.Fatalf("merged %+v", m)
	}
	for i, w := range m.Works {
		if BranchRoot(w.Hash, m.Branch(i), m.Slot(i)) != m.Tree.Root() {
			t.Fatalf("chain %d's branch misses the root", i)
		}
	}
	if got := m.AppendCommitment(nil); !bytes.Equal(got, m.Tree.AppendCommitment(nil)) || len(got) != CommitmentSize {
		t.Fatal("commitment")
	}
	if _, err := Merge(nil, TreeOptions{}); err == nil {
		t.Fatal("no work: want an error")
	}
	if _, err := Merge([]Work{a, a}, TreeOptions{}); err == nil {
		t.Fatal("same chain twice: want an error")
	}
	if _, err := Merge([]Work{{Name: "z", ChainID: 3}}, TreeOptions{}); err == nil {
		t.Fatal("zero target: want an error")
	}
	for _, bad := range [][2]string{{"xx", "207fffff"}, {strings.Repeat("11", 32), "00000000"}} {
		if _, err := NewWork("x", 1, bad[0], bad[1], 0); err == nil {
			t.Errorf("NewWork(%q, %q): want an error", bad[0], bad[1])
		}
	}
}
