package stratum

import (
	"strconv"
	"unsafe"
)

// MaxDepth is the deepest nesting of arrays and objects a line may have.
// Deeper input is reported as ErrNotJSON: no stratum method needs more than 3.
const MaxDepth = 32

// Kind is the JSON type of a Value.
type Kind uint8

// The kinds of JSON value. KindInvalid is the zero Value (absent key or index).
const (
	KindInvalid Kind = iota
	KindNull
	KindFalse
	KindTrue
	KindNumber
	KindString
	KindArray
	KindObject
)

var kindNames = [...]string{"invalid", "null", "false", "true", "number", "string", "array", "object"}

// String returns the JSON name of the kind ("string", "array", ...).
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is one JSON value of a parsed line, kept as a slice of that line.
//
// For KindString, Raw holds the bytes between the quotes with escape sequences
// NOT decoded: this is what btcpool's jsmn-based parser compares and stores, so
// matching on Raw is matching btcpool. Use AppendUnescaped for the decoded text.
// For every other kind Raw is the value's exact JSON text ("123", "true",
// "[...]", "{...}").
//
// Raw aliases the input line: it is valid until the caller reuses or discards
// that buffer (for a gnet connection: until Discard/Next on the peeked bytes).
type Value struct {
	Kind Kind
	Raw  []byte
}

// Exists reports whether v holds a value (it is false for a missing key or index).
func (v Value) Exists() bool { return v.Kind != KindInvalid }

// IsNull reports whether v is JSON null.
func (v Value) IsNull() bool { return v.Kind == KindNull }

// Bool returns the value of a JSON true or false, and whether v is one of them.
func (v Value) Bool() (b, ok bool) {
	switch v.Kind {
	case KindTrue:
		return true, true
	case KindFalse:
		return false, true
	}
	return false, false
}

// Int64 returns an integer number (no fraction, no exponent) that fits int64.
func (v Value) Int64() (int64, bool) {
	if v.Kind != KindNumber {
		return 0, false
	}
	n, ok, _ := parseInt(v.Raw)
	return n, ok
}

