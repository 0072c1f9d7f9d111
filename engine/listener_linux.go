package engine

import (
	"errors"
	"os"
	"strconv"
	"syscall"
)

// stopListening closes this process's listening TCP sockets bound to one of
// addrs and reports how many it closed.
//
// gnet v2.10 has no call that closes its listeners but keeps the event loops
// and their connections: Engine.Stop closes everything, and shutdown(2) on a
// listener makes gnet's accept fail with EINVAL, which gnet treats as fatal
// and stops the engine. So each listening fd (one per event loop with
// SO_REUSEPORT, else one) is replaced, with dup3(2), by a listening AF_UNIX
// socket that nobody connects to: the TCP listener's last reference goes,
// the kernel closes it (new connections are refused; with SO_REUSEPORT they
// go to another process on the port, as in a rolling restart), epoll
// forgets it, and should gnet still call accept on the fd number it gets
// EAGAIN, which it ignores. gnet closes the stand-in with its listeners
// when it stops. Connections the kernel had queued but gnet had not yet
// accepted are reset by the close: the window is the time between gnet's
// last accept and this call.
func stopListening(addrs []syscall.Sockaddr) (int, error) {
	if len(addrs) == 0 {
		return 0, errors.New("no listening address known")
	}
	stand, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer syscall.Close(stand)
	// An empty address autobinds an abstract name (unix(7)); an unbound
	// socket cannot listen.
	if err := syscall.Bind(stand, &syscall.SockaddrUnix{}); err != nil {
		return 0, err
	}
	if err := syscall.Listen(stand, 1); err != nil {
		return 0, err
	}
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return 0, err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, name := range names {
		fd, err := strconv.Atoi(name)
		if err != nil || fd == stand || !listenerOf(fd, addrs) {
			continue
		}
		if err := syscall.Dup3(stand, fd, syscall.O_CLOEXEC); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	if n == 0 && len(errs) == 0 {
		return 0, errors.New("no listening socket found")
	}
	return n, errors.Join(errs...)
}

// listenerOf reports whether fd is a listening socket bound to one of addrs.
func listenerOf(fd int, addrs []syscall.Sockaddr) bool {
	if v, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_ACCEPTCONN); err != nil || v != 1 {
		return false
	}
	if v, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_TYPE); err != nil || v != syscall.SOCK_STREAM {
		return false
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if sameSockaddr(sa, a) {
			return true
		}
	}
	return false
}
