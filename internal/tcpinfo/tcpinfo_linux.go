package tcpinfo

import "golang.org/x/sys/unix"

// FD reads the counters of the TCP socket fd (the caller keeps fd).
func FD(fd int) (Counters, error) {
	info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return Counters{}, err
	}
	return Counters{BytesOut: info.Bytes_acked, BytesIn: info.Bytes_received,
		SegsOut: uint64(info.Segs_out), SegsIn: uint64(info.Segs_in)}, nil
}
