package jobmaker

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil/v2"
	"github.com/btcsuite/btcd/txscript/v2"
	"github.com/btcsuite/btcd/wire/v2"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex in test: %v", err)
	}
	return b
}

var scriptIntCases = []int64{
	0, 1, 2, 15, 16, 17, -1, -2, -16, -17, 0x7f, 0x80, 0xff, 0x100, -0x7f, -0x80, -0xff,
	0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffff, 0x800000, 500_000, 840_000, 1<<31 - 1, 1 << 31,
	1_700_000_000, math.MaxUint32, 1 << 32, 1<<39 + 5, math.MaxInt64, math.MinInt64 + 1, -1_700_000_000,
}

// TestAppendScriptIntMatchesScriptBuilder checks `CScript << int64` (the
// BIP34 height push) against btcd's ScriptBuilder.AddInt64, which encodes
// the same way.
func TestAppendScriptIntMatchesScriptBuilder(t *testing.T) {
	for _, n := range scriptIntCases {
		want, err := txscript.NewScriptBuilder().AddInt64(n).Script()
		if err != nil {
			t.Fatal(err)
		}
		if got := appendScriptInt(nil, n); !bytes.Equal(got, want) {
			t.Errorf("appendScriptInt(%d) = %x, want %x", n, got, want)
		}
	}
}

// TestAppendScriptNum checks `CScript << CScriptNum(n)`: the same bytes as
// AddInt64 except that it never uses the OP_1NEGATE/OP_1..OP_16 shortcuts.
func TestAppendScriptNum(t *testing.T) {
	for _, n := range scriptIntCases {
		got := appendScriptNum(nil, n)
		var want []byte
		switch {
		case n == 0:
			want = []byte{0x00}
		case n == -1:
			want = []byte{0x01, 0x81}
		case n >= 1 && n <= 16:
			want = []byte{0x01, byte(n)}
		default:
			want, _ = txscript.NewScriptBuilder().AddInt64(n).Script()
		}
		if !bytes.Equal(got, want) {
			t.Errorf("appendScriptNum(%d) = %x, want %x", n, got, want)
		}
	}
	// The pushes the spec names: a 3-byte height, a 4-byte time.
	if got := hex.EncodeToString(appendScriptInt(nil, 500_000)); got != "0320a107" {
		t.Errorf("height 500000 push = %s", got)
	}
	if got := hex.EncodeToString(appendScriptNum(nil, 1_700_000_000)); got != "0400f15365" {
		t.Errorf("time 1700000000 push = %s", got)
	}
}

// genesisP2PKH pays to 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa.
const genesisP2PKH = "76a914 62e907b15cbf27d5425399ebf6f0fb50ebb88f18 88ac"

// emptyCommitment is the witness commitment script of a block whose only
// witness is the coinbase's.
const emptyCommitment = "6a24aa21a9ed e2f61c3f71d1defd3fa999dfa36953755c690689799962b48bebd836974e8cf9"

func TestBuildCoinbaseGolden(t *testing.T) {
	in := coinbaseInput{
		height:     500_000,
		now:        1_700_000_000,
		info:       []byte("/hashpool/"),
		payout:     mustHex(t, genesisP2PKH),
		value:      625_000_000,
		commitment: mustHex(t, emptyCommitment),
	}
	wantCB1 := "02000000" + // version 2
		"01" + // one input
		strings.Repeat("00", 32) + "ffffffff" + // null prevout
		"1f" + // scriptSig length 31
		"0320a107" + // height 500000
		"0400f15365" + // time 1700000000
		"2f68617368706f6f6c2f" // "/hashpool/"
	wantCB2 := "ffffffff" + // sequence
		"02" + // two outputs
		"40be402500000000" + "19" + strings.ReplaceAll(genesisP2PKH, " ", "") + // 6.25 BTC to the pool
		"0000000000000000" + "26" + strings.ReplaceAll(emptyCommitment, " ", "") + // witness commitment
		"00000000" // lock time
	cb1, cb2, err := buildCoinbase(in)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(cb1); got != wantCB1 {
		t.Errorf("coinbase1\n got %s\nwant %s", got, wantCB1)
	}
	if got := hex.EncodeToString(cb2); got != wantCB2 {
		t.Errorf("coinbase2\n got %s\nwant %s", got, wantCB2)
	}

	// Without a commitment there is one output.
	in.commitment = nil
	_, cb2, err = buildCoinbase(in)
	if err != nil {
		t.Fatal(err)
	}
	want := "ffffffff01" + "40be402500000000" + "19" + strings.ReplaceAll(genesisP2PKH, " ", "") + "00000000"
	if got := hex.EncodeToString(cb2); got != want {
		t.Errorf("coinbase2 without commitment\n got %s\nwant %s", got, want)
	}
}

// completeCoinbase joins a job's coinbase halves around an extranonce, as a
// miner does, and parses the result with btcd.
func completeCoinbase(t *testing.T, cb1, cb2, en1, en2 []byte) *wire.MsgTx {
	t.Helper()
	raw := append(append(append(append([]byte{}, cb1...), en1...), en2...), cb2...)
	var tx wire.MsgTx
	rd := bytes.NewReader(raw)
	if err := tx.DeserializeNoWitness(rd); err != nil {
		t.Fatalf("coinbase does not parse: %v (%x)", err, raw)
	}
	if rd.Len() != 0 {
		t.Fatalf("%d bytes after the coinbase", rd.Len())
	}
	return &tx
}

