// Package logfile owns the share-log files on disk: one file per UTC day in
// btcpool HEAD's format (spec §6.2), written durably and read back, also
// while they grow.
//
// A file is a concatenation of segments. Each Writer.Flush appends one
// segment per day with buffered records and fsyncs it:
//
//   - gzip (btcpool's format, sharelog<CHAIN>-YYYY-MM-DD.bin): one complete
//     gzip member per flush;
//   - zstd (optional, sharelog<CHAIN>-YYYY-MM-DD.bin.zst): one zstd frame per
//     flush.
//
// Decompressed, the segments form one stream of records "u32 LE length |
// protobuf BitcoinMsg" (codec/btcpool.AppendShareLogRecord). The package
// treats a record's payload as opaque bytes, bounded by MaxRecordSize.
//
// Durability and recovery: a segment is written with one write and then
// fsynced, so after a crash only the last segment can be torn. Opening a day
// file for writing cuts a torn tail off (truncates to the end of the last
// segment that decodes with a valid checksum); nothing before it is lost. A
// Reader returns records only from complete segments, so it never hands out a
// record that recovery could later remove.
//
// The package must never drop or reorder a record it accepted once Flush has
// returned nil, never hold more than MaxOpenFiles files open, and never size a
// buffer from an unchecked length read from a file. It knows nothing of the
// bus, of share validity or of statistics.
package logfile
