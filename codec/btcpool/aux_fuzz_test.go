package btcpool

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func FuzzDecodeAuxRawGw(f *testing.F) {
	f.Add([]byte(goldenAuxJSON))
	f.Add([]byte(`{"created_at_ts":1,"hash":"` + goldenAux.Hash + `","height":2,"chainid":1,"bits":"207fffff","merkle_size":8,"merkle_nonce":-5}`))
	f.Add([]byte(`{"created_at_ts":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m AuxRawGw
		if err := DecodeAuxRawGw(b, &m); err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		var back AuxRawGw
		if err := DecodeAuxRawGw(AppendAuxRawGw(nil, &m), &back); err != nil || back != m {
			t.Fatalf("re-decode = %+v, %v; want %+v", back, err, m)
		}
	})
}

func FuzzDecodeAuxSolvedShare(f *testing.F) {
	m := goldenAuxSolved()
	f.Add(AppendAuxSolvedShare(nil, &m))
	m.ChainName, m.AuxBranch, m.HasCoinbaseBranch = "nmc", [][32]byte{{1}}, true
	f.Add(AppendAuxSolvedShare(nil, &m))
	f.Add([]byte(`{"job_id":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m AuxSolvedShare
		if err := DecodeAuxSolvedShare(b, &m); err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		enc := AppendAuxSolvedShare(nil, &m)
		var back AuxSolvedShare
		if err := DecodeAuxSolvedShare(enc, &back); err != nil || !reflect.DeepEqual(back, m) {
			t.Fatalf("re-decode = %+v, %v; want %+v", back, err, m)
		}
	})
}

func FuzzDecodeRskSolvedShare(f *testing.F) {
	f.Add(AppendRskSolvedShare(nil, &RskSolvedShare{JobID: 1, Coinbase: []byte{1}}))
	f.Add(make([]byte, RskSolvedShareDataSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m RskSolvedShare
		if err := DecodeRskSolvedShare(b, &m); err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if !bytes.Equal(m.Coinbase, b[RskSolvedShareDataSize:]) {
			t.Fatal("coinbase differs")
		}
		var back RskSolvedShare
		if err := DecodeRskSolvedShare(AppendRskSolvedShare(nil, &m), &back); err != nil || !reflect.DeepEqual(back, m) {
			t.Fatalf("re-decode = %+v, %v", back, err)
		}
	})
}
