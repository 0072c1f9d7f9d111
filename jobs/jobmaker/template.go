package jobmaker

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/hashpool/hashpool/node"
	"github.com/hashpool/hashpool/sha"
)

// MaxTemplateSize bounds the decoded getblocktemplate response text (node.MaxTemplateSize).
const MaxTemplateSize = node.MaxTemplateSize

// Template is the part of a getblocktemplate result a job is built from,
// parsed and checked once when the RawGbt is accepted.
type Template struct {
	GbtHash       [32]byte // dSHA of the whole response text, internal order
	Height        int32
	PrevHash      [32]byte // internal (little-endian) order
	Bits          uint32
	CurTime       uint32
	MinTime       uint32
	Version       int32
	CoinbaseValue int64
	// Commitment is the full witness commitment output script
	// (6a24aa21a9ed + 32 bytes), or nil when the template has none.
	Commitment []byte
	// TxIDs are the ids (non-witness hashes) of the template's
	// transactions in order; the coinbase is not among them.
	TxIDs [][32]byte
	// Branch is the coinbase's merkle branch over TxIDs (sha.MerkleBranch),
	// computed once here because every job from the template uses it.
	Branch [][32]byte

	branchHex string // Branch in display hex, concatenated (StratumJob merkleBranch)
}

// Empty reports whether the template holds no transaction besides the
// coinbase.
func (t *Template) Empty() bool { return len(t.TxIDs) == 0 }

// ParseTemplate parses the getblocktemplate response text carried by a
// RawGbt (the whole `{"result":...,"error":null,"id":...}` object) with
// node.JobmakerRules — the pool's one template parser, so blockmaker can
// rebuild every block of every job made here — and keeps what a job needs.
// Every transaction is decoded to compute its txid, so a template with a
// malformed transaction is refused here rather than producing jobs whose
// blocks the node would reject.
func ParseTemplate(text []byte) (*Template, error) {
	nt, err := node.ParseTemplateWith(text, node.JobmakerRules)
	if err != nil {
		var te *node.TemplateError
		if errors.As(err, &te) && len(te.Missing) > 0 {
			msg := fmt.Sprintf("jobmaker: template result lacks %v", te.Missing)
			if len(te.Problems) > 0 {
				msg += "; " + strings.Join(te.Problems, "; ")
			}
			return nil, errors.New(msg)
		}
		return nil, fmt.Errorf("jobmaker: %w", err)
	}
	t := &Template{
		GbtHash:       sha.DoubleSHA256(text),
		Height:        int32(nt.Height),
		CurTime:       uint32(nt.CurTime),
		MinTime:       uint32(nt.MinTime),
		Version:       int32(uint32(nt.Version)), // Core prints it signed; the unsigned reading is accepted too
		CoinbaseValue: nt.CoinbaseValue,
		TxIDs:         nt.TxIDs,
	}
	var errs []error
	if t.PrevHash, err = sha.ParseDisplayHex(nt.PreviousBlockHash); err != nil {
		errs = append(errs, fmt.Errorf("previousblockhash %q: %w", nt.PreviousBlockHash, err))
	}
	if b, err := hex.DecodeString(nt.Bits); err != nil || len(b) != 4 {
		errs = append(errs, fmt.Errorf("bits %q is not 8 hex digits", nt.Bits))
	} else {
		t.Bits = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	}
	if t.Commitment, err = parseCommitment(nt.DefaultWitnessCommitment); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("jobmaker: bad template: %w", errors.Join(errs...))
	}
	if len(t.TxIDs) == 0 {
		t.TxIDs = nil
	}
	t.Branch = sha.MerkleBranch(t.TxIDs)
	hexBuf := make([]byte, 0, 64*len(t.Branch))
	for i := range t.Branch {
		hexBuf = sha.AppendDisplayHex(hexBuf, &t.Branch[i])
	}
	t.branchHex = string(hexBuf)
	return t, nil
}

// parseCommitment accepts Bitcoin Core's default_witness_commitment (the
// full output script, 6a24aa21a9ed + 32-byte hash) and btcd's (the bare
// 32-byte hash, which needs the script header in front). Empty means the
// template has no witness transactions (or the node predates segwit).
func parseCommitment(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("default_witness_commitment is not hex: %w", err)
	}
	switch {
	case len(b) == 32:
		return append(append(make([]byte, 0, 38), witnessCommitmentHeader...), b...), nil
	case len(b) >= 38 && len(b) <= 80 && bytes.HasPrefix(b, witnessCommitmentHeader):
		return b, nil
	}
	return nil, fmt.Errorf("default_witness_commitment %q is neither a 32-byte hash nor a commitment script", s)
}

// prevHashBeStr renders the previous block hash the way mining.notify
// carries it: the internal bytes in eight 4-byte words, each word
// byte-reversed.
func prevHashBeStr(prev [32]byte) string {
	var b [32]byte
	for w := 0; w < 32; w += 4 {
		b[w], b[w+1], b[w+2], b[w+3] = prev[w+3], prev[w+2], prev[w+1], prev[w]
	}
	return hex.EncodeToString(b[:])
}
