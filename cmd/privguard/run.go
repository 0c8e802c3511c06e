package main

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

const usage = `privguard — privacy and consent compliance (PIPL, GDPR) for marketing stacks.

Usage:
  privguard <command> [flags]

Commands:
  serve            run the consent ledger and admin APIs (embedded store, no other service needed)
  consent verify   check the consent ledger's hash chain; names the first record that does not match
  policy test DIR  run a policy's Rego unit tests (the default bundle: policy/bundle)
  dsar ...         data-subject requests through a running serve: submit, status, list, retry,
                   approve, result, register
  keys ...         master key and subject keys: init, status, shred, compact, rotate, rotate-kek
  version          print the version
  help             print this help

Run 'privguard <command> --help' for a command's flags.

Quick start:
  privguard serve                       # data in ./privguard-data, APIs on 127.0.0.1:8081
  TOKEN=$(cat privguard-data/admin.token)
  curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8081/readyz
`

// run is the whole program: it parses args, runs one command and returns the exit code
// (0 ok, 1 the command's check failed, 2 usage or operational error).
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], getenv, stdout, stderr)
	case "consent":
		if len(args) < 2 || args[1] == "-h" || args[1] == "--help" || args[1] == "help" {
			fmt.Fprint(stderr, "Usage: privguard consent verify [--data DIR]\n")
			return 2
		}
		if args[1] == "verify" {
			return consentVerify(ctx, args[2:], stdout, stderr)
		}
		fmt.Fprintf(stderr, "privguard: unknown consent command %q (want: verify)\n", args[1])
		return 2
	case "dsar":
		return dsarCmd(ctx, args[1:], getenv, stdout, stderr)
	case "keys":
		return keys(ctx, args[1:], stdout, stderr)
	case "policy":
		if len(args) >= 2 && args[1] == "test" {
			return policyTest(ctx, args[2:], stdout, stderr)
		}
		fmt.Fprint(stderr, "Usage: privguard policy test [-v] DIR...\n")
		return 2
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "privguard", versionString())
		return 0
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "privguard: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		v := bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
		return v
	}
	return "(devel)"
}
