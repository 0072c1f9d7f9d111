// Package slparser is btcpool's slparser: share-log statistics per hour and day.
//
// It follows today's share-log file as the sharelogger writes it, counts for the pool, every
// user and every worker the accepted, stale and rejected (per status) difficulty, the score
// (share difficulty / network difficulty, at most 1 per share) and the earnings (score × block
// subsidy) in 24 hourly buckets and a day total, writes the hours that changed to the stats_*
// tables every 15 s (and the whole day when the day ends), applies btcpool's retention, and
// serves "/" and "/share_stats" with btcpool's JSON shapes. One-shot modes re-parse a given
// day's file or dump its shares.
//
// btcpool's "/" prints today's reject_detail under curr_hour too (a bug); here curr_hour shows
// the current hour's detail.
//
// FollowFiles and FinishedFiles open the sharelogger's files (sharelog/logfile). A follower
// sees a file only up to the sharelogger's checkpoint, so records the sharelogger cuts after
// a crash and writes again are counted once; a restarted parser re-reads the day from the
// start and rewrites whole hours, so it never counts a share twice either.
//
// It must never write a share log or change shares: it only reads files.
package slparser
