package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// pprofPort is a port for a replica's net/http/pprof when -pprof-dir is set, else 0.
func (e *env) pprofPort() int {
	if e.pprofDir == "" {
		return 0
	}
	p, err := freePort()
	if err != nil {
		return 0
	}
	return p
}

// profile takes a CPU profile of secs seconds from every replica that serves pprof (a
// binary built with -tags pprof), into -pprof-dir, in the background; the returned
// function waits for them. Failures are reported on stderr, not fatal.
func (e *env) profile(rs []*replica, what string, secs int) (wait func()) {
	if e.pprofDir == "" || secs <= 0 {
		return func() {}
	}
	var wg sync.WaitGroup
	stamp := time.Now().Format("150405")
	for _, r := range rs {
		if r.pprof == "" {
			continue
		}
		wg.Go(func() {
			path := filepath.Join(e.pprofDir, fmt.Sprintf("%s-%s-%s.pb.gz", what, stamp, r.name))
			if err := fetchProfile(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", r.pprof, secs), path); err != nil {
				fmt.Fprintf(os.Stderr, "replicas: profile of %s: %v (is -bin built with -tags pprof?)\n", r.name, err)
				return
			}
			fmt.Fprintf(os.Stderr, "replicas: CPU profile of %s (%ds): %s\n", r.name, secs, path)
		})
	}
	return wg.Wait
}

// fetchProfile retries for a second while the process does not listen yet (a replica
// profiled from its start).
func fetchProfile(url, path string) error {
	resp, err := http.Get(url)
	for deadline := time.Now().Add(time.Second); err != nil && time.Now().Before(deadline); {
		time.Sleep(2 * time.Millisecond)
		resp, err = http.Get(url)
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
