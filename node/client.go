package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Defaults used by [Options.Validate] for zero fields.
const (
	DefaultTimeout          = 30 * time.Second
	DefaultLongPollTimeout  = 10 * time.Minute
	DefaultMaxResponseBytes = 64 << 20
	// maxCookieBytes bounds the cookie file; bitcoind writes "__cookie__:" and 64 hex characters.
	maxCookieBytes = 1024
	// maxErrorBody bounds how much of an unexpected body is quoted in an error.
	maxErrorBody = 256
)

// Options configures a [Client]. The zero value of every field except URL is usable: Validate
// fills the defaults.
type Options struct {
	// URL is the node's RPC endpoint, e.g. "http://127.0.0.1:8332". A bare "host:port" is taken
	// as http. Only http is supported (neither bitcoind nor btcd with --notls serve TLS).
	URL string
	// User and Password are the rpcuser / rpcpassword of the node (HTTP basic auth). When User
	// is empty and CookieFile is set, the cookie file is used instead.
	User     string
	Password string
	// CookieFile is bitcoind's cookie file ("<datadir>/.cookie", or "<datadir>/<network>/.cookie"
	// for test networks) holding "__cookie__:<hex>". It is read again on every call, so a
	// restarted bitcoind's new cookie is picked up without restarting the pool.
	CookieFile string
	// Timeout bounds every call except a long poll (default 30 s).
	Timeout time.Duration
	// LongPollTimeout bounds a getblocktemplate long poll (default 10 min); the caller polls again.
	LongPollTimeout time.Duration
	// MaxResponseBytes bounds the body of any response (default 64 MiB, enough for a 4 MWU
	// template hex-encoded twice over).
	MaxResponseBytes int64
	// Logger receives debug messages; nil keeps the client silent.
	Logger *slog.Logger
}

// Validate fills zero fields with their defaults and reports every problem at once.
func (o *Options) Validate() error {
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.LongPollTimeout == 0 {
		o.LongPollTimeout = DefaultLongPollTimeout
	}
	if o.MaxResponseBytes == 0 {
		o.MaxResponseBytes = DefaultMaxResponseBytes
	}
	var errs []error
	if o.URL == "" {
		errs = append(errs, errors.New("node: URL is empty (want http://host:port)"))
	} else {
		if !strings.Contains(o.URL, "://") {
			o.URL = "http://" + o.URL
		}
		u, err := url.Parse(o.URL)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("node: URL %q: %w", o.URL, err))
		case u.Scheme != "http":
			errs = append(errs, fmt.Errorf("node: URL %q: scheme must be http", o.URL))
		case u.Host == "":
			errs = append(errs, fmt.Errorf("node: URL %q has no host", o.URL))
		}
	}
	if o.User == "" && o.Password != "" {
		errs = append(errs, errors.New("node: Password is set but User is empty"))
	}
	if o.Timeout < 0 {
		errs = append(errs, fmt.Errorf("node: Timeout %v is negative", o.Timeout))
	}
	if o.LongPollTimeout < 0 {
		errs = append(errs, fmt.Errorf("node: LongPollTimeout %v is negative", o.LongPollTimeout))
	}
	if o.MaxResponseBytes < 1024 {
		errs = append(errs, fmt.Errorf("node: MaxResponseBytes %d is below 1024", o.MaxResponseBytes))
	}
	return errors.Join(errs...)
}

// Client is a JSON-RPC 1.0 client for one node. It is safe for concurrent use; a long poll
// occupies one HTTP connection while other calls use others.
type Client struct {
	opts Options
	http *http.Client
	log  *slog.Logger
}

