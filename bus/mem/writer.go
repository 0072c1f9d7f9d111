package mem

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashpool/hashpool/internal/failpoint"
)

// disk is the durable half of a Bus: the lock, the group offsets file, and
// three goroutines in a pipeline. Publish appends a writeReq to queue; the
// writer takes the whole queue, writes it and makes it visible to consumers,
// and hands the batch to the syncer; the syncer takes every batch written
// since its last round, fsyncs each file they dirtied (group commit) and hands
// them to the completer, which runs the done callbacks in Publish order. So
// the writer writes the next batch while the previous one is being fsynced:
// a record's visibility never waits for someone else's fsync, and its
// acknowledgement waits for at most two.
type disk struct {
	b    *Bus
	dir  string
	lock *os.File

	groups      *groupLog
	groupCreate sync.Mutex // serializes creating a group (its first offset is written)

	wmu      sync.Mutex
	queue    []writeReq
	wclosing bool
	kick     chan struct{} // wakes the writer; capacity 1

	smu       sync.Mutex
	squeue    []written
	sclosing  bool
	skick     chan struct{}
	cmu       sync.Mutex
	cqueue    []batch
	cclosing  bool
	ckick     chan struct{}
	writerEnd chan struct{}
	syncEnd   chan struct{}
	complEnd  chan struct{}

	// writeAt and sync are the file operations of the writer; tests replace
	// them to inject disk errors.
	writeAt func(f *os.File, b []byte, off int64) (int, error)
	sync    func(f *os.File) error

	// stats
	records, bytes, fsyncs, fsyncNanos, writeErrors atomic.Uint64
}

// writeReq is one published record waiting for the writer.
type writeReq struct {
	t          *topic
	key, value []byte
	nanos      int64
	done       func(error)
	p          *producer
}

// batch is what the syncer hands the completer: the records in Publish order
// and the result for all of them.
type batch struct {
	reqs []writeReq
	err  error
}

// written is a batch the writer wrote, with what the syncer must fsync
// before it is acknowledged. Each segment in segs has a reference taken for
// the syncer.
type written struct {
	reqs []writeReq
	err  error
	segs []dirtySeg
	dirs []dirtyDir
}

type dirtyDir struct {
	t    *topic
	path string
}

type dirtySeg struct {
	t *topic
	s *segment
}

// topicWriter is the writer goroutine's state for one topic.
type topicWriter struct {
	active *segment // segment being written; nil before the first write
	next   int64    // offset the next record gets
	broken bool     // the active segment saw an error: start a new one
	buf    []byte
	idx    []int // positions in the current batch
	dirty  bool  // active or a segment sealed in this batch needs fsync
	sealed []*segment
	newDir bool // the topic directory was created in this batch

	syncFailed atomic.Bool // set by the syncer: roll before the next write
}

func newDisk(b *Bus, dir string, lock *os.File) *disk {
	return &disk{b: b, dir: dir, lock: lock, kick: make(chan struct{}, 1), ckick: make(chan struct{}, 1),
		skick: make(chan struct{}, 1), writerEnd: make(chan struct{}), syncEnd: make(chan struct{}), complEnd: make(chan struct{}),
		writeAt: (*os.File).WriteAt, sync: fdatasync}
}

func (d *disk) start() {
	go d.writer()
	go d.syncer()
	go d.completer()
}

// enqueue queues one record; false if the bus is closing.
func (d *disk) enqueue(r writeReq) bool {
	d.wmu.Lock()
	if d.wclosing {
		d.wmu.Unlock()
		return false
	}
	d.queue = append(d.queue, r)
	d.wmu.Unlock()
	select {
	case d.kick <- struct{}{}:
	default:
	}
	return true
}

