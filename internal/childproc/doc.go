// Package childproc runs one program as a child process of a test harness or a bench program:
// btcd, namecoind, mariadbd, kfakeserver, ckpool, btcagent and hashpool's own commands.
//
// It owns: starting the child with its output in a log file (or given writers), optionally in a
// process group of its own; the rule that the kernel kills the child (SIGKILL) when the thread
// that started it dies, so a crashed test leaves nothing behind; reaping it exactly once;
// stopping it (a signal, a grace period, then SIGKILL, always waiting for the exit); waiting
// until it is ready ([Process.Await]); the end of its log for error messages; and a free
// loopback port for it to listen on ([FreePort]).
//
// Typical use:
//
//	p, err := childproc.Start(childproc.Options{Path: bin, Args: args, Log: filepath.Join(dir, "btcd.out")})
//	err = p.Await(ctx, 30*time.Second, 50*time.Millisecond, "btcd", ping)
//	defer p.Stop(syscall.SIGINT, 10*time.Second)
//
// It must never: signal a process it did not start (a pid is signalled only while the child
// has not been reaped), leave a child running after Stop or Kill return, listen anywhere but
// 127.0.0.1, or log.
package childproc
