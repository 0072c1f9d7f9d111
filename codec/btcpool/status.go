package btcpool

// Status is a share status code as btcpool writes it into share records and (after WireCode) into
// stratum error replies. The numbers are btcpool's StratumStatus values (spec §4.9 table); the
// large accept codes are magic numbers, not 1.
type Status int32

// Share status codes, spec §4.9.
const (
	StatusAccept            Status = 1798084231 // share accepted
	StatusAcceptStale       Status = 950395421  // share accepted although its job was stale
	StatusSolved            Status = 1422486894 // share accepted and it solved a block
	StatusSolvedStale       Status = 1713984938 // share accepted, solved a block, job stale
	StatusSolvedPreliminary Status = 1835617709 // not used by Bitcoin; renders as "Unknown"

	StatusRejectNoReason      Status = 0
	StatusJobNotFoundOrStale  Status = 21 // the only stale/not-found code sent on the wire
	StatusDuplicateShare      Status = 22
	StatusLowDifficulty       Status = 23
	StatusUnauthorized        Status = 24
	StatusNotSubscribed       Status = 25
	StatusIllegalMethod       Status = 26
	StatusIllegalParams       Status = 27
	StatusIPBanned            Status = 28
	StatusInvalidUsername     Status = 29
	StatusInternalError       Status = 30
	StatusTimeTooOld          Status = 31
	StatusTimeTooNew          Status = 32
	StatusIllegalVersionMask  Status = 33
	StatusInvalidSolution     Status = 34
	StatusWrongNoncePrefix    Status = 35
	StatusJobNotFound         Status = 36 // sent on the wire as 21
	StatusStaleShare          Status = 37 // sent on the wire as 21
	StatusClientIsNotSwitcher Status = 400
	StatusUnknown             Status = 2147483647
)

// String returns btcpool's message for s (StratumStatus::toString), the text of stratum error
// replies. Codes btcpool has no message for render as "Unknown". It never allocates.
func (s Status) String() string {
	switch s {
	case StatusAccept:
		return "Share accepted"
	case StatusAcceptStale:
		return "Share accepted (stale)"
	case StatusSolved:
		return "Share accepted and solved"
	case StatusSolvedStale:
		return "Share accepted and solved (stale)"
	case StatusRejectNoReason:
		return "Share rejected"
	case StatusJobNotFoundOrStale:
		return "Job not found (=stale)"
	case StatusDuplicateShare:
		return "Duplicate share"
	case StatusLowDifficulty:
		return "Low difficulty"
	case StatusUnauthorized:
		return "Unauthorized worker"
	case StatusNotSubscribed:
		return "Not subscribed"
	case StatusIllegalMethod:
		return "Illegal method"
	case StatusIllegalParams:
		return "Illegal params"
	case StatusIPBanned:
		return "Ip banned"
	case StatusInvalidUsername:
		return "Invalid username"
	case StatusInternalError:
		return "Internal error"
	case StatusTimeTooOld:
		return "Time too old"
	case StatusTimeTooNew:
		return "Time too new"
	case StatusIllegalVersionMask:
		return "Invalid version mask"
	case StatusInvalidSolution:
		return "Invalid Solution"
	case StatusWrongNoncePrefix:
		return "Wrong Nonce Prefix"
	case StatusJobNotFound:
		return "Job not found"
	case StatusStaleShare:
		return "Stale share"
	case StatusClientIsNotSwitcher:
		// btcpool defines this message only in stratum-switcher builds, the only builds that
		// ever produce code 400.
		return "Client is not a stratum switcher"
	}
	return "Unknown"
}

// WireCode returns the code to put in a stratum error reply: btcpool HEAD rewrites
// JOB_NOT_FOUND (36) and STALE_SHARE (37) to 21 "Job not found (=stale)" for old miners.
// Agent SUBMIT_RESPONSE frames carry the raw status instead (spec §5.3).
func (s Status) WireCode() Status {
	if s == StatusJobNotFound || s == StatusStaleShare {
		return StatusJobNotFoundOrStale
	}
	return s
}

// IsAccepted reports whether s credits the share (ACCEPT, ACCEPT_STALE, SOLVED, SOLVED_STALE),
// btcpool's StratumStatus::isAccepted.
func (s Status) IsAccepted() bool {
	return s == StatusAccept || s == StatusAcceptStale || s == StatusSolved || s == StatusSolvedStale
}

// IsAcceptedStale reports whether s is one of the accepted-but-stale codes (ACCEPT_STALE,
// SOLVED_STALE).
func (s Status) IsAcceptedStale() bool {
	return s == StatusAcceptStale || s == StatusSolvedStale
}

// IsRejectedStale reports whether s is a rejection for staleness (21 or 37).
func (s Status) IsRejectedStale() bool {
	return s == StatusJobNotFoundOrStale || s == StatusStaleShare
}

// IsStale reports whether s is any stale code, accepted or rejected; slparser and statshttpd
// count such shares as stale unless they are accepted (spec §8.1).
func (s Status) IsStale() bool {
	return s.IsAcceptedStale() || s.IsRejectedStale()
}

// Outcome is how the statistics components count a share: accepted, stale or rejected.
type Outcome uint8

// Share outcomes for statistics.
const (
	OutcomeReject Outcome = iota
	OutcomeAccept
	OutcomeStale
)

// Outcome classifies s the way slparser does (spec §8.1): accepted statuses count as accepted,
// except accepted-stale ones when acceptStale (`slparserhttpd.accept_stale`) is false; then any stale
// status counts as stale; everything else is a reject.
func (s Status) Outcome(acceptStale bool) Outcome {
	if s.IsAccepted() && (acceptStale || !s.IsAcceptedStale()) {
		return OutcomeAccept
	}
	if s.IsStale() {
		return OutcomeStale
	}
	return OutcomeReject
}
