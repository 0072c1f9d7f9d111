// Package btcpool encodes and decodes btcpool's Kafka messages and file records byte for byte
// (spec/btcpool.md): RawGbt (§2.2) and StratumJob (§3.7) JSON (and hashpool's "mergedMining"
// job key), the versioned share protobuf and its older V1/V2 structs (§6.1), share-log file
// records (§6.2), share status codes (§4.9), SolvedShare (§7.1) and CommonEvents JSON (§4.15).
//
// It owns only formats: no I/O besides reading records from an io.Reader, no Kafka, no
// logging, no clocks. Encoders are append-style and the share encoders allocate nothing;
// decoders fill caller-owned structs, report one error (wrapping ErrMalformed) and never panic
// or allocate in proportion to a length field they have not checked against the input.
//
// It must never import engine, bus or any component package, and never change a byte of a
// format without a golden test from the spec that says so.
package btcpool
