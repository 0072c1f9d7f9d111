package statshttpd

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/sharelog/logfile"
	"github.com/hashpool/hashpool/sharelog/logger"
)

// maxRebuildRecords bounds the records one rebuild reads (a day file of a large pool holds
// a few hundred million).
const maxRebuildRecords = 2_000_000_000

// resume says which share-topic records the rebuilt windows already hold: per partition,
// every offset up to and including the value. A partition not listed holds none.
type resume map[int32]int64

// has reports whether m is already counted.
func (r resume) has(m *bus.Message) bool {
	off, ok := r[m.Partition]
	return ok && m.Offset <= off
}

// rebuild counts the shares of the last hour from the share-log files (the day files of now
// and of an hour ago, gzip and zstd) up to the lengths of one checkpoint, and returns the
// bus offsets those lengths cover when the checkpoint counts the bus this server consumes.
// Files and checkpoint are read as the sharelogger leaves them: the sizes first, then the
// checkpoint, so an unlisted file (final) is read to the size seen and a listed one to its
// checkpointed length, exactly the records of the checkpoint's offsets.
func (s *Server) rebuild() (resume, int64) {
	dir, chain := s.opts.ShareLogDir, s.opts.ShareLogChain
	now := s.opts.Now().Unix()
	var paths []string
	for _, ts := range []int64{now - MaxShareAge, now} {
		for _, c := range []logfile.Compression{logfile.Gzip, logfile.Zstd} {
			if p := filepath.Join(dir, logfile.FileName(chain, ts, c)); !slices.Contains(paths, p) {
				paths = append(paths, p)
			}
		}
	}
	sizes := make(map[string]int64, len(paths))
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil {
			sizes[p] = st.Size()
		}
	}
	cp, _, err := logfile.ReadCheckpoint(dir, chain)
	if err != nil {
		s.opts.Logger.Warn("statshttpd: share-log checkpoint unreadable; rebuilding from whole files", "err", err)
	}
	var n int64
	var sh btcpool.Share
	for _, p := range paths {
		size, ok := sizes[p]
		if !ok {
			continue
		}
		if listed, ok := cp.Files[filepath.Base(p)]; ok {
			size = min(size, listed)
		}
		if size == 0 {
			continue
		}
		// Marks let the reader skip the part of the day older than the windows.
		start := min(logfile.Start(cp.Marks[filepath.Base(p)], now-MaxShareAge), size)
		if start == size {
			continue
		}
		r, err := logfile.OpenReader(p, logfile.ReaderOptions{Limit: size, Offset: start})
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			s.opts.Logger.Warn("statshttpd: share log", "file", p, "err", err)
			continue
		}
		for i := 0; i < maxRebuildRecords; i++ {
			rec, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				s.opts.Logger.Warn("statshttpd: share log: rebuilt up to a damaged record", "file", p, "err", err)
				break
			}
			if btcpool.DecodeShareProto(rec, &sh) != nil {
				continue
			}
			if s.stats.AddShare(&sh) {
				n++
			}
		}
		r.Close()
	}
	if cp.Source == "" || cp.Source != logger.Source(s.bus, s.opts.Topics.Share, s.opts.DurableOffsets) {
		return resume{}, n // the files hold none of this bus's records
	}
	return resume(cp.Positions), n
}
