package agent

import (
	"net"

	"github.com/hashpool/hashpool/internal/tcpinfo"
)

// tcpWire reads the kernel's byte and segment counters of a TCP connection (false where the
// platform has no TCP_INFO).
func tcpWire(c net.Conn) (Wire, bool) {
	t, err := tcpinfo.Conn(c)
	if err != nil {
		return Wire{}, false
	}
	return Wire{BytesOut: int64(t.BytesOut), BytesIn: int64(t.BytesIn), SegsOut: int64(t.SegsOut), SegsIn: int64(t.SegsIn)}, true
}
