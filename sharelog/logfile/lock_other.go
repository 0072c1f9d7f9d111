//go:build !unix

package logfile

import (
	"errors"
	"fmt"
	"os"
)

// ErrLocked reports a share-log directory another writer holds.
var ErrLocked = errors.New("share log: directory is locked by another sharelogger")

// lockDir creates the lock file exclusively; without flock a crashed writer leaves it behind
// and the operator removes it.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("%w (%s)", ErrLocked, path)
	}
	if err != nil {
		return nil, fmt.Errorf("logfile: %w", err)
	}
	return f, nil
}

// unlockDir releases a lock taken by lockDir.
func unlockDir(f *os.File) error {
	name := f.Name()
	err := f.Close()
	if rerr := os.Remove(name); err == nil {
		err = rerr
	}
	return err
}
