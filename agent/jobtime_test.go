package agent

import (
	"testing"

	"github.com/hashpool/hashpool/codec/agent"
	"github.com/hashpool/hashpool/codec/stratum"
)

// TestSubmitLeavesOutTheJobsTime: a share whose time is the job's (from the pool's notify for
// that short job id) goes up without it, as SUBMIT_SHARE or SUBMIT_SHARE_WITH_VER (the pool
// checks a share without a time at the job's nTime); any other time is sent, and so is every
// time for a job id whose notify the agent has not seen.
func TestSubmitLeavesOutTheJobsTime(t *testing.T) {
	s := &slot{a: &Agent{}}
	u := &upConn{s: s, wake: make(chan struct{}, 1)}
	s.up = u
	m := &Miner{registered: true}
	var msg stratum.Message
	notify := `{"id":null,"method":"mining.notify","params":["7","00","01","02",[],"20000000","207fffff","5f5e1000",true]}`
	if err := stratum.Parse([]byte(notify), &msg); err != nil {
		t.Fatal(err)
	}
	s.relayNotify(u, &msg)
	for _, tc := range []struct {
		name string
		job  string
		time uint32
		vm   uint32
		want agent.Cmd
	}{
		{"job's time", "7", 0x5f5e1000, 0, agent.CmdSubmitShare},
		{"job's time, version rolled", "7", 0x5f5e1000, 0x2000, agent.CmdSubmitShareWithVer},
		{"rolled time", "7", 0x5f5e1001, 0, agent.CmdSubmitShareWithTime},
		{"rolled time, version rolled", "7", 0x5f5e1001, 0x2000, agent.CmdSubmitShareWithTimeVer},
		{"job never notified", "8", 0x5f5e1000, 0, agent.CmdSubmitShareWithTime},
	} {
		u.wbuf = u.wbuf[:0]
		sub := agent.Submit{SessionID: 1, Nonce: 5, Time: tc.time, HasTime: true, VersionMask: tc.vm, HasVersionMask: tc.vm != 0}
		if r := s.submit(m, &sub, []byte(tc.job), stratum.ParseSubmitDecimal([]byte(tc.job)), stratum.ID{}); r != submitAccepted {
			t.Fatalf("%s: submit result %d", tc.name, r)
		}
		if got := agent.FrameCmd(u.wbuf); got != tc.want {
			t.Errorf("%s: frame %v, want %v", tc.name, got, tc.want)
		}
	}
}
