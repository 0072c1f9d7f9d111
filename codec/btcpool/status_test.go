package btcpool

import "testing"

// The §4.9 table, transcribed: code, name, message.
func TestStatusTable(t *testing.T) {
	cases := []struct {
		s    Status
		code int32
		msg  string
	}{
		{StatusAccept, 1798084231, "Share accepted"},
		{StatusAcceptStale, 950395421, "Share accepted (stale)"},
		{StatusSolved, 1422486894, "Share accepted and solved"},
		{StatusSolvedStale, 1713984938, "Share accepted and solved (stale)"},
		{StatusSolvedPreliminary, 1835617709, "Unknown"},
		{StatusRejectNoReason, 0, "Share rejected"},
		{StatusJobNotFoundOrStale, 21, "Job not found (=stale)"},
		{StatusDuplicateShare, 22, "Duplicate share"},
		{StatusLowDifficulty, 23, "Low difficulty"},
		{StatusUnauthorized, 24, "Unauthorized worker"},
		{StatusNotSubscribed, 25, "Not subscribed"},
		{StatusIllegalMethod, 26, "Illegal method"},
		{StatusIllegalParams, 27, "Illegal params"},
		{StatusIPBanned, 28, "Ip banned"},
		{StatusInvalidUsername, 29, "Invalid username"},
		{StatusInternalError, 30, "Internal error"},
		{StatusTimeTooOld, 31, "Time too old"},
		{StatusTimeTooNew, 32, "Time too new"},
		{StatusIllegalVersionMask, 33, "Invalid version mask"},
		{StatusInvalidSolution, 34, "Invalid Solution"},
		{StatusWrongNoncePrefix, 35, "Wrong Nonce Prefix"},
		{StatusJobNotFound, 36, "Job not found"},
		{StatusStaleShare, 37, "Stale share"},
		{StatusClientIsNotSwitcher, 400, "Client is not a stratum switcher"},
		{StatusUnknown, 2147483647, "Unknown"},
		{Status(20), 20, "Unknown"},
		{Status(-1), -1, "Unknown"},
	}
	for _, c := range cases {
		if int32(c.s) != c.code || c.s.String() != c.msg {
			t.Errorf("%d: code %d msg %q, want %d %q", c.s, int32(c.s), c.s.String(), c.code, c.msg)
		}
		wire := c.s
		if c.code == 36 || c.code == 37 {
			wire = StatusJobNotFoundOrStale
		}
		if c.s.WireCode() != wire {
			t.Errorf("%d: WireCode %d", c.s, c.s.WireCode())
		}
	}
}

func TestStatusOutcome(t *testing.T) {
	cases := []struct {
		s               Status
		strict, relaxed Outcome
	}{
		{StatusAccept, OutcomeAccept, OutcomeAccept},
		{StatusSolved, OutcomeAccept, OutcomeAccept},
		{StatusAcceptStale, OutcomeStale, OutcomeAccept},
		{StatusSolvedStale, OutcomeStale, OutcomeAccept},
		{StatusJobNotFoundOrStale, OutcomeStale, OutcomeStale},
		{StatusStaleShare, OutcomeStale, OutcomeStale},
		{StatusJobNotFound, OutcomeReject, OutcomeReject},
		{StatusLowDifficulty, OutcomeReject, OutcomeReject},
		{StatusSolvedPreliminary, OutcomeReject, OutcomeReject},
		{StatusRejectNoReason, OutcomeReject, OutcomeReject},
		{Status(1), OutcomeReject, OutcomeReject}, // a V1 result of 1 is converted before it gets here
	}
	for _, c := range cases {
		if got := c.s.Outcome(false); got != c.strict {
			t.Errorf("%v Outcome(false) = %d want %d", c.s, got, c.strict)
		}
		if got := c.s.Outcome(true); got != c.relaxed {
			t.Errorf("%v Outcome(true) = %d want %d", c.s, got, c.relaxed)
		}
	}
	if !StatusSolvedStale.IsAccepted() || StatusStaleShare.IsAccepted() || !StatusStaleShare.IsStale() ||
		!StatusAcceptStale.IsStale() || StatusJobNotFound.IsStale() || !StatusJobNotFoundOrStale.IsRejectedStale() {
		t.Fatal("predicate mismatch")
	}
}
