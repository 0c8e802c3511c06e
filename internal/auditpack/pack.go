package auditpack

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"time"

	"github.com/privguard/privguard/evidence"
)

// Kind is the manifest kind of an audit pack, for `privguard verify` to tell it from other
// files it checks.
const Kind = "privguard.audit-pack"

// Version is the pack format's version.
const Version = 1

// StatementType is the JWS typ of the pack's signed statement: a signature made for a pack
// cannot pass for a receipt's or a checkpoint's.
const StatementType = "privguard-audit-pack+json"

// The members every pack holds, beside the sections' (and the bundle's manifest.json).
const (
	StatementName = "statement.jws"
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

// Signer signs the statement. The consent ledger's receipt key does
// ([consent.Ledger.SignDocument]).
type Signer interface {
	// SignDocument returns a compact JWS (EdDSA) over payload with header typ.
	SignDocument(typ string, payload []byte) (string, error)
	// ReceiptPublicKey is the public key, ReceiptKeyID its published id (the JWS kid).
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
	// Signer signs the statement. Required.
	Signer Signer
	// Heads returns the chains' heads; called before any section reads.
	Heads func(ctx context.Context) ([]Head, error)
	// Controller names the handler in the report.
	Controller string
	// Sections write the evidence, in this order.
	Sections []Section
}

// Member is one file of the pack as the statement lists it.
type Member = evidence.Member

// Key is the public key a pack is signed with.
type Key struct {
	Alg    string `json:"alg"` // Ed25519
	KeyID  string `json:"kid"`
	Public string `json:"public"` // base64 (standard, padded) of the 32-byte key
}

// Manifest is the pack's signed statement (statement.jws): what the pack is, the chain
// heads it was made at, and every member before it with its size and SHA-256.
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

	bw *evidence.Writer
}

// Member writes one member named name with write. The name must be a plain relative path
// not used before.
func (p *Pack) Member(name string, write func(w io.Writer) error) error {
	if name == "" || path.Clean(name) != name || path.IsAbs(name) || name[0] == '.' || name == StatementName {
		return fmt.Errorf("auditpack: member name %q", name)
	}
	w, err := p.bw.Create(name, p.AsOf)
	if err != nil {
		return err
	}
	if err := write(w); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
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
// reports, the signed statement and the bundle's manifest (evidence.Writer). An error
// leaves w holding a zip without a manifest, which [Verify] refuses: write to a temporary
// file and rename it on success.
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
	p := &Pack{Period: Period{From: cfg.Period.From.UTC(), To: cfg.Period.To.UTC()}, bw: evidence.NewWriter(w, Kind)}
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
	m := &Manifest{Kind: Kind, Version: Version, Period: p.Period, AsOf: p.AsOf, Controller: cfg.Controller, Heads: heads, Members: p.bw.Members(),
		Key: Key{Alg: "Ed25519", KeyID: cfg.Signer.ReceiptKeyID(), Public: base64.StdEncoding.EncodeToString(pub)}}
	payload, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	jws, err := cfg.Signer.SignDocument(StatementType, payload)
	if err != nil {
		return nil, fmt.Errorf("auditpack: sign: %w", err)
	}
	sw, err := p.bw.Create(StatementName, p.AsOf)
	if err != nil {
		return nil, err
	}
	if _, err := io.WriteString(sw, jws+"\n"); err != nil {
		return nil, err
	}
	if err := p.bw.Close(p.AsOf, "privguard"); err != nil {
		return nil, err
	}
	return m, nil
}
