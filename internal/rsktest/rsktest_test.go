package rsktest

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/hashpool/hashpool/auxpow"
	"github.com/hashpool/hashpool/node"
	"github.com/hashpool/hashpool/sha"
)

// coinbase builds a one-input coinbase whose last output is the RSK output for hash.
func coinbase(hash [32]byte, extra []byte) []byte {
	tx := binary.LittleEndian.AppendUint32(nil, 2)
	tx = append(tx, 1)
	tx = append(tx, make([]byte, 32)...)
	tx = binary.LittleEndian.AppendUint32(tx, 0xffffffff)
	tx = append(tx, 4, 1, 2, 3, 4)
	tx = binary.LittleEndian.AppendUint32(tx, 0xffffffff)
	tx = append(tx, 2)
	tx = binary.LittleEndian.AppendUint64(tx, 5000)
	tx = append(tx, byte(len(extra)))
	tx = append(tx, extra...)
	tx = auxpow.AppendRSKOutput(tx, &hash)
	return binary.LittleEndian.AppendUint32(tx, 0)
}

// submission builds the five arguments for a parent block of the coinbase and txs other
// transactions (their txids arbitrary).
func submission(cb []byte, txs int) [5]string {
	ids := [][32]byte{sha.DoubleSHA256(cb)}
	for i := 0; i < txs; i++ {
		ids = append(ids, sha.DoubleSHA256([]byte{byte(i)}))
	}
	branch := sha.MerkleBranch(ids[1:])
	root := ids[0]
	for _, b := range branch {
		root = sha.DoubleSHA256(append(root[:], b[:]...))
	}
	var hdr [80]byte
	binary.LittleEndian.PutUint32(hdr[0:], 0x20000000)
	copy(hdr[36:], root[:])
	binary.LittleEndian.PutUint32(hdr[72:], 0x207fffff)
	return auxpow.RSKSubmitParams(&hdr, cb, branch, len(ids))
}

func TestServerVerifies(t *testing.T) {
	s := Start(t, Options{})
	c, err := node.NewClient(node.Options{URL: s.URL, User: s.User, Password: s.Password})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w, err := c.RSKGetWork(ctx)
	if err != nil || !w.Notify || w.BlockHashForMergedMining != s.Work() {
		t.Fatalf("getwork %+v, %v", w, err)
	}
	if w2, _ := c.RSKGetWork(ctx); w2.Notify {
		t.Fatal("notify stays set after the first getwork")
	}
	h, _ := auxpow.ParseRSKHash(w.BlockHashForMergedMining)
	for _, txs := range []int{0, 1, 2, 4, 6} {
		cur, _ := auxpow.ParseRSKHash(s.Work())
		p := submission(coinbase(cur, nil), txs)
		res, raw, err := c.RSKSubmitBitcoinBlockPartialMerkle(ctx, p)
		if err != nil || res.BlockImportedResult != "IMPORTED_BEST" || !strings.Contains(raw, "IMPORTED_BEST") {
			t.Fatalf("%d txs: %+v %q %v (refused: %v)", txs, res, raw, err, s.Refused())
		}
	}
	if n := len(s.Submissions()); n != 5 {
		t.Fatalf("%d submissions", n)
	}

	cur, _ := auxpow.ParseRSKHash(s.Work())
	good := submission(coinbase(cur, nil), 3)
	for name, tc := range map[string]struct {
		mut  func(p *[5]string)
		want string
	}{
		"old work":      {func(p *[5]string) { *p = submission(coinbase(h, nil), 3) }, "already imported"},
		"unknown work":  {func(p *[5]string) { *p = submission(coinbase([32]byte{1}, nil), 3) }, "unknown block hash"},
		"wrong root":    {func(p *[5]string) { p[3] = p[3][:len(p[3])-2] + "00" }, "fold to"},
		"short branch":  {func(p *[5]string) { p[3] = p[3][:strings.LastIndexByte(p[3], ' ')] }, "merkle hashes"},
		"wrong count":   {func(p *[5]string) { p[4] = "9" }, "merkle hashes"},
		"wrong hash":    {func(p *[5]string) { p[0] = strings.Repeat("0", 64) }, "block hash"},
		"tag not last":  {func(p *[5]string) { *p = submission(coinbaseTagFirst(cur), 3) }, "last output"},
		"bad coinbase":  {func(p *[5]string) { p[2] += "00" }, "deserialize"},
		"swapped first": {func(p *[5]string) { f := strings.Fields(p[3]); f[0], f[1] = f[1], f[0]; p[3] = strings.Join(f, " ") }, "txid"},
	} {
		t.Run(name, func(t *testing.T) {
			p := good
			tc.mut(&p)
			_, _, err := c.RSKSubmitBitcoinBlockPartialMerkle(ctx, p)
			var re *node.RPCError
			if !errors.As(err, &re) || !strings.Contains(re.Message, tc.want) {
				t.Fatalf("err %v, want an RPC error with %q", err, tc.want)
			}
		})
	}
	// Above the target.
	if err := s.SetTarget("00"); err != nil {
		t.Fatal(err)
	}
	cur, _ = auxpow.ParseRSKHash(s.NewWork())
	if _, _, err := c.RSKSubmitBitcoinBlockPartialMerkle(ctx, submission(coinbase(cur, nil), 1)); err == nil || !strings.Contains(err.Error(), "above the target") {
		t.Fatalf("above target: %v", err)
	}
	// Down: no answer at all.
	s.SetDown(true)
	if _, err := c.RSKGetWork(ctx); err == nil {
		t.Fatal("a down server answered")
	} else if errors.As(err, new(*node.RPCError)) {
		t.Fatalf("down: %v is a verdict", err)
	}
	s.SetDown(false)
	if _, err := c.RSKGetWork(ctx); err != nil {
		t.Fatal(err)
	}
}

// coinbaseTagFirst puts the RSK output before the payout.
func coinbaseTagFirst(hash [32]byte) []byte {
	tx := binary.LittleEndian.AppendUint32(nil, 2)
	tx = append(tx, 1)
	tx = append(tx, make([]byte, 32)...)
	tx = binary.LittleEndian.AppendUint32(tx, 0xffffffff)
	tx = append(tx, 4, 1, 2, 3, 4)
	tx = binary.LittleEndian.AppendUint32(tx, 0xffffffff)
	tx = append(tx, 2)
	tx = auxpow.AppendRSKOutput(tx, &hash)
	tx = binary.LittleEndian.AppendUint64(tx, 5000)
	tx = append(tx, 1, 0x51)
	return binary.LittleEndian.AppendUint32(tx, 0)
}
