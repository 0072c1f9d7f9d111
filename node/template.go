package node

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/btcsuite/btcd/wire/v2"
	"github.com/valyala/fastjson"
)

// gbtBody is btcpool's exact getblocktemplate request (spec §2.1), space before the colon included.
const gbtBody = `{"jsonrpc":"1.0","id":"1","method":"getblocktemplate","params":[{"rules" : ["segwit"]}]}`

// witnessCommitmentPrefix is OP_RETURN, a 36-byte push, and the BIP141 commitment header.
const witnessCommitmentPrefix = "6a24aa21a9ed"

// Bounds on what a template may hold; a template beyond them is refused rather than held.
const (
	// MaxTemplateSize bounds a whole getblocktemplate response text (a main-net one is
	// 3–11 MB).
	MaxTemplateSize = 32 << 20
	// MaxTemplateTxs bounds the transaction count (a 4 MWU block holds fewer than 25,000 of
	// the smallest transactions).
	MaxTemplateTxs = 100_000
	// MaxTemplateTxBytes bounds the decoded transactions together (a block serializes to at
	// most 4 MB).
	MaxTemplateTxBytes = 8 << 20
	// maxMoney is 21 million BTC in satoshis.
	maxMoney = 21_000_000 * 100_000_000
)

// Template is a parsed getblocktemplate response.
type Template struct {
	// Raw is the entire response text exactly as the node sent it
	// ({"result":{...},"error":null,"id":"1"}). gbtmaker hashes and forwards it unchanged.
	Raw []byte

	// The fields btcpool requires (spec §2.1). Under [TemplateRules] that do not require a
	// field, a missing one is the zero value.
	PreviousBlockHash string // display hex
	Height            int64  // 1 .. 2^31-1
	CoinbaseValue     int64  // satoshis, 0 .. 21 million BTC
	Bits              string // 8 hex characters, compact target
	MinTime           int64  // 0 .. 2^32-1; curtime when the template has none (btcpool's jobmaker)
	CurTime           int64  // 0 .. 2^32-1
	Version           int64  // a 32-bit number, signed (Core) or unsigned

	// Optional fields.
	LongPollID               string       // empty when the node does not offer long polling
	DefaultWitnessCommitment string       // as the node sent it: a script (Core) or the bare 32-byte hash (btcd)
	Target                   string       // 64 hex characters
	Rules                    []string     // absent on btcd
	Transactions             []TemplateTx // in block order, coinbase excluded

	// Filled only under TemplateRules.DecodeTransactions: each transaction's bytes (exactly its
	// own serialization, witness included) and its txid (internal byte order), computed here
	// rather than taken from the node's "txid".
	TxBytes [][]byte
	TxIDs   [][32]byte
}

// TemplateField names a getblocktemplate result field a consumer may require.
type TemplateField uint16

// Fields [TemplateRules] can require.
const (
	FieldPreviousBlockHash TemplateField = 1 << iota
	FieldHeight
	FieldCoinbaseValue
	FieldBits
	FieldMinTime
	FieldCurTime
	FieldVersion
	FieldTransactions
)

// TemplateRules says what a consumer needs of a template beyond the checks every template
// passes (well-formed JSON, a null error, a result object, every present field of the right
// type and range). One parser serves gbtmaker, jobmaker and blockmaker, so a template one of
// them accepts is never one another refuses for a reason that concerns both.
type TemplateRules struct {
	// Require lists the fields that must be present (null counts as missing).
	Require TemplateField
	// DecodeTransactions decodes every transaction into TxBytes and TxIDs, refusing one that
	// is not exactly its own serialization (trailing bytes, a witness flag with no witness):
	// such a transaction would make every block of the template invalid.
	DecodeTransactions bool
}

// Rules of the three consumers. gbtmaker publishes only what btcpool's gbtmaker would (spec
// §2.1); jobmaker needs the fields of a job plus the transactions (mintime defaults to
// curtime); blockmaker needs only the transactions, so that no template a job was made from
// can be refused by the block maker.
var (
	GbtmakerRules = TemplateRules{Require: FieldPreviousBlockHash | FieldHeight | FieldCoinbaseValue | FieldBits |
		FieldMinTime | FieldCurTime | FieldVersion}
	JobmakerRules = TemplateRules{Require: FieldPreviousBlockHash | FieldHeight | FieldCoinbaseValue | FieldBits |
		FieldCurTime | FieldVersion | FieldTransactions, DecodeTransactions: true}
	BlockmakerRules = TemplateRules{DecodeTransactions: true}
)

