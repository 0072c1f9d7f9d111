package jobmaker

import "testing"

func TestIDGenerator(t *testing.T) {
	const T = 1_763_000_000
	for _, tc := range []struct {
		name   string
		server uint8
		times  []uint32
		want   []uint64
	}{
		{"one per second", 1, []uint32{T, T + 1, T + 5},
			[]uint64{T<<32 | 1, (T+1)<<32 | 1, (T+5)<<32 | 1}},
		{"same second bumps the counter", 0x2a, []uint32{T, T, T, T + 1, T + 1},
			[]uint64{T<<32 | 0x2a, T<<32 | 0x12a, T<<32 | 0x22a, (T+1)<<32 | 0x2a, (T+1)<<32 | 0x12a}},
		{"server id 255", 255, []uint32{T, T}, []uint64{T<<32 | 0xff, T<<32 | 0x1ff}},
		{"clock going back keeps ids increasing", 3, []uint32{T, T - 10, T - 5, T + 1},
			[]uint64{T<<32 | 3, T<<32 | 0x103, T<<32 | 0x203, (T+1)<<32 | 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewIDGenerator(tc.server)
			for i, ts := range tc.times {
				if got := g.Next(ts); got != tc.want[i] {
					t.Errorf("Next(%d) #%d = %#x, want %#x", ts, i, got, tc.want[i])
				}
			}
		})
	}
}

func TestIDGeneratorCounterWraps(t *testing.T) {
	g := NewIDGenerator(9)
	g.Next(100)
	var id uint64
	for range 1 << 24 {
		id = g.Next(100)
	}
	// 2^24 bumps wrap the 24-bit counter back to 0; the server id survives.
	if id != 100<<32|9 {
		t.Errorf("after 2^24 jobs in one second: %#x", id)
	}
}

func TestIDGeneratorResume(t *testing.T) {
	const T = 1_763_000_000
	for _, tc := range []struct {
		name string
		made []uint32 // ids made before Resume
		last uint64
		next uint32
		want uint64
	}{
		{"same second: the counter goes on", nil, T<<32 | 0x503, T, T<<32 | 0x603},
		{"another server's id: only its counter counts", nil, T<<32 | 0x507, T, T<<32 | 0x603},
		{"a later second (clock behind the topic)", nil, (T+9)<<32 | 0x103, T, (T+9)<<32 | 0x203},
		{"an older second changes nothing", nil, (T-1)<<32 | 0x903, T, T<<32 | 0x003},
		{"older than what was made changes nothing", []uint32{T, T, T}, T<<32 | 0x103, T, T<<32 | 0x303},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewIDGenerator(3)
			for _, ts := range tc.made {
				g.Next(ts)
			}
			g.Resume(tc.last)
			if got := g.Next(tc.next); got != tc.want || (got <= tc.last && tc.last>>32 >= T) {
				t.Errorf("Next after Resume(%#x) = %#x, want %#x", tc.last, got, tc.want)
			}
		})
	}
}
