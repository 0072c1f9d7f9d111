package agent

import (
	"net"

	"golang.org/x/sys/unix"
)

// tcpWire reads the kernel's byte and segment counters of a TCP connection.
func tcpWire(c net.Conn) (Wire, bool) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return Wire{}, false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return Wire{}, false
	}
	var info *unix.TCPInfo
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		info, gerr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil || gerr != nil {
		return Wire{}, false
	}
	return Wire{BytesOut: int64(info.Bytes_acked), BytesIn: int64(info.Bytes_received),
		SegsOut: int64(info.Segs_out), SegsIn: int64(info.Segs_in)}, true
}
