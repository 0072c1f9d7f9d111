package jobmaker

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/btcsuite/btcd/wire/v2"

	"github.com/hashpool/hashpool/sha"
)

// Bounds on what a template may hold. A block is at most 4 MB of witness
// data, which is 8 MB of hex plus the JSON around it.
const (
	// MaxTemplateSize bounds the decoded getblocktemplate response text.
	MaxTemplateSize = 32 << 20
	// maxTemplateTxs bounds the transaction count (a 4 MWU block holds
	// fewer than 25,000 of the smallest transactions).
	maxTemplateTxs = 100_000
	// maxMoney is 21 million BTC in satoshis.
	maxMoney = 21_000_000 * 100_000_000
)

// Template is the part of a getblocktemplate result a job is built from,
// parsed and checked once when the RawGbt is accepted.
type Template struct {
	GbtHash       [32]byte // dSHA of the whole response text, internal order
	Height        int32
	PrevHash      [32]byte // internal (little-endian) order
	Bits          uint32
	CurTime       uint32
	MinTime       uint32
	Version       int32
	CoinbaseValue int64
	// Commitment is the full witness commitment output script
	// (6a24aa21a9ed + 32 bytes), or nil when the template has none.
	Commitment []byte
	// TxIDs are the ids (non-witness hashes) of the template's
	// transactions in order; the coinbase is not among them.
	TxIDs [][32]byte
	// Branch is the coinbase's merkle branch over TxIDs (sha.MerkleBranch),
	// computed once here because every job from the template uses it.
	Branch [][32]byte

	branchHex string // Branch in display hex, concatenated (StratumJob merkleBranch)
}

// Empty reports whether the template holds no transaction besides the
// coinbase.
func (t *Template) Empty() bool { return len(t.TxIDs) == 0 }

// gbtResponse is the JSON-RPC response text gbtmaker puts, base64-encoded,
// in a RawGbt. Pointers tell a missing key from a zero value; integer
// fields reject floats and strings.
type gbtResponse struct {
	Result *struct {
		PreviousBlockHash *string `json:"previousblockhash"`
		Height            *int64  `json:"height"`
		CoinbaseValue     *int64  `json:"coinbasevalue"`
		Bits              *string `json:"bits"`
		MinTime           *int64  `json:"mintime"`
		CurTime           *int64  `json:"curtime"`
		Version           *int64  `json:"version"`
		Transactions      *[]struct {
			Data string `json:"data"`
		} `json:"transactions"`
		DefaultWitnessCommitment string `json:"default_witness_commitment"`
	} `json:"result"`
}

