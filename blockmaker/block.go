package blockmaker

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/wire/v2"

	"github.com/hashpool/hashpool/node"
	"github.com/hashpool/hashpool/sha"
)

// Limits on what a template may carry; a template beyond them is refused rather than held.
const (
	maxBlockBytes    = node.MaxTemplateTxBytes // well above the 4 MB weight limit's largest serialization
	witnessMagicLen  = 6
	witnessReserved  = 32
	headerLen        = 80
	maxCoinbaseBytes = 1000
)

// witnessMagic is the start of a BIP141 witness-commitment output script.
var witnessMagic = []byte{0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed}

// Template is what the block maker keeps of one block template: its transactions, raw and in
// template order, ready to be appended after a coinbase.
type Template struct {
	GbtHash  string
	Height   int64
	PrevHash string
	Txs      [][]byte   // full (witness) serialization of each transaction, as the node sent it
	TxIDs    [][32]byte // their txids, internal byte order
}

// ParseTemplate reads the raw getblocktemplate response text (what a RawGbt carries, base64
// decoded) into a Template, with node.BlockmakerRules: the pool's one template parser, which
// jobmaker uses too (with stricter field requirements), so every template a job was made from
// is accepted here. Each transaction is decoded to compute its txid, so a template with a
// malformed transaction is refused here and not at submit time.
func ParseTemplate(gbtHash string, response []byte) (*Template, error) {
	nt, err := node.ParseTemplateWith(response, node.BlockmakerRules)
	if err != nil {
		return nil, fmt.Errorf("blockmaker: template %s: %w", gbtHash, err)
	}
	return &Template{GbtHash: gbtHash, Height: nt.Height, PrevHash: nt.PreviousBlockHash, Txs: nt.TxBytes, TxIDs: nt.TxIDs}, nil
}

// Block is a block assembled from a solved share, ready for submitblock.
type Block struct {
	Bytes   []byte   // full serialization, with witness data
	Hash    [32]byte // header hash, internal byte order
	Rewards int64    // sum of the coinbase outputs, in satoshi
}

// ErrMerkleMismatch means the share's header does not commit to the coinbase and template it
// was matched with: the block cannot be valid, and everything must be logged for recovery.
var ErrMerkleMismatch = errors.New("blockmaker: header merkle root does not match coinbase + template")

// Assemble builds the full block from the solved share's 80-byte header and coinbase (without
// witness) and the template's transactions. When the coinbase carries a witness commitment the
// coinbase input gets the 32-byte witness reserved value, as BIP141 requires; the node is not
// trusted to add it (btcd does not).
func Assemble(header [80]byte, coinbase []byte, t *Template) (*Block, error) {
	if len(coinbase) == 0 || len(coinbase) > maxCoinbaseBytes {
		return nil, fmt.Errorf("blockmaker: coinbase of %d bytes", len(coinbase))
	}
	var cb wire.MsgTx
	if err := cb.DeserializeNoWitness(bytes.NewReader(coinbase)); err != nil {
		return nil, fmt.Errorf("blockmaker: coinbase: %w", err)
	}
	if len(cb.TxIn) != 1 {
		return nil, fmt.Errorf("blockmaker: coinbase has %d inputs, want 1", len(cb.TxIn))
	}
	var rewards int64
	committed := false
	for _, out := range cb.TxOut {
		rewards += out.Value
		if len(out.PkScript) >= witnessMagicLen+32 && bytes.Equal(out.PkScript[:witnessMagicLen], witnessMagic) {
			committed = true
		}
	}
	root := sha.MerkleRoot(sha.DoubleSHA256(coinbase), sha.MerkleBranch(t.TxIDs))
	if !bytes.Equal(root[:], header[36:68]) {
		return nil, ErrMerkleMismatch
	}
	if committed {
		cb.TxIn[0].Witness = wire.TxWitness{make([]byte, witnessReserved)}
	}

	size := headerLen + wire.VarIntSerializeSize(uint64(len(t.Txs)+1)) + cb.SerializeSize()
	for _, tx := range t.Txs {
		size += len(tx)
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	buf.Write(header[:])
	if err := wire.WriteVarInt(buf, 0, uint64(len(t.Txs)+1)); err != nil {
		return nil, err
	}
	if err := cb.Serialize(buf); err != nil {
		return nil, err
	}
	for _, tx := range t.Txs {
		buf.Write(tx)
	}
	return &Block{Bytes: buf.Bytes(), Hash: sha.DoubleSHA256(header[:]), Rewards: rewards}, nil
}
