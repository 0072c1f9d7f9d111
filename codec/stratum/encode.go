package stratum

import (
	"encoding/hex"
	"math"
	"slices"
	"strconv"
)

// Every Append function below appends one complete line, "\n" included, to
// dst and returns the extended slice; none allocates when dst has room.
// The byte layout is btcpool's (spec §4.5-4.7), key order included.

const hexDigits = "0123456789abcdef"

// AppendResultTrue appends {"id":<id>,"result":true,"error":null}.
func AppendResultTrue(dst []byte, id ID) []byte {
	dst = append(dst, `{"id":`...)
	dst = id.AppendJSON(dst)
	return append(dst, ",\"result\":true,\"error\":null}\n"...)
}

// AppendResultFalse appends {"id":<id>,"result":false,"error":null}.
func AppendResultFalse(dst []byte, id ID) []byte {
	dst = append(dst, `{"id":`...)
	dst = id.AppendJSON(dst)
	return append(dst, ",\"result\":false,\"error\":null}\n"...)
}

// AppendExtranonceSubscribeResult appends the answer to
// mining.extranonce.subscribe: result true. (HEAD btcpool ignores the method;
// hashpool accepts it but never changes extranonce1 afterwards.)
func AppendExtranonceSubscribeResult(dst []byte, id ID) []byte {
	return AppendResultTrue(dst, id)
}

// AppendError appends {"id":<id>,"result":null,"error":[<code>,"<message>",null]}
// with btcpool's message for code. Map share statuses with Status.Wire first.
func AppendError(dst []byte, id ID, code Status) []byte {
	return AppendErrorMessage(dst, id, int64(code), code.String())
}

// AppendErrorMessage is AppendError with a caller-chosen message (JSON-escaped here).
func AppendErrorMessage(dst []byte, id ID, code int64, msg string) []byte {
	dst = append(dst, `{"id":`...)
	dst = id.AppendJSON(dst)
	dst = append(dst, `,"result":null,"error":[`...)
	dst = strconv.AppendInt(dst, code, 10)
	dst = append(dst, ',')
	dst = AppendJSONString(dst, msg)
	return append(dst, ",null]}\n"...)
}

// AppendSubscribeResult appends the mining.subscribe answer:
// {"id":..,"result":[[["mining.set_difficulty","<sid8>"],["mining.notify","<sid8>"]],"<sid8>",<en2size>],"error":null}
// where <sid8> is the session id (extranonce1) as %08x.
func AppendSubscribeResult(dst []byte, id ID, sessionID uint32, extraNonce2Size int) []byte {
	dst = append(dst, `{"id":`...)
	dst = id.AppendJSON(dst)
	dst = append(dst, `,"result":[[["mining.set_difficulty","`...)
	dst = AppendHex32(dst, sessionID)
	dst = append(dst, `"],["mining.notify","`...)
	dst = AppendHex32(dst, sessionID)
	dst = append(dst, `"]],"`...)
	dst = AppendHex32(dst, sessionID)
	dst = append(dst, `",`...)
	dst = strconv.AppendInt(dst, int64(extraNonce2Size), 10)
	return append(dst, "],\"error\":null}\n"...)
}

// ConfigureEntry is one member of the mining.configure result object.
type ConfigureEntry struct {
	// Key is the member name as raw JSON string contents: an extension name
	// from the request ("version-rolling", "minimum-difficulty", or any other),
	// or "version-rolling.mask".
	Key []byte
	// Result is the boolean value; ignored when IsMask is set.
	Result bool
	// IsMask makes the value the string "%08x" of Mask (for "version-rolling.mask").
	IsMask bool
	Mask   uint32
}

// AppendConfigureResult appends {"id":..,"result":{...},"error":null} with the
// entries sorted by key, bytewise, like btcpool's std::map; a repeated key
// keeps its last entry. It sorts entries in place.
func AppendConfigureResult(dst []byte, id ID, entries []ConfigureEntry) []byte {
	slices.SortStableFunc(entries, compareConfigureEntry)
	dst = append(dst, `{"id":`...)
	dst = id.AppendJSON(dst)
	dst = append(dst, `,"result":{`...)
	first := true
	for i := range entries {
		e := &entries[i]
		if i+1 < len(entries) && string(entries[i+1].Key) == string(e.Key) {
			continue // a later entry with the same key wins
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, '"')
		dst = append(dst, e.Key...)
		dst = append(dst, `":`...)
		switch {
		case e.IsMask:
			dst = append(dst, '"')
			dst = AppendHex32(dst, e.Mask)
			dst = append(dst, '"')
		case e.Result:
			dst = append(dst, "true"...)
		default:
			dst = append(dst, "false"...)
		}
	}
	return append(dst, "},\"error\":null}\n"...)
}

