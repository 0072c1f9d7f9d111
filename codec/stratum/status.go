package stratum

import "github.com/hashpool/hashpool/codec/btcpool"

// Status is btcpool's share and request status (spec §4.9 table). It is the very type of
// codec/btcpool, so a share's status goes from validation to the wire (WireCode maps 36 and 37
// to 21) and into the share record without conversion; the large magic numbers are accept
// statuses, used in share records and the agent protocol's SUBMIT_RESPONSE.
type Status = btcpool.Status

// btcpool's status codes, re-exported for the stratum side.
const (
	StatusRejectNoReason      = btcpool.StatusRejectNoReason
	StatusJobNotFoundOrStale  = btcpool.StatusJobNotFoundOrStale
	StatusDuplicateShare      = btcpool.StatusDuplicateShare
	StatusLowDifficulty       = btcpool.StatusLowDifficulty
	StatusUnauthorized        = btcpool.StatusUnauthorized
	StatusNotSubscribed       = btcpool.StatusNotSubscribed
	StatusIllegalMethod       = btcpool.StatusIllegalMethod
	StatusIllegalParams       = btcpool.StatusIllegalParams
	StatusIPBanned            = btcpool.StatusIPBanned
	StatusInvalidUsername     = btcpool.StatusInvalidUsername
	StatusInternalError       = btcpool.StatusInternalError
	StatusTimeTooOld          = btcpool.StatusTimeTooOld
	StatusTimeTooNew          = btcpool.StatusTimeTooNew
	StatusIllegalVersionMask  = btcpool.StatusIllegalVersionMask
	StatusInvalidSolution     = btcpool.StatusInvalidSolution
	StatusWrongNoncePrefix    = btcpool.StatusWrongNoncePrefix
	StatusJobNotFound         = btcpool.StatusJobNotFound
	StatusStaleShare          = btcpool.StatusStaleShare
	StatusClientIsNotSwitcher = btcpool.StatusClientIsNotSwitcher
	StatusAccept              = btcpool.StatusAccept
	StatusAcceptStale         = btcpool.StatusAcceptStale
	StatusSolved              = btcpool.StatusSolved
	StatusSolvedStale         = btcpool.StatusSolvedStale
	StatusSolvedPreliminary   = btcpool.StatusSolvedPreliminary
	StatusUnknown             = btcpool.StatusUnknown
)
