package node

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// RSK's merged-mining RPCs (rskj's mnr module): mnr_getWork and
// mnr_submitBitcoinBlockPartialMerkle. RSK speaks JSON-RPC 2.0, so these build their own
// request ({"jsonrpc":"2.0","id":"1",...}, as btcpool's gwmaker and blkmaker send) and share
// the client's transport, auth, timeout and response bound. No rskj runs on the machines
// hashpool is tested on: the behaviour is RSK's published JSON-RPC API and rskj's
// MnrModule, checked against a server written to that specification.

// RSKWork is mnr_getWork's result.
type RSKWork struct {
	// BlockHashForMergedMining goes after the RSKBLOCK: tag ("0x" and 64 hex digits).
	BlockHashForMergedMining string
	// Target is the RSK target, big-endian hex with "0x".
	Target string
	// ParentBlockHash is the RSK block the work builds on.
	ParentBlockHash string
	// FeesPaidToMiner is the fees of the RSK block, as the node wrote them.
	FeesPaidToMiner string
	// Notify tells pools every earlier work can be replaced at once.
	Notify bool
}

// rskWorkJSON mirrors the answer; pointers tell missing keys apart.
type rskWorkJSON struct {
	BlockHashForMergedMining *string `json:"blockHashForMergedMining"`
	Target                   *string `json:"target"`
	ParentBlockHash          *string `json:"parentBlockHash"`
	FeesPaidToMiner          *string `json:"feesPaidToMiner"`
	Notify                   *bool   `json:"notify"`
}

// rskBody builds a JSON-RPC 2.0 request with string params, separated by ", " as btcpool's
// blkmaker writes them.
func rskBody(method string, params []string) []byte {
	b := make([]byte, 0, 64+len(method))
	b = append(b, `{"jsonrpc":"2.0","id":"1","method":`...)
	b = appendJSONString(b, method)
	b = append(b, `,"params":[`...)
	for i, p := range params {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = appendJSONString(b, p)
	}
	return append(b, "]}"...)
}

// RSKGetWork calls mnr_getWork and validates its answer with btcpool's checks (every field
// present with its type: four strings and a boolean) and their formats: both hashes 64 hex
// digits, the target 1 to 64, each with an optional 0x; the fees at most 79 bytes.
func (c *Client) RSKGetWork(ctx context.Context) (RSKWork, error) {
	const method = "mnr_getWork"
	_, res, err := c.do(ctx, method, rskBody(method, nil), c.opts.Timeout)
	if err != nil {
		return RSKWork{}, err
	}
	return parseRSKWork(res)
}

// parseRSKWork checks mnr_getWork's result (see RSKGetWork).
func parseRSKWork(res []byte) (RSKWork, error) {
	const method = "mnr_getWork"
	var j rskWorkJSON
	if err := json.Unmarshal(res, &j); err != nil {
		return RSKWork{}, fmt.Errorf("node: %s: result is not a work object: %w", method, err)
	}
	if j.BlockHashForMergedMining == nil || j.Target == nil || j.ParentBlockHash == nil || j.FeesPaidToMiner == nil || j.Notify == nil {
		return RSKWork{}, fmt.Errorf("node: %s: result lacks blockHashForMergedMining, target, parentBlockHash, feesPaidToMiner or notify: %q", method, quoteStart(res))
	}
	w := RSKWork{BlockHashForMergedMining: *j.BlockHashForMergedMining, Target: *j.Target, ParentBlockHash: *j.ParentBlockHash,
		FeesPaidToMiner: *j.FeesPaidToMiner, Notify: *j.Notify}
	switch {
	case !rskHex(w.BlockHashForMergedMining, 64, 64):
		return RSKWork{}, fmt.Errorf("node: %s: blockHashForMergedMining %q is not 64 hex digits", method, quoteStart([]byte(w.BlockHashForMergedMining)))
	case !rskHex(w.ParentBlockHash, 64, 64):
		return RSKWork{}, fmt.Errorf("node: %s: parentBlockHash %q is not 64 hex digits", method, quoteStart([]byte(w.ParentBlockHash)))
	case !rskHex(w.Target, 1, 64):
		return RSKWork{}, fmt.Errorf("node: %s: target %q is not 1 to 64 hex digits", method, quoteStart([]byte(w.Target)))
	case len(w.FeesPaidToMiner) > 79:
		return RSKWork{}, fmt.Errorf("node: %s: feesPaidToMiner is %d bytes (at most 79)", method, len(w.FeesPaidToMiner))
	}
	return w, nil
}

func rskHex(s string, min, max int) bool {
	d := strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if len(d) < min || len(d) > max {
		return false
	}
	for i := 0; i < len(d); i++ {
		c := d[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// RSKSubmitted is mnr_submitBitcoinBlockPartialMerkle's result (rskj's SubmittedBlockInfo).
type RSKSubmitted struct {
	BlockImportedResult string `json:"blockImportedResult"`
	BlockHash           string `json:"blockHash"`
	BlockIncludedHeight string `json:"blockIncludedHeight"`
}

// maxRSKParam bounds one argument of a submission (a 1 MB coinbase, hex).
const maxRSKParam = 2 << 20

// RSKSubmitBitcoinBlockPartialMerkle calls mnr_submitBitcoinBlockPartialMerkle with the five
// arguments auxpow.RSKSubmitParams builds. It returns the result and the whole response text
// (btcpool records it). An error object is returned as *RPCError: the node's verdict (a work
// it does not know, a proof that does not verify); any other error means no answer.
func (c *Client) RSKSubmitBitcoinBlockPartialMerkle(ctx context.Context, params [5]string) (RSKSubmitted, string, error) {
	const method = "mnr_submitBitcoinBlockPartialMerkle"
	for i, p := range params {
		if len(p) > maxRSKParam {
			return RSKSubmitted{}, "", fmt.Errorf("node: %s: argument %d is %d bytes (at most %d)", method, i+1, len(p), maxRSKParam)
		}
	}
	raw, res, err := c.do(ctx, method, rskBody(method, params[:]), c.opts.Timeout)
	if err != nil {
		return RSKSubmitted{}, quoteStart(raw), err
	}
	var s RSKSubmitted
	if err := json.Unmarshal(res, &s); err != nil {
		return RSKSubmitted{}, quoteStart(raw), fmt.Errorf("node: %s: result is not a SubmittedBlockInfo: %w", method, err)
	}
	return s, quoteStart(raw), nil
}