// ParseTemplate parses the getblocktemplate response text carried by a
// RawGbt (the whole `{"result":...,"error":null,"id":...}` object) and
// checks every field a job needs. It decodes every transaction to compute
// its txid, so a template with a malformed transaction is refused here
// rather than producing jobs whose blocks the node would reject.
func ParseTemplate(text []byte) (*Template, error) {
	if len(text) > MaxTemplateSize {
		return nil, fmt.Errorf("jobmaker: template is %d bytes, limit %d", len(text), MaxTemplateSize)
	}
	var resp gbtResponse
	if err := json.Unmarshal(text, &resp); err != nil {
		return nil, fmt.Errorf("jobmaker: template JSON: %w", err)
	}
	r := resp.Result
	if r == nil {
		return nil, errors.New("jobmaker: template has no result object")
	}
	var missing []string
	for _, f := range []struct {
		name string
		ok   bool
	}{
		{"previousblockhash", r.PreviousBlockHash != nil},
		{"height", r.Height != nil},
		{"coinbasevalue", r.CoinbaseValue != nil},
		{"bits", r.Bits != nil},
		{"curtime", r.CurTime != nil},
		{"version", r.Version != nil},
		{"transactions", r.Transactions != nil},
	} {
		if !f.ok {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("jobmaker: template result lacks %v", missing)
	}

	t := &Template{GbtHash: sha.DoubleSHA256(text)}
	var errs []error
	if h := *r.Height; h < 1 || h >= 1<<31 {
		errs = append(errs, fmt.Errorf("height %d out of range", h))
	} else {
		t.Height = int32(h)
	}
	if v := *r.CoinbaseValue; v < 0 || v > maxMoney {
		errs = append(errs, fmt.Errorf("coinbasevalue %d out of range", v))
	} else {
		t.CoinbaseValue = v
	}
	if ct := *r.CurTime; ct < 0 || ct > math.MaxUint32 {
		errs = append(errs, fmt.Errorf("curtime %d out of range", ct))
	} else {
		t.CurTime = uint32(ct)
	}
	t.MinTime = t.CurTime // btcpool: mintime if it is an integer, else curtime
	if r.MinTime != nil {
		if mt := *r.MinTime; mt < 0 || mt > math.MaxUint32 {
			errs = append(errs, fmt.Errorf("mintime %d out of range", mt))
		} else {
			t.MinTime = uint32(mt)
		}
	}
	// Core prints the version as a signed 32-bit number; accept the
	// unsigned reading too.
	if v := *r.Version; v < math.MinInt32 || v > math.MaxUint32 {
		errs = append(errs, fmt.Errorf("version %d out of range", v))
	} else {
		t.Version = int32(uint32(v))
	}
	if h, err := sha.ParseDisplayHex(*r.PreviousBlockHash); err != nil {
		errs = append(errs, fmt.Errorf("previousblockhash %q: %w", *r.PreviousBlockHash, err))
	} else {
		t.PrevHash = h
	}
	if b, err := hex.DecodeString(*r.Bits); err != nil || len(b) != 4 {
		errs = append(errs, fmt.Errorf("bits %q is not 8 hex digits", *r.Bits))
	} else {
		t.Bits = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	}
	if c, err := parseCommitment(r.DefaultWitnessCommitment); err != nil {
		errs = append(errs, err)
	} else {
		t.Commitment = c
	}
	txs := *r.Transactions
	if len(txs) > maxTemplateTxs {
		errs = append(errs, fmt.Errorf("%d transactions, limit %d", len(txs), maxTemplateTxs))
		txs = nil
	}
	if len(errs) == 0 && len(txs) > 0 {
		t.TxIDs = make([][32]byte, len(txs))
		for i := range txs {
			id, err := txid(txs[i].Data)
			if err != nil {
				errs = append(errs, fmt.Errorf("transactions[%d]: %w", i, err))
				break
			}
			t.TxIDs[i] = id
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("jobmaker: bad template: %w", errors.Join(errs...))
	}
	t.Branch = sha.MerkleBranch(t.TxIDs)
	hexBuf := make([]byte, 0, 64*len(t.Branch))
	for i := range t.Branch {
		hexBuf = sha.AppendDisplayHex(hexBuf, &t.Branch[i])
	}
	t.branchHex = string(hexBuf)
	return t, nil
}

// txid decodes a transaction from hex (with or without witness) and returns
// the hash of its non-witness serialization.
func txid(data string) ([32]byte, error) {
	raw, err := hex.DecodeString(data)
	if err != nil {
		return [32]byte{}, fmt.Errorf("data is not hex: %w", err)
	}
	var tx wire.MsgTx
	rd := bytes.NewReader(raw)
	if err := tx.Deserialize(rd); err != nil {
		return [32]byte{}, fmt.Errorf("data is not a transaction: %w", err)
	}
	if rd.Len() != 0 {
		return [32]byte{}, fmt.Errorf("%d bytes after the transaction", rd.Len())
	}
	return tx.TxHash(), nil
}

// parseCommitment accepts Bitcoin Core's default_witness_commitment (the
// full output script, 6a24aa21a9ed + 32-byte hash) and btcd's (the bare
// 32-byte hash, which needs the script header in front). Empty means the
// template has no witness transactions (or the node predates segwit).
func parseCommitment(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("default_witness_commitment is not hex: %w", err)
	}
	switch {
	case len(b) == 32:
		return append(append(make([]byte, 0, 38), witnessCommitmentHeader...), b...), nil
	case len(b) >= 38 && len(b) <= 80 && bytes.HasPrefix(b, witnessCommitmentHeader):
		return b, nil
	}
	return nil, fmt.Errorf("default_witness_commitment %q is neither a 32-byte hash nor a commitment script", s)
}

// prevHashBeStr renders the previous block hash the way mining.notify
// carries it: the internal bytes in eight 4-byte words, each word
// byte-reversed.
func prevHashBeStr(prev [32]byte) string {
	var b [32]byte
	for w := 0; w < 32; w += 4 {
		b[w], b[w+1], b[w+2], b[w+3] = prev[w+3], prev[w+2], prev[w+1], prev[w]
	}
	return hex.EncodeToString(b[:])
}
