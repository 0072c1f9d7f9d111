package engine

import (
	"encoding/binary"
	"strings"

	"github.com/hashpool/hashpool/sha"
)

// DefaultWorkerName is the worker name of a miner that sent none (spec §4.10).
const DefaultWorkerName = "__default__"

// maxWorkerNameLen is the length btcpool truncates worker names to.
const maxWorkerNameLen = 20

// maxAgentLen is the length btcpool truncates client agents to (before filtering).
const maxAgentLen = 30

// nameByte reports whether c may appear in a user, worker or agent name:
// btcpool keeps only [A-Za-z0-9-._:|^/].
func nameByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	switch c {
	case '-', '.', '_', ':', '|', '^', '/':
		return true
	}
	return false
}

// FilterName returns s without the bytes btcpool does not allow in names.
func FilterName(s string) string {
	for i := 0; i < len(s); i++ {
		if !nameByte(s[i]) {
			b := make([]byte, 0, len(s))
			for j := 0; j < len(s); j++ {
				if nameByte(s[j]) {
					b = append(b, s[j])
				}
			}
			return string(b)
		}
	}
	return s
}

// FilterAgent returns a client agent as btcpool stores it: truncated to 30
// bytes, then filtered.
func FilterAgent(s string) string {
	if len(s) > maxAgentLen {
		s = s[:maxAgentLen]
	}
	return FilterName(s)
}

// NameRules are the user-name normalisation options of sserver.cfg's users
// section.
type NameRules struct {
	CaseInsensitive bool   // users.case_insensitive: lower-case user names
	StripSuffix     bool   // users.strip_user_suffix
	SuffixSeparator string // users.user_suffix_separator, e.g. "_"
}

// NormalizeUser applies the rules to a (filtered) user name.
func (r NameRules) NormalizeUser(user string) string {
	if r.CaseInsensitive {
		user = strings.ToLower(user)
	}
	if r.StripSuffix && r.SuffixSeparator != "" {
		if i := strings.Index(user, r.SuffixSeparator); i >= 0 {
			user = user[:i]
		}
	}
	return user
}

// SplitWorkerName splits a miner's "user.worker" login (spec §4.10): the user
// is what comes before the first dot, the worker everything after it. Both are
// filtered, the user normalised, the worker truncated to 20 bytes and
// defaulted to "__default__".
func (r NameRules) SplitWorkerName(fullName string) (user, worker string) {
	user, worker, _ = strings.Cut(fullName, ".")
	user = r.NormalizeUser(FilterName(user))
	worker = FilterName(worker)
	if len(worker) > maxWorkerNameLen {
		worker = worker[:maxWorkerNameLen]
	}
	if worker == "" {
		worker = DefaultWorkerName
	}
	return user, worker
}

// WorkerID returns btcpool's worker hash id: the first 16 display-hex digits
// of dSHA(worker) read as a number, i.e. the last 8 bytes of the hash as a
// little-endian int64; 0 becomes 1.
func WorkerID(worker string) int64 {
	h := sha.DoubleSHA256([]byte(worker))
	id := int64(binary.LittleEndian.Uint64(h[24:32]))
	if id == 0 {
		id = 1
	}
	return id
}