func (d *disk) writer() {
	defer close(d.writerEnd)
	var spare []writeReq
	ticker := time.NewTicker(time.Minute)
	defer ticker.Stop()
	for {
		d.wmu.Lock()
		for len(d.queue) == 0 {
			if d.wclosing {
				d.wmu.Unlock()
				return
			}
			d.wmu.Unlock()
			select {
			case <-d.kick:
			case <-ticker.C:
				d.retainAll()
			}
			d.wmu.Lock()
		}
		reqs := d.queue
		d.queue = spare[:0]
		d.wmu.Unlock()

		wb := d.writeBatch(reqs)
		d.smu.Lock()
		d.squeue = append(d.squeue, wb)
		d.smu.Unlock()
		select {
		case d.skick <- struct{}{}:
		default:
		}
		spare = nil // the syncer owns reqs now
	}
}

// writeBatch writes and publishes one batch and lists what the syncer must
// fsync for it. Any error fails the whole batch: an acknowledgement must
// cover every record published before it.
func (d *disk) writeBatch(reqs []writeReq) written {
	wb := written{reqs: reqs}
	var touched []*topic
	for i := range reqs {
		t := reqs[i].t
		if len(t.w.idx) == 0 {
			touched = append(touched, t)
		}
		t.w.idx = append(t.w.idx, i)
	}
	var errs []error
	for _, t := range touched {
		if err := d.writeTopic(t, reqs); err != nil {
			errs = append(errs, err)
		}
		d.dirtied(t, &wb)
		t.w.idx = t.w.idx[:0]
	}
	if err := errors.Join(errs...); err != nil {
		d.writeErrors.Add(1)
		d.b.log.Error("bus write failed; the batch's records are reported as not delivered", "records", len(reqs), "err", err)
		wb.err = err
	}
	for _, t := range touched {
		d.retain(t)
	}
	return wb
}

// dirtied moves what t's writer dirtied into wb, taking a reference on each
// segment for the syncer.
func (d *disk) dirtied(t *topic, wb *written) {
	w := t.w
	t.mu.Lock()
	for _, s := range w.sealed {
		s.refs++
		wb.segs = append(wb.segs, dirtySeg{t, s})
	}
	if w.dirty && w.active != nil {
		w.active.refs++
		wb.segs = append(wb.segs, dirtySeg{t, w.active})
	}
	t.mu.Unlock()
	w.sealed = w.sealed[:0]
	w.dirty = false
	if w.newDir {
		wb.dirs = append(wb.dirs, dirtyDir{t, filepath.Join(d.dir, t.name)}, dirtyDir{t, d.dir})
		w.newDir = false
	}
}

// syncer fsyncs what the batches written since its last round dirtied, each
// file once, and passes the batches on to the completer.
func (d *disk) syncer() {
	defer close(d.syncEnd)
	for {
		d.smu.Lock()
		for len(d.squeue) == 0 {
			if d.sclosing {
				d.smu.Unlock()
				return
			}
			d.smu.Unlock()
			<-d.skick
			d.smu.Lock()
		}
		group := d.squeue
		d.squeue = nil
		d.smu.Unlock()

		var errs []error
		done := map[*segment]bool{}
		dirs := map[string]bool{}
		for _, wb := range group {
			for _, ds := range wb.segs {
				if done[ds.s] {
					continue
				}
				done[ds.s] = true
				failpoint.Hit("bus.mem.before-fsync")
				start := time.Now()
				err := d.sync(ds.s.f)
				d.fsyncs.Add(1)
				d.fsyncNanos.Add(uint64(time.Since(start)))
				if err != nil {
					ds.t.w.syncFailed.Store(true)
					errs = append(errs, fmt.Errorf("mem: fsync %s: %w", ds.s.path, err))
				}
			}
			for _, dir := range wb.dirs {
				if !dirs[dir.path] {
					dirs[dir.path] = true
					if err := syncDir(dir.path); err != nil {
						// A new segment (and its directory entry) next time.
						dir.t.w.syncFailed.Store(true)
						errs = append(errs, err)
					}
				}
			}
		}
		syncErr := errors.Join(errs...)
		if syncErr != nil {
			d.writeErrors.Add(1)
			d.b.log.Error("bus fsync failed; the records it covers are reported as not delivered", "err", syncErr)
		}
		out := make([]batch, 0, len(group))
		for _, wb := range group {
			for _, ds := range wb.segs {
				ds.t.release(ds.s)
			}
			err := wb.err
			if syncErr != nil {
				err = errors.Join(err, syncErr)
			}
			out = append(out, batch{reqs: wb.reqs, err: err})
		}
		d.cmu.Lock()
		d.cqueue = append(d.cqueue, out...)
		d.cmu.Unlock()
		select {
		case d.ckick <- struct{}{}:
		default:
		}
	}
}

