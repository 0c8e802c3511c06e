package evidence

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"time"
)

// ManifestName is the member of every bundle that lists the others.
const ManifestName = "manifest.json"

// FormatVersion is the version of the bundle layout (a zip with a manifest).
const FormatVersion = 1

// maxManifest bounds the manifest a verifier reads.
const maxManifest = 1 << 20

// Manifest describes a bundle: what kind of evidence it is (verifiers dispatch on Kind)
// and the SHA-256 of every other member.
type Manifest struct {
	Kind      string    `json:"kind"`
	Format    int       `json:"format"`
	Created   time.Time `json:"created"`
	Generator string    `json:"generator"`
	Members   []Member  `json:"members"`
}

// Member is one file of a bundle.
type Member struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Writer writes a bundle: a zip whose members are hashed as they are written, closed by
// the manifest. It writes sequentially (no seeking), so it can stream to a socket.
type Writer struct {
	zw      *zip.Writer
	kind    string
	members []Member
	cur     *memberWriter
}

// NewWriter starts a bundle of kind on w.
func NewWriter(w io.Writer, kind string) *Writer {
	zw := zip.NewWriter(w)
	zw.RegisterCompressor(zip.Deflate, func(out io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(out, flate.BestSpeed)
	})
	return &Writer{zw: zw, kind: kind}
}

type memberWriter struct {
	w    io.Writer
	h    hash.Hash
	n    int64
	name string
}

func (m *memberWriter) Write(p []byte) (int, error) {
	n, err := m.w.Write(p)
	m.h.Write(p[:n])
	m.n += int64(n)
	return n, err
}

// Create starts the member name, ending the previous one; write it through the returned
// writer until the next Create or Close.
func (w *Writer) Create(name string, modified time.Time) (io.Writer, error) {
	w.end()
	if name == ManifestName || slices.ContainsFunc(w.members, func(m Member) bool { return m.Name == name }) {
		return nil, fmt.Errorf("evidence: member %s twice", name)
	}
	zw, err := w.zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: modified.UTC()})
	if err != nil {
		return nil, err
	}
	w.cur = &memberWriter{w: zw, h: sha256.New(), name: name}
	return w.cur, nil
}

func (w *Writer) end() {
	if w.cur != nil {
		w.members = append(w.members, Member{Name: w.cur.name, Size: w.cur.n, SHA256: hex.EncodeToString(w.cur.h.Sum(nil))})
		w.cur = nil
	}
}

// Sum returns the SHA-256 (hex) of a member already ended, or "".
func (w *Writer) Sum(name string) string {
	w.end()
	for _, m := range w.members {
		if m.Name == name {
			return m.SHA256
		}
	}
	return ""
}

// Members returns the members written so far (the current one ended), as the manifest
// will list them.
func (w *Writer) Members() []Member {
	w.end()
	return slices.Clone(w.members)
}

// Close writes the manifest and the zip's directory. It does not close the underlying
// writer.
func (w *Writer) Close(created time.Time, generator string) error {
	w.end()
	b, err := json.MarshalIndent(Manifest{Kind: w.kind, Format: FormatVersion, Created: created.UTC(), Generator: generator, Members: w.members}, "", "  ")
	if err != nil {
		return err
	}
	mw, err := w.zw.CreateHeader(&zip.FileHeader{Name: ManifestName, Method: zip.Deflate, Modified: created.UTC()})
	if err != nil {
		return err
	}
	if _, err := mw.Write(append(b, '\n')); err != nil {
		return err
	}
	return w.zw.Close()
}

// Failure says what in a bundle does not verify: the member, and where there is one the
// line and the ledger record.
type Failure struct {
	Member string `json:"member,omitempty"`
	Line   int    `json:"line,omitempty"`
	Record uint64 `json:"record,omitempty"` // the record's sequence number in the ledger
	// Problem is what is wrong, in a sentence.
	Problem string `json:"problem"`
}

func (f *Failure) Error() string {
	var b bytes.Buffer
	if f.Member != "" {
		b.WriteString(f.Member)
		if f.Line > 0 {
			fmt.Fprintf(&b, " line %d", f.Line)
		}
		if f.Record > 0 {
			fmt.Fprintf(&b, " (record %d)", f.Record)
		}
		b.WriteString(": ")
	}
	b.WriteString(f.Problem)
	return b.String()
}

// ErrNotBundle is wrapped in the *Failure of Open for a file that is not an evidence
// bundle (not a zip, or a zip without a manifest).
var ErrNotBundle = errors.New("evidence: not an evidence bundle")