func TestCoinbaseParsesBack(t *testing.T) {
	payout := mustHex(t, "0014 751e76e8199196d454941c45d1b3a323f1433bd6") // P2WPKH
	en1 := []byte{0x01, 0x02, 0x03, 0x04}
	en2 := []byte{0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7}
	for _, tc := range []struct {
		name       string
		height     int32
		info       string
		commitment string
	}{
		{"height 1", 1, "", ""},
		{"height 16", 16, "x", ""},
		{"height 17", 17, "/pool/", emptyCommitment},
		{"height 128", 128, "/pool/", ""},
		{"height 840000", 840_000, "/hashpool/", emptyCommitment},
		{"height 2^31-1", math.MaxInt32, strings.Repeat("i", MaxCoinbaseInfo), emptyCommitment},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var commitment []byte
			if tc.commitment != "" {
				commitment = mustHex(t, tc.commitment)
			}
			cb1, cb2, err := buildCoinbase(coinbaseInput{
				height: tc.height, now: 1_763_000_000, info: []byte(tc.info),
				payout: payout, value: 312_500_000, commitment: commitment,
			})
			if err != nil {
				t.Fatal(err)
			}
			tx := completeCoinbase(t, cb1, cb2, en1, en2)
			if tx.Version != 2 || tx.LockTime != 0 {
				t.Errorf("version %d lock time %d, want 2 and 0", tx.Version, tx.LockTime)
			}
			if !blockchain.IsCoinBaseTx(tx) {
				t.Fatal("not a coinbase")
			}
			in := tx.TxIn[0]
			if in.Sequence != 0xffffffff {
				t.Errorf("sequence %x", in.Sequence)
			}
			h, err := blockchain.ExtractCoinbaseHeight(btcutil.NewTx(tx))
			if err != nil || h != tc.height {
				t.Errorf("BIP34 height = %d, %v; want %d", h, err, tc.height)
			}
			script := in.SignatureScript
			if len(script) >= 100 {
				t.Errorf("scriptSig is %d bytes", len(script))
			}
			tail := append(append([]byte(tc.info), en1...), en2...)
			if !bytes.HasSuffix(script, tail) {
				t.Errorf("scriptSig %x does not end with info+extranonce %x", script, tail)
			}
			// The time push follows the height push.
			hp := len(appendScriptInt(nil, int64(tc.height)))
			if !bytes.HasPrefix(script[hp:], appendScriptNum(nil, 1_763_000_000)) {
				t.Errorf("scriptSig %x lacks the time push after the height", script)
			}
			wantOuts := 1
			if commitment != nil {
				wantOuts = 2
			}
			if len(tx.TxOut) != wantOuts {
				t.Fatalf("%d outputs, want %d", len(tx.TxOut), wantOuts)
			}
			if tx.TxOut[0].Value != 312_500_000 || !bytes.Equal(tx.TxOut[0].PkScript, payout) {
				t.Errorf("payout output %d %x", tx.TxOut[0].Value, tx.TxOut[0].PkScript)
			}
			if commitment != nil && (tx.TxOut[1].Value != 0 || !bytes.Equal(tx.TxOut[1].PkScript, commitment)) {
				t.Errorf("commitment output %d %x", tx.TxOut[1].Value, tx.TxOut[1].PkScript)
			}
		})
	}
}

func TestBuildCoinbaseLimits(t *testing.T) {
	payout := mustHex(t, genesisP2PKH)
	// The longest info that fits in the worst case (5-byte height push).
	if _, _, err := buildCoinbase(coinbaseInput{height: math.MaxInt32, now: math.MaxUint32,
		info: bytes.Repeat([]byte{'a'}, MaxCoinbaseInfo), payout: payout}); err != nil {
		t.Errorf("MaxCoinbaseInfo bytes of info: %v", err)
	}
	_, _, err := buildCoinbase(coinbaseInput{height: math.MaxInt32, now: math.MaxUint32,
		info: bytes.Repeat([]byte{'a'}, MaxCoinbaseInfo+1), payout: payout})
	if !errors.Is(err, errScriptSigTooLong) {
		t.Errorf("one byte more: %v, want errScriptSigTooLong", err)
	}
	_, _, err = buildCoinbase(coinbaseInput{height: 1, now: 1, payout: bytes.Repeat([]byte{0x51}, 450)})
	if !errors.Is(err, errCoinbaseTooLong) {
		t.Errorf("450-byte payout script: %v, want errCoinbaseTooLong", err)
	}
	// A placeholder inside an output would move btcpool's split point.
	evil := append(append([]byte{0x6a, 0x0c}, placeholder...), 0x51)
	if _, _, err := buildCoinbase(coinbaseInput{height: 1, now: 1, payout: evil}); err == nil {
		t.Error("payout script holding the placeholder was accepted")
	}
}

func BenchmarkBuildCoinbase(b *testing.B) {
	in := coinbaseInput{height: 840_000, now: 1_763_000_000, info: []byte("/hashpool/"),
		payout: mustHex(b, genesisP2PKH), value: 312_500_000, commitment: mustHex(b, emptyCommitment)}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := buildCoinbase(in); err != nil {
			b.Fatal(err)
		}
	}
}
