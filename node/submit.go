package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// SubmitStatus is what a node made of a submitted block.
type SubmitStatus uint8

// Submit statuses.
const (
	// SubmitAccepted: the node answered null. The block is valid, but null does not prove it
	// became the tip (a valid side-chain block is null too): check getbestblockhash.
	SubmitAccepted SubmitStatus = iota
	// SubmitDuplicate: the node already had the block ("duplicate", btcd's "rejected: already
	// have block ..."). Another node or path got it there first; not a failure.
	SubmitDuplicate
	// SubmitInconclusive: the node accepted the block but could not fully validate it
	// ("inconclusive", "duplicate-inconclusive"); typically it is on a side chain.
	SubmitInconclusive
	// SubmitRejected: the block is invalid (a BIP22 reason such as "high-hash", btcd's
	// "rejected: <reason>", or RPC error -22 / -25). Retrying the same bytes will not help.
	SubmitRejected
)

func (s SubmitStatus) String() string {
	switch s {
	case SubmitAccepted:
		return "accepted"
	case SubmitDuplicate:
		return "duplicate"
	case SubmitInconclusive:
		return "inconclusive"
	case SubmitRejected:
		return "rejected"
	}
	return fmt.Sprintf("SubmitStatus(%d)", uint8(s))
}

// SubmitResult is a node's answer to submitblock.
type SubmitResult struct {
	Status SubmitStatus
	// Reason is the node's text: the BIP22 string, btcd's text after "rejected: ", or the RPC
	// error message. Empty when accepted.
	Reason string
	// Code is the RPC error code when the answer was an error object (-22, -25), else 0.
	Code int
}

// SubmitBlock sends a hex-encoded block with submitblock and interprets the answer. The error
// is non-nil only when no answer about the block was obtained (network failure, timeout, bad
// credentials, the node warming up, or an RPC error other than -22 / -25): the caller may retry
// those. Every answer about the block itself is in the result.
func (c *Client) SubmitBlock(ctx context.Context, blockHex string) (SubmitResult, error) {
	p, err := json.Marshal([]string{blockHex})
	if err != nil {
		return SubmitResult{}, fmt.Errorf("node: submitblock: %w", err)
	}
	_, res, err := c.do(ctx, "submitblock", requestBody("submitblock", p), c.opts.Timeout)
	if err != nil {
		var re *RPCError
		if errors.As(err, &re) && (re.Code == CodeDeserialization || re.Code == CodeVerify) {
			return SubmitResult{Status: SubmitRejected, Reason: re.Message, Code: re.Code}, nil
		}
		return SubmitResult{}, err
	}
	return interpretSubmit(res)
}

// interpretSubmit maps a submitblock result (null or a string) to a SubmitResult.
func interpretSubmit(res []byte) (SubmitResult, error) {
	if string(res) == "null" {
		return SubmitResult{Status: SubmitAccepted}, nil
	}
	var s string
	if err := json.Unmarshal(res, &s); err != nil {
		return SubmitResult{}, fmt.Errorf("node: submitblock: result is neither null nor a string: %q", quoteStart(res))
	}
	if rest, ok := strings.CutPrefix(s, "rejected: "); ok { // btcd
		if strings.HasPrefix(rest, "already have block") {
			return SubmitResult{Status: SubmitDuplicate, Reason: rest}, nil
		}
		return SubmitResult{Status: SubmitRejected, Reason: rest}, nil
	}
	switch s {
	case "duplicate":
		return SubmitResult{Status: SubmitDuplicate, Reason: s}, nil
	case "inconclusive", "duplicate-inconclusive":
		return SubmitResult{Status: SubmitInconclusive, Reason: s}, nil
	}
	return SubmitResult{Status: SubmitRejected, Reason: s}, nil
}
