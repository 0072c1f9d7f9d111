package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/codec/btcpool"

	"github.com/hashpool/hashpool/internal/failpoint"
)

// recordBatchSize is how many bytes of share records a loop gathers before
// it hands them to the publisher (it also hands them over every tick).
const recordBatchSize = 64 << 10

// recordBatch is a loop's share records: buf holds them back to back, ends
// the end offset of each. Once handed over the loop never touches it again,
// so each record can be given to the bus (which takes ownership).
type recordBatch struct {
	buf  []byte
	ends []int32
}

// record encodes a share record into the loop's batch. No allocation while
// the batch has room.
func (lp *loop) record(sh *btcpool.Share) {
	if cap(lp.batch.buf)-len(lp.batch.buf) < btcpool.MaxShareProtoSize+4 {
		lp.flushRecords()
	}
	lp.batch.buf = btcpool.AppendShareMessage(lp.batch.buf, sh)
	lp.batch.ends = append(lp.batch.ends, int32(len(lp.batch.buf)))
}

// flushRecords hands the loop's batch to the publisher and starts a new one.
// It never blocks the loop: when the publisher's queue is full (the bus has
// stopped taking records) the batch is dropped and counted, as btcpool's
// producer drops records on a full queue. Solved shares take their own path.
func (lp *loop) flushRecords() {
	if len(lp.batch.ends) == 0 {
		return
	}
	b := lp.batch
	select {
	case lp.srv.out.records <- b:
		lp.batch = recordBatch{buf: make([]byte, 0, recordBatchSize+btcpool.MaxShareProtoSize+4), ends: make([]int32, 0, 1024)}
	default:
		lp.srv.metrics.RecordsDropped.Add(int64(len(b.ends)))
		lp.batch.buf, lp.batch.ends = b.buf[:0], b.ends[:0]
	}
}

// outputs sends what the engine produces: share records (batched),
// solved shares (journaled, then answered, then published until
// acknowledged), common events.
type outputs struct {
	prod    bus.Producer
	topics  bus.Topics
	metrics *Metrics
	log     *slog.Logger

	records chan recordBatch
	events  chan []byte

	// Solved shares go loop → journal → publisher through two queues, each
	// a mutex-guarded slice with a one-slot wake channel: the loop's
	// hand-off never blocks, whatever the disk or the bus do.
	solvedMu   sync.Mutex
	solvedQ    []solvedItem
	solvedWake chan struct{}
	pubMu      sync.Mutex
	pubQ       []JournalEntry
	pubWake    chan struct{}
	// inflight counts solved shares handed over (or found unacknowledged
	// in the journal at start) and not yet acknowledged by the bus nor
	// given up at stop; idle is signalled when it reaches zero.
	inflight    atomic.Int64
	unjournaled atomic.Int64 // handed over, not yet through the journal
	idleMu      sync.Mutex
	idle        chan struct{} // closed while inflight is zero; replaced when it rises

	// answered is called by the journal goroutine once a share's record is
	// on disk: it writes the held answer to the session (the Server sets
	// it; nil in tests without sessions).
	answered func(*Session)
	// beforeJournal, when set (tests), runs before each journal write.
	beforeJournal atomic.Pointer[func()]

	journalPath string
	journalMu   sync.Mutex
	journal     *os.File
	journalSize int64 // append offset
	unacked     int   // solved-share records in the journal not yet acknowledged

	wg          sync.WaitGroup
	stop        chan struct{} // closed by close: the journal and publisher finish their queues
	journalDone chan struct{} // closed when runJournal returned
	doneFn      func(error)
}

// solvedItem is one solved share on its way to the journal. sess is the
// session whose answer waits for the journal (nil: none).
type solvedItem struct {
	msg  []byte
	sess *Session
	aux  bool // an AuxSolvedShare (JSON) for topics.AuxSolvedShare
	rsk  bool // an RskSolvedShare (binary) for topics.RskSolvedShare
}

// journalFile is the solved-share journal inside the data dir. It is a
// sequence of records, each u32 LE header, u32 LE CRC-32 (IEEE) of the
// payload, payload:
//
//   - a solved share: header = payload length (< 2^31), payload = the
//     SolvedShare message, fsync'd before it is published;
//   - an aux solved share: header = auxFlag|payload length (< 2^29),
//     payload = the AuxSolvedShare message, for the AuxSolvedShare topic;
//   - an RSK solved share: header = rskFlag|payload length (< 2^29),
//     payload = the RskSolvedShare message, for the RskSolvedShare topic;
//   - an acknowledgement: header = ackFlag|8, payload = the u64 LE file
//     offset of the solved-share record the bus acknowledged.
//
// At start the journal is compacted to the shares without an
// acknowledgement (crash between append and publish), which are published
// again before anything new.
const journalFile = "solved-shares.journal"

