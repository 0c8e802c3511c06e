package auditpack

import (
	"archive/zip"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"time"
)

// Kind is the manifest kind of an audit pack, for `privguard verify` to tell it from other
// files it checks.
const Kind = "privguard.audit-pack"

// Version is the pack format's version.
const Version = 1

// SignatureContext is what the manifest's signature covers before the manifest's bytes (and
// a zero byte): a signature made for a pack cannot pass for another document's.
const SignatureContext = "privguard.audit-pack.v1"

// The members every pack holds, beside the sections'.
const (
	ManifestName  = "manifest.json"
	SignatureName = "manifest.sig"
	SummaryName   = "summary.json"
	HeadsName     = "heads.json"
)

// Period is the span a pack covers: From ≤ t < To.
type Period struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// Head is the last entry of a chain when the pack was made: the pack is evidence of the
// chain up to it, and an auditor who kept a head can check a later pack still holds it.
type Head struct {
	Log  string `json:"log"`
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash,omitempty"`
}

// Signer signs the manifest. The consent ledger's receipt key does ([consent.Ledger.Sign]).
type Signer interface {
	// Sign returns the Ed25519 signature of context, a zero byte and msg.
	Sign(context string, msg []byte) []byte
	// ReceiptPublicKey is the public key, ReceiptKeyID its published id.
	ReceiptPublicKey() ed25519.PublicKey
	ReceiptKeyID() string
}

// Section writes members of the pack and its figures in the summary.
type Section interface {
	Name() string
	Write(ctx context.Context, p *Pack) error
}

// Config is what [Write] packs.
type Config struct {
	Period Period
	// Now is the clock; nil means time.Now. The pack is as of the period's end, or of now
	// if that is earlier.
	Now func() time.Time
	// Signer signs the manifest. Required.
	Signer Signer
	// Heads returns the chains' heads; called before any section reads.
	Heads func(ctx context.Context) ([]Head, error)
	// Controller names the handler in the report.
	Controller string
	// Sections write the evidence, in this order.
	Sections []Section
}

// Member is one file of the pack as the manifest lists it.
type Member struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Key is the public key a pack is signed with.
type Key struct {
	Alg    string `json:"alg"` // Ed25519
	KeyID  string `json:"kid"`
	Public string `json:"public"` // base64 (standard, padded) of the 32-byte key
}

// Manifest is manifest.json.
type Manifest struct {
	Kind       string    `json:"kind"`
	Version    int       `json:"version"`
	Period     Period    `json:"period"`
	AsOf       time.Time `json:"as_of"`
	Controller string    `json:"controller,omitempty"`
	Heads      []Head    `json:"heads"`
	Members    []Member  `json:"members"`
	Key        Key       `json:"key"`
}

// Pack is a pack being written; sections add members and figures to it.
type Pack struct {
	// Period and AsOf are the pack's; sections read data of the period, judged as of AsOf.
	Period Period
	AsOf   time.Time
	// Summary holds the figures the report shows; sections fill their part.
	Summary *Summary

	zw      *zip.Writer
	members []Member
}

// Member writes one member named name with write. The name must be a plain relative path
// not used before.
func (p *Pack) Member(name string, write func(w io.Writer) error) error {
	if name == "" || path.Clean(name) != name || path.IsAbs(name) || name[0] == '.' {
		return fmt.Errorf("auditpack: member name %q", name)
	}
	if slices.ContainsFunc(p.members, func(m Member) bool { return m.Name == name }) || name == ManifestName || name == SignatureName {
		return fmt.Errorf("auditpack: member %s twice", name)
	}
	fw, err := p.zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: p.AsOf})
	if err != nil {
		return err
	}
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(fw, h)}
	if err := write(cw); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	p.members = append(p.members, Member{Name: name, Size: cw.n, SHA256: hex.EncodeToString(h.Sum(nil))})
	return nil
}

// JSON writes v as an indented JSON member.
func (p *Pack) JSON(name string, v any) error {
	return p.Member(name, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(v)
	})
}

// Write writes the pack of cfg to w: the heads, every section, the summary and the
// reports, the manifest and its signature. An error leaves w holding a zip without a
// manifest, which [Verify] refuses: write to a temporary file and rename it on success.
func Write(ctx context.Context, cfg Config, w io.Writer) (*Manifest, error) {
	if cfg.Signer == nil {
		return nil, errors.New("auditpack: no signer")
	}
	if cfg.Period.From.IsZero() || !cfg.Period.To.After(cfg.Period.From) {
		return nil, errors.New("auditpack: the period must end after it starts")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	p := &Pack{Period: Period{From: cfg.Period.From.UTC(), To: cfg.Period.To.UTC()}, zw: zip.NewWriter(w)}
	p.AsOf = p.Period.To
	if now := cfg.Now().UTC().Truncate(time.Second); now.Before(p.AsOf) {
		p.AsOf = now
	}
	p.Summary = &Summary{Period: p.Period, AsOf: p.AsOf, Controller: cfg.Controller}
	var heads []Head
	if cfg.Heads != nil {
		var err error
		if heads, err = cfg.Heads(ctx); err != nil {
			return nil, fmt.Errorf("auditpack: heads: %w", err)
		}
	}
	if heads == nil {
		heads = []Head{}
	}
	p.Summary.Heads = heads
	if err := p.JSON(HeadsName, heads); err != nil {
		return nil, err
	}
	for _, s := range cfg.Sections {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := s.Write(ctx, p); err != nil {
			return nil, fmt.Errorf("auditpack: %s: %w", s.Name(), err)
		}
	}
	if err := p.JSON(SummaryName, p.Summary); err != nil {
		return nil, err
	}
	for _, lang := range Languages {
		if err := p.Member("report."+lang+".html", func(w io.Writer) error { return writeReport(w, p.Summary, lang) }); err != nil {
			return nil, err
		}
	}
	pub := cfg.Signer.ReceiptPublicKey()
	m := &Manifest{Kind: Kind, Version: Version, Period: p.Period, AsOf: p.AsOf, Controller: cfg.Controller, Heads: heads, Members: p.members,
		Key: Key{Alg: "Ed25519", KeyID: cfg.Signer.ReceiptKeyID(), Public: base64.StdEncoding.EncodeToString(pub)}}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	b = append(b, '\n')
	sig := cfg.Signer.Sign(SignatureContext, b)
	for _, f := range []struct {
		name string
		body []byte
	}{{ManifestName, b}, {SignatureName, []byte(base64.StdEncoding.EncodeToString(sig) + "\n")}} {
		fw, err := p.zw.CreateHeader(&zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: p.AsOf})
		if err != nil {
			return nil, err
		}
		if _, err := fw.Write(f.body); err != nil {
			return nil, err
		}
	}
	if err := p.zw.Close(); err != nil {
		return nil, err
	}
	return m, nil
}

// SignedMessage is what the signature of manifest covers.
func SignedMessage(manifest []byte) []byte {
	msg := make([]byte, 0, len(SignatureContext)+1+len(manifest))
	msg = append(msg, SignatureContext...)
	msg = append(msg, 0)
	return append(msg, manifest...)
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}
