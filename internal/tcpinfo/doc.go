// Package tcpinfo reads a TCP socket's kernel counters (Linux TCP_INFO):
// payload bytes acknowledged by the peer and received, and segments sent
// and received (data, pure ACKs, SYN/FIN and retransmissions).
//
// It is the one TCP_INFO reader of the module: btcagent, loadgen (per client
// connection), bench/scenarios (sockets borrowed from another process with
// pidfd_getfd) and the agent (its upstream link) all use it.
//
// It owns only the getsockopt call and the mapping of its fields; it must
// never change a socket (no setsockopt, no I/O on it), keep a descriptor
// it was given, or hide the error of a platform that has no TCP_INFO
// (ErrUnsupported elsewhere than Linux).
package tcpinfo
