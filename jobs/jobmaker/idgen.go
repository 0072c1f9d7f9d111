package jobmaker

// IDGenerator makes btcpool HEAD job ids (spec §3.5): the upper 32 bits are
// the unix time in seconds (every consumer reads them as the job time), bits
// 8..31 count the jobs made in that second and bits 0..7 are the jobmaker's
// server id, so two jobmakers with different ids never collide.
//
// An IDGenerator is not safe for concurrent use.
type IDGenerator struct {
	lastTS uint32
	low    uint32
}

// NewIDGenerator returns a generator for the jobmaker with the given server id.
func NewIDGenerator(serverID uint8) *IDGenerator {
	return &IDGenerator{low: uint32(serverID)}
}

// Next returns the id of a job made at unix time now.
//
// btcpool puts the current time in the id even when the clock went back;
// that can repeat an id made before the step back. Here the time part never
// goes backwards, so ids are strictly increasing (for fewer than 2^24 jobs a
// second), and the time part still reads as the job's time while the clock
// is sane.
func (g *IDGenerator) Next(now uint32) uint64 {
	if now <= g.lastTS {
		g.low += 0x100
		now = g.lastTS
	} else {
		g.low &= 0xff
		g.lastTS = now
	}
	return uint64(now)<<32 | uint64(g.low)
}

// Resume makes every later id greater than last, a job id already on the
// job topic (made by an earlier run of this jobmaker, or by another): a
// jobmaker restarted within the second of its last job would otherwise
// count that second again from zero, repeating ids (the sservers drop a
// repeated id as a duplicate) or making ids lower than the job they hold as
// their newest. An id older than what the generator has made changes
// nothing.
func (g *IDGenerator) Resume(last uint64) {
	ts, counter := uint32(last>>32), uint32(last)&^0xff
	if ts < g.lastTS || (ts == g.lastTS && counter < g.low&^0xff) {
		return
	}
	g.lastTS = ts
	g.low = counter | g.low&0xff
}