func compareConfigureEntry(a, b ConfigureEntry) int {
	switch {
	case string(a.Key) < string(b.Key):
		return -1
	case string(a.Key) > string(b.Key):
		return 1
	}
	return 0
}

// DefaultCapabilities is what HEAD btcpool advertises in agent.get_capabilities.
var DefaultCapabilities = []string{"verrol", "subres"}

// AppendCapabilitiesResult appends {"id":<id>,"result":{"capabilities":[...]}}
// — without an "error" member, exactly as btcpool sends it.
func AppendCapabilitiesResult(dst []byte, id ID, caps []string) []byte {
	dst = append(dst, `{"id":`...)
	dst = id.AppendJSON(dst)
	dst = append(dst, `,"result":{"capabilities":[`...)
	for i, c := range caps {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendJSONString(dst, c)
	}
	return append(dst, "]}}\n"...)
}

// AppendSetDifficulty appends {"id":null,"method":"mining.set_difficulty","params":[<diff>]}.
// An integral difficulty prints as an integer (16384); a fractional one as
// the shortest decimal that parses back to the same float64 (0.001953125), so
// a miner reading a double gets exactly diff. NaN, Inf and values ≤ 0 are not
// difficulties; they print as 0.
func AppendSetDifficulty(dst []byte, diff float64) []byte {
	dst = append(dst, `{"id":null,"method":"mining.set_difficulty","params":[`...)
	dst = AppendDifficulty(dst, diff)
	return append(dst, "]}\n"...)
}

// AppendDifficulty appends a difficulty number as AppendSetDifficulty prints it.
func AppendDifficulty(dst []byte, diff float64) []byte {
	switch {
	case math.IsNaN(diff) || math.IsInf(diff, 0) || diff <= 0:
		return append(dst, '0')
	case diff < 1<<64 && diff == math.Trunc(diff):
		return strconv.AppendUint(dst, uint64(diff), 10)
	}
	return strconv.AppendFloat(dst, diff, 'f', -1, 64)
}

// AppendSetVersionMask appends {"id":null,"method":"mining.set_version_mask","params":["%08x"]}.
func AppendSetVersionMask(dst []byte, mask uint32) []byte {
	dst = append(dst, `{"id":null,"method":"mining.set_version_mask","params":["`...)
	dst = AppendHex32(dst, mask)
	return append(dst, "\"]}\n"...)
}

// AppendReconnect appends {"id":null,"method":"client.reconnect","params":[]}.
func AppendReconnect(dst []byte) []byte {
	return append(dst, "{\"id\":null,\"method\":\"client.reconnect\",\"params\":[]}\n"...)
}

// Notify is the content of one mining.notify (spec §4.6).
type Notify struct {
	// JobID is the job id sent to miners: the short id 0..255, or
	// now*256+shortID for NiceHash clients. Printed in decimal, quoted.
	JobID uint64
	// PrevHash is the previous block hash in internal byte order; it is sent
	// as prevHashBeStr (each 4-byte word byte-reversed, hex).
	PrevHash [32]byte
	// Coinbase1 and Coinbase2 are the raw coinbase halves around the
	// 4-byte extranonce1 + 8-byte extranonce2 slot.
	Coinbase1, Coinbase2 []byte
	// Coinbase1Pad is the number of zero bytes appended to coinbase1 when the
	// advertised extranonce2 size N < 8 (8-N, spec §4.3).
	Coinbase1Pad int
	// Branch is the merkle branch in internal byte order ("memory hex" on the wire).
	Branch [][32]byte
	// Version, Bits and Time are sent as %08x.
	Version, Bits, Time uint32
}

// AppendNotify appends the mining.notify line for n with the given clean_jobs flag:
// {"id":null,"method":"mining.notify","params":["<jobid>","<prevHashBeStr>","<coinbase1>","<coinbase2>",[<branch>...],"<version>","<bits>","<time>",<clean>]}
func AppendNotify(dst []byte, n *Notify, clean bool) []byte {
	dst = append(dst, `{"id":null,"method":"mining.notify","params":["`...)
	dst = strconv.AppendUint(dst, n.JobID, 10)
	dst = append(dst, `","`...)
	dst = AppendPrevHashBE(dst, &n.PrevHash)
	dst = append(dst, `","`...)
	dst = AppendHex(dst, n.Coinbase1)
	for range max(n.Coinbase1Pad, 0) {
		dst = append(dst, '0', '0')
	}
	dst = append(dst, `","`...)
	dst = AppendHex(dst, n.Coinbase2)
	dst = append(dst, `",[`...)
	for i := range n.Branch {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = AppendHex(dst, n.Branch[i][:])
		dst = append(dst, '"')
	}
	dst = append(dst, `],"`...)
	dst = AppendHex32(dst, n.Version)
	dst = append(dst, `","`...)
	dst = AppendHex32(dst, n.Bits)
	dst = append(dst, `","`...)
	dst = AppendHex32(dst, n.Time)
	if clean {
		return append(dst, "\",true]}\n"...)
	}
	return append(dst, "\",false]}\n"...)
}