// ackFlag marks an acknowledgement record's header; auxFlag an aux solved share's.
const (
	ackFlag = 1 << 31
	auxFlag = 1 << 30
	rskFlag = 1 << 29
)

// maxJournalSize bounds the journal read at start (a solved share is a few
// KB and the journal is compacted at every start).
const maxJournalSize = 256 << 20

func newOutputs(prod bus.Producer, topics bus.Topics, dataDir string, m *Metrics, log *slog.Logger) (*outputs, error) {
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("engine data dir: %w", err)
	}
	path := filepath.Join(dataDir, journalFile)
	pending, err := compactJournal(path)
	if err != nil {
		return nil, fmt.Errorf("solved-share journal: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("solved-share journal: %w", err)
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("solved-share journal: %w", err)
	}
	o := &outputs{prod: prod, topics: topics, metrics: m, log: log, journalPath: path, journal: f, journalSize: size, unacked: len(pending),
		records: make(chan recordBatch, 1024), events: make(chan []byte, 65536),
		solvedWake: make(chan struct{}, 1), pubWake: make(chan struct{}, 1), idle: make(chan struct{}),
		stop: make(chan struct{}), journalDone: make(chan struct{})}
	close(o.idle)
	o.doneFn = func(err error) {
		if err != nil {
			o.metrics.RecordsFailed.Add(1)
		} else {
			o.metrics.RecordsPublished.Add(1)
		}
	}
	if len(pending) > 0 {
		log.Warn("republishing solved shares the bus never acknowledged", "count", len(pending), "journal", path)
	}
	o.addInflight(int64(len(pending)))
	o.wg.Add(4)
	go o.runRecords()
	go o.runJournal()
	go o.runPublish(pending)
	go o.runEvents()
	return o, nil
}

func (o *outputs) runRecords() {
	defer o.wg.Done()
	for b := range o.records {
		start := int32(0)
		for _, end := range b.ends {
			o.prod.Publish(o.topics.Share, nil, b.buf[start:end:end], o.doneFn)
			start = end
		}
	}
}

func (o *outputs) runEvents() {
	defer o.wg.Done()
	for e := range o.events {
		o.prod.Publish(o.topics.CommonEvents, nil, e, nil)
	}
}

// pushSolved hands a solved share to the journal goroutine. It never
// blocks (the event loop calls it): the queue is a slice, unbounded because
// a block solution must not be dropped; each one holds its session's answers
// until it is journaled, which bounds how many a session has queued.
func (o *outputs) pushSolved(it solvedItem) {
	o.addInflight(1)
	o.unjournaled.Add(1)
	o.solvedMu.Lock()
	o.solvedQ = append(o.solvedQ, it)
	o.solvedMu.Unlock()
	select {
	case o.solvedWake <- struct{}{}:
	default:
	}
}

func (o *outputs) addInflight(n int64) {
	if n == 0 {
		return
	}
	o.idleMu.Lock()
	defer o.idleMu.Unlock()
	v := o.inflight.Add(n)
	switch {
	case v == n && n > 0: // rose from zero
		o.idle = make(chan struct{})
	case v == 0:
		close(o.idle)
	}
}

// waitSolved waits until every solved share handed over so far is
// acknowledged by the bus (or ctx ends) and reports whether it was.
func (o *outputs) waitSolved(ctx context.Context) bool {
	o.idleMu.Lock()
	idle := o.idle
	o.idleMu.Unlock()
	select {
	case <-idle:
		return true
	case <-ctx.Done():
		return false
	}
}

// runJournal writes the queued solved shares to the journal, all that are
// queued with one write and one fsync, then releases their sessions'
// answers and queues them for publication. When the journal cannot be
// written the share is answered and published all the same (btcpool answers
// a block with true and has no journal at all): the miner's work is not
// refused for a local disk fault, the operator gets an error line and
// JournalErrors, and only the crash-safety of that one share is lost.
func (o *outputs) runJournal() {
	defer o.wg.Done()
	defer close(o.journalDone)
	for {
		stopping := false
		select {
		case <-o.solvedWake:
		case <-o.stop:
			stopping = true
		}
		o.solvedMu.Lock()
		batch := o.solvedQ
		o.solvedQ = nil
		o.solvedMu.Unlock()
		if len(batch) > 0 {
			o.journalBatch(batch)
		}
		if stopping {
			o.solvedMu.Lock()
			left := len(o.solvedQ)
			o.solvedMu.Unlock()
			if left == 0 {
				return
			}
		}
	}
}

