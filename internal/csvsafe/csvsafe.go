// Package csvsafe writes CSV that spreadsheet programs (Excel, WPS, LibreOffice) open as
// data: UTF-8 with a byte-order mark, so Chinese text reads right, and no cell that a
// spreadsheet would run as a formula.
package csvsafe

import (
	"encoding/csv"
	"io"
	"strings"
	"unicode/utf8"
)

// Defuse returns s with a leading apostrophe if a spreadsheet could take it for a formula:
// it starts with = + - @ (or their full-width forms, which CJK input methods type, after
// any spaces), a tab, a carriage return or a line feed. Other cells are returned as they are.
func Defuse(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '\t', '\r', '\n':
		return "'" + s
	}
	t := strings.TrimLeft(s, " \u3000")
	if t == "" {
		return s
	}
	r, _ := utf8.DecodeRuneInString(t)
	switch r {
	case '=', '+', '-', '@', '＝', '＋', '－', '＠':
		return "'" + s
	}
	return s
}

// Writer writes defused records after a byte-order mark.
type Writer struct {
	w       *csv.Writer
	started bool
	out     io.Writer
	buf     []string
}

// NewWriter returns a Writer to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: csv.NewWriter(w), out: w} }

// Write writes one record, each cell defused.
func (w *Writer) Write(record ...string) error {
	if !w.started {
		w.started = true
		if _, err := io.WriteString(w.out, "\uFEFF"); err != nil {
			return err
		}
	}
	w.buf = w.buf[:0]
	for _, c := range record {
		w.buf = append(w.buf, Defuse(c))
	}
	return w.w.Write(w.buf)
}

// Flush writes what is buffered and returns the first error.
func (w *Writer) Flush() error {
	w.w.Flush()
	return w.w.Error()
}
