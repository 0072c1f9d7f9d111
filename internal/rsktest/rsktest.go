package rsktest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/btcsuite/btcd/wire/v2"
)

// Options configures a Server.
type Options struct {
	// Target is the RSK target as big-endian hex without 0x; empty: all ones (every header
	// meets it, for regtest parents).
	Target string
	// User and Password are the basic-auth credentials ("user", "pass" when empty).
	User, Password string
}

// Submission is one accepted mnr_submitBitcoinBlockPartialMerkle.
type Submission struct {
	BlockHashForMergedMining string // "0x" and 64 hex digits
	BitcoinBlockHash         string // display hex, as given
	Height                   int64  // the RSK height the block got
	Params                   [5]string
}

// Server is the fake RSK node.
type Server struct {
	URL            string
	User, Password string

	ln  net.Listener
	srv *http.Server

	mu       sync.Mutex
	height   int64
	target   [32]byte // big-endian
	work     string   // current blockHashForMergedMining
	parent   string
	notify   bool
	issued   map[string][32]byte // work hash -> its target
	subs     []Submission
	refused  []string
	down     bool
	getWorks int
}

// Start starts a server on a free 127.0.0.1 port, stopped at the end of the test.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	s, err := Listen(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Listen starts a server (Start without a testing.TB). Close stops it.
func Listen(o Options) (*Server, error) {
	if o.User == "" {
		o.User, o.Password = "user", "pass"
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{URL: "http://" + ln.Addr().String(), User: o.User, Password: o.Password, ln: ln, issued: map[string][32]byte{}}
	if o.Target == "" {
		o.Target = strings.Repeat("f", 64)
	}
	if err := s.SetTarget(o.Target); err != nil {
		ln.Close()
		return nil, err
	}
	s.mu.Lock()
	s.advanceLocked()
	s.mu.Unlock()
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve)}
	go s.srv.Serve(ln)
	return s, nil
}

// Close stops the server.
func (s *Server) Close() { _ = s.srv.Close() }

// SetTarget sets the target of the works issued from now on (big-endian hex, 1 to 64 digits).
func (s *Server) SetTarget(hexTarget string) error {
	d := strings.TrimPrefix(hexTarget, "0x")
	if len(d) == 0 || len(d) > 64 {
		return fmt.Errorf("rsktest: target %q", hexTarget)
	}
	b, err := hex.DecodeString(strings.Repeat("0", 64-len(d)) + d)
	if err != nil {
		return fmt.Errorf("rsktest: target %q: %w", hexTarget, err)
	}
	s.mu.Lock()
	copy(s.target[:], b)
	s.mu.Unlock()
	return nil
}

// NewWork moves the chain to new work (another node's block), with notify set.
func (s *Server) NewWork() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advanceLocked()
	return s.work
}

// advanceLocked makes the next work: a new RSK block at height+1 whose hash for merged mining
// is derived from the height (distinct per work).
func (s *Server) advanceLocked() {
	s.height++
	h := sha256.Sum256([]byte("rsktest work " + strconv.FormatInt(s.height, 10)))
	p := sha256.Sum256([]byte("rsktest parent " + strconv.FormatInt(s.height, 10)))
	s.work, s.parent, s.notify = "0x"+hex.EncodeToString(h[:]), "0x"+hex.EncodeToString(p[:]), true
	s.issued[s.work] = s.target
}

// Work returns the current blockHashForMergedMining.
func (s *Server) Work() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.work
}

// Height returns the RSK height of the current work.
func (s *Server) Height() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.height
}

// GetWorks returns how many mnr_getWork calls were answered.
func (s *Server) GetWorks() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.getWorks
}

// Submissions returns the accepted submissions in order.
func (s *Server) Submissions() []Submission {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Submission(nil), s.subs...)
}

// Refused returns the error messages of the submissions that failed verification.
func (s *Server) Refused() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.refused...)
}

// SetDown makes the server drop every request without an answer (down) or serve again.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

type request struct {
	JSONRPC string            `json:"jsonrpc"`
	ID      json.RawMessage   `json:"id"`
	Method  string            `json:"method"`
	Params  []json.RawMessage `json:"params"`
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	down := s.down
	s.mu.Unlock()
	if down {
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
				return
			}
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if u, p, ok := r.BasicAuth(); !ok || u != s.User || p != s.Password {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		return
	}
	var req request
	if err := json.Unmarshal(body, &req); err != nil || req.JSONRPC != "2.0" || len(req.ID) == 0 {
		writeJSON(w, req.ID, nil, -32600, "invalid JSON-RPC 2.0 request")
		return
	}
	switch req.Method {
	case "mnr_getWork":
		s.mu.Lock()
		res := map[string]any{"blockHashForMergedMining": s.work, "target": "0x" + hex.EncodeToString(s.target[:]),
			"feesPaidToMiner": "0", "notify": s.notify, "parentBlockHash": s.parent}
		s.notify = false
		s.getWorks++
		s.mu.Unlock()
		writeJSON(w, req.ID, res, 0, "")
	case "mnr_submitBitcoinBlockPartialMerkle":
		var p [5]string
		if len(req.Params) != 5 {
			writeJSON(w, req.ID, nil, -32602, fmt.Sprintf("want 5 params, got %d", len(req.Params)))
			return
		}
		for i := range p {
			if json.Unmarshal(req.Params[i], &p[i]) != nil {
				writeJSON(w, req.ID, nil, -32602, fmt.Sprintf("param %d is not a string", i+1))
				return
			}
		}
		sub, err := s.verify(p)
		if err != nil {
			s.mu.Lock()
			s.refused = append(s.refused, err.Error())
			s.mu.Unlock()
			writeJSON(w, req.ID, nil, -32603, err.Error())
			return
		}
		writeJSON(w, req.ID, map[string]any{"blockImportedResult": "IMPORTED_BEST", "blockHash": sub.BlockHashForMergedMining,
			"blockIncludedHeight": "0x" + strconv.FormatInt(sub.Height, 16)}, 0, "")
	default:
		writeJSON(w, req.ID, nil, -32601, "method not found: "+req.Method)
	}
}

