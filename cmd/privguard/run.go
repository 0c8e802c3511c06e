package main

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

// run is the whole program: it parses args, runs one command and returns the exit code
// (0 ok, 1 the command's check failed, 2 usage or operational error). Help goes to stdout
// with exit code 0; usage mistakes go to stderr with exit code 2.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		writeUsage(stderr)
		return 2
	}
	switch group := args[0]; group {
	case "serve":
		return serve(ctx, args[1:], getenv, stdout, stderr)
	case "consent", "policy", "keys", "dsar", "pia", "audit", "decisions", "callers", "incident", "retention":
		if len(args) < 2 {
			writeGroup(stderr, group)
			return 2
		}
		if isHelp(args[1]) {
			writeGroup(stdout, group)
			return 0
		}
		name := group + " " + args[1]
		if _, ok := lookup(name); !ok {
			fmt.Fprintf(stderr, "privguard: unknown %s command %q\n\n", group, args[1])
			writeGroup(stderr, group)
			return 2
		}
		switch group {
		case "consent":
			if args[1] == "import" {
				return consentImport(ctx, args[2:], getenv, stdout, stderr)
			}
			if args[1] == "export" {
				return consentExport(ctx, args[2:], stdout, stderr)
			}
			return consentVerify(ctx, args[2:], stdout, stderr)
		case "policy":
			return policyTest(ctx, args[2:], stdout, stderr)
		case "keys":
			return keys(ctx, args[1:], stdout, stderr)
		case "pia":
			return piaCmd(ctx, args[1:], stdout, stderr)
		case "audit":
			return auditCmd(ctx, args[1:], getenv, stdout, stderr)
		case "decisions":
			return decisionsCmd(ctx, args[1:], stdout, stderr)
		case "callers":
			return callersCmd(ctx, args[1:], getenv, stdout, stderr)
		case "incident":
			return incidentCmd(ctx, args[1:], getenv, stdout, stderr)
		case "retention":
			return retentionCmd(ctx, args[1:], getenv, stdout, stderr)
		default:
			return dsarCmd(ctx, args[1:], getenv, stdout, stderr)
		}
	case "migrate":
		return migrate(ctx, args[1:], stdout, stderr)
	case "ropa":
		return ropaCmd(ctx, args[1:], stdout, stderr)
	case "verify":
		return verifyBundle(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fs := newFlagSet("version")
		positional, code, ok := parseFlags(fs, "version", args[1:], stdout, stderr)
		if !ok {
			return code
		}
		if len(positional) > 0 {
			return usageError(stderr, "version", "takes no arguments")
		}
		fmt.Fprintln(stdout, "privguard", versionString())
		return 0
	case "help", "-h", "--help", "-help":
		return help(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "privguard: unknown command %q\n\n", args[0])
	writeUsage(stderr)
	return 2
}

// versionString returns privguard's version as versionFrom makes it from this binary.
func versionString() string {
	bi, ok := debug.ReadBuildInfo()
	return versionFrom(version, bi, ok)
}

// versionFrom returns the version: the one set with -ldflags "-X main.version=...", else the
// module version (go install ...@v1.2.3; go build in a git checkout stamps a pseudo-version
// such as v0.0.0-20261201201756-4f2010f10c40+dirty), else the VCS revision go build stamped
// (with -dirty and the commit time), else "devel" and why there is none. The Go version that
// built it follows in parentheses.
func versionFrom(ldflags string, bi *debug.BuildInfo, ok bool) string {
	if ldflags != "" {
		return ldflags
	}
	if !ok {
		return "devel (built without module support, so no version information)"
	}
	built := " (" + bi.GoVersion + ")"
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v + built
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		v := "devel " + rev[:min(12, len(rev))]
		if settings["vcs.modified"] == "true" {
			v += "-dirty"
		}
		if t := settings["vcs.time"]; t != "" {
			v += " " + t
		}
		return v + built
	}
	return "devel" + built + `: no version stamped (go run and -buildvcs=false builds carry none); ` +
		`go build in a git checkout stamps the revision, -ldflags "-X main.version=v1.2.3" a release`
}
