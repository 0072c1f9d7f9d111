package node

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/valyala/fastjson"
)

// gbtBody is btcpool's exact getblocktemplate request (spec §2.1), space before the colon included.
const gbtBody = `{"jsonrpc":"1.0","id":"1","method":"getblocktemplate","params":[{"rules" : ["segwit"]}]}`

// witnessCommitmentPrefix is OP_RETURN, a 36-byte push, and the BIP141 commitment header.
const witnessCommitmentPrefix = "6a24aa21a9ed"

// Template is a parsed getblocktemplate response.
type Template struct {
	// Raw is the entire response text exactly as the node sent it
	// ({"result":{...},"error":null,"id":"1"}). gbtmaker hashes and forwards it unchanged.
	Raw []byte

	// The fields btcpool requires (spec §2.1).
	PreviousBlockHash string // display hex
	Height            int64
	CoinbaseValue     int64  // satoshis
	Bits              string // 8 hex characters, compact target
	MinTime           int64
	CurTime           int64
	Version           int64

	// Optional fields.
	LongPollID               string       // empty when the node does not offer long polling
	DefaultWitnessCommitment string       // as the node sent it: a script (Core) or the bare 32-byte hash (btcd)
	Target                   string       // 64 hex characters
	Rules                    []string     // absent on btcd
	Transactions             []TemplateTx // in block order, coinbase excluded
}

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

// ParseTemplate parses a whole getblocktemplate response text and validates the result with
// btcpool's rules (spec §2.1): previousblockhash, bits (strings), height, coinbasevalue, mintime,
// curtime and version (integers) must be present with those types. It also checks what those
// values must look like (a 64-hex hash, 8-hex bits, no negative heights or values) and that
// transactions, when present, are well-formed. The returned Template keeps raw (not a copy);
// its strings are copies.
func ParseTemplate(raw []byte) (*Template, error) {
	p := templateParsers.Get()
	defer templateParsers.Put(p)
	env, err := p.ParseBytes(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: response is not JSON: %v", ErrBadTemplate, err)
	}
	if e := env.Get("error"); e != nil && e.Type() != fastjson.TypeNull {
		return nil, fmt.Errorf("%w: error is not null: %s", ErrBadTemplate, quoteStart(e.MarshalTo(nil)))
	}
	res := env.Get("result")
	if res == nil || res.Type() != fastjson.TypeObject {
		return nil, fmt.Errorf("%w: result is not an object", ErrBadTemplate)
	}
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	// str returns the string field name; ok is false when it is missing or not a string.
	str := func(name string, required bool) (s string, ok bool) {
		v := res.Get(name)
		if v == nil || v.Type() == fastjson.TypeNull {
			if required {
				fail("%s is missing", name)
			}
			return "", false
		}
		b, err := v.StringBytes()
		if err != nil {
			fail("%s is not a string", name)
			return "", false
		}
		return string(b), true
	}
	integer := func(name string) int64 {
		v := res.Get(name)
		if v == nil || v.Type() == fastjson.TypeNull {
			fail("%s is missing", name)
			return 0
		}
		n, err := v.Int64()
		if err != nil {
			fail("%s is not an integer", name)
		}
		return n
	}
	t := &Template{Raw: raw}
	var ok bool
	if t.PreviousBlockHash, ok = str("previousblockhash", true); ok && !isHash(t.PreviousBlockHash) {
		fail("previousblockhash is not 64 hex characters")
	}
	if t.Height = integer("height"); t.Height < 0 || t.Height >= 1<<31 {
		fail("height %d is out of range", t.Height)
	}
	if t.CoinbaseValue = integer("coinbasevalue"); t.CoinbaseValue < 0 {
		fail("coinbasevalue %d is negative", t.CoinbaseValue)
	}
	if t.Bits, ok = str("bits", true); ok && !isHexLen(t.Bits, 8) {
		fail("bits is not 8 hex characters")
	}
	t.MinTime = integer("mintime")
	t.CurTime = integer("curtime")
	t.Version = integer("version")
	t.LongPollID, _ = str("longpollid", false)
	t.Target, _ = str("target", false)
	t.DefaultWitnessCommitment, _ = str("default_witness_commitment", false)
	if c := t.DefaultWitnessCommitment; c != "" && !isHexLen(c, 64) && !(isHexLen(c, 76) && strings.HasPrefix(c, witnessCommitmentPrefix)) {
		fail("default_witness_commitment is neither a 32-byte hash nor a commitment script")
	}
	if v := res.Get("rules"); v != nil && v.Type() != fastjson.TypeNull {
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
	if v := res.Get("transactions"); v != nil && v.Type() != fastjson.TypeNull {
		if err := parseTransactions(v, t); err != "" {
			fail("%s", err)
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrBadTemplate, strings.Join(errs, "; "))
	}
	return t, nil
}

// parseTransactions fills t.Transactions from the transactions array; it returns the first
// problem found, or "".
func parseTransactions(v *fastjson.Value, t *Template) string {
	a, err := v.Array()
	if err != nil {
		return "transactions is not an array"
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