// TemplateError is every reason a template was refused. It matches [ErrBadTemplate] with
// errors.Is.
type TemplateError struct {
	Missing  []string // required fields that are absent, in the order of the result's definition
	Problems []string // everything else
}

func (e *TemplateError) Error() string {
	parts := make([]string, 0, len(e.Missing)+len(e.Problems))
	for _, m := range e.Missing {
		parts = append(parts, m+" is missing")
	}
	parts = append(parts, e.Problems...)
	return ErrBadTemplate.Error() + ": " + strings.Join(parts, "; ")
}

// Is makes errors.Is(err, ErrBadTemplate) hold.
func (e *TemplateError) Is(target error) bool { return target == ErrBadTemplate }

// TemplateTx is one entry of a template's transactions array.
type TemplateTx struct {
	Data    string  `json:"data"`   // the serialized transaction, witness included, hex
	TxID    string  `json:"txid"`   // display hex
	Hash    string  `json:"hash"`   // wtxid, display hex
	Fee     int64   `json:"fee"`    // satoshis
	SigOps  int64   `json:"sigops"` // cost
	Weight  int64   `json:"weight"` // weight units
	Depends []int64 `json:"depends"`
}

// ErrBadTemplate wraps every reason ParseTemplate rejects a template for.
var ErrBadTemplate = errors.New("node: bad block template")

// GetBlockTemplate calls getblocktemplate with the segwit rule. With an empty longPollID it
// sends btcpool's exact request and returns at once (Options.Timeout applies). With a
// longPollID (from a previous template) the node holds the call until the template changes, a
// new block arrives or Options.LongPollTimeout passes; ctx cancels it.
//
// The returned template has passed [ParseTemplate]'s checks. On a bad template the error wraps
// [ErrBadTemplate]; an error object from the node is an *RPCError (bitcoind answers -10 during
// initial block download, btcd -10 or -9 when not current).
func (c *Client) GetBlockTemplate(ctx context.Context, longPollID string) (*Template, error) {
	body := []byte(gbtBody)
	timeout := c.opts.Timeout
	if longPollID != "" {
		b := make([]byte, 0, len(gbtBody)+len(longPollID)+24)
		b = append(b, gbtBody[:len(gbtBody)-3]...) // up to and excluding `}]}`
		b = append(b, `,"longpollid":`...)
		b = appendJSONString(b, longPollID)
		body = append(b, "}]}"...)
		timeout = c.opts.LongPollTimeout
	}
	raw, _, err := c.do(ctx, "getblocktemplate", body, timeout)
	if err != nil {
		return nil, err
	}
	return ParseTemplate(raw)
}

// ParseTemplate parses a whole getblocktemplate response text with [GbtmakerRules]:
// previousblockhash, bits (strings), height, coinbasevalue, mintime, curtime and version
// (integers) must be present with those types (btcpool's rules, spec §2.1). It also checks what
// those values must look like (a 64-hex hash, 8-hex bits, values in range) and that
// transactions, when present, are well-formed. The returned Template keeps raw (not a copy);
// its strings are copies. Every error is a *[TemplateError].
func ParseTemplate(raw []byte) (*Template, error) { return ParseTemplateWith(raw, GbtmakerRules) }

