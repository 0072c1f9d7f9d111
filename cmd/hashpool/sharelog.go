package main

import (
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/sharelog/logfile"
	"github.com/hashpool/hashpool/sharelog/slparser"
)

// logReader adapts a share-log file reader to slparser's record reader.
type logReader struct{ r *logfile.Reader }

// Next skips records that do not decode (slparser would count them as invalid anyway); the
// reader's own errors (end of data, a damaged file) are returned.
func (l logReader) Next(s *btcpool.Share) error {
	for {
		rec, err := l.r.Next()
		if err != nil {
			return err
		}
		if btcpool.DecodeShareProto(rec, s) == nil {
			return nil
		}
	}
}

func (l logReader) Close() error { return l.r.Close() }

// shareLogOpener opens share-log files of the configured compression for slparser, following
// them as they grow.
func shareLogOpener(compression string) (slparser.OpenFunc, string) {
	c := logfile.Gzip
	if compression == "zstd" {
		c = logfile.Zstd
	}
	return func(path string) (slparser.RecordReader, error) {
		r, err := logfile.OpenReader(path, logfile.ReaderOptions{Follow: true})
		if err != nil {
			return nil, err
		}
		return logReader{r}, nil
	}, c.Suffix()
}

// nonFollowing opens a finished share-log file: a torn last segment is reported, not waited for.
// The reader tells gzip from zstd by the data itself.
func nonFollowing() slparser.OpenFunc {
	return func(path string) (slparser.RecordReader, error) {
		r, err := logfile.OpenReader(path, logfile.ReaderOptions{})
		if err != nil {
			return nil, err
		}
		return logReader{r}, nil
	}
}