func writeJSON(w http.ResponseWriter, id json.RawMessage, result any, code int, msg string) {
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	resp := map[string]any{"jsonrpc": "2.0", "id": id}
	if code != 0 {
		resp["error"] = map[string]any{"code": code, "message": msg}
	} else {
		resp["result"] = result
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

func dsha(b []byte) [32]byte {
	h := sha256.Sum256(b)
	return sha256.Sum256(h[:])
}

func reverse(b [32]byte) [32]byte {
	for i := 0; i < 16; i++ {
		b[i], b[31-i] = b[31-i], b[i]
	}
	return b
}

var tag = []byte("RSKBLOCK:")

// verify checks a submission as rskj does (see the package doc) and records it.
func (s *Server) verify(p [5]string) (Submission, error) {
	header, err := hex.DecodeString(p[1])
	if err != nil || len(header) != 80 {
		return Submission{}, fmt.Errorf("block header is not 80 bytes of hex")
	}
	blockHash := dsha(header)
	if disp := reverse(blockHash); hex.EncodeToString(disp[:]) != strings.ToLower(p[0]) {
		return Submission{}, fmt.Errorf("block hash %s is not the header's hash %x", p[0], disp)
	}
	cb, err := hex.DecodeString(p[2])
	if err != nil {
		return Submission{}, fmt.Errorf("coinbase is not hex")
	}
	var tx wire.MsgTx
	rd := bytes.NewReader(cb)
	if err := tx.DeserializeNoWitness(rd); err != nil || rd.Len() != 0 || len(tx.TxIn) != 1 || len(tx.TxOut) == 0 {
		return Submission{}, fmt.Errorf("coinbase does not deserialize as a one-input transaction without witness")
	}
	at := bytes.LastIndex(cb, tag)
	if at < 0 || len(cb) < at+len(tag)+32 {
		return Submission{}, fmt.Errorf("coinbase has no RSKBLOCK: tag followed by 32 bytes")
	}
	if trailing := len(cb) - (at + len(tag) + 32); trailing > 128 {
		return Submission{}, fmt.Errorf("%d bytes after the RSK hash in the coinbase (at most 128)", trailing)
	}
	rskHash := cb[at+len(tag) : at+len(tag)+32]
	last := tx.TxOut[len(tx.TxOut)-1].PkScript
	if len(last) != 43 || last[0] != 0x6a || last[1] != 0x29 || !bytes.Equal(last[2:11], tag) || !bytes.Equal(last[11:], rskHash) {
		return Submission{}, fmt.Errorf("the RSKBLOCK: output is not the coinbase's last output")
	}
	work := "0x" + hex.EncodeToString(rskHash)
	s.mu.Lock()
	target, known := s.issued[work]
	s.mu.Unlock()
	if !known {
		return Submission{}, fmt.Errorf("unknown block hash for merged mining %s", work)
	}
	n, err := strconv.ParseInt(p[4], 16, 32)
	if err != nil || n < 1 {
		return Submission{}, fmt.Errorf("transaction count %q is not positive hex", p[4])
	}
	hashes := strings.Split(p[3], " ")
	levels := 0
	for w := n; w > 1; w = (w + 1) / 2 {
		levels++
	}
	if len(hashes) != 1+levels {
		return Submission{}, fmt.Errorf("%d merkle hashes for %d transactions, want %d", len(hashes), n, 1+levels)
	}
	var root [32]byte
	for i, h := range hashes {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != 32 {
			return Submission{}, fmt.Errorf("merkle hash %d is not 64 hex digits", i)
		}
		if i == 0 {
			if txid := dsha(cb); !bytes.Equal(b, txid[:]) {
				return Submission{}, fmt.Errorf("first merkle hash %s is not the coinbase txid %x", h, txid)
			}
			copy(root[:], b)
			continue
		}
		root = dsha(append(root[:], b...))
	}
	if !bytes.Equal(root[:], header[36:68]) {
		return Submission{}, fmt.Errorf("merkle hashes fold to %x, not the header's merkle root %x", root, header[36:68])
	}
	// The header hash, read as a little-endian number, must not exceed the target.
	be := reverse(blockHash)
	if bytes.Compare(be[:], target[:]) > 0 {
		return Submission{}, fmt.Errorf("block hash %x is above the target %x", be, target)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := Submission{BlockHashForMergedMining: work, BitcoinBlockHash: strings.ToLower(p[0]), Height: s.height, Params: p}
	for _, e := range s.subs {
		if e.BlockHashForMergedMining == work {
			return Submission{}, fmt.Errorf("block %s already imported", work)
		}
	}
	s.subs = append(s.subs, sub)
	if work == s.work {
		s.advanceLocked()
	}
	return sub, nil
}