// ParseTemplateWith is [ParseTemplate] with the given rules: the one getblocktemplate parser of
// the pool (gbtmaker, jobmaker and blockmaker call it with their rules).
func ParseTemplateWith(raw []byte, rules TemplateRules) (*Template, error) {
	e := &TemplateError{}
	fail := func(format string, args ...any) { e.Problems = append(e.Problems, fmt.Sprintf(format, args...)) }
	if len(raw) > MaxTemplateSize {
		fail("response is %d bytes, limit %d", len(raw), MaxTemplateSize)
		return nil, e
	}
	p := templateParsers.Get()
	defer templateParsers.Put(p)
	env, err := p.ParseBytes(raw)
	if err != nil {
		fail("response is not JSON: %v", err)
		return nil, e
	}
	if v := env.Get("error"); v != nil && v.Type() != fastjson.TypeNull {
		fail("error is not null: %s", quoteStart(v.MarshalTo(nil)))
	}
	res := env.Get("result")
	if res == nil || res.Type() != fastjson.TypeObject {
		fail("no result: result is not an object")
		return nil, e
	}
	if len(e.Problems) > 0 {
		return nil, e
	}
	// field returns the value of name, or nil (noting it when required) when it is missing.
	field := func(f TemplateField, name string) *fastjson.Value {
		v := res.Get(name)
		if v == nil || v.Type() == fastjson.TypeNull {
			if rules.Require&f != 0 {
				e.Missing = append(e.Missing, name)
			}
			return nil
		}
		return v
	}
	str := func(f TemplateField, name string) (s string, ok bool) {
		v := field(f, name)
		if v == nil {
			return "", false
		}
		b, err := v.StringBytes()
		if err != nil {
			fail("%s is not a string", name)
			return "", false
		}
		return string(b), true
	}
	integer := func(f TemplateField, name string, lo, hi int64) (n int64, ok bool) {
		v := field(f, name)
		if v == nil {
			return 0, false
		}
		n, err := v.Int64()
		if err != nil {
			fail("%s is not a JSON integer", name)
			return 0, false
		}
		if n < lo || n > hi {
			fail("%s %d is out of range", name, n)
			return 0, false
		}
		return n, true
	}
	t := &Template{Raw: raw}
	var ok bool
	if t.PreviousBlockHash, ok = str(FieldPreviousBlockHash, "previousblockhash"); ok && !isHash(t.PreviousBlockHash) {
		fail("previousblockhash is not 64 hex characters")
	}
	t.Height, _ = integer(FieldHeight, "height", 1, math.MaxInt32)
	if v := field(FieldCoinbaseValue, "coinbasevalue"); v != nil {
		switch n, err := v.Int64(); {
		case err != nil:
			fail("coinbasevalue is not a JSON integer")
		case n < 0:
			fail("coinbasevalue %d is negative", n)
		case n > maxMoney:
			fail("coinbasevalue %d is above 21 million BTC", n)
		default:
			t.CoinbaseValue = n
		}
	}
	if t.Bits, ok = str(FieldBits, "bits"); ok && !isHexLen(t.Bits, 8) {
		fail("bits is not 8 hex characters")
	}
	minTime, hasMin := integer(FieldMinTime, "mintime", 0, math.MaxUint32)
	t.CurTime, _ = integer(FieldCurTime, "curtime", 0, math.MaxUint32)
	t.MinTime = t.CurTime // btcpool's jobmaker: mintime if it is an integer, else curtime
	if hasMin {
		t.MinTime = minTime
	}
	t.Version, _ = integer(FieldVersion, "version", math.MinInt32, math.MaxUint32)
	t.LongPollID, _ = str(0, "longpollid")
	t.Target, _ = str(0, "target")
	t.DefaultWitnessCommitment, _ = str(0, "default_witness_commitment")
	if c := t.DefaultWitnessCommitment; c != "" && !isHexLen(c, 64) && !(isHexLen(c, 76) && strings.HasPrefix(c, witnessCommitmentPrefix)) {
		fail("default_witness_commitment is neither a 32-byte hash nor a commitment script")
	}
	if v := field(0, "rules"); v != nil {
		a, err := v.Array()
		if err != nil {
			fail("rules is not an array")
		}
		for _, r := range a {
			b, err := r.StringBytes()
			if err != nil {
				fail("rules holds a non-string")
				break
			}
			t.Rules = append(t.Rules, string(b))
		}
	}
	if v := field(FieldTransactions, "transactions"); v != nil {
		if err := parseTransactions(v, t); err != "" {
			fail("%s", err)
		} else if rules.DecodeTransactions && len(e.Problems) == 0 && len(e.Missing) == 0 {
			if err := decodeTransactions(t); err != "" {
				fail("%s", err)
			}
		}
	}
	if len(e.Problems) > 0 || len(e.Missing) > 0 {
		return nil, e
	}
	return t, nil
}

