package slparser

import (
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/sharelog/logfile"
)

// fileReader adapts a share-log file reader (sharelog/logfile) to RecordReader.
type fileReader struct{ r *logfile.Reader }

// Next skips records that do not decode (they would be counted as invalid anyway); the
// reader's own errors (end of data, a damaged file) are returned.
func (l fileReader) Next(s *btcpool.Share) error {
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

func (l fileReader) Close() error { return l.r.Close() }

// FollowFiles opens share-log files for Parser.Run, following them as the sharelogger writes
// them, and returns the file-name suffix of compression c (Options.FileSuffix). A reader shows
// only what the directory's checkpoint says is durable (logfile.ReaderOptions), so a share the
// sharelogger cuts off after a crash and writes again is never counted twice.
func FollowFiles(c logfile.Compression) (OpenFunc, string) {
	return func(path string) (RecordReader, error) {
		r, err := logfile.OpenReader(path, logfile.ReaderOptions{Follow: true})
		if err != nil {
			return nil, err
		}
		return fileReader{r}, nil
	}, c.Suffix()
}

// FinishedFiles opens a finished share-log file (ParseFile, Dump): a torn last segment is
// reported, not waited for. The reader tells gzip from zstd by the data itself.
func FinishedFiles() OpenFunc {
	return func(path string) (RecordReader, error) {
		r, err := logfile.OpenReader(path, logfile.ReaderOptions{})
		if err != nil {
			return nil, err
		}
		return fileReader{r}, nil
	}
}

// ParseCompression maps the sharelog.compression setting ("gzip", "zstd") to its format;
// anything else is gzip, btcpool's format (the config's own validation rejects other names).
func ParseCompression(s string) logfile.Compression {
	if s == "zstd" {
		return logfile.Zstd
	}
	return logfile.Gzip
}
