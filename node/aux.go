package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
)

// Merged-mining RPCs of an aux chain's node (Namecoin Core and every createauxblock chain):
// createauxblock / submitauxblock when the node offers them, getauxblock otherwise (spec
// §2.3). Every answer is bounded like any other call (Options.MaxResponseBytes, Timeout) and
// validated before it is returned.

// maxAuxPowHex bounds the auxpow hex a caller may submit: a parent coinbase of up to
// 1 MB plus branches and header, hex-encoded.
const maxAuxPowHex = 2<<20 + 4096

// AuxBlock is an aux chain's work for merged mining: the answer of createauxblock and of
// getauxblock without arguments.
type AuxBlock struct {
	// Hash is the aux block's hash in display hex (64 characters): what the commitment
	// carries and what submitauxblock takes back.
	Hash string
	// ChainID is the aux chain's id (1 for Namecoin), which fixes its slot in a multi-chain
	// merkle tree.
	ChainID int32
	// PreviousBlockHash is the aux chain tip the block builds on (display hex).
	PreviousBlockHash string
	// CoinbaseValue is the aux block's reward in the aux chain's base unit.
	CoinbaseValue int64
	// Bits is the aux block's compact target, 8 hex digits.
	Bits string
	// Height is the aux block's height.
	Height int64
	// Target is "_target": the target as 64 hex digits, least significant byte first.
	// Empty when the node does not send it.
	Target string
}

// auxBlockJSON mirrors the RPC answer; pointers tell missing keys apart.
type auxBlockJSON struct {
	Hash              *string `json:"hash"`
	ChainID           *int64  `json:"chainid"`
	PreviousBlockHash *string `json:"previousblockhash"`
	CoinbaseValue     *int64  `json:"coinbasevalue"`
	Bits              *string `json:"bits"`
	Height            *int64  `json:"height"`
	Target            *string `json:"_target"`
}

// parseAuxBlock checks an aux block answer: hash and bits are required with their formats,
// chainid and height must be present and in range; the others are optional but checked
// when present.
func parseAuxBlock(method string, raw []byte) (AuxBlock, error) {
	var j auxBlockJSON
	if err := json.Unmarshal(raw, &j); err != nil {
		return AuxBlock{}, fmt.Errorf("node: %s: result is not an aux block object: %w", method, err)
	}
	var errs []string
	var b AuxBlock
	switch {
	case j.Hash == nil:
		errs = append(errs, "hash is missing")
	case !isHash(*j.Hash):
		errs = append(errs, fmt.Sprintf("hash %q is not 64 hex characters", quoteStart([]byte(*j.Hash))))
	default:
		b.Hash = strings.ToLower(*j.Hash)
	}
	switch {
	case j.ChainID == nil:
		errs = append(errs, "chainid is missing")
	case *j.ChainID < 0 || *j.ChainID > math.MaxInt32:
		errs = append(errs, fmt.Sprintf("chainid %d is out of range", *j.ChainID))
	default:
		b.ChainID = int32(*j.ChainID)
	}
	switch {
	case j.Bits == nil:
		errs = append(errs, "bits is missing")
	case !isHexLen(*j.Bits, 8):
		errs = append(errs, fmt.Sprintf("bits %q is not 8 hex characters", quoteStart([]byte(*j.Bits))))
	default:
		b.Bits = strings.ToLower(*j.Bits)
	}
	switch {
	case j.Height == nil:
		errs = append(errs, "height is missing")
	case *j.Height < 0 || *j.Height > math.MaxInt32:
		errs = append(errs, fmt.Sprintf("height %d is out of range", *j.Height))
	default:
		b.Height = *j.Height
	}
	if j.PreviousBlockHash != nil {
		if !isHash(*j.PreviousBlockHash) {
			errs = append(errs, "previousblockhash is not 64 hex characters")
		} else {
			b.PreviousBlockHash = strings.ToLower(*j.PreviousBlockHash)
		}
	}
	if j.CoinbaseValue != nil {
		if *j.CoinbaseValue < 0 {
			errs = append(errs, "coinbasevalue is negative")
		} else {
			b.CoinbaseValue = *j.CoinbaseValue
		}
	}
	if j.Target != nil {
		if !isHash(*j.Target) {
			errs = append(errs, "_target is not 64 hex characters")
		} else {
			b.Target = strings.ToLower(*j.Target)
		}
	}
	if len(errs) > 0 {
		return AuxBlock{}, fmt.Errorf("node: %s: %s", method, strings.Join(errs, "; "))
	}
	return b, nil
}

