//go:build amd64 && !purego

package sha

//go:generate go run gen_shani.go

// merkleSHANI starts from the SHA-256 state h, compresses nblocks 64-byte
// blocks at p (already padded), hashes the resulting 32-byte digest again,
// then for each of the nbranch hashes at branch replaces the result r with
// dSHA(r || step), and writes the final hash to out. h is not modified.
//
//go:noescape
func merkleSHANI(out *[32]byte, h *[8]uint32, p *byte, nblocks int, branch *[32]byte, nbranch int)

func cpuid(leaf, sub uint32) (a, b, c, d uint32)

// haveSHANI reports whether the CPU has the SHA extensions and the SSSE3 and
// SSE4.1 instructions the kernel also uses.
func haveSHANI() bool {
	maxLeaf, _, _, _ := cpuid(0, 0)
	if maxLeaf < 7 {
		return false
	}
	_, _, c1, _ := cpuid(1, 0)
	_, b7, _, _ := cpuid(7, 0)
	const ssse3, sse41, shaBit = 1 << 9, 1 << 19, 1 << 29
	return c1&ssse3 != 0 && c1&sse41 != 0 && b7&shaBit != 0
}

// useSHANI selects the SHA-NI kernel; tests turn it off to check the
// portable path.
var useSHANI = haveSHANI()
