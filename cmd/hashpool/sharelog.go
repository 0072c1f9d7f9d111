package main

import "github.com/hashpool/hashpool/sharelog/slparser"

// shareLogOpener opens share-log files of the configured compression for slparser, following
// them as they grow (the adapter lives in sharelog/slparser).
func shareLogOpener(compression string) (slparser.OpenFunc, string) {
	return slparser.FollowFiles(slparser.ParseCompression(compression))
}

// nonFollowing opens a finished share-log file: a torn last segment is reported, not waited for.
func nonFollowing() slparser.OpenFunc { return slparser.FinishedFiles() }
