package userlist

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// EmbeddedFile is the embedded list's file name inside its directory.
const EmbeddedFile = "users.txt"

// maxEmbeddedFile bounds the file read at open (MaxUsers lines of at most
// MaxNameLen+12 bytes).
const maxEmbeddedFile = MaxUsers * (MaxNameLen + 12)

// Embedded is the user list of `hashpool run`: every valid user name can be
// registered and gets the next free id, and the name→id table is kept in an
// append-only file of "<name> <id>\n" lines so that ids stay the same
// across restarts (the format of the file earlier versions rewrote whole,
// which it reads unchanged).
//
// Register assigns the id in memory at once; a background goroutine appends
// the new lines in batches, one write and one fsync per batch, so a flood of
// new names costs one fsync per batch and no lookup waits on the disk. A
// crash can lose the names registered during the last batch's fsync: they
// get ids again when they next authorize (possibly other ids, which
// btcpool's API list can also do to a renamed user). Close writes what is
// left.
type Embedded struct {
	path string
	log  *slog.Logger

	mu      sync.RWMutex
	ids     map[string]int32
	next    int32
	pending []byte // lines not yet handed to the writer
	closed  bool

	wake     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	errMu    sync.Mutex
	err      error // last write error
	f        *os.File
	syncedMu sync.Mutex
	synced   *sync.Cond // broadcast after each batch
	durable  uint64     // seq of the last name on disk (under syncedMu)
	seq      uint64     // names registered (under mu)
}

