package auxpow

import (
	"strconv"
	"testing"
)

// BenchmarkTargetsCheck is the engine's per-share merged-mining cost: one Check of the share
// hash against 0, 1 or 3 aux targets. "miss" is the common share (above every target),
// "hit" one that meets them all.
func BenchmarkTargetsCheck(b *testing.B) {
	for _, n := range []int{0, 1, 3} {
		var ts Targets
		for i := 0; i < n; i++ {
			tg, _ := BitsTarget([]string{"1b0404cb", "1c0ffff0", "1a05db8b"}[i])
			ts.Add(tg)
		}
		miss := [32]byte{31: 0x01}
		var hit [32]byte
		for name, h := range map[string]*[32]byte{"miss": &miss, "hit": &hit} {
			b.Run(strconv.Itoa(n)+"chains/"+name, func(b *testing.B) {
				b.ReportAllocs()
				var sink uint32
				for b.Loop() {
					sink += ts.Check(h)
				}
				_ = sink
			})
		}
	}
}

func BenchmarkBuildTree8(b *testing.B) {
	chains := make([]Chain, 8)
	for i := range chains {
		chains[i] = Chain{ID: int32(i + 1), Hash: [32]byte{byte(i)}}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := BuildTree(chains, TreeOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
