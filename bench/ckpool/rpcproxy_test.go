package ckpool

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashpool/hashpool/internal/btcdtest"
)

// startProxy serves a proxy to n on 127.0.0.1 until the test ends.
func startProxy(t *testing.T, n *btcdtest.Node) (*Proxy, string) {
	t.Helper()
	p, err := NewProxy(ProxyOptions{Upstream: n.RPCURL, User: n.RPCUser, Password: n.RPCPass})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Serve did not return")
		}
	})
	return p, ln.Addr().String()
}

// ckpoolCall sends body the way ckpool's _json_rpc_call does (bare LF line
// ends, its own credentials) and returns the status line and the first
// line that starts with '{', as ckpool reads them.
func ckpoolCall(t *testing.T, addr, body string) (string, map[string]json.RawMessage) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	req := "POST / HTTP/1.1\nAuthorization: Basic Y2twb29sOnNlY3JldA==\nHost: " + addr + "\nContent-type: application/json\nContent-Length: " +
		itoa(len(body)) + "\n\n" + body
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	status, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("status line: %v", err)
	}
	for i := 0; i < 20; i++ {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("no JSON line after %q: %v", status, err)
		}
		if strings.HasPrefix(line, "{") {
			var m map[string]json.RawMessage
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("answer %q: %v", line, err)
			}
			return strings.TrimSpace(status), m
		}
	}
	t.Fatal("no JSON line in the answer")
	return "", nil
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestProxyCkpoolRequests: ckpool's requests, which carry no jsonrpc, id or
// (some) params, get btcd's real answers; getblocktemplate with ckpool's
// capabilities gets a coinbasevalue and a full witness commitment script.
func TestProxyCkpoolRequests(t *testing.T) {
	n := btcdtest.Start(t, btcdtest.Options{})
	n.MineBlocks(t, 2) // a recent tip: btcd refuses templates while "downloading"
	p, addr := startProxy(t, n)

	status, m := ckpoolCall(t, addr, `{"method": "getblockcount"}`+"\n")
	if status != "HTTP/1.1 200 OK" {
		t.Fatalf("status %q", status)
	}
	var height int64
	if err := json.Unmarshal(m["result"], &height); err != nil || height != 2 {
		t.Fatalf("getblockcount: result %s error %s: want 2", m["result"], m["error"])
	}

	// The exact request of ckpool's bitcoin.c.
	_, m = ckpoolCall(t, addr, `{"method": "getblocktemplate", "params": [{"capabilities": ["coinbasetxn", "workid", "coinbase/append"], "rules" : ["segwit"]}]}`+"\n")
	if e := string(m["error"]); e != "" && e != "null" {
		t.Fatalf("getblocktemplate error %s", e)
	}
	var tmpl struct {
		CoinbaseValue int64  `json:"coinbasevalue"`
		Height        int64  `json:"height"`
		Witness       string `json:"default_witness_commitment"`
		PrevHash      string `json:"previousblockhash"`
	}
	if err := json.Unmarshal(m["result"], &tmpl); err != nil {
		t.Fatal(err)
	}
	if tmpl.CoinbaseValue != 50e8 || tmpl.Height != 3 || len(tmpl.PrevHash) != 64 {
		t.Fatalf("template %+v: want coinbasevalue 50 BTC at height 3", tmpl)
	}
	if tmpl.Witness != "" && !strings.HasPrefix(tmpl.Witness, witnessScriptPrefix) {
		t.Fatalf("default_witness_commitment %q: want the %s… script", tmpl.Witness, witnessScriptPrefix)
	}

	// A client id is given back; a params-less call with an argument-free
	// method works; btcd's own error comes through as JSON.
	_, m = ckpoolCall(t, addr, `{"id": 7, "method": "getbestblockhash"}`)
	if string(m["id"]) != "7" || len(m["result"]) != 66 {
		t.Fatalf("getbestblockhash: %s", m)
	}
	_, m = ckpoolCall(t, addr, `{"method": "getblockhash", "params": [99]}`)
	if e := string(m["error"]); e == "" || e == "null" {
		t.Fatalf("getblockhash 99 of 2: want btcd's error, got %s", m["result"])
	}
	_, m = ckpoolCall(t, addr, `{"method": "validateaddress", "params": ["`+n.MiningAddress()+`"]}`)
	var va struct {
		IsValid bool `json:"isvalid"`
	}
	if json.Unmarshal(m["result"], &va); !va.IsValid {
		t.Fatalf("validateaddress %s: %s", n.MiningAddress(), m)
	}
	if p.Requests.Load() != 5 || p.Failures.Load() != 0 {
		t.Fatalf("requests %d failures %d: want 5, 0", p.Requests.Load(), p.Failures.Load())
	}
}

// TestProxyBadRequests: malformed input gets a JSON error, never a crash
// or a hang.
func TestProxyBadRequests(t *testing.T) {
	n := btcdtest.Start(t, btcdtest.Options{})
	p, addr := startProxy(t, n)
	for _, raw := range []string{
		"GET / HTTP/1.1\n\n",
		"POST / HTTP/1.1\nHost: x\n\n{}",                   // no Content-Length
		"POST / HTTP/1.1\nContent-Length: 99999999999\n\n", // too long
		"POST / HTTP/1.1\nContent-Length: 4\n\n[1,2",       // not an object
		"POST / HTTP/1.1\nContent-Length: 2\n\n{}",         // no method
		"POST / HTTP/1.1\nX: " + strings.Repeat("a", 10000) + "\n\n",
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(30 * time.Second))
		io.WriteString(c, raw)
		b, _ := io.ReadAll(c)
		c.Close()
		s := string(b)
		if !strings.HasPrefix(s, "HTTP/1.1 ") || !strings.Contains(s, `"error":{`) {
			t.Errorf("request %.40q: answer %q: want an HTTP status and a JSON error", raw, s)
		}
	}
	if p.Failures.Load() != 6 {
		t.Fatalf("failures %d: want 6", p.Failures.Load())
	}
}

func TestProxyOptionsValidate(t *testing.T) {
	o := ProxyOptions{Upstream: "http://10.0.0.1:8332", Timeout: -1}
	err := o.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"loopback", "user", "timeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

// FuzzRewriteRequest: any body either rewrites to a JSON object with a
// method, jsonrpc, id and params, or is refused with an error.
func FuzzRewriteRequest(f *testing.F) {
	for _, s := range []string{
		`{"method": "getblockcount"}`,
		`{"method": "getblocktemplate", "params": [{"capabilities": ["coinbasetxn", "workid", "coinbase/append"], "rules" : ["segwit"]}]}`,
		`{"method": "getblocktemplate", "params": [null]}`,
		`{"method": "getblocktemplate", "params": {}}`,
		`{"id": null, "method": "submitblock", "params": ["00"]}`,
		`[]`, `{`, `{"method": 1}`,
	} {
		f.Add([]byte(s))
	}
	p, err := NewProxy(ProxyOptions{Upstream: "http://127.0.0.1:1", User: "u"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		out, method, _, err := p.rewriteRequest(body)
		if err != nil {
			return
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("rewritten %q: %v", out, err)
		}
		for _, k := range []string{"method", "jsonrpc", "id", "params"} {
			if len(m[k]) == 0 {
				t.Fatalf("rewritten %q has no %s", out, k)
			}
		}
		if method == "" {
			t.Fatal("empty method accepted")
		}
	})
}
