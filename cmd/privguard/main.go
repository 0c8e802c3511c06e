// Command privguard is the privguard privacy and consent compliance server and its
// command-line tools. Run `privguard --help` for the commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	// The zone database, so that a request's zone (Asia/Shanghai, Europe/Berlin) is known
	// on a host or image without one.
	_ "time/tzdata"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
