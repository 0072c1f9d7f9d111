//go:build !linux

package agent

import "net"

// tcpWire is Linux-only (TCP_INFO); elsewhere the wire estimate is unavailable.
func tcpWire(net.Conn) (Wire, bool) { return Wire{}, false }
