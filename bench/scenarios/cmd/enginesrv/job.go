package main

import (
	"crypto/rand"
	"encoding/binary"
	"time"
)

// Compact network targets the jobs may carry.
const (
	// MainnetBits is a mainnet target of 2024 (difficulty about 8.3e13): no
	// simulated or ground share ever meets it, so no share turns into a
	// solved share (which the engine journals with fsync).
	MainnetBits = 0x17034219
	// RegtestBits is regtest's target: nearly every share is a block.
	RegtestBits = 0x207fffff
)

// syntheticJob is what both servers are fed: one job at a height.
type syntheticJob struct {
	ID        uint64 // high 32 bits: creation unix time (the engine expires jobs by it)
	Height    int32
	PrevHash  [32]byte
	Coinbase1 []byte
	Coinbase2 []byte
	Branch    [][32]byte
	Version   uint32
	Bits      uint32
	Time      uint32
	MinTime   uint32
}

// newSyntheticJob builds a job at height: a coinbase transaction whose
// scriptSig is the BIP34 height push followed by the 12-byte extranonce
// slot (extranonce1 4 + extranonce2 8) and a pool tag, paying 3.125 BTC to
// a P2WPKH output, plus a witness-commitment-sized OP_RETURN output; a
// random previous hash and a random merkle branch of branchLen steps (12 is
// a block of 2,049–4,096 transactions). seq makes job ids unique within a second.
func newSyntheticJob(height int32, bits uint32, branchLen int, seq uint32, now time.Time) *syntheticJob {
	t := uint32(now.Unix())
	tag := []byte("/hashpool-bench/")
	heightPush := []byte{3, byte(height), byte(height >> 8), byte(height >> 16)}
	scriptLen := len(heightPush) + 12 + len(tag)

	cb1 := binary.LittleEndian.AppendUint32(nil, 2) // tx version
	cb1 = append(cb1, 1)                            // one input
	cb1 = append(cb1, make([]byte, 32)...)          // null prevout hash
	cb1 = append(cb1, 0xff, 0xff, 0xff, 0xff)       // prevout index
	cb1 = append(cb1, byte(scriptLen))
	cb1 = append(cb1, heightPush...)

	cb2 := append([]byte(nil), tag...)
	cb2 = append(cb2, 0xff, 0xff, 0xff, 0xff) // sequence
	cb2 = append(cb2, 2)                      // two outputs
	cb2 = binary.LittleEndian.AppendUint64(cb2, 312_500_000)
	cb2 = append(cb2, 22, 0x00, 0x14) // P2WPKH
	pkh := make([]byte, 20)
	rand.Read(pkh)
	cb2 = append(cb2, pkh...)
	cb2 = binary.LittleEndian.AppendUint64(cb2, 0)
	cb2 = append(cb2, 38, 0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed) // witness commitment
	commit := make([]byte, 32)
	rand.Read(commit)
	cb2 = append(cb2, commit...)
	cb2 = binary.LittleEndian.AppendUint32(cb2, 0) // lock time

	j := &syntheticJob{ID: uint64(t)<<32 | uint64(seq), Height: height, Coinbase1: cb1, Coinbase2: cb2,
		Version: 0x20000000, Bits: bits, Time: t, MinTime: t - 3600, Branch: make([][32]byte, branchLen)}
	rand.Read(j.PrevHash[:])
	for i := range j.Branch {
		rand.Read(j.Branch[i][:])
	}
	return j
}
