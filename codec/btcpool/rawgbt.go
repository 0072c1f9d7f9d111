package btcpool

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
)

// RawGbt is the gbtmaker → jobmaker/blkmaker message (topic BtcRawGbt, spec §2.2).
type RawGbt struct {
	// CreatedAt is the unix time the template was fetched.
	CreatedAt uint32
	// BlockTemplateBase64 is the standard base64 of the whole JSON-RPC getblocktemplate
	// response text ({"result":...,"error":null,"id":"1"}), exactly as the node sent it.
	BlockTemplateBase64 string
	// GbtHash is dSHA of that response text in display hex (64 characters).
	GbtHash string
}

// AppendRawGbt appends the JSON of m with btcpool's fixed key order:
// {"created_at_ts":T,"block_template_base64":"...","gbthash":"..."}.
func AppendRawGbt(dst []byte, m *RawGbt) []byte {
	dst = append(dst, `{"created_at_ts":`...)
	dst = strconv.AppendUint(dst, uint64(m.CreatedAt), 10)
	dst = append(dst, `,"block_template_base64":`...)
	dst = appendJSONString(dst, m.BlockTemplateBase64)
	dst = append(dst, `,"gbthash":`...)
	dst = appendJSONString(dst, m.GbtHash)
	return append(dst, '}')
}

// DecodeRawGbt decodes a RawGbt message into m. The three keys are required with their types
// (created_at_ts an integer that fits uint32, the others strings); gbthash must be 64 hex
// characters because consumers key templates by it. Unknown keys are ignored.
func DecodeRawGbt(b []byte, m *RawGbt) error {
	p, o, err := parseObject(b, "RawGbt")
	if err != nil {
		return err
	}
	defer parsers.Put(p)
	j := jsonObject{o: o, msg: "RawGbt"}
	created := uint32(j.u64("created_at_ts", true, 1<<32-1))
	tmpl := j.str("block_template_base64", true)
	hash := j.str("gbthash", true)
	if j.err == nil {
		if _, ok := decodeDisplayHash(hash); !ok {
			j.fail("gbthash", "is not 64 hex characters")
		}
	}
	if j.err != nil {
		return j.err
	}
	*m = RawGbt{CreatedAt: created, BlockTemplateBase64: tmpl, GbtHash: hash}
	return nil
}

// NewRawGbt builds the message gbtmaker publishes for one getblocktemplate response: resp is
// the complete response body as received, created the unix time of the call.
func NewRawGbt(resp []byte, created uint32) RawGbt {
	return RawGbt{
		CreatedAt:           created,
		BlockTemplateBase64: base64.StdEncoding.EncodeToString(resp),
		GbtHash:             GbtHash(resp),
	}
}

// GbtHash returns btcpool's gbthash of a response text: dSHA-256 rendered in display hex.
func GbtHash(resp []byte) string {
	h1 := sha256.Sum256(resp)
	h := sha256.Sum256(h1[:])
	return string(appendDisplayHash(make([]byte, 0, 64), &h))
}

// Template returns the decoded getblocktemplate response text carried by m (a new slice).
func (m *RawGbt) Template() ([]byte, error) {
	out, err := base64.StdEncoding.DecodeString(m.BlockTemplateBase64)
	if err != nil {
		return nil, errors.Join(ErrMalformed, errors.New("RawGbt: block_template_base64: "+err.Error()))
	}
	return out, nil
}
