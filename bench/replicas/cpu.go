package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc's CPU times (100 on every Linux this runs on).
const clockTicks = 100

// cpuSample is the CPU time used so far by the machine and by the processes of interest.
type cpuSample struct {
	at          time.Time
	busy, total uint64         // /proc/stat, all CPUs, ticks
	client      uint64         // this process
	replicas    uint64         // the replicas measured
	postgres    map[int]uint64 // every process named postgres, by pid
}

// procTicks is a process's user+system time in ticks (0 if it is gone).
func procTicks(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name is in parentheses and may hold spaces: fields count after ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseUint(f[11], 10, 64)
	s, _ := strconv.ParseUint(f[12], 10, 64)
	return u + s
}

func sampleCPU(replicas []*replica) cpuSample {
	s := cpuSample{at: time.Now(), client: procTicks(os.Getpid()), postgres: map[int]uint64{}}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := bytes.Cut(b, []byte("\n"))
		f := strings.Fields(string(line))
		for i, v := range f[1:] {
			n, _ := strconv.ParseUint(v, 10, 64)
			s.total += n
			if i != 3 && i != 4 { // idle, iowait
				s.busy += n
			}
		}
	}
	for _, r := range replicas {
		s.replicas += procTicks(r.cmd.Process.Pid)
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		comm, err := os.ReadFile(d + "/comm")
		if err != nil || !bytes.HasPrefix(comm, []byte("postgres")) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(d))
		s.postgres[pid] = procTicks(pid)
	}
	return s
}

// cpuUse is how many cores each part used on average between two samples.
type cpuUse struct {
	machine, busyFrac, client, replicas, postgres float64
}

func (a cpuSample) to(b cpuSample) cpuUse {
	secs := b.at.Sub(a.at).Seconds()
	cores := func(t0, t1 uint64) float64 { return float64(t1-t0) / clockTicks / secs }
	// PostgreSQL's processes come and go (other clients' backends): only those seen in
	// both samples count.
	var pg0, pg1 uint64
	for pid, t1 := range b.postgres {
		if t0, ok := a.postgres[pid]; ok && t1 >= t0 {
			pg0, pg1 = pg0+t0, pg1+t1
		}
	}
	u := cpuUse{client: cores(a.client, b.client), replicas: cores(a.replicas, b.replicas), postgres: cores(pg0, pg1)}
	if b.total > a.total {
		u.busyFrac = float64(b.busy-a.busy) / float64(b.total-a.total)
		u.machine = cores(a.busy, b.busy)
	}
	return u
}

func (u cpuUse) String() string {
	return fmt.Sprintf("CPU %.0f%% busy: client %.2f, privguard %.2f, postgres %.2f, other %.2f cores",
		100*u.busyFrac, u.client, u.replicas, u.postgres, max(0, u.machine-u.client-u.replicas-u.postgres))
}

// percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func medianDur(v []time.Duration) time.Duration {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) + " ms" }
