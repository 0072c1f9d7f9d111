//go:build unix

package logfile

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// ErrLocked reports a share-log directory another writer holds.
var ErrLocked = errors.New("share log: directory is locked by another sharelogger")

// lockDir takes an exclusive, non-blocking flock on path, created if missing. The kernel
// releases it when the process dies, so a crash never leaves a stale lock.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("logfile: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (%s): two sharelogger processes must not write one directory", ErrLocked, path)
		}
		return nil, fmt.Errorf("logfile: lock %s: %w", path, err)
	}
	return f, nil
}

// unlockDir releases a lock taken by lockDir.
func unlockDir(f *os.File) error { return f.Close() }
