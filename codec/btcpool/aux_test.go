package btcpool

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
)

var goldenAux = AuxRawGw{
	CreatedAt:   1600000000,
	Hash:        "6fe0a8c0f8d4d1ae5b2aa6b1cb7d0f1f1d2c3b4a5968778695a4b3c2d1e0f001",
	Height:      523541,
	MerkleSize:  1,
	MerkleNonce: 0,
	ChainID:     1,
	Bits:        "180a7f3c",
	RPCAddr:     "http://127.0.0.1:8336",
	RPCUserPass: "user:pass",
}

// The spec §9 template, with its literal spaces (two before "bits").
const goldenAuxJSON = `{"created_at_ts":1600000000, "hash":"6fe0a8c0f8d4d1ae5b2aa6b1cb7d0f1f1d2c3b4a5968778695a4b3c2d1e0f001", "height":523541, "merkle_size":1, "merkle_nonce":0, "chainid":1,  "bits":"180a7f3c", "rpc_addr":"http://127.0.0.1:8336", "rpc_userpass":"user:pass"}`

func TestAuxRawGwGolden(t *testing.T) {
	if got := string(AppendAuxRawGw(nil, &goldenAux)); got != goldenAuxJSON {
		t.Fatalf("got  %s\nwant %s", got, goldenAuxJSON)
	}
	var m AuxRawGw
	if err := DecodeAuxRawGw([]byte(goldenAuxJSON), &m); err != nil || m != goldenAux {
		t.Fatalf("decode = %+v, %v", m, err)
	}
	// A proxy's nonce above 2^31 is printed signed, as btcpool's %d of an int32, and read back.
	big := goldenAux
	big.MerkleSize, big.MerkleNonce = 8, 0x9e3779b9
	b := AppendAuxRawGw(nil, &big)
	if !bytes.Contains(b, []byte(`"merkle_nonce":-1640531527`)) {
		t.Fatalf("nonce printed as %s", b)
	}
	if err := DecodeAuxRawGw(b, &m); err != nil || m != big {
		t.Fatalf("round trip = %+v, %v", m, err)
	}
	if err := DecodeAuxRawGw([]byte(strings.Replace(goldenAuxJSON, `"merkle_nonce":0`, `"merkle_nonce":2654435769`, 1)), &m); err != nil || m.MerkleNonce != 0x9e3779b9 {
		t.Fatalf("unsigned nonce: %+v, %v", m, err)
	}
}

func TestDecodeAuxRawGwDefaultsAndRejects(t *testing.T) {
	var m AuxRawGw
	min := `{"created_at_ts":1,"hash":"` + goldenAux.Hash + `","height":2,"chainid":1,"bits":"207fffff"}`
	if err := DecodeAuxRawGw([]byte(min), &m); err != nil || m.MerkleSize != 1 || m.MerkleNonce != 0 {
		t.Fatalf("minimal: %+v, %v", m, err)
	}
	for _, tc := range []struct{ in, key string }{
		{`[]`, ""},
		{`{"hash":"` + goldenAux.Hash + `","height":2,"chainid":1,"bits":"207fffff"}`, "created_at_ts"},
		{strings.Replace(min, goldenAux.Hash, "xyz", 1), "hash"},
		{strings.Replace(min, `"height":2`, `"height":-1`, 1), "height"},
		{strings.Replace(min, `"height":2`, `"height":"2"`, 1), "height"},
		{strings.Replace(min, `"chainid":1`, `"chainid":1.5`, 1), "chainid"},
		{strings.Replace(min, `"207fffff"`, `"207fff"`, 1), "bits"},
		{strings.Replace(min, `}`, `,"merkle_size":3}`, 1), "merkle_size"},
		{strings.Replace(min, `}`, `,"merkle_size":0}`, 1), "merkle_size"},
		{strings.Replace(min, `}`, `,"merkle_nonce":4294967296}`, 1), "merkle_nonce"},
		{strings.Replace(min, `}`, `,"rpc_addr":5}`, 1), "rpc_addr"},
	} {
		err := DecodeAuxRawGw([]byte(tc.in), &m)
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%s: %v, want ErrMalformed about %q", tc.in, err, tc.key)
		}
	}
}

func goldenAuxSolved() AuxSolvedShare {
	m := AuxSolvedShare{
		JobID:        6864733138475073793,
		AuxBlockHash: goldenAux.Hash,
		CoinbaseTx:   []byte{1, 0, 0, 0, 0xab},
		RPCAddr:      "http://127.0.0.1:8336",
		RPCUserPass:  "user:pass",
	}
	for i := range m.BlockHeader {
		m.BlockHeader[i] = byte(i)
	}
	return m
}

