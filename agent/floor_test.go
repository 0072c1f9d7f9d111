//go:build linux

package agent

import (
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// BenchmarkMinerSocketFloor measures the kernel's share of what any farm
// proxy must do per share on a miner's socket: read the submit line and
// write the answer, one read(2) and one write(2) on a loopback TCP socket.
// The proxy side runs on one locked OS thread and is charged its thread CPU
// time (user + system, so the loopback delivery to the miner's socket that
// the kernel does inside write(2) is included, as it is in the agent's
// /proc CPU figure); the 1,000 "miners" are goroutines that answer each
// reply with the next submit. cpu-ns/share × 1,000 shares/s is a floor for
// the farm scenario's CPU on the same machine, before any parsing,
// batching, notify or upstream work.
//
// "hot" runs the shares back to back, so the miners' threads are awake and
// each write is cheap; "paced" works like the agent under a farm: rounds of
// 100 shares every 100 ms (1,000 shares/s, miner_poll_coalesce_ms), with
// the miners' side asleep between rounds as loadgen's is, so writes also
// pay for waking the receiving thread (an IPI on a VM).
//
//	go test -run '^$' -bench MinerSocketFloor -benchtime 20000x ./agent/
func BenchmarkMinerSocketFloor(b *testing.B) {
	b.Run("hot", func(b *testing.B) { minerSocketFloor(b, 0) })
	b.Run("paced", func(b *testing.B) { minerSocketFloor(b, 100) })
}

// minerSocketFloor does b.N shares over 1,000 sockets, sleeping 100 ms
// after every round of shares (0: never).
func minerSocketFloor(b *testing.B, round int) {
	const miners = 1000
	submit := []byte(`{"params":["farm.w00001","1a2b3c4d","00000012","6553f100","9f8e7d6c","04000000"],"id":123456,"method":"mining.submit"}` + "\n")
	answer := []byte(`{"id":123456,"result":true,"error":null}` + "\n")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	fds := make([]int, 0, miners)
	var files []interface{ Close() error }
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for range miners {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		f, err := s.(*net.TCPConn).File() // a blocking-mode duplicate the benchmark owns
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
		files = append(files, c, f)
		fds = append(fds, int(f.Fd()))
		go func() { // the miner: the next submit after every answer
			buf := make([]byte, 256)
			for {
				if _, err := c.Write(submit); err != nil {
					return
				}
				if _, err := c.Read(buf); err != nil {
					return
				}
			}
		}()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	buf := make([]byte, 256)
	var before, after syscall.Rusage
	b.ResetTimer()
	start := time.Now()
	syscall.Getrusage(syscall.RUSAGE_THREAD, &before)
	for i := 0; i < b.N; i++ {
		fd := fds[i%miners]
		if _, err := syscall.Read(fd, buf); err != nil {
			b.Fatal(err)
		}
		if _, err := syscall.Write(fd, answer); err != nil {
			b.Fatal(err)
		}
		if round > 0 && i%round == round-1 {
			time.Sleep(100 * time.Millisecond)
		}
	}
	syscall.Getrusage(syscall.RUSAGE_THREAD, &after)
	b.StopTimer()
	cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/share")
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N), "wall-ns/share")
}