// release drops one reference to s, closing it when it was the last one of a
// removed segment.
func (t *topic) release(s *segment) {
	t.mu.Lock()
	s.refs--
	closeIt := s.refs == 0
	t.mu.Unlock()
	if closeIt {
		s.f.Close()
	}
}

// writeTopic writes the batch's records of t, rolling segments as needed, and
// makes each written chunk visible to consumers.
func (d *disk) writeTopic(t *topic, reqs []writeReq) error {
	w := t.w
	if w.syncFailed.Swap(false) {
		w.broken = true
	}
	if w.active == nil || w.broken {
		if err := d.roll(t); err != nil {
			return err
		}
	}
	segBytes := d.b.opts.SegmentBytes
	start := 0 // first index in w.idx not yet written
	pos := w.active.size
	w.buf = w.buf[:0]
	var pendingIdx []indexEntry
	lastIndexed := w.active.lastIndexPos()
	flush := func(upto int) error {
		if len(w.buf) == 0 {
			start = upto
			return nil
		}
		if _, err := d.writeAt(w.active.f, w.buf, pos); err != nil {
			w.broken = true
			if terr := w.active.f.Truncate(pos); terr != nil {
				d.b.log.Error("bus segment could not be cut back after a failed write", "file", w.active.path, "err", terr)
			}
			w.next = t.w.active.end
			return fmt.Errorf("mem: writing %s: %w", w.active.path, err)
		}
		d.records.Add(uint64(upto - start))
		d.bytes.Add(uint64(len(w.buf)))
		pos += int64(len(w.buf))
		w.dirty = true
		d.publish(t, reqs, start, upto, pos, pendingIdx)
		pendingIdx = pendingIdx[:0]
		w.buf = w.buf[:0]
		start = upto
		return nil
	}
	for k, i := range w.idx {
		r := &reqs[i]
		n := int64(FrameOverhead + len(r.key) + len(r.value))
		if pos+int64(len(w.buf))+n > segBytes && pos+int64(len(w.buf)) > segHeaderSize {
			if err := flush(k); err != nil {
				return err
			}
			if err := d.roll(t); err != nil {
				return err
			}
			pos = w.active.size
			lastIndexed = pos
		}
		at := pos + int64(len(w.buf))
		if at-lastIndexed >= indexInterval {
			pendingIdx = append(pendingIdx, indexEntry{off: w.next, pos: at})
			lastIndexed = at
		}
		w.buf = appendFrame(w.buf, w.next, r.nanos, r.key, r.value)
		w.next++
		if len(w.buf) >= 1<<20 {
			if err := flush(k + 1); err != nil {
				return err
			}
		}
	}
	err := flush(len(w.idx))
	if cap(w.buf) > 4<<20 {
		w.buf = nil // don't keep a template-sized buffer per topic
	}
	return err
}

// publish makes the records w.idx[from:to] of reqs, now written up to byte
// pos of the active segment, visible.
func (d *disk) publish(t *topic, reqs []writeReq, from, to int, pos int64, idx []indexEntry) {
	s := t.w.active
	t.mu.Lock()
	s.index = append(s.index, idx...)
	t.diskBytes += pos - s.size
	s.size = pos
	var wake chan struct{}
	for _, i := range t.w.idx[from:to] {
		r := &reqs[i]
		if w := t.push(r.key, r.value, r.nanos); w != nil {
			wake = w
		}
		s.lastNanos = r.nanos
	}
	s.end = t.next
	t.mu.Unlock()
	if wake != nil {
		close(wake)
	}
}

