package node

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

const createAuxReply = `{"result":{"hash":"6FE0a8c0f8d4d1ae5b2aa6b1cb7d0f1f1d2c3b4a5968778695a4b3c2d1e0f001","chainid":1,"previousblockhash":"3c780e01e6075db60c1061f58a217aa43509d0cc8996bdb1f12a68dfc8e64a94","coinbasevalue":5000000000,"bits":"207fffff","height":2,"_target":"0000000000000000000000000000000000000000000000000000000000ffff7f"},"error":null,"id":"1"}`

func TestCreateAuxBlock(t *testing.T) {
	s, srv := newScripted(t, http.StatusOK, createAuxReply)
	c := newTestClient(t, Options{URL: srv.URL, User: "u", Password: "p"})
	b, err := c.CreateAuxBlock(context.Background(), "ncrt1qxyz")
	if err != nil {
		t.Fatal(err)
	}
	want := AuxBlock{
		Hash:              "6fe0a8c0f8d4d1ae5b2aa6b1cb7d0f1f1d2c3b4a5968778695a4b3c2d1e0f001",
		ChainID:           1,
		PreviousBlockHash: "3c780e01e6075db60c1061f58a217aa43509d0cc8996bdb1f12a68dfc8e64a94",
		CoinbaseValue:     5000000000,
		Bits:              "207fffff",
		Height:            2,
		Target:            "0000000000000000000000000000000000000000000000000000000000ffff7f",
	}
	if b != want {
		t.Fatalf("got %+v\nwant %+v", b, want)
	}
	body, _ := s.last()
	if body != `{"jsonrpc":"1.0","id":"1","method":"createauxblock","params":["ncrt1qxyz"]}` {
		t.Fatalf("request %s", body)
	}
	if _, err := c.CreateAuxBlock(context.Background(), ""); err == nil {
		t.Fatal("empty address: want an error")
	}
}

func TestParseAuxBlockRejects(t *testing.T) {
	good := `{"hash":"6fe0a8c0f8d4d1ae5b2aa6b1cb7d0f1f1d2c3b4a5968778695a4b3c2d1e0f001","chainid":1,"bits":"207fffff","height":2}`
	if _, err := parseAuxBlock("getauxblock", []byte(good)); err != nil {
		t.Fatalf("minimal answer: %v", err)
	}
	for _, tc := range []struct{ raw, want string }{
		{`[]`, "not an aux block object"},
		{`{"chainid":1,"bits":"207fffff","height":2}`, "hash is missing"},
		{`{"hash":"zz","chainid":1,"bits":"207fffff","height":2}`, "hash"},
		{strings.Replace(good, `"chainid":1`, `"chainid":-1`, 1), "chainid"},
		{strings.Replace(good, `"chainid":1`, `"chainid":"1"`, 1), "not an aux block object"},
		{strings.Replace(good, `"bits":"207fffff"`, `"bits":"207fff"`, 1), "bits"},
		{strings.Replace(good, `"height":2`, `"height":-2`, 1), "height"},
		{strings.Replace(good, `}`, `,"_target":"00"}`, 1), "_target"},
		{strings.Replace(good, `}`, `,"coinbasevalue":-1}`, 1), "coinbasevalue"},
		{strings.Replace(good, `}`, `,"previousblockhash":"x"}`, 1), "previousblockhash"},
	} {
		_, err := parseAuxBlock("createauxblock", []byte(tc.raw))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error about %s", tc.raw, err, tc.want)
		}
	}
}

func TestSubmitAuxBlock(t *testing.T) {
	s, srv := newScripted(t, http.StatusOK, `{"result":true,"error":null,"id":"1"}`)
	c := newTestClient(t, Options{URL: srv.URL})
	hash := strings.Repeat("ab", 32)
	ok, err := c.SubmitAuxBlock(context.Background(), hash, "00ff")
	if err != nil || !ok {
		t.Fatalf("submitauxblock = %v, %v", ok, err)
	}
	if body, _ := s.last(); body != `{"jsonrpc":"1.0","id":"1","method":"submitauxblock","params":["`+hash+`","00ff"]}` {
		t.Fatalf("request %s", body)
	}
	if _, err := c.GetAuxBlockSubmit(context.Background(), hash, "00ff"); err != nil {
		t.Fatal(err)
	}
	if body, _ := s.last(); !strings.Contains(body, `"method":"getauxblock","params":["`+hash) {
		t.Fatalf("request %s", body)
	}
	for _, bad := range [][2]string{{"x", "00"}, {hash, ""}, {hash, "0"}, {hash, "zz"}} {
		if _, err := c.SubmitAuxBlock(context.Background(), bad[0], bad[1]); err == nil {
			t.Errorf("submitauxblock(%q, %q): want an error", bad[0], bad[1])
		}
	}
}

func TestGetAuxMethods(t *testing.T) {
	help := "== Mining ==\ncreateauxblock \"address\"\ngetblocktemplate ( \"template_request\" )\nsubmitauxblock \"hash\" \"auxpow\"\n"
	_, srv := newScripted(t, http.StatusOK, `{"result":`+quoteJSON(help)+`,"error":null,"id":"1"}`)
	c := newTestClient(t, Options{URL: srv.URL})
	m, err := c.GetAuxMethods(context.Background())
	if err != nil || !m.UseCreate() || m.GetAuxBlock {
		t.Fatalf("GetAuxMethods = %+v, %v", m, err)
	}
	_, srv2 := newScripted(t, http.StatusOK, `{"result":"getblocktemplate\nsubmitblock\n","error":null,"id":"1"}`)
	if _, err := newTestClient(t, Options{URL: srv2.URL}).GetAuxMethods(context.Background()); err == nil {
		t.Fatal("a node without aux RPCs: want an error")
	}
	_, srv3 := newScripted(t, http.StatusOK, `{"result":"getauxblock ( \"hash\" \"auxpow\" )\n","error":null,"id":"1"}`)
	if m, err := newTestClient(t, Options{URL: srv3.URL}).GetAuxMethods(context.Background()); err != nil || m.UseCreate() || !m.GetAuxBlock {
		t.Fatalf("old node: %+v, %v", m, err)
	}
}

func quoteJSON(s string) string { return string(appendJSONString(nil, s)) }

func FuzzParseAuxBlock(f *testing.F) {
	f.Add([]byte(`{"hash":"6fe0a8c0f8d4d1ae5b2aa6b1cb7d0f1f1d2c3b4a5968778695a4b3c2d1e0f001","chainid":1,"bits":"207fffff","height":2}`))
	f.Add([]byte(createAuxReply))
	f.Add([]byte(`{"hash":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		blk, err := parseAuxBlock("createauxblock", b)
		if err != nil {
			return
		}
		if !isHash(blk.Hash) || !isHexLen(blk.Bits, 8) || blk.Height < 0 || blk.ChainID < 0 {
			t.Fatalf("accepted a bad aux block %+v", blk)
		}
	})
}