// OpenEmbedded loads (or starts) the list in dir and starts its writer.
// A torn last line (a crash mid-append) is dropped and cut off; any other
// malformed line is an error naming the line. log may be nil.
func OpenEmbedded(dir string, log *slog.Logger) (*Embedded, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("embedded users: %w", err)
	}
	u := &Embedded{path: filepath.Join(dir, EmbeddedFile), log: log, ids: make(map[string]int32), next: 1,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	u.synced = sync.NewCond(&u.syncedMu)
	f, err := os.OpenFile(u.path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("embedded users: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxEmbeddedFile+1))
	if err == nil && len(b) > maxEmbeddedFile {
		err = fmt.Errorf("%s larger than %d bytes", u.path, maxEmbeddedFile)
	}
	var good int
	if err == nil {
		good, err = u.replay(b)
	}
	if err == nil && good < len(b) {
		log.Warn("embedded users: dropping a torn last line", "file", u.path, "bytes", len(b)-good)
		err = f.Truncate(int64(good))
		if err == nil {
			err = f.Sync()
		}
	}
	if err == nil {
		_, err = f.Seek(int64(good), io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("embedded users: %w", err)
	}
	u.f = f
	go u.run()
	return u, nil
}

// replay loads the lines of b and returns the length of its complete lines.
func (u *Embedded) replay(b []byte) (int, error) {
	good := 0
	for line := 1; good < len(b); line++ {
		nl := bytes.IndexByte(b[good:], '\n')
		if nl < 0 {
			return good, nil // torn tail
		}
		text := b[good : good+nl]
		sp := bytes.IndexByte(text, ' ')
		var id int64
		var err error
		if sp > 0 {
			id, err = strconv.ParseInt(string(text[sp+1:]), 10, 32)
		}
		if sp <= 0 || err != nil || id <= 0 || !validName(string(text[:sp])) {
			return 0, fmt.Errorf("%s line %d: want \"<name> <id>\"", u.path, line)
		}
		name := string(text[:sp])
		if _, ok := u.ids[name]; !ok && len(u.ids) < MaxUsers {
			u.ids[name] = int32(id)
		}
		if int32(id) >= u.next {
			u.next = int32(id) + 1
		}
		good += nl + 1
	}
	return good, nil
}

// UserID returns the id of a registered user.
func (u *Embedded) UserID(name string) (int32, bool) {
	u.mu.RLock()
	id, ok := u.ids[name]
	u.mu.RUnlock()
	return id, ok
}

// Register returns name's id, adding the name when it is new. Invalid names
// (empty, over MaxNameLen bytes, bytes btcpool filters out), a full list and
// a closed one are refused. It never waits on the disk.
func (u *Embedded) Register(name string) (int32, bool) {
	if !validName(name) {
		return 0, false
	}
	u.mu.Lock()
	if id, ok := u.ids[name]; ok {
		u.mu.Unlock()
		return id, true
	}
	if u.closed || len(u.ids) >= MaxUsers || u.next == 1<<31-1 {
		u.mu.Unlock()
		return 0, false
	}
	id := u.next
	u.next++
	u.ids[name] = id
	u.pending = append(u.pending, name...)
	u.pending = append(u.pending, ' ')
	u.pending = strconv.AppendInt(u.pending, int64(id), 10)
	u.pending = append(u.pending, '\n')
	u.seq++
	u.mu.Unlock()
	select {
	case u.wake <- struct{}{}:
	default:
	}
	return id, true
}

// Len returns how many users are registered.
func (u *Embedded) Len() int {
	u.mu.RLock()
	defer u.mu.RUnlock()
	return len(u.ids)
}

// Err returns the last error met while writing the file, if any (the names
// stay registered in memory and the write is retried with the next batch).
func (u *Embedded) Err() error {
	u.errMu.Lock()
	defer u.errMu.Unlock()
	return u.err
}

// run is the writer: it appends each batch of new lines and fsyncs it.
func (u *Embedded) run() {
	defer close(u.done)
	var retry []byte // a batch whose write failed
	for {
		stopping := false
		select {
		case <-u.wake:
		case <-u.stop:
			stopping = true
		}
		u.mu.Lock()
		batch := append(retry, u.pending...)
		u.pending = u.pending[:0:0]
		seq := u.seq
		u.mu.Unlock()
		retry = nil
		if len(batch) > 0 {
			if err := u.write(batch); err != nil {
				u.errMu.Lock()
				u.err = err
				u.errMu.Unlock()
				u.log.Error("embedded users: append failed; retrying with the next batch", "file", u.path, "err", err)
				retry = batch
			}
		}
		u.syncedMu.Lock()
		if retry == nil {
			u.durable = seq
		}
		u.synced.Broadcast()
		u.syncedMu.Unlock()
		if stopping {
			return
		}
	}
}

// write appends b and fsyncs; a short write is cut off again so that the
// retry starts on a line boundary.
func (u *Embedded) write(b []byte) error {
	off, err := u.f.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	_, err = u.f.Write(b)
	if err == nil {
		err = u.f.Sync()
	}
	if err != nil {
		if terr := u.f.Truncate(off); terr == nil {
			_, _ = u.f.Seek(off, io.SeekStart)
		}
	}
	return err
}

// Flush waits until every name registered before the call is on disk (or
// ctx ends).
func (u *Embedded) Flush(ctx context.Context) error {
	u.mu.RLock()
	target := u.seq
	u.mu.RUnlock()
	select {
	case u.wake <- struct{}{}:
	default:
	}
	done := make(chan struct{})
	go func() {
		u.syncedMu.Lock()
		for u.durable < target {
			select {
			case <-u.done:
				u.syncedMu.Unlock()
				close(done)
				return
			default:
			}
			u.synced.Wait()
		}
		u.syncedMu.Unlock()
		close(done)
	}()
	select {
	case <-done:
		return u.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops taking new names, writes the pending ones and closes the
// file. It returns the last write error, if any.
func (u *Embedded) Close() error {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return nil
	}
	u.closed = true
	u.mu.Unlock()
	close(u.stop)
	<-u.done
	u.syncedMu.Lock()
	u.synced.Broadcast()
	u.syncedMu.Unlock()
	err := u.Err()
	if cerr := u.f.Close(); err == nil && !errors.Is(cerr, os.ErrClosed) {
		err = cerr
	}
	return err
}
