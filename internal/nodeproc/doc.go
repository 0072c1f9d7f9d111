// Package nodeproc runs one Bitcoin-family node (btcd, Namecoin Core) as a child process for
// the harnesses internal/btcdtest and internal/namecoindtest and the programs under bench/ that
// measure against a node.
//
// It owns what every node start has in common: free loopback ports (the RPC port and as many
// more as the node needs), a fresh data dir under the caller's directory, fresh RPC basic-auth
// credentials, the process with its output in DataDir/<name>.out, a [node.Client] for it,
// waiting until RPC answers (getblockcount), a retry when a picked port was taken before the
// node bound it, and stopping it (a signal, a grace period, SIGKILL) and removing the data dir.
// The node's own command line is the caller's ([Spec.Args]).
//
// It must never: reach anything but 127.0.0.1, leave a node process or data dir behind after
// Stop, or know one node's flags (they belong to the harness of that node).
package nodeproc