func (o *outputs) journalBatch(batch []solvedItem) {
	msgs := make([][]byte, len(batch))
	flags := make([]uint32, len(batch))
	for i, it := range batch {
		msgs[i], flags[i] = it.msg, journalFlag(it.aux, it.rsk)
	}
	if f := o.beforeJournal.Load(); f != nil {
		(*f)()
	}
	failpoint.Hit("engine.solved.before-journal")
	offs, err := o.appendJournal(msgs, flags)
	failpoint.Hit("engine.solved.after-fsync")
	if err != nil {
		o.metrics.JournalErrors.Add(1)
		o.log.Error("solved share journal write failed; answering and publishing anyway", "err", err, "journal", o.journalPath)
	}
	entries := make([]JournalEntry, len(batch))
	for i, it := range batch {
		off := int64(-1)
		if err == nil {
			off = offs[i]
		}
		entries[i] = JournalEntry{Offset: off, Msg: it.msg, Aux: it.aux, Rsk: it.rsk}
		if it.sess != nil && o.answered != nil {
			o.answered(it.sess)
		}
	}
	o.unjournaled.Add(-int64(len(batch)))
	o.pubMu.Lock()
	o.pubQ = append(o.pubQ, entries...)
	o.pubMu.Unlock()
	select {
	case o.pubWake <- struct{}{}:
	default:
	}
}

// runPublish first publishes the journal's unacknowledged shares (pending,
// already in the compacted journal), then each newly journaled one,
// retrying until the bus acknowledges it or the server stops (the journal
// still has it then, for the next start).
func (o *outputs) runPublish(pending []JournalEntry) {
	defer o.wg.Done()
	for _, e := range pending {
		o.publishSolved(e)
	}
	journalDone := false
	for {
		o.pubMu.Lock()
		q := o.pubQ
		o.pubQ = nil
		o.pubMu.Unlock()
		for _, e := range q {
			o.publishSolved(e)
		}
		if len(q) > 0 {
			continue
		}
		if journalDone {
			return
		}
		select {
		case <-o.pubWake:
		case <-o.journalDone:
			journalDone = true
		}
	}
}

