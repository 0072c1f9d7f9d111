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
// Checkpoint (WriterOptions.Checkpoint, used by the sharelogger): after every
// flush the writer replaces one small file, sharelog<CHAIN>.checkpoint, atomically
// (write, fsync, rename, fsync the directory) with the durable length of every
// day file it may still write and the source positions (bus offsets) those bytes
// cover. A file is listed there, fsynced, before its first byte is written, so
// an unlisted file is final. Opening the writer cuts every listed file back to
// its length — a segment boundary by construction, so gzip members and zstd
// frames stay whole — which removes records written after the last checkpoint,
// including a torn segment, a file created after it, and a flush made while
// several day files were open at midnight. Readers show a listed file only up to
// its listed length (the checkpoint is read after the file's size, so the two
// are consistent), so no reader ever counts a record a restarting writer cuts.
// The writer holds an flock on sharelog<CHAIN>.lock: a second writer on the
// directory fails with ErrLocked.
//
// The package must never drop or reorder a record it accepted once Flush has
// returned nil, never hold more than MaxOpenFiles files open, never write a byte to a
// file the checkpoint does not list, never cut a file below its checkpointed
// length, and never size a buffer from an unchecked length read from a file. It knows nothing of the
// bus, of share validity or of statistics.
package logfile
