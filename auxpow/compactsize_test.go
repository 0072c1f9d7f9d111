package auxpow

import (
	"bytes"
	"testing"

	"github.com/btcsuite/btcd/wire/v2"
)

// AppendCompactSize and varIntSize agree with btcd's wire encoding at every size boundary.
func TestAppendCompactSize(t *testing.T) {
	for _, n := range []uint64{0, 1, 0xfc, 0xfd, 0xfe, 0xffff, 0x10000, 0xffffffff, 0x100000000, 1<<64 - 1} {
		var want bytes.Buffer
		if err := wire.WriteVarInt(&want, 0, n); err != nil {
			t.Fatal(err)
		}
		got := AppendCompactSize([]byte{0xaa}, n)
		if !bytes.Equal(got[1:], want.Bytes()) || got[0] != 0xaa {
			t.Errorf("AppendCompactSize(%#x) = %x, want aa%x", n, got, want.Bytes())
		}
		if s := varIntSize(n); s != want.Len() {
			t.Errorf("varIntSize(%#x) = %d, want %d", n, s, want.Len())
		}
	}
}