// Uint64 returns a non-negative integer number that fits uint64.
func (v Value) Uint64() (uint64, bool) {
	if v.Kind != KindNumber || len(v.Raw) == 0 || v.Raw[0] == '-' {
		return 0, false
	}
	var n uint64
	for _, c := range v.Raw {
		if c < '0' || c > '9' {
			return 0, false
		}
		if n > (1<<64-1)/10 || n*10 > 1<<64-1-uint64(c-'0') {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

// Float64 returns any JSON number as the nearest float64 (±Inf when out of range).
func (v Value) Float64() (float64, bool) {
	if v.Kind != KindNumber || len(v.Raw) == 0 {
		return 0, false
	}
	// strconv does not keep the string (its errors copy it), so a zero-copy view is safe.
	f, err := strconv.ParseFloat(unsafe.String(&v.Raw[0], len(v.Raw)), 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return f, true
		}
		return 0, false
	}
	return f, true
}

// Str returns the raw (still escaped) contents of a JSON string.
func (v Value) Str() ([]byte, bool) {
	if v.Kind != KindString {
		return nil, false
	}
	return v.Raw, true
}

// AppendUnescaped appends the decoded text of a JSON string to dst. Invalid
// \u escapes and lone surrogates decode to U+FFFD, as encoding/json does.
// For a non-string value dst is returned unchanged.
func (v Value) AppendUnescaped(dst []byte) []byte {
	if v.Kind != KindString {
		return dst
	}
	return appendUnescaped(dst, v.Raw)
}

// Len returns the number of elements of an array or members of an object (0 otherwise).
func (v Value) Len() int {
	n := 0
	switch v.Kind {
	case KindArray:
		it := v.Elems()
		for {
			if _, ok := it.Next(); !ok {
				return n
			}
			n++
		}
	case KindObject:
		it := v.Members()
		for {
			if _, _, ok := it.NextMember(); !ok {
				return n
			}
			n++
		}
	}
	return 0
}

// Index returns the i-th element of an array (the zero Value if there is none).
func (v Value) Index(i int) Value {
	if v.Kind != KindArray || i < 0 {
		return Value{}
	}
	it := v.Elems()
	for {
		e, ok := it.Next()
		if !ok {
			return Value{}
		}
		if i == 0 {
			return e
		}
		i--
	}
}

// Get returns the member of an object whose raw key equals key (the first one
// if the key repeats), or the zero Value. Keys are compared undecoded, like btcpool.
func (v Value) Get(key string) Value {
	if v.Kind != KindObject {
		return Value{}
	}
	it := v.Members()
	for {
		k, e, ok := it.NextMember()
		if !ok {
			return Value{}
		}
		if string(k) == key {
			return e
		}
	}
}

// Elems returns an iterator over the elements of an array (empty for other kinds).
func (v Value) Elems() Iter {
	if v.Kind != KindArray || len(v.Raw) < 2 {
		return Iter{}
	}
	return Iter{s: scanner{b: v.Raw[:len(v.Raw)-1], i: 1}, kind: KindArray}
}

// Members returns an iterator over the members of an object (empty for other kinds).
func (v Value) Members() Iter {
	if v.Kind != KindObject || len(v.Raw) < 2 {
		return Iter{}
	}
	return Iter{s: scanner{b: v.Raw[:len(v.Raw)-1], i: 1}, kind: KindObject}
}

// Iter walks the elements of an array or the members of an object without
// allocating. The zero Iter is empty.
type Iter struct {
	s    scanner
	kind Kind
	n    int
}

// Next returns the next array element. For an object iterator use NextMember.
func (it *Iter) Next() (Value, bool) {
	if it.kind != KindArray {
		return Value{}, false
	}
	return it.next()
}

func (it *Iter) next() (Value, bool) {
	s := &it.s
	s.ws()
	if s.i >= len(s.b) {
		return Value{}, false
	}
	if it.n > 0 {
		if s.b[s.i] != ',' {
			it.kind = KindInvalid
			return Value{}, false
		}
		s.i++
	}
	it.n++
	v, ok := s.value(1)
	if !ok {
		it.kind = KindInvalid
		return Value{}, false
	}
	return v, true
}

// NextMember returns the next object member: its raw (undecoded) key and value.
func (it *Iter) NextMember() (key []byte, v Value, ok bool) {
	if it.kind != KindObject {
		return nil, Value{}, false
	}
	s := &it.s
	s.ws()
	if s.i >= len(s.b) {
		return nil, Value{}, false
	}
	if it.n > 0 {
		if s.b[s.i] != ',' {
			it.kind = KindInvalid
			return nil, Value{}, false
		}
		s.i++
		s.ws()
	}
	it.n++
	key, ok = s.str()
	if ok {
		s.ws()
		ok = s.i < len(s.b) && s.b[s.i] == ':'
	}
	if ok {
		s.i++
		v, ok = s.value(1)
	}
	if !ok {
		it.kind = KindInvalid
		return nil, Value{}, false
	}
	return key, v, true
}

// scanner is a strict JSON (RFC 8259) validator that records value spans.
// It does not check UTF-8, like encoding/json's Valid.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// value scans one value at s.i (leading whitespace allowed) at nesting depth d.
func (s *scanner) value(d int) (Value, bool) {
	s.ws()
	if s.i >= len(s.b) {
		return Value{}, false
	}
	start := s.i
	switch c := s.b[s.i]; {
	case c == '"':
		raw, ok := s.str()
		return Value{Kind: KindString, Raw: raw}, ok
	case c == '{':
		if !s.object(d + 1) {
			return Value{}, false
		}
		return Value{Kind: KindObject, Raw: s.b[start:s.i]}, true
	case c == '[':
		if !s.array(d + 1) {
			return Value{}, false
		}
		return Value{Kind: KindArray, Raw: s.b[start:s.i]}, true
	case c == 't':
		return s.lit(KindTrue, "true")
	case c == 'f':
		return s.lit(KindFalse, "false")
	case c == 'n':
		return s.lit(KindNull, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		if !s.number() {
			return Value{}, false
		}
		return Value{Kind: KindNumber, Raw: s.b[start:s.i]}, true
	}
	return Value{}, false
}

func (s *scanner) lit(k Kind, word string) (Value, bool) {
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		return Value{}, false
	}
	v := Value{Kind: k, Raw: s.b[s.i : s.i+len(word)]}
	s.i += len(word)
	return v, true
}

// strPlain marks the bytes a string can hold without a closer look: not
// '"', not '\\', not a control character.
var strPlain = func() (t [256]bool) {
	for c := range t {
		t[c] = c >= 0x20 && c != '"' && c != '\\'
	}
	return t
}()

// str scans a string at s.i and returns its raw contents.
func (s *scanner) str() ([]byte, bool) {
	b := s.b
	i := s.i
	if i >= len(b) || b[i] != '"' {
		return nil, false
	}
	i++
	start := i
	for {
		for i < len(b) && strPlain[b[i]] {
			i++
		}
		if i >= len(b) {
			return nil, false
		}
		switch b[i] {
		case '"':
			s.i = i + 1
			return b[start:i], true
		case '\\':
			if i+1 >= len(b) {
				return nil, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return nil, false
				}
				for _, h := range b[i+2 : i+6] {
					if unhex(h) < 0 {
						return nil, false
					}
				}
				i += 6
			default:
				return nil, false
			}
		default: // control character
			return nil, false
		}
	}
}

func (s *scanner) number() bool {
	b, i := s.b, s.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	s.i = i
	return true
}

func (s *scanner) array(d int) bool {
	if d > MaxDepth {
		return false
	}
	if s.open(']') {
		return true
	}
	for {
		if _, ok := s.value(d); !ok {
			return false
		}
		if more, ok := s.next(']'); !more {
			return ok
		}
	}
}

func (s *scanner) object(d int) bool {
	if d > MaxDepth {
		return false
	}
	if s.open('}') {
		return true
	}
	for {
		if _, ok := s.key(); !ok {
			return false
		}
		if _, ok := s.value(d); !ok {
			return false
		}
		if more, ok := s.next('}'); !more {
			return ok
		}
	}
}

// open consumes the '[' or '{' at s.i and reports whether the container is empty, i.e. close
// follows (after white space), which it consumes too.
func (s *scanner) open(close byte) bool {
	s.i++
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == close {
		s.i++
		return true
	}
	return false
}

// key scans an object member's name and the ':' after it.
func (s *scanner) key() ([]byte, bool) {
	s.ws()
	k, ok := s.str()
	if !ok {
		return nil, false
	}
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != ':' {
		return nil, false
	}
	s.i++
	return k, true
}

// next scans what follows an element or a member: ',' (more is true) or close (the end: ok
// and not more). Anything else is an error (not ok).
func (s *scanner) next(close byte) (more, ok bool) {
	s.ws()
	if s.i >= len(s.b) {
		return false, false
	}
	switch s.b[s.i] {
	case ',':
		s.i++
		return true, true
	case close:
		s.i++
		return false, true
	}
	return false, false
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// parseInt parses a JSON integer literal. ok is false for fractions, exponents
// or non-numbers; sat is the value saturated to int64 range (C strtoll style),
// used when echoing an id.
func parseInt(b []byte) (n int64, ok bool, sat int64) {
	if len(b) == 0 {
		return 0, false, 0
	}
	neg := b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 {
		return 0, false, 0
	}
	var u uint64
	over := false
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false, 0
		}
		if !over {
			if u > (1<<64-1)/10 {
				over = true
				continue
			}
			u = u*10 + uint64(c-'0')
			if u < uint64(c-'0') {
				over = true
			}
		}
	}
	limit := uint64(1<<63 - 1)
	if neg {
		limit = 1 << 63
	}
	if over || u > limit {
		if neg {
			return 0, false, -1 << 63
		}
		return 0, false, 1<<63 - 1
	}
	if neg {
		n = -int64(u)
	} else {
		n = int64(u)
	}
	return n, true, n
}