// CreateAuxBlock asks for a new aux block paying address (createauxblock "<address>"). On
// a fresh regtest chain still in initial block download Namecoin Core never answers this
// call (and its later calls stall): the Timeout ends it.
func (c *Client) CreateAuxBlock(ctx context.Context, address string) (AuxBlock, error) {
	if address == "" {
		return AuxBlock{}, errors.New("node: createauxblock: address is empty")
	}
	var raw json.RawMessage
	if err := c.Call(ctx, "createauxblock", []any{address}, &raw); err != nil {
		return AuxBlock{}, err
	}
	return parseAuxBlock("createauxblock", raw)
}

// GetAuxBlock asks for a new aux block with getauxblock and no arguments, for nodes without
// createauxblock; the node pays a key of its own wallet.
func (c *Client) GetAuxBlock(ctx context.Context) (AuxBlock, error) {
	var raw json.RawMessage
	if err := c.Call(ctx, "getauxblock", nil, &raw); err != nil {
		return AuxBlock{}, err
	}
	return parseAuxBlock("getauxblock", raw)
}

// SubmitAuxBlock submits a solved aux block (submitauxblock "<hash>" "<auxpow hex>") and
// returns the node's verdict: true when it accepted the block. An error means no verdict was
// obtained (or the node refused the arguments, e.g. an unknown hash): see [RPCError].
func (c *Client) SubmitAuxBlock(ctx context.Context, hash, auxPowHex string) (bool, error) {
	return c.submitAux(ctx, "submitauxblock", hash, auxPowHex)
}

// GetAuxBlockSubmit submits a solved aux block the old way, getauxblock "<hash>" "<auxpow
// hex>", for nodes without submitauxblock.
func (c *Client) GetAuxBlockSubmit(ctx context.Context, hash, auxPowHex string) (bool, error) {
	return c.submitAux(ctx, "getauxblock", hash, auxPowHex)
}

func (c *Client) submitAux(ctx context.Context, method, hash, auxPowHex string) (bool, error) {
	if !isHash(hash) {
		return false, fmt.Errorf("node: %s: hash %q is not 64 hex characters", method, quoteStart([]byte(hash)))
	}
	if len(auxPowHex) == 0 || len(auxPowHex) > maxAuxPowHex || !isHexLen(auxPowHex, len(auxPowHex)) || len(auxPowHex)%2 != 0 {
		return false, fmt.Errorf("node: %s: auxpow is not hex of 1 to %d characters", method, maxAuxPowHex)
	}
	var ok bool
	if err := c.Call(ctx, method, []any{hash, auxPowHex}, &ok); err != nil {
		return false, err
	}
	return ok, nil
}

// AuxMethods says which merged-mining RPCs a node lists in its help.
type AuxMethods struct {
	CreateAuxBlock bool // createauxblock
	SubmitAuxBlock bool // submitauxblock
	GetAuxBlock    bool // getauxblock
}

// UseCreate reports whether to use createauxblock / submitauxblock (btcpool: when help lists
// both), rather than getauxblock.
func (m AuxMethods) UseCreate() bool { return m.CreateAuxBlock && m.SubmitAuxBlock }

// GetAuxMethods reads the node's help text and reports which merged-mining RPCs it lists,
// btcpool's way of choosing between createauxblock and getauxblock.
func (c *Client) GetAuxMethods(ctx context.Context) (AuxMethods, error) {
	var help string
	if err := c.Call(ctx, "help", nil, &help); err != nil {
		return AuxMethods{}, err
	}
	var m AuxMethods
	for line := range strings.Lines(help) {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch name {
		case "createauxblock":
			m.CreateAuxBlock = true
		case "submitauxblock":
			m.SubmitAuxBlock = true
		case "getauxblock":
			m.GetAuxBlock = true
		}
	}
	if !m.UseCreate() && !m.GetAuxBlock {
		return m, fmt.Errorf("node: help lists neither createauxblock/submitauxblock nor getauxblock: %s is not a merged-mining node", c.URL())
	}
	return m, nil
}