func TestAuxSolvedShareGolden(t *testing.T) {
	m := goldenAuxSolved()
	want := `{"job_id":6864733138475073793,"aux_block_hash":"` + goldenAux.Hash + `","block_header":"` +
		hex.EncodeToString(m.BlockHeader[:]) + `","coinbase_tx":"01000000ab","rpc_addr":"http://127.0.0.1:8336","rpc_userpass":"user:pass"}`
	if got := string(AppendAuxSolvedShare(nil, &m)); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	var back AuxSolvedShare
	if err := DecodeAuxSolvedShare([]byte(want), &back); err != nil || !reflect.DeepEqual(back, m) {
		t.Fatalf("decode = %+v, %v", back, err)
	}
	// With the hashpool extension keys.
	m.ChainName, m.ChainID = "nmc", 1
	m.AuxBranch, m.AuxIndex = [][32]byte{{1}, {2}}, 2
	m.CoinbaseBranch, m.HasCoinbaseBranch = [][32]byte{{3}}, true
	b := AppendAuxSolvedShare(nil, &m)
	if !bytes.HasPrefix(b, []byte(want[:len(want)-1]+`,"chain_name":"nmc","chainid":1,"aux_merkle_branch":"01`)) {
		t.Fatalf("extensions: %s", b)
	}
	if err := DecodeAuxSolvedShare(b, &back); err != nil || !reflect.DeepEqual(back, m) {
		t.Fatalf("decode with extensions = %+v, %v", back, err)
	}
	// An empty coinbase branch (a block of one transaction) is kept as present.
	m.CoinbaseBranch = nil
	if err := DecodeAuxSolvedShare(AppendAuxSolvedShare(nil, &m), &back); err != nil || !back.HasCoinbaseBranch || back.CoinbaseBranch != nil {
		t.Fatalf("empty coinbase branch: %+v, %v", back, err)
	}
}

func TestDecodeAuxSolvedShareRejects(t *testing.T) {
	m := goldenAuxSolved()
	good := string(AppendAuxSolvedShare(nil, &m))
	for _, tc := range []struct{ in, key string }{
		{strings.Replace(good, `"job_id":6864733138475073793`, `"job_id":-1`, 1), "job_id"},
		{strings.Replace(good, goldenAux.Hash, "00", 1), "aux_block_hash"},
		{strings.Replace(good, `"block_header":"00`, `"block_header":"`, 1), "block_header"},
		{strings.Replace(good, `"coinbase_tx":"01000000ab"`, `"coinbase_tx":""`, 1), "coinbase_tx"},
		{strings.Replace(good, `"coinbase_tx":"01000000ab"`, `"coinbase_tx":"0g"`, 1), "coinbase_tx"},
		{strings.Replace(good, `}`, `,"aux_merkle_branch":"00","aux_merkle_index":0}`, 1), "aux_merkle_branch"},
		{strings.Replace(good, `}`, `,"aux_merkle_branch":""}`, 1), "aux_merkle_index"},
		{strings.Replace(good, `}`, `,"chain_name":"x"}`, 1), "chainid"},
		{strings.Replace(good, `}`, `,"coinbase_merkle_branch":"`+strings.Repeat("00", 32*33)+`"}`, 1), "coinbase_merkle_branch"},
	} {
		var out AuxSolvedShare
		err := DecodeAuxSolvedShare([]byte(tc.in), &out)
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%.80s…: %v, want ErrMalformed about %q", tc.in, err, tc.key)
		}
	}
}

func TestRskSolvedShareLayout(t *testing.T) {
	m := RskSolvedShare{
		JobID: 0x0102030405060708, WorkerID: -2, UserID: 7, Height: 650000,
		FeesForMiner: "12345", RPCAddress: "http://127.0.0.1:4444", RPCUserPwd: "u:p",
		WorkerFullName: strings.Repeat("w", 50), Coinbase: []byte{1, 2, 3},
	}
	m.Header[0], m.Header[79] = 0xaa, 0xbb
	b := AppendRskSolvedShare(nil, &m)
	if len(b) != RskSolvedShareDataSize+3 {
		t.Fatalf("length %d", len(b))
	}
	if b[0] != 8 || b[8] != 0xfe || b[16] != 7 || b[24] != 0xaa || b[103] != 0xbb ||
		b[104] != 'w' || b[142] != 'w' || b[143] != 0 || string(b[144:149]) != "12345" || b[149] != 0 ||
		string(b[224:245]) != "http://127.0.0.1:4444" || string(b[304:307]) != "u:p" || b[383] != 0 ||
		!bytes.Equal(b[384:], []byte{1, 2, 3}) {
		t.Fatalf("layout: %x", b)
	}
	var back RskSolvedShare
	if err := DecodeRskSolvedShare(b, &back); err != nil {
		t.Fatal(err)
	}
	m.WorkerFullName = m.WorkerFullName[:39]
	if !reflect.DeepEqual(back, m) {
		t.Fatalf("round trip %+v", back)
	}
	if err := DecodeRskSolvedShare(b[:RskSolvedShareDataSize], &back); !errors.Is(err, ErrMalformed) {
		t.Fatalf("no coinbase: %v", err)
	}
}
