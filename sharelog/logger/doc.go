// Package logger is the sharelogger (spec §6.2): it consumes the share topic
// in a consumer group, decodes each message with btcpool's multi-version
// decoder, drops invalid shares (counted), and appends the valid ones to the
// day files of sharelog/logfile, flushing (one segment per day file, fsynced)
// every FlushInterval while shares are buffered.
//
// Offsets are committed only after the flush that made their shares durable,
// so a crash loses nothing: a restart re-reads every uncommitted message. The
// price is at-least-once: shares flushed but not yet committed when the
// process died are written a second time after the restart, as in btcpool.
//
// The logger must never commit an offset whose share is not on disk, never
// block the bus for longer than one flush, and never log per share.
package logger
