//go:build !linux

package scenarios

import (
	"errors"

	"github.com/hashpool/hashpool/internal/tcpinfo"
)

// sockWire is one TCP socket's counters (TCP_INFO, Linux only).
type sockWire = tcpinfo.Counters

// upstreamWire needs Linux (pidfd_getfd and TCP_INFO).
func upstreamWire(pid, port int) (map[uint64]sockWire, error) {
	return nil, errors.New("agent-farm-10k measures TCP_INFO and needs Linux")
}
