package stratum

import (
	"errors"
	"strconv"
)

// Errors reported by Parse, ParseRequest and Message.Submit.
var (
	// ErrNotJSON: the line is not one valid JSON value (or nests deeper than
	// MaxDepth). btcpool logs and drops such a line without a reply.
	ErrNotJSON = errors.New("stratum: line is not valid JSON")
	// ErrIllegalParams: valid JSON, but not a request btcpool accepts (method
	// not a non-empty string, params not an array, or bad submit params).
	// The engine answers it with StatusIllegalParams (27) and the parsed id.
	ErrIllegalParams = errors.New("stratum: illegal params")
)

// MaxIndexedParams is how many leading params Parse records for O(1) access by
// Message.Param. Later params are still counted and reachable through Params.
const MaxIndexedParams = 8

// Method names of spec §4.5, as they appear on the wire.
const (
	MethodSubscribe           = "mining.subscribe"
	MethodAuthorize           = "mining.authorize"
	MethodConfigure           = "mining.configure"
	MethodSubmit              = "mining.submit"
	MethodSuggestTarget       = "mining.suggest_target"
	MethodSuggestDifficulty   = "mining.suggest_difficulty"
	MethodExtranonceSubscribe = "mining.extranonce.subscribe"
	MethodGetCapabilities     = "agent.get_capabilities"
	MethodSetDifficulty       = "mining.set_difficulty"
	MethodNotify              = "mining.notify"
	MethodSetVersionMask      = "mining.set_version_mask"
	MethodReconnect           = "client.reconnect"
)

// idKind says how an ID is echoed.
type idKind uint8

const (
	idNull idKind = iota
	idNumber
	idString
)

// ID is a request id as btcpool echoes it (spec §4.4): an integer is echoed
// as a number, a string is echoed quoted with its raw bytes unchanged, and
// anything else (null, fractions, booleans, arrays, objects, no id) as null.
//
// An ID taken from a parsed line aliases that line (see Value); call Clone
// to keep it longer. The zero ID is null.
type ID struct {
	kind idKind
	num  int64
	raw  []byte
}

// NullID returns the null id (used by notifications).
func NullID() ID { return ID{} }

// NumberID returns an integer id.
func NumberID(n int64) ID { return ID{kind: idNumber, num: n} }

// StringID returns a string id. raw is placed between quotes as-is, so it must
// already be valid JSON string contents (as an id parsed from a line is).
func StringID(raw []byte) ID { return ID{kind: idString, raw: raw} }

// idFromValue applies btcpool's echo rule: integers (saturated to int64, like
// strtoll) as numbers, strings quoted, everything else null.
func idFromValue(v Value) ID {
	switch v.Kind {
	case KindNumber:
		if _, isInt, sat := parseInt(v.Raw); isInt || isIntLiteral(v.Raw) {
			return ID{kind: idNumber, num: sat}
		}
	case KindString:
		return ID{kind: idString, raw: v.Raw}
	}
	return ID{}
}

