package node

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// scripted is a real HTTP server on 127.0.0.1 that records requests and answers with a fixed
// status and body, for the error paths a healthy node never takes.
type scripted struct {
	mu     sync.Mutex
	bodies []string
	auths  []string
	status int
	reply  string
	hang   chan struct{} // when non-nil, handlers block until it is closed
}

func newScripted(t *testing.T, status int, reply string) (*scripted, *httptest.Server) {
	s := &scripted{status: status, reply: reply}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		s.mu.Lock()
		s.bodies = append(s.bodies, string(b))
		s.auths = append(s.auths, r.Header.Get("Authorization"))
		status, reply, hang := s.status, s.reply, s.hang
		s.mu.Unlock()
		if hang != nil {
			select {
			case <-hang:
			case <-r.Context().Done():
			}
			return
		}
		w.WriteHeader(status)
		io.WriteString(w, reply)
	}))
	t.Cleanup(srv.Close)
	return s, srv
}

func (s *scripted) last() (body, auth string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bodies[len(s.bodies)-1], s.auths[len(s.auths)-1]
}

func newTestClient(t *testing.T, o Options) *Client {
	t.Helper()
	c, err := NewClient(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestRequestBodies(t *testing.T) {
	s, srv := newScripted(t, 200, `{"result":5,"error":null,"id":"1"}`)
	c := newTestClient(t, Options{URL: srv.URL, User: "u", Password: "p"})
	ctx := context.Background()

	if n, err := c.GetBlockCount(ctx); err != nil || n != 5 {
		t.Fatalf("GetBlockCount = %d, %v", n, err)
	}
	body, auth := s.last()
	if want := `{"jsonrpc":"1.0","id":"1","method":"getblockcount","params":[]}`; body != want {
		t.Errorf("body\n got %s\nwant %s", body, want)
	}
	if auth != "Basic dTpw" { // base64("u:p")
		t.Errorf("Authorization %q", auth)
	}

	// getblocktemplate: the result is not a template, but the request is what matters here.
	_, _ = c.GetBlockTemplate(ctx, "")
	body, _ = s.last()
	if want := `{"jsonrpc":"1.0","id":"1","method":"getblocktemplate","params":[{"rules" : ["segwit"]}]}`; body != want {
		t.Errorf("gbt body\n got %s\nwant %s", body, want)
	}
	_, _ = c.GetBlockTemplate(ctx, `0f9188f1-"quoted"`)
	body, _ = s.last()
	if want := `{"jsonrpc":"1.0","id":"1","method":"getblocktemplate","params":[{"rules" : ["segwit"],"longpollid":"0f9188f1-\"quoted\""}]}`; body != want {
		t.Errorf("longpoll body\n got %s\nwant %s", body, want)
	}
	_, _ = c.SubmitBlock(ctx, "00ff")
	body, _ = s.last()
	if want := `{"jsonrpc":"1.0","id":"1","method":"submitblock","params":["00ff"]}`; body != want {
		t.Errorf("submitblock body\n got %s\nwant %s", body, want)
	}
}

func TestCookieAuthIsReadOnEveryCall(t *testing.T) {
	s, srv := newScripted(t, 200, `{"result":1,"error":null,"id":"1"}`)
	cookie := filepath.Join(t.TempDir(), ".cookie")
	if err := os.WriteFile(cookie, []byte("__cookie__:aa\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newTestClient(t, Options{URL: srv.URL, CookieFile: cookie})
	if _, err := c.GetBlockCount(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, auth := s.last(); auth != "Basic X19jb29raWVfXzphYQ==" { // base64("__cookie__:aa")
		t.Fatalf("Authorization %q", auth)
	}
	// bitcoind restarted and wrote a new cookie.
	if err := os.WriteFile(cookie, []byte("__cookie__:bb"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetBlockCount(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, auth := s.last(); auth != "Basic X19jb29raWVfXzpiYg==" {
		t.Fatalf("Authorization after new cookie %q", auth)
	}
	if err := os.Remove(cookie); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetBlockCount(context.Background()); err == nil || !strings.Contains(err.Error(), "cookie") {
		t.Fatalf("missing cookie file: err %v", err)
	}
}

func TestReadCookie(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		content    string
		user, pass string
		ok         bool
	}{
		{"__cookie__:0123abcd", "__cookie__", "0123abcd", true},
		{"__cookie__:0123abcd\r\n", "__cookie__", "0123abcd", true},
		{"user:pa:ss", "user", "pa:ss", true},
		{"nocolon", "", "", false},
		{":pass", "", "", false},
		{"user:", "", "", false},
		{"", "", "", false},
		{strings.Repeat("x", 2000) + ":y", "", "", false},
	} {
		p := filepath.Join(dir, "c")
		if err := os.WriteFile(p, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		u, pw, err := ReadCookie(p)
		if (err == nil) != tc.ok || u != tc.user || pw != tc.pass {
			t.Errorf("ReadCookie(%.20q) = %q, %q, %v", tc.content, u, pw, err)
		}
	}
}

func TestResponseErrors(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     int
		reply      string
		wantRPC    int // RPC error code expected, 0 for none
		wantStatus int // HTTPError status expected, 0 for none
		wantText   string
	}{
		{"unauthorized", 401, "", 0, 401, "rpc user and password"},
		{"bitcoind rpc error 500", 500, `{"result":null,"error":{"code":-28,"message":"Loading block index..."},"id":"1"}`, -28, 0, "Loading block index"},
		{"bitcoind method not found 404", 404, `{"result":null,"error":{"code":-32601,"message":"Method not found"},"id":"1"}`, -32601, 0, "Method not found"},
		{"btcd empty body", 200, "", 0, 200, "not a JSON-RPC"},
		{"not json", 200, "<html>", 0, 200, "<html>"},
		{"no result key", 200, `{"error":null,"id":"1"}`, 0, 200, ""},
		{"error without code", 200, `{"result":null,"error":{"message":"x"},"id":"1"}`, 0, 200, ""},
		{"server error no body", 503, "busy", 0, 503, "busy"},
		{"wrong result type", 200, `{"result":"five","error":null,"id":"1"}`, 0, 0, "decode result"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, srv := newScripted(t, tc.status, tc.reply)
			c := newTestClient(t, Options{URL: srv.URL})
			_, err := c.GetBlockCount(context.Background())
			if err == nil {
				t.Fatal("no error")
			}
			var re *RPCError
			var he *HTTPError
			switch {
			case tc.wantRPC != 0:
				if !errors.As(err, &re) || re.Code != tc.wantRPC || re.Method != "getblockcount" {
					t.Fatalf("err %v, want RPC error %d", err, tc.wantRPC)
				}
			case tc.wantStatus != 0:
				if !errors.As(err, &he) || he.Status != tc.wantStatus {
					t.Fatalf("err %v, want HTTP error %d", err, tc.wantStatus)
				}
			}
			if !strings.Contains(err.Error(), tc.wantText) {
				t.Fatalf("err %q does not mention %q", err, tc.wantText)
			}
		})
	}
}

func TestResponseTooLarge(t *testing.T) {
	big := `{"result":"` + strings.Repeat("a", 5000) + `","error":null,"id":"1"}`
	_, srv := newScripted(t, 200, big)
	c := newTestClient(t, Options{URL: srv.URL, MaxResponseBytes: 4096})
	if _, err := c.GetBestBlockHash(context.Background()); !errors.Is(err, ErrResponseTooLarge) {
		t.Fatalf("err %v, want ErrResponseTooLarge", err)
	}
	c = newTestClient(t, Options{URL: srv.URL, MaxResponseBytes: int64(len(big))})
	if _, err := c.GetBestBlockHash(context.Background()); errors.Is(err, ErrResponseTooLarge) || err == nil {
		t.Fatalf("err %v: a body of exactly MaxResponseBytes is allowed (and this one is no hash)", err)
	}
}

func TestCallTimeout(t *testing.T) {
	s, srv := newScripted(t, 200, "")
	hang := make(chan struct{})
	s.hang = hang
	defer close(hang)
	c := newTestClient(t, Options{URL: srv.URL, Timeout: 50 * time.Millisecond})
	if _, err := c.GetBlockCount(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want deadline exceeded", err)
	}
	// The caller's context cancels a long poll, which has no per-call timeout of its own here.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.GetBlockTemplate(ctx, "x"); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want canceled", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		errs []string
	}{
		{"defaults", Options{URL: "http://127.0.0.1:8332"}, nil},
		{"bare host port", Options{URL: "127.0.0.1:8332"}, nil},
		{"empty", Options{}, []string{"URL is empty"}},
		{"https", Options{URL: "https://x:1"}, []string{"scheme must be http"}},
		{"everything wrong", Options{URL: "http://", Password: "p", Timeout: -1, LongPollTimeout: -1, MaxResponseBytes: 10},
			[]string{"no host", "Password is set", "Timeout -1ns", "LongPollTimeout -1ns", "MaxResponseBytes 10"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.Validate()
			if len(tc.errs) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if tc.o.Timeout != DefaultTimeout || tc.o.LongPollTimeout != DefaultLongPollTimeout || tc.o.MaxResponseBytes != DefaultMaxResponseBytes {
					t.Fatalf("defaults not filled: %+v", tc.o)
				}
				if !strings.HasPrefix(tc.o.URL, "http://") {
					t.Fatalf("URL %q", tc.o.URL)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, want := range tc.errs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

func TestKeepAlive(t *testing.T) {
	var mu sync.Mutex
	conns := 0
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, `{"result":7,"error":null,"id":"1"}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			conns++
			mu.Unlock()
		}
	}
	srv.Start()
	defer srv.Close()
	c := newTestClient(t, Options{URL: srv.URL})
	for i := 0; i < 5; i++ {
		if n, err := c.GetBlockCount(context.Background()); err != nil || n != 7 {
			t.Fatalf("call %d: %d, %v", i, n, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if conns != 1 {
		t.Fatalf("%d connections for 5 sequential calls, want 1 (keep-alive)", conns)
	}
}

func FuzzParseResponse(f *testing.F) {
	f.Add(200, []byte(`{"result":5,"error":null,"id":"1"}`))
	f.Add(500, []byte(`{"result":null,"error":{"code":-28,"message":"Loading"},"id":"1"}`))
	f.Add(200, []byte(`{"result":"rejected: already have block 00","error":null,"id":"1"}`))
	f.Add(200, []byte(``))
	f.Add(401, []byte(`{"error":{"code":"x"}}`))
	f.Fuzz(func(t *testing.T, status int, raw []byte) {
		res, err := parseResponse("m", status, raw)
		if err != nil {
			var re *RPCError
			var he *HTTPError
			if res != nil || !(errors.As(err, &re) || errors.As(err, &he)) {
				t.Fatalf("untyped error %v (result %q)", err, res)
			}
			return
		}
		if status != http.StatusOK || len(res) == 0 {
			t.Fatalf("accepted status %d result %q", status, res)
		}
		// A submitblock answer is either interpreted or an error, never a panic.
		_, _ = interpretSubmit(res)
	})
}

// Post hands back the node's answer as it came, an RPC error or a non-200 status included,
// with the client's credentials sent and the body bounded.
func TestPostPassesAnswersOn(t *testing.T) {
	reply := `{"result":null,"error":{"code":-8,"message":"bad"},"id":7}`
	s, srv := newScripted(t, 500, reply)
	c := newTestClient(t, Options{URL: srv.URL, User: "u", Password: "p", MaxResponseBytes: 1024})
	req := `{"jsonrpc":"1.0","id":7,"method":"getblock","params":["x"]}`
	status, raw, err := c.Post(context.Background(), "getblock", []byte(req))
	if err != nil || status != 500 || string(raw) != reply {
		t.Fatalf("Post = %d %q %v, want 500 and the body as sent", status, raw, err)
	}
	if body, auth := s.last(); body != req || auth != "Basic dTpw" {
		t.Fatalf("node got %q with %q", body, auth)
	}
	s.mu.Lock()
	s.reply = strings.Repeat("x", 2000)
	s.mu.Unlock()
	if _, _, err := c.Post(context.Background(), "getblock", []byte(req)); !errors.Is(err, ErrResponseTooLarge) {
		t.Fatalf("Post of a too large answer: %v", err)
	}
	srv.Close()
	if _, _, err := c.Post(context.Background(), "getblock", []byte(req)); err == nil || !strings.Contains(err.Error(), "node: getblock: ") {
		t.Fatalf("Post to a closed server: %v", err)
	}
}