func (s *segment) lastIndexPos() int64 {
	if len(s.index) == 0 {
		return segHeaderSize
	}
	return s.index[len(s.index)-1].pos
}

// roll starts a new active segment at t.w.next (reusing an empty broken one).
func (d *disk) roll(t *topic) error {
	w := t.w
	tdir := filepath.Join(d.dir, t.name)
	if w.active == nil {
		if _, err := os.Stat(tdir); errors.Is(err, os.ErrNotExist) {
			if err := os.Mkdir(tdir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
				return fmt.Errorf("mem: creating topic directory: %w", err)
			}
			w.newDir = true
		}
	}
	if w.active != nil && w.active.base == w.next {
		// Empty segment (a failed first write): start it again.
		if err := w.active.f.Truncate(segHeaderSize); err != nil {
			return fmt.Errorf("mem: resetting %s: %w", w.active.path, err)
		}
		w.broken = false
		w.newDir = true // its directory entry may not be durable yet either
		return nil
	}
	s, err := createSegment(tdir, w.next)
	if err != nil {
		return fmt.Errorf("mem: creating segment: %w", err)
	}
	if w.active != nil {
		w.sealed = append(w.sealed, w.active)
		if err := writeSegIndex(w.active); err != nil {
			d.b.log.Warn("bus segment summary could not be written; the next Open scans the segment", "file", w.active.path, "err", err)
		}
	}
	w.active, w.broken = s, false
	t.mu.Lock()
	t.segs = append(t.segs, s)
	t.diskBytes += s.size
	if len(t.segs) == 1 {
		t.oldest = s.base
	}
	t.mu.Unlock()
	w.newDir = true // the new file's directory entry
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("mem: fsync directory %s: %w", dir, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("mem: fsync directory %s: %w", dir, err)
	}
	return nil
}

// retainAll applies retention (age included) to every topic.
func (d *disk) retainAll() {
	d.b.topics.Range(func(_, v any) bool {
		d.retain(v.(*topic))
		return true
	})
}

// retain deletes t's old segments beyond its retention.
func (d *disk) retain(t *topic) {
	now := time.Now().UnixNano()
	var gone, closing []*segment
	t.mu.Lock()
	for len(t.segs) > 1 {
		s := t.segs[0]
		count := t.next - t.segs[1].base // records kept without s (gaps aside)
		byBytes := t.diskBytes-s.size >= t.ret.MaxBytes
		byRecords := count >= int64(t.ret.MaxRecords)
		byAge := t.ret.MaxAge > 0 && s.lastNanos > 0 && now-s.lastNanos > int64(t.ret.MaxAge)
		if !byBytes && !byRecords && !byAge {
			break
		}
		t.segs[0] = nil
		t.segs = t.segs[1:]
		t.diskBytes -= s.size
		s.removed = true
		s.refs--
		if s.refs == 0 {
			closing = append(closing, s)
		}
		gone = append(gone, s)
	}
	if len(gone) > 0 {
		t.oldest = t.segs[0].base
		t.evict()
	}
	t.mu.Unlock()
	for _, s := range closing {
		s.f.Close()
	}
	for _, s := range gone {
		// Readers still holding the file keep reading it after the unlink.
		os.Remove(idxPath(s.path))
		if err := os.Remove(s.path); err != nil {
			d.b.log.Error("bus segment could not be deleted", "file", s.path, "err", err)
		} else {
			d.b.log.Debug("bus segment deleted by retention", "topic", t.name, "file", s.path, "records", s.end-s.base, "bytes", s.size)
		}
	}
}