// publishSolved publishes one solved share until acknowledged (or, once the
// server stops, for at most three attempts) and then journals the
// acknowledgement of the record at off (off < 0: not journaled).
func (o *outputs) publishSolved(e JournalEntry) {
	defer o.addInflight(-1)
	msg, off := e.Msg, e.Offset
	topic, name := solvedTopic(o.topics, e)
	if topic == "" { // a journal from a run with merged mining, read without it
		o.log.Error("merged-mining solved share dropped: no "+name+" topic configured", "journal", o.journalPath)
		return
	}
	failpoint.Hit("engine.solved.before-publish")
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := o.prod.PublishSync(ctx, topic, nil, msg)
		cancel()
		if err == nil {
			o.metrics.SolvedPublished.Add(1)
			failpoint.Hit("engine.solved.after-ack")
			if off >= 0 {
				if err := o.ackJournal(off); err != nil {
					o.metrics.JournalErrors.Add(1)
					o.log.Error("solved share ack not journaled (it will be published again at the next start)", "err", err)
				}
			}
			return
		}
		o.metrics.SolvedRetries.Add(1)
		o.log.Error("solved share publish failed, retrying", "attempt", attempt, "err", err, "journal", o.journalPath)
		select {
		case <-o.stop:
			if attempt >= 3 {
				o.log.Error("solved share left unpublished in the journal for the next start", "journal", o.journalPath)
				return
			}
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// journalTruncateAt is the size from which a journal whose every share is
// acknowledged is emptied (test networks can solve a block with most
// shares).
const journalTruncateAt = 1 << 20

// appendJournal appends the solved-share records of msgs with one write
// and one fsync and returns their offsets.
func (o *outputs) appendJournal(msgs [][]byte, flags []uint32) ([]int64, error) {
	n := 0
	for _, m := range msgs {
		if len(m) >= rskFlag {
			return nil, errors.New("solved share too large for the journal")
		}
		n += 8 + len(m)
	}
	rec := make([]byte, 0, n)
	o.journalMu.Lock()
	defer o.journalMu.Unlock()
	offs := make([]int64, len(msgs))
	for i, m := range msgs {
		offs[i] = o.journalSize + int64(len(rec))
		rec = appendJournalRecord(rec, uint32(len(m))|flags[i], m)
	}
	if _, err := o.writeJournal(rec); err != nil {
		return nil, err
	}
	o.unacked += len(msgs)
	return offs, nil
}

// ackJournal appends and fsyncs the acknowledgement of the record at off,
// or empties the journal when that was the last unacknowledged share and
// the journal is large.
func (o *outputs) ackJournal(off int64) error {
	o.journalMu.Lock()
	defer o.journalMu.Unlock()
	o.unacked--
	if o.unacked == 0 && o.journalSize >= journalTruncateAt {
		if err := o.journal.Truncate(0); err == nil {
			o.journalSize = 0
			return o.journal.Sync()
		}
	}
	var p [8]byte
	binary.LittleEndian.PutUint64(p[:], uint64(off))
	_, err := o.writeJournal(appendJournalRecord(make([]byte, 0, 16), ackFlag|8, p[:]))
	return err
}

// writeJournal appends encoded records and fsyncs them; journalMu is held.
// A failed write is cut off again, so that a torn record never hides the
// records written after it from ReadJournal.
func (o *outputs) writeJournal(rec []byte) (int64, error) {
	off := o.journalSize
	n, err := o.journal.Write(rec)
	if err == nil {
		if binary.LittleEndian.Uint32(rec)&ackFlag == 0 {
			failpoint.Hit("engine.solved.before-fsync")
		}
		err = o.journal.Sync()
	}
	if err != nil {
		if n > 0 && o.journal.Truncate(off) != nil {
			o.journalSize += int64(n) // the torn bytes stay; keep offsets true
		}
		return -1, err
	}
	o.journalSize += int64(n)
	return off, nil
}

func appendJournalRecord(dst []byte, hdr uint32, payload []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, hdr)
	dst = binary.LittleEndian.AppendUint32(dst, crc32.ChecksumIEEE(payload))
	return append(dst, payload...)
}

// JournalEntry is one solved share in the journal.
type JournalEntry struct {
	Offset int64  // of its record in the journal file
	Msg    []byte // the SolvedShare message (AuxSolvedShare when Aux)
	Acked  bool   // the bus acknowledged it
	Aux    bool   // an aux solved share, for the AuxSolvedShare topic
	Rsk    bool   // an RSK solved share, for the RskSolvedShare topic
}

// ReadJournal returns the solved shares in a journal file with their
// acknowledgement, stopping at the first torn or corrupt record (a crash
// mid-write). A missing file is an empty journal.
func ReadJournal(path string) ([]JournalEntry, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxJournalSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxJournalSize {
		return nil, fmt.Errorf("journal larger than %d bytes", maxJournalSize)
	}
	return parseJournal(b), nil
}

func parseJournal(b []byte) []JournalEntry {
	var out []JournalEntry
	at := map[int64]int{} // record offset -> index in out
	off := int64(0)
	for len(b) >= 8 {
		hdr := binary.LittleEndian.Uint32(b[0:4])
		n := hdr &^ (ackFlag | auxFlag | rskFlag)
		if uint64(n) > uint64(len(b)-8) {
			break
		}
		payload := b[8 : 8+n]
		if crc32.ChecksumIEEE(payload) != binary.LittleEndian.Uint32(b[4:8]) {
			break
		}
		if hdr&ackFlag == 0 {
			at[off] = len(out)
			out = append(out, JournalEntry{Offset: off, Msg: payload, Aux: hdr&auxFlag != 0, Rsk: hdr&rskFlag != 0})
		} else if n == 8 {
			if i, ok := at[int64(binary.LittleEndian.Uint64(payload))]; ok {
				out[i].Acked = true
			}
		}
		off += 8 + int64(n)
		b = b[8+n:]
	}
	return out
}

// compactJournal rewrites the journal at path to hold only its
// unacknowledged solved shares (atomically: temporary file, fsync, rename,
// fsync of the directory) and returns them with their new offsets.
func compactJournal(path string) ([]JournalEntry, error) {
	all, err := ReadJournal(path)
	if err != nil {
		return nil, err
	}
	var pending []JournalEntry
	var buf []byte
	for _, e := range all {
		if !e.Acked {
			pending = append(pending, JournalEntry{Offset: int64(len(buf)), Msg: e.Msg, Aux: e.Aux, Rsk: e.Rsk})
			buf = appendJournalRecord(buf, uint32(len(e.Msg))|journalFlag(e.Aux, e.Rsk), e.Msg)
		}
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	_, err = f.Write(buf)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return nil, err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return pending, nil
}

// close drains the queues and waits for the publishers; call it after every
// loop flushed its records.
func (o *outputs) close() {
	close(o.stop)
	close(o.records)
	close(o.events)
	o.wg.Wait()
	o.journal.Close()
}

// event queues a worker_update common event (spec §4.15). Dropped, not
// blocked, when the queue is full.
func (o *outputs) event(action, desc string, s *Session, m *miner) {
	e := btcpool.CommonEvent{
		CreatedAt: time.Now(), Type: btcpool.EventTypeWorkerUpdate, Action: action,
		UserID: s.userID, UserName: s.userName, WorkerID: m.workerID, WorkerName: m.worker,
		MinerAgent: m.agent, IP: s.ip, SessionID: s.id, Desc: desc,
	}
	select {
	case o.events <- btcpool.AppendCommonEvent(nil, &e):
	default:
	}
}
