//go:build !amd64 || purego

package sha

// useSHANI is false where there is no SHA-NI kernel; the stdlib path runs.
var useSHANI = false

func merkleSHANI(out *[32]byte, h *[8]uint32, p *byte, nblocks int, branch *[32]byte, nbranch int) {
	panic("sha: SHA-NI kernel called on a build without it")
}