// notBundle is a Failure that says the file is not a bundle.
type notBundle struct{ Failure }

func (notBundle) Unwrap() error { return ErrNotBundle }

// Bundle is a bundle opened for verification: its manifest, and members whose hashes
// match it.
type Bundle struct {
	Manifest Manifest
	files    map[string]*zip.File
}

// Open reads the bundle in r (size bytes) and checks it against its manifest: every member
// listed is there once with its size and SHA-256, and nothing else is. What does not
// match is a *Failure naming the member; a file that is not a bundle at all is one too,
// wrapping ErrNotBundle.
func Open(r io.ReaderAt, size int64) (*Bundle, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, &notBundle{Failure{Problem: "not an evidence bundle: not a zip file (" + err.Error() + ")"}}
	}
	b := &Bundle{files: map[string]*zip.File{}}
	for _, f := range zr.File {
		if _, dup := b.files[f.Name]; dup {
			return nil, &Failure{Member: f.Name, Problem: "the zip holds two members of this name"}
		}
		b.files[f.Name] = f
	}
	mf := b.files[ManifestName]
	if mf == nil {
		return nil, &notBundle{Failure{Problem: "not an evidence bundle: the zip has no " + ManifestName}}
	}
	raw, err := readAll(mf, maxManifest)
	if err != nil {
		return nil, &Failure{Member: ManifestName, Problem: err.Error()}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b.Manifest); err != nil {
		return nil, &Failure{Member: ManifestName, Problem: "not a manifest: " + err.Error()}
	}
	if b.Manifest.Kind == "" {
		return nil, &notBundle{Failure{Member: ManifestName, Problem: "not an evidence bundle: the manifest has no kind"}}
	}
	if b.Manifest.Format != FormatVersion {
		return nil, &Failure{Member: ManifestName, Problem: fmt.Sprintf("format %d is not one this verifier knows (%d)", b.Manifest.Format, FormatVersion)}
	}
	listed := map[string]bool{ManifestName: true}
	for _, m := range b.Manifest.Members {
		if listed[m.Name] {
			return nil, &Failure{Member: ManifestName, Problem: "lists " + m.Name + " twice"}
		}
		listed[m.Name] = true
		f := b.files[m.Name]
		if f == nil {
			return nil, &Failure{Member: m.Name, Problem: "listed in the manifest but missing from the bundle"}
		}
		rc, err := f.Open()
		if err != nil {
			return nil, &Failure{Member: m.Name, Problem: "cannot be read: " + err.Error()}
		}
		h := sha256.New()
		n, err := io.Copy(h, io.LimitReader(rc, m.Size+1))
		rc.Close()
		if err != nil {
			return nil, &Failure{Member: m.Name, Problem: "cannot be read: " + err.Error()}
		}
		if n != m.Size || hex.EncodeToString(h.Sum(nil)) != m.SHA256 {
			return nil, &Failure{Member: m.Name, Problem: "does not match its SHA-256 in the manifest (altered)"}
		}
	}
	for name := range b.files {
		if !listed[name] {
			return nil, &Failure{Member: name, Problem: "is in the bundle but not in the manifest"}
		}
	}
	return b, nil
}

// Member opens a member listed in the manifest.
func (b *Bundle) Member(name string) (io.ReadCloser, error) {
	f := b.files[name]
	if f == nil || name == ManifestName {
		return nil, &Failure{Member: name, Problem: "missing from the bundle"}
	}
	return f.Open()
}

// SHA256 returns the hash of a member as the manifest lists it (and Open checked), or "".
func (b *Bundle) SHA256(name string) string {
	for _, m := range b.Manifest.Members {
		if m.Name == name {
			return m.SHA256
		}
	}
	return ""
}

// ReadMember reads a whole member of at most limit bytes.
func (b *Bundle) ReadMember(name string, limit int64) ([]byte, error) {
	f := b.files[name]
	if f == nil || name == ManifestName || b.SHA256(name) == "" {
		return nil, &Failure{Member: name, Problem: "missing from the bundle"}
	}
	raw, err := readAll(f, limit)
	if err != nil {
		return nil, &Failure{Member: name, Problem: err.Error()}
	}
	return raw, nil
}

func readAll(f *zip.File, limit int64) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("cannot be read: %w", err)
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fmt.Errorf("cannot be read: %w", err)
	}
	if int64(len(raw)) > limit {
		return nil, fmt.Errorf("is larger than %d bytes", limit)
	}
	return raw, nil
}
