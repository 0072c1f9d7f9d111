package scenarios

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hashpool/hashpool/internal/tcpinfo"
)

// sockWire is one TCP socket's counters (TCP_INFO).
type sockWire = tcpinfo.Counters

// maxProcFDs bounds how many descriptors of the measured process are looked at.
const maxProcFDs = 100_000

// upstreamWire reads TCP_INFO of every socket of process pid connected to
// 127.0.0.1:port (the pool), keyed by socket inode. It borrows each socket with
// pidfd_getfd (Linux ≥ 5.6; the caller must be allowed to ptrace pid, as a
// parent is), so the process measured needs no cooperation.
func upstreamWire(pid, port int) (map[uint64]sockWire, error) {
	inodes, err := tcpInodesToPort(pid, port)
	if err != nil {
		return nil, err
	}
	out := map[uint64]sockWire{}
	if len(inodes) == 0 {
		return out, nil
	}
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(pidfd)
	for i, e := range ents {
		if i >= maxProcFDs {
			break
		}
		link, err := os.Readlink(dir + "/" + e.Name())
		if err != nil {
			continue
		}
		ino, ok := strings.CutPrefix(link, "socket:[")
		if !ok {
			continue
		}
		inode, err := strconv.ParseUint(strings.TrimSuffix(ino, "]"), 10, 64)
		if err != nil || !inodes[inode] {
			continue
		}
		target, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		fd, err := unix.PidfdGetfd(pidfd, target, 0)
		if err != nil {
			return nil, fmt.Errorf("pidfd_getfd %d/%d: %w", pid, target, err)
		}
		info, err := tcpinfo.FD(fd)
		unix.Close(fd)
		if err != nil {
			return nil, fmt.Errorf("TCP_INFO of %d/%d: %w", pid, target, err)
		}
		out[inode] = info
	}
	return out, nil
}

// tcpInodesToPort returns the inodes of the IPv4 TCP sockets in pid's
// network namespace connected to 127.0.0.1:port.
func tcpInodesToPort(pid, port int) (map[uint64]bool, error) {
	out := map[uint64]bool{}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		return nil, err
	}
	if err := parseProcNetTCP(b, port, out); err != nil {
		return nil, fmt.Errorf("/proc/%d/net/tcp: %w", pid, err)
	}
	return out, nil
}
