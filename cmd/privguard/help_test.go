package main

import (
	"bytes"
	"flag"
	"runtime/debug"
	"strings"
	"testing"
)

// Every command's --help is a readable page on stdout with exit code 0: usage, what it
// does, every flag the command defines, an example that parses with those flags.
func TestEveryHelpPage(t *testing.T) {
	for _, c := range commands() {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			words := strings.Fields(c.name)
			code, page, errText := runHelp(append(words, "--help")...)
			if code != 0 || errText != "" {
				t.Fatalf("privguard %s --help = %d, stderr %q; want 0 and nothing on stderr", c.name, code, errText)
			}
			if !strings.HasPrefix(page, "Usage: privguard "+c.usage+"\n") || !strings.Contains(page, "\nExample:\n  privguard ") || len(c.about) < 40 {
				t.Errorf("privguard %s --help lacks usage, description or example:\n%s", c.name, page)
			}
			fs := newFlagSet(c.name)
			c.flags(fs)
			fs.VisitAll(func(f *flag.Flag) {
				dash := "--"
				if len(f.Name) == 1 {
					dash = "-"
				}
				if !strings.Contains(page, "\n  "+dash+f.Name) {
					t.Errorf("privguard %s --help does not list its flag %s%s", c.name, dash, f.Name)
				}
			})
			for _, alt := range [][]string{append(words, "-h"), append([]string{"help"}, words...)} {
				if code, other, _ := runHelp(alt...); code != 0 || other != page {
					t.Errorf("privguard %s = %d; want 0 and the same page as --help", strings.Join(alt, " "), code)
				}
			}
			for _, line := range strings.Split(c.example, "\n") {
				args, ok := strings.CutPrefix(line, "privguard "+c.name)
				if !ok {
					t.Errorf("example %q does not run privguard %s", line, c.name)
					continue
				}
				fs := newFlagSet(c.name)
				c.flags(fs)
				var errb bytes.Buffer
				if _, _, ok := parseFlags(fs, c.name, strings.Fields(strings.ReplaceAll(args, `"`, "")), &bytes.Buffer{}, &errb); !ok {
					t.Errorf("example %q does not parse: %s", line, errb.String())
				}
			}
		})
	}
}

func TestGroupAndTopLevelHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		code, page, errText := runHelp(args...)
		if code != 0 || errText != "" {
			t.Errorf("privguard %v = %d, stderr %q; want 0", args, code, errText)
		}
		for _, c := range commands() {
			if !strings.Contains(page, "\n  "+c.name+" ") {
				t.Errorf("privguard %v does not list %s", args, c.name)
			}
		}
	}
	for _, group := range []string{"consent", "policy", "keys", "dsar"} {
		for _, args := range [][]string{{group, "--help"}, {group, "-h"}, {group, "help"}, {"help", group}} {
			code, page, errText := runHelp(args...)
			if code != 0 || errText != "" || !strings.HasPrefix(page, "Usage: privguard "+group+" <subcommand>") {
				t.Errorf("privguard %v = %d, stderr %q, page:\n%s\nwant 0 and the group's page", args, code, errText, page)
			}
			for _, c := range subcommands(group) {
				if !strings.Contains(page, "\n  "+c.name+" ") {
					t.Errorf("privguard %v does not list %s", args, c.name)
				}
			}
		}
		// A group without a subcommand is a usage mistake.
		if code, out, errText := runHelp(group); code != 2 || out != "" || !strings.Contains(errText, "Subcommands:") {
			t.Errorf("privguard %s = %d (stdout %q); want 2 and the page on stderr", group, code, out)
		}
	}
	for _, args := range [][]string{nil, {"frobnicate"}, {"keys", "frobnicate"}, {"dsar", "frobnicate"}, {"help", "frobnicate"}} {
		if code, out, errText := runHelp(args...); code != 2 || out != "" || errText == "" {
			t.Errorf("privguard %v = %d (stdout %q); want 2 and a message on stderr", args, code, out)
		}
	}
}

// serve's page describes the configuration file, the sidecar's keys included, and points
// to the README.
func TestServeHelpDescribesTheConfiguration(t *testing.T) {
	_, page, _ := runHelp("serve", "--help")
	for _, key := range []string{"listen", "upstream", "routes", "regime", "trusted_proxies", "admin_listen", "dsar", "README"} {
		if !strings.Contains(page, "\n  "+key+" ") && !strings.Contains(page, key+"'s") && !strings.Contains(page, "The "+key) {
			t.Errorf("serve --help does not describe %s:\n%s", key, page)
		}
	}
}

func TestBadFlagsPointToHelp(t *testing.T) {
	for _, args := range [][]string{{"keys", "status", "--bogus"}, {"consent", "verify", "--bogus"}, {"serve", "--bogus"},
		{"dsar", "list", "--bogus"}, {"keys", "shred"}, {"dsar", "status"}, {"policy", "test"}, {"version", "extra"}} {
		code, out, errText := runHelp(args...)
		name := strings.Join(args[:min(2, len(args))], " ")
		if args[0] == "serve" || args[0] == "version" {
			name = args[0]
		}
		if code != 2 || out != "" || !strings.Contains(errText, "Run 'privguard "+name+" --help' for usage.") {
			t.Errorf("privguard %v = %d, stdout %q, stderr %q; want 2 and a pointer to the help", args, code, out, errText)
		}
	}
}

func TestVersionFrom(t *testing.T) {
	settings := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	cases := []struct {
		name    string
		ldflags string
		bi      *debug.BuildInfo
		want    string
	}{
		{"ldflags_win", "v1.2.3", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.0.0"}}, "v1.2.3"},
		{"module_version", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"}}, "v1.4.0 (go1.26.8)"},
		{"vcs_revision", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"},
			Settings: settings("vcs.revision", "4f2010f10c403c5507e4fbd0ef93b64a34567844", "vcs.modified", "true", "vcs.time", "2026-12-01T20:17:56Z")},
			"devel 4f2010f10c40-dirty 2026-12-01T20:17:56Z (go1.26.8)"},
		{"vcs_clean", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"},
			Settings: settings("vcs.revision", "4f2010f10c403c5507e4fbd0ef93b64a34567844", "vcs.modified", "false")},
			"devel 4f2010f10c40 (go1.26.8)"},
		{"go_run", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			`devel (go1.26.8): no version stamped (go run and -buildvcs=false builds carry none)`},
	}
	for _, tc := range cases {
		if got := versionFrom(tc.ldflags, tc.bi, true); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: versionFrom = %q; want %q", tc.name, got, tc.want)
		}
	}
	if got := versionString(); got == "" || got == "(devel)" {
		t.Errorf("versionString() = %q", got)
	}
}
