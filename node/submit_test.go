package node

import "testing"

func TestInterpretSubmit(t *testing.T) {
	for _, tc := range []struct {
		result string
		want   SubmitResult
		err    bool
	}{
		{`null`, SubmitResult{Status: SubmitAccepted}, false},
		{`"duplicate"`, SubmitResult{Status: SubmitDuplicate, Reason: "duplicate"}, false},
		{`"duplicate-inconclusive"`, SubmitResult{Status: SubmitInconclusive, Reason: "duplicate-inconclusive"}, false},
		{`"inconclusive"`, SubmitResult{Status: SubmitInconclusive, Reason: "inconclusive"}, false},
		{`"duplicate-invalid"`, SubmitResult{Status: SubmitRejected, Reason: "duplicate-invalid"}, false},
		{`"high-hash"`, SubmitResult{Status: SubmitRejected, Reason: "high-hash"}, false},
		{`"bad-txnmrklroot"`, SubmitResult{Status: SubmitRejected, Reason: "bad-txnmrklroot"}, false},
		{`"rejected: already have block 0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"`,
			SubmitResult{Status: SubmitDuplicate, Reason: "already have block 0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"}, false},
		{`"rejected: already have block (orphan) 0f91"`, SubmitResult{Status: SubmitDuplicate, Reason: "already have block (orphan) 0f91"}, false},
		{`"rejected: block hash of 0f91 is higher than expected max of 7fff"`,
			SubmitResult{Status: SubmitRejected, Reason: "block hash of 0f91 is higher than expected max of 7fff"}, false},
		{`true`, SubmitResult{}, true},
		{`{"x":1}`, SubmitResult{}, true},
	} {
		got, err := interpretSubmit([]byte(tc.result))
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("interpretSubmit(%s) = %+v, %v; want %+v, error %v", tc.result, got, err, tc.want, tc.err)
		}
	}
}

func TestSubmitStatusString(t *testing.T) {
	for s, want := range map[SubmitStatus]string{SubmitAccepted: "accepted", SubmitDuplicate: "duplicate",
		SubmitInconclusive: "inconclusive", SubmitRejected: "rejected", 9: "SubmitStatus(9)"} {
		if s.String() != want {
			t.Errorf("%d.String() = %q, want %q", s, s.String(), want)
		}
	}
}
