package btcpool

import (
	"errors"
	"strconv"
	"unicode/utf8"

	"github.com/valyala/fastjson"
)

// parsers is shared by the JSON decoders. RawGbt, StratumJob and CommonEvent messages arrive
// at most a few per second, so a pool is enough; nothing here is on the per-share path.
var parsers fastjson.ParserPool

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string literal: quotes, backslashes and control
// characters are escaped, invalid UTF-8 becomes U+FFFD (as encoding/json does), so user-chosen
// worker and agent names can never break the surrounding object.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\uFFFD"...) // raw, so re-encoding the decoded text is identical
			i++
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but break JavaScript consumers of the APIs.
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendKey appends `"name":` (name must not need escaping; all keys are constants).
func appendKey(dst []byte, comma bool, name string) []byte {
	if comma {
		dst = append(dst, ',')
	}
	dst = append(dst, '"')
	dst = append(dst, name...)
	return append(dst, '"', ':')
}

func appendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, "true"...)
	}
	return append(dst, "false"...)
}

// fieldError names the key that was missing or had the wrong type.
type fieldError struct {
	msg, key, what string
}

func (e *fieldError) Error() string {
	return e.msg + ": key " + strconv.Quote(e.key) + " " + e.what
}

// ErrMalformed is wrapped by every decode error in this package; errors.Is(err, ErrMalformed)
// tells bad input apart from other failures.
var ErrMalformed = errors.New("btcpool: malformed message")

func (e *fieldError) Unwrap() error { return ErrMalformed }

// jsonObject wraps a parsed object with typed getters that remember the first error, so
// decoders read every field and report one error at the end.
type jsonObject struct {
	o   *fastjson.Object
	msg string
	err error
}

func (j *jsonObject) fail(key, what string) {
	if j.err == nil {
		j.err = &fieldError{msg: j.msg, key: key, what: what}
	}
}

func (j *jsonObject) get(key string, required bool) *fastjson.Value {
	v := j.o.Get(key)
	if v == nil && required {
		j.fail(key, "is missing")
	}
	return v
}

// str returns the string at key ("" when absent and optional).
func (j *jsonObject) str(key string, required bool) string {
	v := j.get(key, required)
	if v == nil {
		return ""
	}
	b, err := v.StringBytes()
	if err != nil {
		j.fail(key, "is not a string")
		return ""
	}
	return string(b)
}

func (j *jsonObject) u64(key string, required bool, max uint64) uint64 {
	v := j.get(key, required)
	if v == nil {
		return 0
	}
	n, err := v.Uint64()
	if err != nil || n > max {
		j.fail(key, "is not an unsigned integer in range")
		return 0
	}
	return n
}

func (j *jsonObject) i64(key string, required bool, min, max int64) int64 {
	v := j.get(key, required)
	if v == nil {
		return 0
	}
	n, err := v.Int64()
	if err != nil || n < min || n > max {
		j.fail(key, "is not an integer in range")
		return 0
	}
	return n
}

// optStr returns the string at key and whether key holds a string; it never records an error.
func (j *jsonObject) optStr(key string) (string, bool) {
	v := j.o.Get(key)
	if v == nil {
		return "", false
	}
	b, err := v.StringBytes()
	if err != nil {
		return "", false
	}
	return string(b), true
}

// optU64 returns the unsigned integer at key and whether it is one within max.
func (j *jsonObject) optU64(key string, max uint64) (uint64, bool) {
	v := j.o.Get(key)
	if v == nil {
		return 0, false
	}
	n, err := v.Uint64()
	if err != nil || n > max {
		return 0, false
	}
	return n, true
}

// optI64 returns the integer at key and whether it is one within [min, max].
func (j *jsonObject) optI64(key string, min, max int64) (int64, bool) {
	v := j.o.Get(key)
	if v == nil {
		return 0, false
	}
	n, err := v.Int64()
	if err != nil || n < min || n > max {
		return 0, false
	}
	return n, true
}

// optBool returns the boolean at key and whether key holds one.
func (j *jsonObject) optBool(key string) (bool, bool) {
	v := j.o.Get(key)
	if v == nil {
		return false, false
	}
	b, err := v.Bool()
	return b, err == nil
}

// parseObject parses b as one JSON object with a pooled parser. The caller must call
// parsers.Put(p) when done with the returned object.
func parseObject(b []byte, msg string) (*fastjson.Parser, *fastjson.Object, error) {
	p := parsers.Get()
	v, err := p.ParseBytes(b)
	if err != nil {
		parsers.Put(p)
		return nil, nil, errors.Join(ErrMalformed, errors.New(msg+": "+err.Error()))
	}
	o, err := v.Object()
	if err != nil {
		parsers.Put(p)
		return nil, nil, errors.Join(ErrMalformed, errors.New(msg+": not a JSON object"))
	}
	return p, o, nil
}

// isHex reports whether s is hex text (either case) of even length; "" is valid.
func isHex(s string) bool {
	if len(s)%2 != 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if unhex(s[i]) > 15 {
			return false
		}
	}
	return true
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10
	}
	return 255
}

// decodeDisplayHash parses 64 display-hex characters into the 32-byte internal (reversed) order.
func decodeDisplayHash(s string) ([32]byte, bool) {
	var h [32]byte
	if len(s) != 64 {
		return h, false
	}
	for i := 0; i < 32; i++ {
		hi, lo := unhex(s[2*i]), unhex(s[2*i+1])
		if hi > 15 || lo > 15 {
			return h, false
		}
		h[31-i] = hi<<4 | lo
	}
	return h, true
}

// appendDisplayHash appends the 32 internal-order bytes of h as 64 display-hex characters.
func appendDisplayHash(dst []byte, h *[32]byte) []byte {
	for i := 31; i >= 0; i-- {
		dst = append(dst, hexDigits[h[i]>>4], hexDigits[h[i]&0xf])
	}
	return dst
}
