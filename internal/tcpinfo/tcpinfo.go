package tcpinfo

import (
	"errors"
	"fmt"
	"net"
	"syscall"
)

// Counters are one socket's counters as the kernel holds them.
type Counters struct {
	BytesOut uint64 // tcpi_bytes_acked: payload sent and acknowledged by the peer (+1 for the SYN)
	BytesIn  uint64 // tcpi_bytes_received: payload received
	SegsOut  uint64 // tcpi_segs_out: every segment sent
	SegsIn   uint64 // tcpi_segs_in: every segment received
}

// ErrUnsupported is returned where the platform has no TCP_INFO.
var ErrUnsupported = errors.New("tcpinfo: TCP_INFO needs Linux")

// Conn reads the counters of c, which must be a TCP connection (or wrap
// one that exposes syscall.Conn).
func Conn(c net.Conn) (Counters, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return Counters{}, fmt.Errorf("tcpinfo: %T has no socket", c)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return Counters{}, err
	}
	var out Counters
	var ierr error
	if err := raw.Control(func(fd uintptr) { out, ierr = FD(int(fd)) }); err != nil {
		return Counters{}, err
	}
	return out, ierr
}