// appendUnescaped decodes the raw contents of a valid JSON string.
func appendUnescaped(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' || i+1 >= len(raw) {
			dst = append(dst, c)
			i++
			continue
		}
		switch raw[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, n := decodeU(raw[i:])
			if n == 0 {
				dst = append(dst, raw[i])
				i++
				continue
			}
			dst = appendRune(dst, r)
			i += n
			continue
		default: // '"', '\\', '/'
			dst = append(dst, raw[i+1])
		}
		i += 2
	}
	return dst
}

// decodeU decodes \uXXXX (and a following low surrogate) at the start of b,
// returning the rune and the bytes consumed (0 if malformed).
func decodeU(b []byte) (rune, int) {
	r1, ok := hex4(b)
	if !ok {
		return 0, 0
	}
	if r1 < 0xD800 || r1 > 0xDFFF {
		return r1, 6
	}
	if r1 <= 0xDBFF && len(b) >= 12 && b[6] == '\\' && b[7] == 'u' {
		if r2, ok := hex4(b[6:]); ok && r2 >= 0xDC00 && r2 <= 0xDFFF {
			return (r1-0xD800)<<10 | (r2 - 0xDC00) + 0x10000, 12
		}
	}
	return 0xFFFD, 6
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return 0, false
	}
	var r rune
	for _, c := range b[2:6] {
		h := unhex(c)
		if h < 0 {
			return 0, false
		}
		r = r<<4 | rune(h)
	}
	return r, true
}

func appendRune(dst []byte, r rune) []byte {
	switch {
	case r < 0x80:
		return append(dst, byte(r))
	case r < 0x800:
		return append(dst, 0xC0|byte(r>>6), 0x80|byte(r)&0x3F)
	case r < 0x10000:
		return append(dst, 0xE0|byte(r>>12), 0x80|byte(r>>6)&0x3F, 0x80|byte(r)&0x3F)
	default:
		return append(dst, 0xF0|byte(r>>18), 0x80|byte(r>>12)&0x3F, 0x80|byte(r>>6)&0x3F, 0x80|byte(r)&0x3F)
	}
}
