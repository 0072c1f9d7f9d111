package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// clockTicks is USER_HZ, the unit of utime/stime in /proc/<pid>/stat: 100
// on every Linux architecture the kernel exports to user space.
const clockTicks = 100

// ProcSample is one reading of a process's resident memory and CPU time.
type ProcSample struct {
	RSSKB   int64 // VmRSS from /proc/<pid>/status
	CPUTime time.Duration
	At      time.Time
}

// ReadProc reads /proc/<pid>/status (VmRSS) and /proc/<pid>/stat (utime +
// stime, fields 14 and 15).
func ReadProc(pid int) (ProcSample, error) {
	s := ProcSample{At: time.Now()}
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return s, err
	}
	found := false
	for line := range bytes.SplitSeq(status, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := bytes.Fields(v)
			if len(f) >= 1 {
				s.RSSKB, err = strconv.ParseInt(string(f[0]), 10, 64)
				found = err == nil
			}
			break
		}
	}
	if !found {
		return s, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return s, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// count fields after the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return s, errors.New("/proc/stat: no ')'")
	}
	f := bytes.Fields(stat[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return s, errors.New("/proc/stat: too few fields")
	}
	ut, err1 := strconv.ParseInt(string(f[11]), 10, 64) // field 14
	st, err2 := strconv.ParseInt(string(f[12]), 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return s, errors.New("/proc/stat: bad utime/stime")
	}
	s.CPUTime = time.Duration(ut+st) * time.Second / clockTicks
	return s, nil
}

// ServerStats summarise a server process over the run.
type ServerStats struct {
	PID        int     `json:"pid"`
	Samples    int     `json:"samples"`
	RSSStartKB int64   `json:"rss_start_kb"`
	RSSMaxKB   int64   `json:"rss_max_kb"`
	RSSLastKB  int64   `json:"rss_last_kb"`
	CPUCores   float64 `json:"cpu_cores"`     // average over the run
	CPUMax     float64 `json:"cpu_cores_max"` // highest one-second average
	Error      string  `json:"error,omitempty"`
}

// sampleProc samples pid once a second until ctx ends.
func sampleProc(ctx context.Context, pid int) ServerStats {
	st := ServerStats{PID: pid}
	first, err := ReadProc(pid)
	if err != nil {
		st.Error = err.Error()
		return st
	}
	st.RSSStartKB, st.RSSMaxKB, st.RSSLastKB, st.Samples = first.RSSKB, first.RSSKB, first.RSSKB, 1
	prev, last := first, first
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if dt := last.At.Sub(first.At).Seconds(); dt > 0 {
				st.CPUCores = (last.CPUTime - first.CPUTime).Seconds() / dt
			}
			return st
		case <-t.C:
		}
		s, err := ReadProc(pid)
		if err != nil {
			st.Error = err.Error()
			continue
		}
		st.Samples++
		st.RSSLastKB = s.RSSKB
		st.RSSMaxKB = max(st.RSSMaxKB, s.RSSKB)
		if dt := s.At.Sub(prev.At).Seconds(); dt > 0 {
			st.CPUMax = max(st.CPUMax, (s.CPUTime-prev.CPUTime).Seconds()/dt)
		}
		prev, last = s, s
	}
}
