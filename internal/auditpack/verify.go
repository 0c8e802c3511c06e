package auditpack

import (
	"archive/zip"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/dsar"
)

// VerifyError says what is wrong with a pack: which member (or "" for the file) and how.
type VerifyError struct {
	Member string
	Detail string
}

func (e *VerifyError) Error() string {
	if e.Member == "" {
		return "audit pack: " + e.Detail
	}
	return "audit pack: " + e.Member + ": " + e.Detail
}

func bad(member, format string, args ...any) error {
	return &VerifyError{Member: member, Detail: fmt.Sprintf(format, args...)}
}

// maxMeta bounds what Verify reads whole (the manifest, its signature, the summary).
const maxMeta = 64 << 20

// IsPack reports whether the zip in r holds an audit pack's manifest (of any version); it
// reads only the manifest.
func IsPack(r io.ReaderAt, size int64) bool {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return false
	}
	for _, f := range zr.File {
		if f.Name == ManifestName {
			b, err := readMember(f, maxMeta)
			if err != nil {
				return false
			}
			var m struct{ Kind string }
			return json.Unmarshal(b, &m) == nil && m.Kind == Kind
		}
	}
	return false
}

// Verify checks the pack in r (size bytes) from the file alone: the manifest's signature
// by the key it names (and, if pin is not nil, that the key is pin), every member's size
// and SHA-256 against the manifest, no member missing, unlisted or twice, the summary's
// shape, and its figures recomputed from the registers they come from. It returns the
// manifest of a pack that verifies, or a *VerifyError saying what does not.
func Verify(r io.ReaderAt, size int64, pin ed25519.PublicKey) (*Manifest, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, bad("", "not a zip file: %v", err)
	}
	files := map[string]*zip.File{}
	for _, f := range zr.File {
		if _, dup := files[f.Name]; dup {
			return nil, bad(f.Name, "the zip holds it twice")
		}
		files[f.Name] = f
	}
	mf, sf := files[ManifestName], files[SignatureName]
	if mf == nil || sf == nil {
		return nil, bad("", "no %s and %s: not an audit pack, or one whose writing did not finish", ManifestName, SignatureName)
	}
	mb, err := readMember(mf, maxMeta)
	if err != nil {
		return nil, bad(ManifestName, "%v", err)
	}
	var m Manifest
	if err := strictJSON(mb, &m); err != nil {
		return nil, bad(ManifestName, "%v", err)
	}
	if m.Kind != Kind || m.Version != Version {
		return nil, bad(ManifestName, "kind %q version %d: want %q version %d", m.Kind, m.Version, Kind, Version)
	}
	pub, err := base64.StdEncoding.DecodeString(m.Key.Public)
	if err != nil || len(pub) != ed25519.PublicKeySize || m.Key.Alg != "Ed25519" {
		return nil, bad(ManifestName, "key: want an Ed25519 public key in base64")
	}
	if pin != nil && !bytes.Equal(pub, pin) {
		return nil, bad(ManifestName, "signed by key %s, not by the key given", m.Key.KeyID)
	}
	sb, err := readMember(sf, 1024)
	if err != nil {
		return nil, bad(SignatureName, "%v", err)
	}
	sig, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(sb)))
	if err != nil || !ed25519.Verify(pub, SignedMessage(mb), sig) {
		return nil, bad(SignatureName, "the signature does not verify with key %s: the manifest was changed or signed by another key", m.Key.KeyID)
	}
	listed := map[string]Member{}
	for _, x := range m.Members {
		if _, dup := listed[x.Name]; dup {
			return nil, bad(ManifestName, "lists %s twice", x.Name)
		}
		listed[x.Name] = x
	}
	for name := range files {
		if _, ok := listed[name]; !ok && name != ManifestName && name != SignatureName {
			return nil, bad(name, "not in the manifest (added after signing)")
		}
	}
	for _, x := range m.Members {
		f := files[x.Name]
		if f == nil {
			return nil, bad(x.Name, "missing")
		}
		rc, err := f.Open()
		if err != nil {
			return nil, bad(x.Name, "%v", err)
		}
		h := sha256.New()
		n, err := io.Copy(h, rc)
		rc.Close()
		if err != nil {
			return nil, bad(x.Name, "%v", err)
		}
		if n != x.Size || hex.EncodeToString(h.Sum(nil)) != x.SHA256 {
			return nil, bad(x.Name, "changed: %d bytes with SHA-256 %x, the manifest says %d bytes with %s", n, h.Sum(nil), x.Size, x.SHA256)
		}
	}
	if err := checkSummary(files, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// checkSummary checks summary.json against the manifest and its figures against the
// registers in the pack.
func checkSummary(files map[string]*zip.File, m *Manifest) error {
	f := files[SummaryName]
	if f == nil {
		return bad(SummaryName, "missing")
	}
	b, err := readMember(f, maxMeta)
	if err != nil {
		return bad(SummaryName, "%v", err)
	}
	var s Summary
	if err := strictJSON(b, &s); err != nil {
		return bad(SummaryName, "%v", err)
	}
	if !s.Period.From.Equal(m.Period.From) || !s.Period.To.Equal(m.Period.To) || !s.AsOf.Equal(m.AsOf) {
		return bad(SummaryName, "its period or time is not the manifest's")
	}
	if !reflect.DeepEqual(s.Heads, m.Heads) {
		return bad(SummaryName, "its heads are not the manifest's")
	}
	if hf := files[HeadsName]; hf != nil {
		var heads []Head
		hb, err := readMember(hf, maxMeta)
		if err == nil {
			err = strictJSON(hb, &heads)
		}
		if err != nil || !reflect.DeepEqual(heads, m.Heads) {
			return bad(HeadsName, "not the manifest's heads")
		}
	}
	if s.Requests != nil {
		rf := files["requests.csv"]
		if rf == nil {
			return bad("requests.csv", "missing, but the summary has request figures")
		}
		entries, err := readRegister(rf)
		if err != nil {
			return bad("requests.csv", "%v", err)
		}
		got := requestFigures(s.Period, entries)
		if !reflect.DeepEqual(normalise(got), normalise(s.Requests)) {
			return bad(SummaryName, "the request figures are not those of requests.csv")
		}
	}
	for _, c := range []struct {
		member string
		want   int
		ok     bool
	}{
		{"disclosures.csv", figure(s.Disclosures, func(d *DisclosureFigures) int { return d.Entries }), s.Disclosures != nil},
		{"trail.csv", figure(s.Trail, func(t *TrailFigures) int { return t.Acts }), s.Trail != nil},
		{"key-events.csv", figure(s.Trail, func(t *TrailFigures) int { return t.KeyEvents }), s.Trail != nil},
	} {
		if !c.ok {
			continue
		}
		rf := files[c.member]
		if rf == nil {
			return bad(c.member, "missing, but the summary counts it")
		}
		n, err := csvRows(rf)
		if err != nil {
			return bad(c.member, "%v", err)
		}
		if n != c.want {
			return bad(SummaryName, "counts %d rows of %s, which has %d", c.want, c.member, n)
		}
	}
	return nil
}

func figure[T any](v *T, f func(*T) int) int {
	if v == nil {
		return 0
	}
	return f(v)
}

// normalise makes empty maps and slices of f compare equal to absent ones.
func normalise(f *RequestFigures) RequestFigures {
	out := *f
	if len(out.ByRegime) == 0 {
		out.ByRegime = nil
	}
	if len(out.ByType) == 0 {
		out.ByType = nil
	}
	if len(out.Weeks) == 0 {
		out.Weeks = nil
	}
	return out
}

// readRegister reads requests.csv back into the entries the figures need.
func readRegister(f *zip.File) ([]dsar.RegisterEntry, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	cr := csv.NewReader(rc)
	head, err := cr.Read()
	if err != nil {
		return nil, err
	}
	if !slices.Equal(head, dsar.RegisterColumns) {
		return nil, errors.New("its columns are not the register's")
	}
	col := map[string]int{}
	for i, c := range head {
		col[c] = i
	}
	var out []dsar.RegisterEntry
	for line := 2; ; line++ {
		row, err := cr.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		e := dsar.RegisterEntry{ID: row[col["id"]], Type: dsar.Type(row[col["type"]]), Regime: privguard.Regime(row[col["regime"]])}
		if e.ReceivedAt, err = time.Parse(time.RFC3339, row[col["received_at"]]); err != nil {
			return nil, fmt.Errorf("line %d: received_at: %v", line, err)
		}
		if v := row[col["closed_at"]]; v != "" {
			if e.ClosedAt, err = time.Parse(time.RFC3339, v); err != nil {
				return nil, fmt.Errorf("line %d: closed_at: %v", line, err)
			}
		}
		if v := row[col["on_time"]]; v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("line %d: on_time: %v", line, err)
			}
			e.OnTime = &b
		}
		if e.Overdue, err = strconv.ParseBool(row[col["overdue"]]); err != nil {
			return nil, fmt.Errorf("line %d: overdue: %v", line, err)
		}
		out = append(out, e)
	}
}

// csvRows counts the data rows of a CSV member (its heading excluded).
func csvRows(f *zip.File) (int, error) {
	rc, err := f.Open()
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	cr := csv.NewReader(rc)
	cr.FieldsPerRecord = -1
	n := -1
	for {
		_, err := cr.Read()
		if err == io.EOF {
			return max(n, 0), nil
		}
		if err != nil {
			return 0, err
		}
		n++
	}
}

func readMember(f *zip.File, limit int64) ([]byte, error) {
	if f.UncompressedSize64 > uint64(limit) {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return b, nil
}

func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("more than one JSON value")
	}
	return nil
}
