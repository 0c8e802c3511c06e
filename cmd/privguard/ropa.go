package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/privguard/privguard/internal/config"
	"github.com/privguard/privguard/internal/ropa"
)

// ropaFlags are the flags of 'privguard ropa'.
type ropaFlags struct {
	config, format, lang, out *string
	strict                    *bool
}

func newRopaFlags(fs *flag.FlagSet) ropaFlags {
	return ropaFlags{
		config: fs.String("config", "", "the YAML configuration `file` serve enforces (required)"),
		format: fs.String("format", ropa.FormatJSON, "output `format`: json, csv or html"),
		lang:   fs.String("lang", "en", "`language` of the CSV's values and the HTML page: en or zh (JSON has both; CSV headings are in both)"),
		out:    fs.String("out", "", "write to `file` (atomically: a complete record or none) instead of stdout"),
		strict: fs.Bool("strict", false, "exit 1 if a fact the record needs is not declared (the record is written all the same)"),
	}
}

// ropaCmd writes the record of processing of a configuration.
func ropaCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("ropa")
	f := newRopaFlags(fs)
	positional, code, ok := parseFlags(fs, "ropa", args, stdout, stderr)
	if !ok {
		return code
	}
	switch {
	case len(positional) > 0:
		return usageError(stderr, "ropa", fmt.Sprintf("unexpected argument %q (the configuration file goes after --config)", positional[0]))
	case *f.config == "":
		return usageError(stderr, "ropa", "--config FILE is required: the record is generated from the configuration serve enforces")
	case !slices.Contains(ropa.Formats(), *f.format):
		return usageError(stderr, "ropa", fmt.Sprintf("--format %q: want json, csv or html", *f.format))
	case !slices.Contains(ropa.Languages(), *f.lang):
		return usageError(stderr, "ropa", fmt.Sprintf("--lang %q: want en or zh", *f.lang))
	}
	cfg, err := config.Load(*f.config)
	if err != nil {
		fmt.Fprintf(stderr, "privguard: %v\n", err)
		return 2
	}
	rec, err := ropa.Build(cfg, ropa.Options{})
	if err != nil {
		fmt.Fprintf(stderr, "privguard: %v\n", err)
		return 2
	}
	write := func(w io.Writer) error { return rec.Write(w, *f.format, *f.lang) }
	if *f.out == "" {
		if err := write(stdout); err != nil {
			fmt.Fprintf(stderr, "privguard: %v\n", err)
			return 2
		}
	} else {
		n, err := writeRecordFile(*f.out, write)
		if err != nil {
			fmt.Fprintf(stderr, "privguard: %v\n", err)
			return 2
		}
		fmt.Fprintf(stdout, "%s\t%d bytes\t%d activities\t%d not declared\n", *f.out, n, len(rec.Activities), len(rec.Gaps))
	}
	if len(rec.Gaps) > 0 {
		fmt.Fprintf(stderr, "privguard ropa: %d facts the record needs are not declared:\n", len(rec.Gaps))
		for _, g := range rec.Gaps {
			at := "record"
			if g.Activity != "" {
				at = g.Activity
			}
			fmt.Fprintf(stderr, "  %s: %s (set %s): %s\n", at, g.Field, g.Key, g.Detail)
		}
		if *f.strict {
			return 1
		}
	}
	return 0
}

// writeRecordFile writes what write writes to path atomically: into a temporary file in
// the same directory (mode 0600), synced, then renamed over path, so that an interrupted
// write leaves no file that looks complete. It returns the size written.
func writeRecordFile(path string, write func(io.Writer) error) (int64, error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return 0, err
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	cw := &countingWriter{w: tmp}
	if err := write(cw); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		done = true
		return 0, err
	}
	done = true
	if d, err := os.Open(dir); err == nil {
		d.Sync() // the rename, durable; best effort where a directory cannot be synced
		d.Close()
	}
	return cw.n, nil
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