// NewClient validates opts and returns a client. It does not contact the node.
func NewClient(opts Options) (*Client, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy:                  nil, // a node is never reached through an HTTP proxy
		DialContext:            (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:           8,
		MaxIdleConnsPerHost:    8,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
		DisableCompression:     true,
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{opts: opts, http: &http.Client{Transport: tr}, log: log}, nil
}

// URL returns the node's RPC endpoint as configured.
func (c *Client) URL() string { return c.opts.URL }

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// RPCError is an error object returned by the node ({"code":..,"message":..}).
type RPCError struct {
	Method  string
	Code    int
	Message string
}

func (e *RPCError) Error() string {
	return fmt.Sprintf("node: %s: rpc error %d: %s", e.Method, e.Code, e.Message)
}

// Common RPC error codes (Bitcoin Core's rpc/protocol.h; btcd uses the same numbers).
const (
	CodeMisc              = -1     // btcd: "Command unimplemented"
	CodeMethodNotFound    = -32601 // JSON-RPC: method not found
	CodeDeserialization   = -22    // undecodable block or transaction
	CodeVerify            = -25    // transaction or block rejected
	CodeInWarmup          = -28    // node still loading
	CodeClientNotDownload = -10    // initial block download in progress
)

// HTTPError is a reply that is not a JSON-RPC response: a status other than 200 without an
// error object (401 for bad credentials), or an empty or unparseable body.
type HTTPError struct {
	Method string
	Status int
	Body   string // the start of the body, for the operator
}

func (e *HTTPError) Error() string {
	hint := ""
	switch e.Status {
	case http.StatusUnauthorized, http.StatusForbidden:
		hint = " (check the rpc user and password, or the cookie file, and the node's rpcallowip)"
	case http.StatusOK:
		hint = " (not a JSON-RPC 1.0 response)"
	}
	return fmt.Sprintf("node: %s: HTTP %d%s: %q", e.Method, e.Status, hint, e.Body)
}

// ErrResponseTooLarge is returned when a response body exceeds Options.MaxResponseBytes.
var ErrResponseTooLarge = errors.New("node: response exceeds MaxResponseBytes")

// response is the JSON-RPC 1.0 envelope.
type response struct {
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
	ID     json.RawMessage `json:"id"`
}

// Call sends method with params (marshalled as a JSON array; nil means []) and unmarshals the
// result into result, which may be nil to ignore it.
func (c *Client) Call(ctx context.Context, method string, params []any, result any) error {
	if params == nil {
		params = []any{}
	}
	p, err := json.Marshal(params)
	if err != nil {
		return fmt.Errorf("node: %s: marshal params: %w", method, err)
	}
	body := requestBody(method, p)
	_, res, err := c.do(ctx, method, body, c.opts.Timeout)
	if err != nil {
		return err
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal(res, result); err != nil {
		return fmt.Errorf("node: %s: decode result: %w", method, err)
	}
	return nil
}

// requestBody builds {"jsonrpc":"1.0","id":"1","method":M,"params":P}. id "1" is what btcpool
// sends, and it appears in the getblocktemplate response text that gbtmaker hashes.
func requestBody(method string, params []byte) []byte {
	b := make([]byte, 0, 48+len(method)+len(params))
	b = append(b, `{"jsonrpc":"1.0","id":"1","method":`...)
	b = appendJSONString(b, method)
	b = append(b, `,"params":`...)
	b = append(b, params...)
	return append(b, '}')
}

func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}

// do posts body and returns the whole response text and its result. A non-null error object
// is returned as *RPCError.
func (c *Client) do(ctx context.Context, method string, body []byte, timeout time.Duration) (raw, result []byte, err error) {
	status, raw, err := c.post(ctx, method, body, timeout)
	if err != nil {
		return nil, nil, err
	}
	result, err = parseResponse(method, status, raw)
	return raw, result, err
}

// Post sends body, a complete JSON-RPC request for method, with the client's credentials and
// Timeout, and returns the HTTP status and the whole answer as the node sent it (at most
// MaxResponseBytes), without looking into it: for a proxy that passes answers on. The error
// is for a call that got no answer.
func (c *Client) Post(ctx context.Context, method string, body []byte) (status int, raw []byte, err error) {
	return c.post(ctx, method, body, c.opts.Timeout)
}

func (c *Client) post(ctx context.Context, method string, body []byte, timeout time.Duration) (status int, raw []byte, err error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.opts.URL, bytes.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("node: %s: %w", method, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if err := c.setAuth(req); err != nil {
		return 0, nil, fmt.Errorf("node: %s: %w", method, err)
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("node: %s: %w", method, err)
	}
	defer resp.Body.Close()
	raw, err = readBounded(resp.Body, c.opts.MaxResponseBytes)
	if err != nil {
		return 0, nil, fmt.Errorf("node: %s: read response: %w", method, err)
	}
	c.log.Debug("rpc", "method", method, "status", resp.StatusCode, "bytes", len(raw), "took", time.Since(start))
	return resp.StatusCode, raw, nil
}

// parseResponse checks the envelope and returns the result bytes ("null" for a null result).
func parseResponse(method string, status int, raw []byte) ([]byte, error) {
	var env response
	if len(bytes.TrimSpace(raw)) == 0 || json.Unmarshal(raw, &env) != nil {
		return nil, &HTTPError{Method: method, Status: status, Body: quoteStart(raw)}
	}
	if len(env.Error) > 0 && string(env.Error) != "null" {
		var e struct {
			Code    *int    `json:"code"`
			Message *string `json:"message"`
		}
		if json.Unmarshal(env.Error, &e) != nil || e.Code == nil {
			return nil, &HTTPError{Method: method, Status: status, Body: quoteStart(raw)}
		}
		re := &RPCError{Method: method, Code: *e.Code}
		if e.Message != nil {
			re.Message = *e.Message
		}
		return nil, re
	}
	if status != http.StatusOK || env.Result == nil {
		return nil, &HTTPError{Method: method, Status: status, Body: quoteStart(raw)}
	}
	return env.Result, nil
}

func quoteStart(b []byte) string {
	if len(b) > maxErrorBody {
		b = b[:maxErrorBody]
	}
	return string(b)
}

// readBounded reads all of r, failing with ErrResponseTooLarge past max bytes.
func readBounded(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, ErrResponseTooLarge
	}
	return b, nil
}

func (c *Client) setAuth(req *http.Request) error {
	switch {
	case c.opts.User != "":
		req.SetBasicAuth(c.opts.User, c.opts.Password)
	case c.opts.CookieFile != "":
		user, pass, err := ReadCookie(c.opts.CookieFile)
		if err != nil {
			return err
		}
		req.SetBasicAuth(user, pass)
	}
	return nil
}

// ReadCookie reads bitcoind's cookie file ("__cookie__:<hex>") and returns the user and password.
func ReadCookie(path string) (user, pass string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", fmt.Errorf("cookie file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCookieBytes+1))
	if err != nil {
		return "", "", fmt.Errorf("cookie file %s: %w", path, err)
	}
	if len(b) > maxCookieBytes {
		return "", "", fmt.Errorf("cookie file %s is larger than %d bytes", path, maxCookieBytes)
	}
	s := strings.TrimSpace(string(b))
	user, pass, ok := strings.Cut(s, ":")
	if !ok || user == "" || pass == "" {
		return "", "", fmt.Errorf("cookie file %s: want user:password on one line", path)
	}
	return user, pass, nil
}
