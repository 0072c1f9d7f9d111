package ckpool

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashpool/hashpool/node"
)

// Bounds on what the proxy reads from either side.
const (
	maxHeaderLine = 8 << 10
	maxHeaders    = 64
	// maxRequestBody fits a submitblock of a 4 MB block in hex.
	maxRequestBody = 16 << 20
	// maxResponseBody fits a getblocktemplate of a full block in JSON.
	maxResponseBody = 64 << 20
)

// ProxyOptions configure a [Proxy].
type ProxyOptions struct {
	// Upstream is the node's JSON-RPC URL, http://127.x.y.z:port (loopback only).
	Upstream string
	// User and Password are the node's credentials; whatever the client
	// sent is replaced by them.
	User, Password string
	// Timeout bounds one upstream call (default 30 s) and one client
	// connection's request read.
	Timeout time.Duration
	// Log receives one line per failed request (nil: discarded).
	Log *slog.Logger
}

// Validate reports every problem with o.
func (o *ProxyOptions) Validate() error {
	var errs []error
	if !strings.HasPrefix(o.Upstream, "http://127.") {
		errs = append(errs, fmt.Errorf("upstream %q: want http://127.x.y.z:port (loopback only)", o.Upstream))
	}
	if o.User == "" {
		errs = append(errs, errors.New("upstream user: empty"))
	}
	if o.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %v: want ≥ 0", o.Timeout))
	}
	return errors.Join(errs...)
}

// Proxy is a JSON-RPC proxy between ckpool and btcd. ckpool writes
// bitcoind-style requests that btcd refuses or ignores; the proxy rewrites
// each one:
//
//   - "jsonrpc":"1.0" is added when absent, "params":[] when absent, and an
//     id when absent or null (btcd treats a request without an id as a
//     notification and answers nothing);
//   - getblocktemplate asks for "coinbasevalue" instead of "coinbasetxn"
//     (btcd answers coinbasetxn without coinbasevalue otherwise, and ckpool
//     reads coinbasevalue), and a bare 32-byte default_witness_commitment
//     (btcd's) is turned into the output script bitcoind returns
//     (OP_RETURN 0x24 aa21a9ed ‖ hash);
//   - the answer goes back as one line after an "HTTP/1.1 200 OK" status,
//     which is what ckpool's reader wants (it reads lines and parses the
//     first that starts with '{').
//
// A request is one HTTP/1.x POST with a Content-Length (ckpool ends its
// lines with a bare LF, so the proxy reads them itself rather than with
// net/http's server); the connection is closed after the answer, as ckpool
// does on its side.
type Proxy struct {
	opts   ProxyOptions
	log    *slog.Logger
	node   *node.Client
	nextID atomic.Int64

	// Requests and Failures count what went through.
	Requests, Failures atomic.Int64
}

// NewProxy returns a proxy to opts.Upstream.
func NewProxy(opts ProxyOptions) (*Proxy, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	nc, err := node.NewClient(node.Options{URL: opts.Upstream, User: opts.User, Password: opts.Password,
		Timeout: opts.Timeout, MaxResponseBytes: maxResponseBody})
	if err != nil {
		return nil, err
	}
	return &Proxy{opts: opts, log: log, node: nc}, nil
}

// Serve answers connections on ln until ctx ends, then closes ln and waits
// for the connections in flight. It returns nil after ctx ends.
func (p *Proxy) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		wg.Go(func() { p.serveConn(ctx, c) })
	}
}

func (p *Proxy) serveConn(ctx context.Context, c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * p.opts.Timeout))
	body, err := readRequest(bufio.NewReaderSize(c, 4096))
	if err != nil {
		p.Failures.Add(1)
		p.log.Warn("rpc proxy: bad request", "err", err)
		writeResponse(c, "400 Bad Request", []byte(`{"result":null,"error":{"code":-32700,"message":"`+jsonEscape(err.Error())+`"},"id":null}`))
		return
	}
	p.Requests.Add(1)
	out, err := p.Forward(ctx, body)
	if err != nil {
		p.Failures.Add(1)
		p.log.Warn("rpc proxy: forward", "err", err)
		out = []byte(`{"result":null,"error":{"code":-32603,"message":"` + jsonEscape(err.Error()) + `"},"id":null}`)
	}
	writeResponse(c, "200 OK", out)
}