// isIntLiteral reports whether b is -?digits (an integer too large for int64 is still an integer).
func isIntLiteral(b []byte) bool {
	if len(b) > 0 && b[0] == '-' {
		b = b[1:]
	}
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// IsNull reports whether the id is echoed as null.
func (id ID) IsNull() bool { return id.kind == idNull }

// Number returns the id's integer value if it is a number.
func (id ID) Number() (int64, bool) { return id.num, id.kind == idNumber }

// String returns the id's raw string contents if it is a string.
func (id ID) String() ([]byte, bool) { return id.raw, id.kind == idString }

// Clone returns a copy that no longer aliases the parsed line (allocates for string ids).
func (id ID) Clone() ID {
	if id.kind == idString {
		id.raw = append([]byte(nil), id.raw...)
	}
	return id
}

// AppendJSON appends the id as it is echoed in a response: 123, "abc" or null.
func (id ID) AppendJSON(dst []byte) []byte {
	switch id.kind {
	case idNumber:
		return strconv.AppendInt(dst, id.num, 10)
	case idString:
		dst = append(dst, '"')
		dst = append(dst, id.raw...)
		return append(dst, '"')
	}
	return append(dst, "null"...)
}

// Message is one parsed stratum line: a request or notification (method,
// params) or a response (result, error). Fields of keys that are absent are
// the zero Value. When a key repeats, the first occurrence counts.
//
// Every slice in a Message aliases the parsed line: it stays valid until the
// caller reuses or discards that buffer (for a gnet connection, until the
// peeked bytes are discarded). Reusing one Message per connection keeps
// parsing free of allocations.
type Message struct {
	ID      ID
	RawID   Value // the id exactly as sent (ID applies btcpool's echo rule to it)
	Method  Value // the "method" member (Method.Raw is the raw method name when it is a string)
	Params  Value // the "params" member
	Result  Value // the "result" member (responses)
	Error   Value // the "error" member (responses)
	NParams int   // number of elements of Params when it is an array

	param [MaxIndexedParams]Value
}

// Param returns the i-th element of the params array (the zero Value if absent).
func (m *Message) Param(i int) Value {
	if i < 0 || i >= m.NParams {
		return Value{}
	}
	if i < MaxIndexedParams {
		return m.param[i]
	}
	return m.Params.Index(i)
}

// IsMethod reports whether the message's method is exactly name (raw bytes, as btcpool compares).
func (m *Message) IsMethod(name string) bool {
	return m.Method.Kind == KindString && string(m.Method.Raw) == name
}

// Parse reads one line (without or with its trailing "\n"/"\r\n") into m. It
// returns ErrNotJSON unless the line is exactly one valid JSON value. A valid
// value that is not an object gives a Message with every field zero. Parse
// does not check that the message is a request: see ParseRequest.
func Parse(line []byte, m *Message) error {
	*m = Message{}
	s := scanner{b: line}
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '{' {
		if !parseTop(&s, m) {
			*m = Message{}
			return ErrNotJSON
		}
	} else if _, ok := s.value(0); !ok {
		return ErrNotJSON
	}
	s.ws()
	if s.i != len(s.b) {
		*m = Message{}
		return ErrNotJSON
	}
	return nil
}

// ParseRequest is Parse followed by btcpool's request check (spec §4.4):
// method must be a non-empty string and params an array, else
// ErrIllegalParams, with m.ID filled so the error can be answered.
func ParseRequest(line []byte, m *Message) error {
	if err := Parse(line, m); err != nil {
		return err
	}
	if m.Method.Kind != KindString || len(m.Method.Raw) == 0 || m.Params.Kind != KindArray {
		return ErrIllegalParams
	}
	return nil
}

// parseTop scans the top-level object at s.i, recording the members hashpool uses.
func parseTop(s *scanner, m *Message) bool {
	if s.open('}') {
		return true
	}
	for {
		key, ok := s.key()
		if !ok {
			return false
		}
		var v Value
		if string(key) == "params" && !m.Params.Exists() {
			v, ok = parseParams(s, m)
		} else {
			v, ok = s.value(1)
		}
		if !ok {
			return false
		}
		switch string(key) {
		case "id":
			if !m.RawID.Exists() {
				m.RawID = v
				m.ID = idFromValue(v)
			}
		case "method":
			if !m.Method.Exists() {
				m.Method = v
			}
		case "params":
			if !m.Params.Exists() {
				m.Params = v
			}
		case "result":
			if !m.Result.Exists() {
				m.Result = v
			}
		case "error":
			if !m.Error.Exists() {
				m.Error = v
			}
		}
		if more, ok := s.next('}'); !more {
			return ok
		}
	}
}

// parseParams scans the params value, indexing its elements when it is an array.
func parseParams(s *scanner, m *Message) (Value, bool) {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '[' {
		return s.value(1)
	}
	start := s.i
	if s.open(']') {
		return Value{Kind: KindArray, Raw: s.b[start:s.i]}, true
	}
	n := 0
	for {
		v, ok := s.value(2)
		if !ok {
			return Value{}, false
		}
		if n < MaxIndexedParams {
			m.param[n] = v
		}
		n++
		more, ok := s.next(']')
		if !ok {
			return Value{}, false
		}
		if !more {
			m.NParams = n
			return Value{Kind: KindArray, Raw: s.b[start:s.i]}, true
		}
	}
}

// Submit holds the params of a mining.submit (spec §4.9):
// [worker, jobid, extranonce2, ntime, nonce, versionmask?]. Each field is the
// raw text of the param (string contents, or a number's digits, as btcpool's
// str() gives for both); they alias the parsed line like every Value.
type Submit struct {
	Worker      []byte
	JobID       []byte
	ExtraNonce2 []byte
	Time        []byte
	Nonce       []byte
	VersionMask []byte // nil when the 6th param is absent
}

// Submit extracts mining.submit params into s. It returns ErrIllegalParams
// when there are fewer than 5 params or one of the first six is not a string
// or number. It does not check the method name.
func (m *Message) Submit(s *Submit) error {
	*s = Submit{}
	if m.NParams < 5 {
		return ErrIllegalParams
	}
	for i := 0; i < 6 && i < m.NParams; i++ {
		if k := m.param[i].Kind; k != KindString && k != KindNumber {
			return ErrIllegalParams
		}
	}
	s.Worker = m.param[0].Raw
	s.JobID = m.param[1].Raw
	s.ExtraNonce2 = m.param[2].Raw
	s.Time = m.param[3].Raw
	s.Nonce = m.param[4].Raw
	if m.NParams > 5 {
		s.VersionMask = m.param[5].Raw
	}
	return nil
}

// ParseSubmitHex parses a submit field the way btcpool does (C strtoul/strtoull
// base 16): optional leading whitespace, optional "0x", then hex digits up to
// the first non-hex byte; more than 16 digits saturate to all ones. It returns
// 0 when there are no digits. Callers truncate to 32 bits or mask to the
// extranonce2 size as spec §4.9 step 3 says.
func ParseSubmitHex(b []byte) uint64 {
	i := 0
	for i < len(b) && (b[i] == ' ' || (b[i] >= '\t' && b[i] <= '\r')) {
		i++
	}
	neg := false
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		neg = b[i] == '-'
		i++
	}
	if i+1 < len(b) && b[i] == '0' && (b[i+1] == 'x' || b[i+1] == 'X') && i+2 < len(b) && unhex(b[i+2]) >= 0 {
		i += 2
	}
	var v uint64
	for ; i < len(b); i++ {
		h := unhex(b[i])
		if h < 0 {
			break
		}
		if v > (1<<64-1)>>4 {
			return 1<<64 - 1
		}
		v = v<<4 | uint64(h)
	}
	if neg {
		v = -v
	}
	return v
}

// ParseSubmitDecimal parses a job id the way btcpool does (strtoul base 10):
// leading digits only, saturating at the uint64 maximum, 0 when there are none.
func ParseSubmitDecimal(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		if v > (1<<64-1)/10 || v*10 > 1<<64-1-uint64(c-'0') {
			return 1<<64 - 1
		}
		v = v*10 + uint64(c-'0')
	}
	return v
}
