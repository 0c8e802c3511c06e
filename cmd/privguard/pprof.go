//go:build pprof

package main

// Built with `-tags pprof`, the binary serves net/http/pprof on $PRIVGUARD_PPROF_ADDR (for
// example 127.0.0.1:6060), for profiling the real serving path (BENCHMARKS.md). Release
// builds leave it out: the profiles would show request data to anyone who can reach it.

import (
	"log"
	"net/http"
	_ "net/http/pprof" // registers on http.DefaultServeMux, which nothing else in privguard uses
	"os"
)

func init() {
	if addr := os.Getenv("PRIVGUARD_PPROF_ADDR"); addr != "" {
		go func() { log.Println(http.ListenAndServe(addr, nil)) }()
	}
}
