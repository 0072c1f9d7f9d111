//go:build !linux

package tcpinfo

// FD returns ErrUnsupported: TCP_INFO is Linux's.
func FD(fd int) (Counters, error) { return Counters{}, ErrUnsupported }
