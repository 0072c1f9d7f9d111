//go:build !linux

package scenarios

import "errors"

// sockWire is one TCP socket's counters (TCP_INFO, Linux only).
type sockWire struct {
	BytesOut, BytesIn uint64
	SegsOut, SegsIn   uint64
}

// upstreamWire needs Linux (pidfd_getfd and TCP_INFO).
func upstreamWire(pid, port int) (map[uint64]sockWire, error) {
	return nil, errors.New("agent-farm-10k measures TCP_INFO and needs Linux")
}
