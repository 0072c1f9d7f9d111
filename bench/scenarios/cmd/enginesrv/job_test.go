package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/btcsuite/btcd/wire/v2"
)

// The coinbase with any extranonce must be a valid coinbase transaction
// carrying its BIP34 height, checked with btcd's own rules.
func TestSyntheticJobCoinbase(t *testing.T) {
	for _, tc := range []struct {
		height int32
		branch int
		bits   uint32
	}{{800_001, 12, MainnetBits}, {1, 0, RegtestBits}, {0x7fffff, 20, MainnetBits}} {
		j := newSyntheticJob(tc.height, tc.bits, tc.branch, 7, time.Unix(1_700_000_000, 0))
		en := bytes.Repeat([]byte{0xab}, 12)
		raw := append(append(append([]byte(nil), j.Coinbase1...), en...), j.Coinbase2...)
		var tx wire.MsgTx
		if err := tx.Deserialize(bytes.NewReader(raw)); err != nil {
			t.Fatalf("height %d: coinbase does not parse: %v", tc.height, err)
		}
		in := tx.TxIn[0]
		if len(tx.TxIn) != 1 || in.PreviousOutPoint.Index != 0xffffffff || in.PreviousOutPoint.Hash != ([32]byte{}) {
			t.Fatalf("height %d: not a coinbase input: %+v", tc.height, in.PreviousOutPoint)
		}
		if n := len(in.SignatureScript); n < 2 || n > 100 {
			t.Fatalf("height %d: scriptSig of %d bytes (consensus: 2..100)", tc.height, n)
		}
		// BIP34: the scriptSig starts with the minimal push of the height.
		s := in.SignatureScript
		if s[0] != 3 || int32(s[1])|int32(s[2])<<8|int32(s[3])<<16 != tc.height {
			t.Fatalf("height %d: scriptSig starts %x", tc.height, s[:4])
		}
		if len(tx.TxOut) != 2 || tx.TxOut[0].Value != 312_500_000 || tx.LockTime != 0 {
			t.Fatalf("height %d: outputs %d, locktime %d", tc.height, len(tx.TxOut), tx.LockTime)
		}
		if !bytes.Contains(tx.TxIn[0].SignatureScript, en) {
			t.Fatalf("extranonce not in the scriptSig")
		}
		if len(j.Branch) != tc.branch || j.Bits != tc.bits || j.ID>>32 != 1_700_000_000 || uint32(j.ID) != 7 {
			t.Fatalf("job fields: branch %d bits %08x id %x", len(j.Branch), j.Bits, j.ID)
		}
	}
}

func TestParseFlags(t *testing.T) {
	var errs bytes.Buffer
	for _, tc := range []struct {
		args []string
		ok   bool
	}{
		{nil, true},
		{[]string{"-impl", "baseline", "-bits", "regtest", "-difficulty", "0.0001"}, true},
		{[]string{"-impl", "nginx"}, false},
		{[]string{"-listen", "10.0.0.1:3333"}, false},
		{[]string{"-control", "0.0.0.0:80"}, false},
		{[]string{"-server-id", "0"}, false},
		{[]string{"-difficulty", "0"}, false},
		{[]string{"-bits", "xyz"}, false},
		{[]string{"-job-interval", "1ms"}, false},
		{[]string{"-refresh-interval", "20s", "-job-interval", "5m"}, true},
		{[]string{"-refresh-interval", "1ms"}, false},
		{[]string{"-branch", "21"}, false},
		{[]string{"extra"}, false},
	} {
		_, err := parseFlags(tc.args, &errs)
		if (err == nil) != tc.ok {
			t.Errorf("%q: err %v, want ok=%v", tc.args, err, tc.ok)
		}
	}
}
