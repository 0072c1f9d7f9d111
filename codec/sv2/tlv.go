package sv2

// TLVHeaderLen is the length of a TLV field's type and length: extension
// type U16, field type U8, value length U16 (§3.4.3).
const TLVHeaderLen = 5

// TLV is one Type-Length-Value extension field, as appended after a message's
// own fields when an extension is negotiated (e.g. 0x0002's user_identity on
// SubmitSharesExtended).
//
// The multi-byte parts are little-endian like every other multi-byte type of
// the protocol (§3.1) and like SRI's parsers-sv2; the spec's illustrative
// byte dump in §3.4.3 prints them most-significant byte first, which the
// field definitions (U16) contradict.
type TLV struct {
	ExtensionType uint16
	FieldType     uint8
	// Value aliases the buffer NextTLV read it from.
	Value []byte
}

// NextTLV reads the first TLV field of b and returns the bytes after it.
func NextTLV(b []byte) (f TLV, rest []byte, err error) {
	r := NewReader(b)
	f.ExtensionType = r.U16()
	f.FieldType = r.U8()
	f.Value = r.Bytes(int(r.U16()))
	if r.Err() != nil {
		return TLV{}, nil, r.Err()
	}
	return f, r.Rest(), nil
}

// AppendTLV appends f; a value over 65535 bytes is cut.
func AppendTLV(dst []byte, f TLV) []byte {
	v := clip(f.Value, MaxB64K)
	dst = append(AppendU16(dst, f.ExtensionType), f.FieldType)
	return append(AppendU16(dst, uint16(len(v))), v...)
}
