package auxpow

import (
	"bytes"
	"testing"
)

// FuzzDecodeAuxPow: any input decodes or fails with ErrMalformed, never panics, and what
// decodes re-encodes to the same bytes apart from the ignored parent hash field.
func FuzzDecodeAuxPow(f *testing.F) {
	a := sampleAuxPow(f)
	good := AppendAuxPow(nil, &a)
	f.Add(good)
	f.Add(good[:len(good)/2])
	a.ChainBranch, a.CoinbaseBranch = nil, nil
	f.Add(AppendAuxPow(nil, &a))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var out AuxPow
		if err := DecodeAuxPow(b, &out); err != nil {
			return
		}
		again := AppendAuxPow(nil, &out)
		if len(again) != len(b) {
			t.Fatalf("re-encoded %d bytes from %d", len(again), len(b))
		}
		n := len(out.CoinbaseTx)
		if !bytes.Equal(again[:n], b[:n]) || !bytes.Equal(again[n+32:], b[n+32:]) {
			t.Fatal("re-encoding differs")
		}
	})
}