// readRequest reads one HTTP request and returns its body: the request
// line, headers up to an empty line (LF or CRLF), a Content-Length body.
func readRequest(r *bufio.Reader) ([]byte, error) {
	line, err := readLine(r)
	if err != nil {
		return nil, fmt.Errorf("request line: %w", err)
	}
	if !strings.HasPrefix(line, "POST ") || !strings.Contains(line, " HTTP/1.") {
		return nil, fmt.Errorf("request line %.60q: want POST … HTTP/1.x", line)
	}
	length := -1
	for i := 0; ; i++ {
		if i > maxHeaders {
			return nil, fmt.Errorf("more than %d headers", maxHeaders)
		}
		h, err := readLine(r)
		if err != nil {
			return nil, fmt.Errorf("headers: %w", err)
		}
		if h == "" {
			break
		}
		k, v, ok := strings.Cut(h, ":")
		if !ok {
			return nil, fmt.Errorf("header %.60q: no colon", h)
		}
		if strings.EqualFold(strings.TrimSpace(k), "Content-Length") {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 0 || n > maxRequestBody {
				return nil, fmt.Errorf("content-length %.20q: want 0..%d", v, maxRequestBody)
			}
			length = n
		}
	}
	if length < 0 {
		return nil, errors.New("no Content-Length")
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	return body, nil
}

// readLine reads one line of at most maxHeaderLine bytes, without its LF
// or CRLF.
func readLine(r *bufio.Reader) (string, error) {
	var b []byte
	for {
		chunk, err := r.ReadSlice('\n')
		b = append(b, chunk...)
		if len(b) > maxHeaderLine {
			return "", fmt.Errorf("line longer than %d bytes", maxHeaderLine)
		}
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return "", err
		}
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

func writeResponse(w io.Writer, status string, body []byte) {
	body = bytes.TrimRight(body, "\r\n")
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", status, len(body)+1)
	b.Write(body)
	b.WriteByte('\n')
	_, _ = w.Write(b.Bytes())
}

func jsonEscape(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

// Forward rewrites one JSON-RPC request body (see [Proxy]), sends it to
// the node and returns the node's answer, itself rewritten for
// getblocktemplate. The answer is one line of JSON.
func (p *Proxy) Forward(ctx context.Context, body []byte) ([]byte, error) {
	req, method, origID, err := p.rewriteRequest(body)
	if err != nil {
		return nil, err
	}
	status, out, err := p.node.Post(ctx, method, req)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(out)) == 0 {
		return nil, fmt.Errorf("%s: empty answer (HTTP %d)", method, status)
	}
	return rewriteResponse(out, method, origID)
}

// rewriteRequest returns the request btcd accepts, its method and the id
// the client sent (nil when none).
func (p *Proxy) rewriteRequest(body []byte) ([]byte, string, json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, "", nil, fmt.Errorf("request: want one JSON object: %w", err)
	}
	var method string
	if err := json.Unmarshal(m["method"], &method); err != nil || method == "" {
		return nil, "", nil, errors.New("request: no method")
	}
	if _, ok := m["jsonrpc"]; !ok {
		m["jsonrpc"] = json.RawMessage(`"1.0"`)
	}
	origID := m["id"]
	if id := bytes.TrimSpace(origID); len(id) == 0 || string(id) == "null" {
		origID = nil
		m["id"] = json.RawMessage(strconv.FormatInt(p.nextID.Add(1), 10))
	}
	if ps := bytes.TrimSpace(m["params"]); len(ps) == 0 || string(ps) == "null" {
		m["params"] = json.RawMessage(`[]`)
	}
	if method == "getblocktemplate" {
		ps, err := rewriteGBTParams(m["params"])
		if err != nil {
			return nil, "", nil, err
		}
		m["params"] = ps
	}
	out, err := json.Marshal(m)
	return out, method, origID, err
}

// rewriteGBTParams swaps the coinbasetxn capability for coinbasevalue.
func rewriteGBTParams(raw json.RawMessage) (json.RawMessage, error) {
	var params []json.RawMessage
	if err := json.Unmarshal(raw, &params); err != nil {
		return nil, fmt.Errorf("getblocktemplate params: want an array: %w", err)
	}
	req := map[string]json.RawMessage{}
	if len(params) > 0 && string(bytes.TrimSpace(params[0])) != "null" {
		if err := json.Unmarshal(params[0], &req); err != nil {
			return nil, fmt.Errorf("getblocktemplate params[0]: want an object: %w", err)
		}
	}
	var caps []string
	if c, ok := req["capabilities"]; ok {
		if err := json.Unmarshal(c, &caps); err != nil {
			return nil, fmt.Errorf("getblocktemplate capabilities: want strings: %w", err)
		}
	}
	kept := []string{"coinbasevalue"}
	for _, c := range caps {
		if c != "coinbasetxn" && c != "coinbasevalue" {
			kept = append(kept, c)
		}
	}
	cb, _ := json.Marshal(kept)
	req["capabilities"] = cb
	if _, ok := req["rules"]; !ok {
		req["rules"] = json.RawMessage(`["segwit"]`)
	}
	r, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if len(params) == 0 {
		params = append(params, r)
	} else {
		params[0] = r
	}
	return json.Marshal(params)
}

// witnessScriptPrefix is OP_RETURN, push 36, the BIP141 commitment header.
const witnessScriptPrefix = "6a24aa21a9ed"

// rewriteResponse restores the client's id (when it sent one) and, for
// getblocktemplate, checks coinbasevalue and completes a bare witness
// commitment. The output is one line.
func rewriteResponse(out []byte, method string, origID json.RawMessage) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, fmt.Errorf("%s: answer is not a JSON object: %w", method, err)
	}
	if origID != nil {
		m["id"] = origID
	}
	if method == "getblocktemplate" && len(m["result"]) > 0 && string(m["result"]) != "null" {
		var res map[string]json.RawMessage
		if err := json.Unmarshal(m["result"], &res); err != nil {
			return nil, fmt.Errorf("getblocktemplate result: %w", err)
		}
		var cbv int64
		if err := json.Unmarshal(res["coinbasevalue"], &cbv); err != nil || cbv <= 0 {
			return nil, errors.New("getblocktemplate: the node's answer has no coinbasevalue")
		}
		var wc string
		if json.Unmarshal(res["default_witness_commitment"], &wc) == nil && len(wc) == 64 {
			res["default_witness_commitment"], _ = json.Marshal(witnessScriptPrefix + wc)
			r, err := json.Marshal(res)
			if err != nil {
				return nil, err
			}
			m["result"] = r
		}
	}
	return json.Marshal(m) // compact: one line
}
