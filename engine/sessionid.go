package engine

import (
	"math/bits"
	"sync"
)

// MaxSessionIndex is the largest session index a server hands out: session
// ids are serverID<<24 | index with a 24-bit index (spec §4.2).
const MaxSessionIndex = 1<<24 - 1

// SessionIDs allocates the 32-bit session ids of one server. A session id is
// the miner's extranonce1, so two live sessions must never share one. Ids are
// taken from a bitset starting at a rolling cursor (btcpool's
// SessionIDManagerT<24> with allocInterval 0) and are freed when the session
// closes. SessionIDs is safe for concurrent use: event loops open and close
// connections in parallel.
type SessionIDs struct {
	mu       sync.Mutex
	serverID uint32
	words    []uint64 // 2^24 bits, one per index
	count    int
	cursor   uint32 // index to try first on the next Alloc
	// lastLoop remembers, per index, 1 + the event loop of the last session that held it
	// (0: none yet), in pages of 2^16 allocated on first use. Duplicate-share sets are per
	// event loop, so an id may be resumed only on the loop that held it: on another loop the
	// old holder's accepted shares could be credited again.
	lastLoop [256]*[1 << 16]uint8
}

// NewSessionIDs returns an empty allocator for the given server id (the top
// byte of every id it hands out).
func NewSessionIDs(serverID uint8) *SessionIDs {
	return &SessionIDs{serverID: uint32(serverID) << 24, words: make([]uint64, (MaxSessionIndex+1)/64)}
}

// Alloc returns a free session id and marks it used. ok is false when all
// 2^24 indexes are taken; the caller then closes the new connection.
func (a *SessionIDs) Alloc() (id uint32, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.count > MaxSessionIndex {
		return 0, false
	}
	n := uint32(len(a.words))
	w := a.cursor / 64
	// Bits below the cursor in its own word count as taken for the first
	// look so that the scan starts exactly at the cursor.
	first := a.words[w] | (1<<(a.cursor%64) - 1)
	for i := uint32(0); i <= n; i++ {
		var word uint64
		if i == 0 {
			word = first
		} else {
			word = a.words[w]
		}
		if word != ^uint64(0) {
			idx := w*64 + uint32(bits.TrailingZeros64(^word))
			a.words[w] |= 1 << (idx % 64)
			a.count++
			a.cursor = idx
			return a.serverID | idx, true
		}
		w++
		if w == n {
			w = 0
		}
	}
	return 0, false // unreachable while count is right
}

// Take marks a requested id (a miner resuming its session, spec §4.5) as used for a session on
// event loop loop, if the id belongs to this server, is free, and was last held (if ever) by a
// session on the same loop; it reports whether it did.
func (a *SessionIDs) Take(id uint32, loop int) bool {
	if id&^MaxSessionIndex != a.serverID || loop < 0 || loop > 254 {
		return false
	}
	idx := id & MaxSessionIndex
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.words[idx/64]&(1<<(idx%64)) != 0 {
		return false
	}
	if page := a.lastLoop[idx>>16]; page != nil && page[idx&0xffff] != 0 && int(page[idx&0xffff]) != loop+1 {
		return false
	}
	a.words[idx/64] |= 1 << (idx % 64)
	a.count++
	return true
}

// Free returns an id to the pool. Freeing an id that is not in use, or that
// belongs to another server, does nothing.
func (a *SessionIDs) Free(id uint32) {
	if id&^MaxSessionIndex != a.serverID {
		return
	}
	idx := id & MaxSessionIndex
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.words[idx/64]&(1<<(idx%64)) == 0 {
		return
	}
	a.words[idx/64] &^= 1 << (idx % 64)
	a.count--
}

// FreeOn returns an id held by a session of event loop loop (0..254) to the pool and remembers
// the loop for Take.
func (a *SessionIDs) FreeOn(id uint32, loop int) {
	if id&^MaxSessionIndex == a.serverID && loop >= 0 && loop <= 254 {
		idx := id & MaxSessionIndex
		a.mu.Lock()
		page := a.lastLoop[idx>>16]
		if page == nil {
			page = new([1 << 16]uint8)
			a.lastLoop[idx>>16] = page
		}
		page[idx&0xffff] = uint8(loop + 1)
		a.mu.Unlock()
	}
	a.Free(id)
}

// Len returns how many ids are in use.
func (a *SessionIDs) Len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.count
}
