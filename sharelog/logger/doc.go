// Package logger is the sharelogger (spec §6.2): it consumes the share topic
// in a consumer group, decodes each message with btcpool's multi-version
// decoder, drops invalid shares (counted), and appends the valid ones to the
// day files of sharelog/logfile, flushing (one segment per day file, fsynced)
// every FlushInterval while shares are buffered.
//
// Exactly once: after each flush the writer durably records, in one atomic
// checkpoint file, the length of every day file it may still write and the
// last bus offset per partition those bytes cover (logfile.Checkpoint). At
// start the files are cut back to the checkpointed lengths (removing records
// written after it, including a torn segment) and messages at or below the
// checkpointed offsets are skipped, so a kill -9 at any instant, a restart or
// a group rebalance that delivers records again writes each record once. The
// group commit follows the checkpoint and is only a hint for where delivery
// resumes; a failed commit is logged, never fatal, and a commit found ahead of
// the checkpoint (another consumer in the group, offsets moved by hand) is
// overruled: delivery resumes after the checkpoint (bus.Start.Held, logged). With the in-process bus
// (offsets restart at 0 in every process, Options.DurableOffsets false) the
// checkpoint still cuts torn and unconfirmed bytes, but records that were
// only on that bus when the process died are gone with it.
//
// The directory is locked (flock) while a logger writes it: a second logger
// on the same directory fails at start instead of interleaving records.
//
// Bus errors are ridden out with bus.Poll and bus.Commit (one log line per
// incident); only a permanent bus error or a failing disk stops the logger.
// Drain lets an ordered shutdown write everything already published.
//
// The logger must never commit an offset whose share is not on disk and
// checkpointed, never write a record the checkpoint says the files hold,
// never block the bus for longer than one flush, and never log per share.
package logger
