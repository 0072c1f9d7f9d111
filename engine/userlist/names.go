package userlist

// Limits on what a user list may hold, so a bad API or a flood of made-up
// names cannot exhaust memory.
const (
	// MaxUsers bounds the names a list holds.
	MaxUsers = 1 << 20
	// MaxNameLen bounds one user name (bytes).
	MaxNameLen = 64
)

// nameByte reports whether c may appear in a user name: btcpool keeps only
// [A-Za-z0-9-._:|^/] (the engine filters names the same way before a
// lookup).
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

// validName reports whether name is a non-empty, bounded, filtered name.
func validName(name string) bool {
	if name == "" || len(name) > MaxNameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !nameByte(name[i]) {
			return false
		}
	}
	return true
}

// filterName returns s without the bytes btcpool does not allow in names.
func filterName(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if nameByte(s[i]) {
			b = append(b, s[i])
		}
	}
	return string(b)
}
