//go:build !linux

package engine

import (
	"errors"
	"syscall"
)

// stopListening is implemented on Linux only; elsewhere the listeners stay
// open until the event loops stop, and connections made during the drain
// are accepted and closed (OnOpen refuses them while draining).
func stopListening([]syscall.Sockaddr) (int, error) {
	return 0, errors.New("closing the listeners early is implemented on Linux only")
}