func (d *disk) completer() {
	defer close(d.complEnd)
	for {
		d.cmu.Lock()
		for len(d.cqueue) == 0 {
			if d.cclosing {
				d.cmu.Unlock()
				return
			}
			d.cmu.Unlock()
			<-d.ckick
			d.cmu.Lock()
		}
		bs := d.cqueue
		d.cqueue = nil
		d.cmu.Unlock()
		for _, bt := range bs {
			for i := range bt.reqs {
				r := &bt.reqs[i]
				if r.done != nil {
					r.done(bt.err)
				}
				r.p.finish()
				*r = writeReq{}
			}
		}
	}
}

// close drains the writer and completer, then closes every file.
func (d *disk) close() error {
	d.wmu.Lock()
	d.wclosing = true
	d.wmu.Unlock()
	select {
	case d.kick <- struct{}{}:
	default:
	}
	<-d.writerEnd
	d.smu.Lock()
	d.sclosing = true
	d.smu.Unlock()
	select {
	case d.skick <- struct{}{}:
	default:
	}
	<-d.syncEnd
	d.cmu.Lock()
	d.cclosing = true
	d.cmu.Unlock()
	select {
	case d.ckick <- struct{}{}:
	default:
	}
	<-d.complEnd
	err := d.closeFiles()
	d.lock.Close()
	return err
}

// closeFiles drops the log's reference to every segment (readers still
// holding one close it when done) and closes the offsets file.
func (d *disk) closeFiles() error {
	d.b.topics.Range(func(_, v any) bool {
		t := v.(*topic)
		var gone []*segment
		t.mu.Lock()
		for _, s := range t.segs {
			s.removed = true
			s.refs--
			if s.refs == 0 {
				gone = append(gone, s)
			}
		}
		t.mu.Unlock()
		for _, s := range gone {
			s.f.Close()
		}
		return true
	})
	if d.groups != nil {
		return d.groups.close()
	}
	return nil
}

// Stats are counters of a durable bus for export as metrics. Counters only
// grow over the life of the Bus.
type Stats struct {
	RecordsWritten uint64        // records written to segment files
	BytesWritten   uint64        // bytes written to segment files (frames)
	Fsyncs         uint64        // fsync calls on segment files
	FsyncTime      time.Duration // total time spent in those fsyncs
	WriteErrors    uint64        // batches failed by a write or fsync error
	Topics         []TopicStats
}

// TopicStats describe one topic.
type TopicStats struct {
	Name          string
	Oldest, End   int64 // retained offsets [Oldest, End)
	RetainedBytes int64 // segment file bytes (0 without a Dir)
	Segments      int
	CachedRecords int   // records held in memory
	CachedBytes   int64 // their key+value bytes (plus CacheRecordOverhead each with a Dir)
	// CacheDropped counts records the memory bound (CacheBytes with a Dir,
	// Retention without) evicted before every open consumer had taken them.
	// With a Dir nothing is lost (those consumers read the files); without
	// one those consumers never see them.
	CacheDropped int64
}

// Stats returns the bus's counters and one TopicStats per topic, sorted by
// name. Without a Dir only Topics is filled in.
func (b *Bus) Stats() Stats {
	var st Stats
	if d := b.d; d != nil {
		st.RecordsWritten = d.records.Load()
		st.BytesWritten = d.bytes.Load()
		st.Fsyncs = d.fsyncs.Load()
		st.FsyncTime = time.Duration(d.fsyncNanos.Load())
		st.WriteErrors = d.writeErrors.Load()
	}
	b.topics.Range(func(_, v any) bool {
		t := v.(*topic)
		t.mu.Lock()
		st.Topics = append(st.Topics, TopicStats{Name: t.name, Oldest: t.oldest, End: t.next,
			RetainedBytes: t.diskBytes, Segments: len(t.segs), CachedRecords: len(t.recs) - t.head, CachedBytes: t.bytes, CacheDropped: t.dropped})
		t.mu.Unlock()
		return true
	})
	sort.Slice(st.Topics, func(i, j int) bool { return st.Topics[i].Name < st.Topics[j].Name })
	return st
}