// NotifyFrames holds both clean_jobs variants of one job's mining.notify line,
// built once per job and written unchanged to every session. Both slices
// point into the buffer returned with them; treat them as read-only and keep
// that buffer alive while the frames are queued on connections.
type NotifyFrames struct {
	Clean    []byte // clean_jobs = true
	NotClean []byte // clean_jobs = false
}

// Frame returns the variant for the given clean flag.
func (f *NotifyFrames) Frame(clean bool) []byte {
	if clean {
		return f.Clean
	}
	return f.NotClean
}

// AppendNotifyFrames appends both variants of n's notify line to dst (the
// not-clean one first) and returns the extended buffer and the two frames.
// The not-clean frame is built once and the clean one derived by rewriting
// its tail, so the two differ only in the flag.
func AppendNotifyFrames(dst []byte, n *Notify) ([]byte, NotifyFrames) {
	start := len(dst)
	dst = AppendNotify(dst, n, false)
	mid := len(dst)
	const falseTail, trueTail = "false]}\n", "true]}\n"
	dst = append(dst, dst[start:mid-len(falseTail)]...)
	dst = append(dst, trueTail...)
	return dst, NotifyFrames{NotClean: dst[start:mid:mid], Clean: dst[mid:len(dst):len(dst)]}
}

// AppendPrevHashBE appends prevHashBeStr: the 32 internal-order bytes of the
// previous block hash, each 4-byte word byte-reversed, as 64 hex chars.
func AppendPrevHashBE(dst []byte, prev *[32]byte) []byte {
	for w := 0; w < 32; w += 4 {
		for j := 3; j >= 0; j-- {
			c := prev[w+j]
			dst = append(dst, hexDigits[c>>4], hexDigits[c&0x0f])
		}
	}
	return dst
}

// AppendHex appends the lowercase hex of b.
func AppendHex(dst, b []byte) []byte {
	return hex.AppendEncode(dst, b)
}

// AppendHex32 appends v as 8 lowercase hex digits (C's %08x).
func AppendHex32(dst []byte, v uint32) []byte {
	return append(dst,
		hexDigits[v>>28], hexDigits[v>>24&0xf], hexDigits[v>>20&0xf], hexDigits[v>>16&0xf],
		hexDigits[v>>12&0xf], hexDigits[v>>8&0xf], hexDigits[v>>4&0xf], hexDigits[v&0xf])
}

// AppendJSONString appends s as a quoted JSON string, escaping '"', '\\' and
// control characters. Other bytes, invalid UTF-8 included, are copied as-is.
func AppendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// AppendRequest appends a client request {"id":<id>,"method":"<method>","params":<params>}
// for miners, load generators and the farm proxy's upstream side. params is
// the raw JSON text of the params array (for example `["kevin",""]`); it is
// copied as-is, so it must be valid JSON.
func AppendRequest(dst []byte, id ID, method string, params []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = id.AppendJSON(dst)
	dst = append(dst, `,"method":`...)
	dst = AppendJSONString(dst, method)
	dst = append(dst, `,"params":`...)
	dst = append(dst, params...)
	return append(dst, "}\n"...)
}

// AppendSubmitRequest appends a mining.submit request with s's fields as
// string params (the 6th only when s.VersionMask is non-nil). The fields are
// raw JSON string contents, as Message.Submit returns them.
func AppendSubmitRequest(dst []byte, id ID, s *Submit) []byte {
	dst = append(dst, `{"id":`...)
	dst = id.AppendJSON(dst)
	dst = append(dst, `,"method":"mining.submit","params":["`...)
	dst = append(dst, s.Worker...)
	dst = append(dst, `","`...)
	dst = append(dst, s.JobID...)
	dst = append(dst, `","`...)
	dst = append(dst, s.ExtraNonce2...)
	dst = append(dst, `","`...)
	dst = append(dst, s.Time...)
	dst = append(dst, `","`...)
	dst = append(dst, s.Nonce...)
	if s.VersionMask != nil {
		dst = append(dst, `","`...)
		dst = append(dst, s.VersionMask...)
	}
	return append(dst, "\"]}\n"...)
}