// decodeTransactions fills t.TxBytes and t.TxIDs from t.Transactions; it returns the first
// problem found, or "".
func decodeTransactions(t *Template) string {
	t.TxBytes = make([][]byte, len(t.Transactions))
	t.TxIDs = make([][32]byte, len(t.Transactions))
	total := 0
	for i := range t.Transactions {
		raw, err := hex.DecodeString(t.Transactions[i].Data)
		if err != nil {
			return fmt.Sprintf("transactions[%d]: data is not hex: %v", i, err)
		}
		if total += len(raw); total > MaxTemplateTxBytes {
			return fmt.Sprintf("transactions exceed %d bytes", MaxTemplateTxBytes)
		}
		var tx wire.MsgTx
		if err := tx.Deserialize(bytes.NewReader(raw)); err != nil {
			return fmt.Sprintf("transactions[%d]: data is not a transaction: %v", i, err)
		}
		// Trailing bytes, or a witness flag with no witness, would go into the block as sent
		// and make it invalid: the transaction must be exactly its own serialization.
		if n := tx.SerializeSize(); n != len(raw) {
			return fmt.Sprintf("transactions[%d]: %d bytes, its serialization is %d", i, len(raw), n)
		}
		t.TxBytes[i] = raw
		t.TxIDs[i] = tx.TxHash()
	}
	return ""
}

// parseTransactions fills t.Transactions from the transactions array; it returns the first
// problem found, or "".
func parseTransactions(v *fastjson.Value, t *Template) string {
	a, err := v.Array()
	if err != nil {
		return "transactions is not an array"
	}
	if len(a) > MaxTemplateTxs {
		return fmt.Sprintf("%d transactions, limit %d", len(a), MaxTemplateTxs)
	}
	t.Transactions = make([]TemplateTx, len(a))
	for i, e := range a {
		if e.Type() != fastjson.TypeObject {
			return fmt.Sprintf("transactions[%d] is not an object", i)
		}
		tx := &t.Transactions[i]
		dv := e.Get("data")
		if dv == nil {
			return fmt.Sprintf("transactions[%d].data is missing", i)
		}
		data, err := dv.StringBytes()
		if err != nil || len(data) < 20 || len(data)%2 != 0 || !isHexLen(string(data), len(data)) {
			return fmt.Sprintf("transactions[%d].data is not a hex transaction", i)
		}
		tx.Data = string(data)
		for _, f := range []struct {
			name string
			dst  *string
		}{{"txid", &tx.TxID}, {"hash", &tx.Hash}} {
			fv := e.Get(f.name)
			if fv == nil {
				continue
			}
			b, err := fv.StringBytes()
			if err != nil || !isHash(string(b)) {
				return fmt.Sprintf("transactions[%d].%s is not a hash", i, f.name)
			}
			*f.dst = string(b)
		}
		for _, f := range []struct {
			name string
			dst  *int64
		}{{"fee", &tx.Fee}, {"sigops", &tx.SigOps}, {"weight", &tx.Weight}} {
			fv := e.Get(f.name)
			if fv == nil {
				continue
			}
			n, err := fv.Int64()
			if err != nil {
				return fmt.Sprintf("transactions[%d].%s is not an integer", i, f.name)
			}
			*f.dst = n
		}
		if depv := e.Get("depends"); depv != nil {
			deps, err := depv.Array()
			if err != nil {
				return fmt.Sprintf("transactions[%d].depends is not an array", i)
			}
			for _, d := range deps {
				n, err := d.Int64()
				if err != nil {
					return fmt.Sprintf("transactions[%d].depends holds a non-integer", i)
				}
				tx.Depends = append(tx.Depends, n)
			}
		}
	}
	return ""
}

// templateParsers reuses fastjson parsers (one is not safe for concurrent use).
var templateParsers fastjson.ParserPool

// WitnessCommitmentScript returns the coinbase output script for the template's witness
// commitment in hex, accepting both forms nodes send: Bitcoin Core's full script
// ("6a24aa21a9ed" + hash) and btcd's bare 32-byte hash, which gets the prefix added. It returns
// "" when the template has no commitment.
func (t *Template) WitnessCommitmentScript() string {
	c := t.DefaultWitnessCommitment
	if len(c) == 64 {
		return witnessCommitmentPrefix + c
	}
	return c
}

// isHexLen reports whether s is exactly n hex characters.
func isHexLen(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
