package identity

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/vault"
)

// Errors of the registry.
var (
	// ErrNoChannel: the link is of a type that cannot be sent to (a WeChat id, a device id).
	ErrNoChannel = fmt.Errorf("identity: this identifier type cannot be sent to: %w", privguard.ErrInvalid)
	// ErrNoAddress: the subject has no verified phone or email to send to.
	ErrNoAddress = errors.New("identity: no verified phone or email is linked to the subject")
	// ErrNotVerified: the link exists but is not verified, so it cannot act for the subject.
	ErrNotVerified = errors.New("identity: the identifier is not verified")
)

// Link is one identifier of a subject, as shown: never the value.
type Link struct {
	Subject privguard.SubjectID `json:"subject"`
	Type    Type                `json:"type"`
	// Hash is the hex keyed hash of the normalised value (the lookup key).
	Hash string `json:"hash"`
	// Masked is the display form ("+86 138****5678", "a***@example.com", "wx…abcd").
	Masked     string    `json:"masked"`
	Verified   bool      `json:"verified"`
	VerifiedAt time.Time `json:"verified_at,omitzero"`
	// Evidence says how the link was verified: "code" (a one-time code sent to it) or
	// "app:<principal>" (the app attested it verified the address itself).
	Evidence  string    `json:"evidence,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Config configures [New].
type Config struct {
	// Store keeps the links. Required.
	Store Store
	// Vault keys the hashes (its blind-index key) and seals the addresses under the
	// subject's key. Required.
	Vault *vault.Vault
	// Sender delivers messages ([Registry.Send]); nil: Send fails.
	Sender Sender
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Registry keeps the identity links of subjects. It is safe for concurrent use.
type Registry struct {
	store  Store
	vault  *vault.Vault
	sender Sender
	now    func() time.Time
	mu     sync.Mutex // orders read-modify-writes of links (verification, codes)
}

// New returns a registry.
func New(cfg Config) (*Registry, error) {
	if cfg.Store == nil || cfg.Vault == nil {
		return nil, errors.New("identity: Config.Store and Config.Vault are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Registry{store: cfg.Store, vault: cfg.Vault, sender: cfg.Sender, now: cfg.Now}, nil
}

// record is a link as stored: the link, the sealed address (phones and emails only) and
// the pending verification code, if any.
type record struct {
	Link
	Address []byte     `json:"address,omitempty"`
	Code    *challenge `json:"code,omitempty"`
}

func decode(body []byte) (record, error) {
	var rec record
	if err := json.Unmarshal(body, &rec); err != nil {
		return record{}, fmt.Errorf("identity: stored link does not decode: %w", err)
	}
	return rec, nil
}

// BlindIndexPrefix starts the vault blind-index fields privguard keeps for itself (the
// identity links' hashes are the index of "privguard/identity/<type>"); the admin API's
// POST /v1/vault/blind-index refuses them.
const BlindIndexPrefix = "privguard/"

// hash is the lookup key of a normalised value: the vault's blind index of it (per type),
// hex-encoded.
func (r *Registry) hash(ctx context.Context, t Type, normalised string) (string, error) {
	tok, err := r.vault.BlindIndex(ctx, BlindIndexPrefix+"identity/"+string(t), []byte(normalised))
	if err != nil {
		return "", err
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok[strings.LastIndexByte(tok, '.')+1:])
	if err != nil {
		return "", fmt.Errorf("identity: blind index: %w", err)
	}
	return hex.EncodeToString(raw), nil
}

// addressAD binds a sealed address to its link.
func addressAD(t Type, hash string) []byte {
	return []byte("privguard/identity/address/v1\x00" + string(t) + "\x00" + hash)
}

// Add links value (of type t, normalised first) to subject. verifiedBy, if not empty, is
// the principal of an app that attests it verified the address itself: the link is then
// verified with evidence "app:<verifiedBy>". Adding a link the subject already has returns
// it (verified now if verifiedBy is set and it was not). A value linked to another subject
// returns an error wrapping privguard.ErrConflict; a bad type or value an *Error wrapping
// privguard.ErrInvalid.
func (r *Registry) Add(ctx context.Context, subject privguard.SubjectID, t Type, value string, verifiedBy string) (Link, error) {
	if err := subject.Validate(); err != nil {
		return Link{}, err
	}
	norm, err := Normalise(t, value)
	if err != nil {
		return Link{}, err
	}
	h, err := r.hash(ctx, t, norm)
	if err != nil {
		return Link{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now().UTC()
	owner, body, err := r.store.Link(ctx, t, h)
	switch {
	case err == nil && owner != subject:
		return Link{}, fmt.Errorf("identity: the identifier is linked to another subject: %w", privguard.ErrConflict)
	case err == nil:
		rec, err := decode(body)
		if err != nil {
			return Link{}, err
		}
		if verifiedBy == "" || rec.Verified {
			return rec.Link, nil
		}
		rec.verify(now, "app:"+verifiedBy)
		return rec.Link, r.put(ctx, rec)
	case !errors.Is(err, privguard.ErrNotFound):
		return Link{}, err
	}
	rec := record{Link: Link{Subject: subject, Type: t, Hash: h, Masked: Mask(t, norm), CreatedAt: now}}
	if t.Channel() != "" {
		if rec.Address, err = r.vault.Seal(ctx, subject, []byte(norm), addressAD(t, h)); err != nil {
			return Link{}, err
		}
	}
	if verifiedBy != "" {
		rec.verify(now, "app:"+verifiedBy)
	}
	return rec.Link, r.put(ctx, rec)
}

func (rec *record) verify(now time.Time, evidence string) {
	rec.Verified, rec.VerifiedAt, rec.Evidence, rec.Code = true, now, evidence, nil
}

func (r *Registry) put(ctx context.Context, rec record) error {
	body, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return r.store.PutLink(ctx, rec.Subject, rec.Type, rec.Hash, body)
}

// Lookup returns the link of value (of type t, normalised first), verified or not. Not
// linked: an error wrapping privguard.ErrNotFound; a bad type or value: an *Error.
func (r *Registry) Lookup(ctx context.Context, t Type, value string) (Link, error) {
	norm, err := Normalise(t, value)
	if err != nil {
		return Link{}, err
	}
	h, err := r.hash(ctx, t, norm)
	if err != nil {
		return Link{}, err
	}
	_, body, err := r.store.Link(ctx, t, h)
	if err != nil {
		return Link{}, err
	}
	rec, err := decode(body)
	return rec.Link, err
}

// Resolve returns the subject a verified link of value vouches for. Not linked and not
// verified both return an error wrapping ErrNotVerified, alike, so that a caller cannot
// tell which.
func (r *Registry) Resolve(ctx context.Context, t Type, value string) (privguard.SubjectID, error) {
	l, err := r.Lookup(ctx, t, value)
	switch {
	case errors.Is(err, privguard.ErrNotFound) || (err == nil && !l.Verified):
		return "", ErrNotVerified
	case err != nil:
		return "", err
	}
	return l.Subject, nil
}

// Links returns every link of subject, ordered by type and hash.
func (r *Registry) Links(ctx context.Context, subject privguard.SubjectID) ([]Link, error) {
	recs, err := r.records(ctx, subject)
	if err != nil {
		return nil, err
	}
	out := make([]Link, len(recs))
	for i, rec := range recs {
		out[i] = rec.Link
	}
	return out, nil
}

func (r *Registry) records(ctx context.Context, subject privguard.SubjectID) ([]record, error) {
	if err := subject.Validate(); err != nil {
		return nil, err
	}
	bodies, err := r.store.SubjectLinks(ctx, subject)
	if err != nil {
		return nil, err
	}
	out := make([]record, 0, len(bodies))
	for _, b := range bodies {
		rec, err := decode(b)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

// Get returns subject's link of hash (of any type), or an error wrapping
// privguard.ErrNotFound.
func (r *Registry) Get(ctx context.Context, subject privguard.SubjectID, hash string) (Link, error) {
	rec, err := r.find(ctx, subject, "", hash)
	return rec.Link, err
}

// validHash reports whether h has the shape of a link's hash (32 lower-case hex digits).
func validHash(h string) bool {
	if len(h) != 32 {
		return false
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// find returns subject's link of hash, of type t ("" any type). A malformed hash or type
// is not found.
func (r *Registry) find(ctx context.Context, subject privguard.SubjectID, t Type, hash string) (record, error) {
	if !validHash(hash) || (t != "" && !t.Valid()) || subject.Validate() != nil {
		return record{}, fmt.Errorf("identity: link: %w", privguard.ErrNotFound)
	}
	if t != "" {
		owner, body, err := r.store.Link(ctx, t, hash)
		if err != nil {
			return record{}, err
		}
		if owner != subject {
			return record{}, fmt.Errorf("identity: link: %w", privguard.ErrNotFound)
		}
		return decode(body)
	}
	recs, err := r.records(ctx, subject)
	if err != nil {
		return record{}, err
	}
	for _, rec := range recs {
		if rec.Hash == hash {
			return rec, nil
		}
	}
	return record{}, fmt.Errorf("identity: link: %w", privguard.ErrNotFound)
}

// MarkVerified verifies subject's link (t, hash) with evidence ("code",
// "app:<principal>"). A link already verified keeps its first evidence. Not the subject's
// link: an error wrapping privguard.ErrNotFound.
func (r *Registry) MarkVerified(ctx context.Context, subject privguard.SubjectID, t Type, hash, evidence string) (Link, error) {
	if evidence == "" {
		return Link{}, fmt.Errorf("identity: verification without evidence: %w", privguard.ErrInvalid)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, err := r.find(ctx, subject, t, hash)
	if err != nil {
		return Link{}, err
	}
	if rec.Verified {
		return rec.Link, nil
	}
	rec.verify(r.now().UTC(), evidence)
	return rec.Link, r.put(ctx, rec)
}

// Remove deletes subject's link (t, hash). Not the subject's link: an error wrapping
// privguard.ErrNotFound.
func (r *Registry) Remove(ctx context.Context, subject privguard.SubjectID, t Type, hash string) error {
	if !validHash(hash) || !t.Valid() || subject.Validate() != nil {
		return fmt.Errorf("identity: link: %w", privguard.ErrNotFound)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.store.DeleteLink(ctx, subject, t, hash)
}

// EraseSubject removes every link of subject and returns how many it removed. It is
// idempotent (the erasure of a deletion request runs it).
func (r *Registry) EraseSubject(ctx context.Context, subject privguard.SubjectID) (int, error) {
	if err := subject.Validate(); err != nil {
		return 0, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.store.DeleteSubjectLinks(ctx, subject)
}

// Send opens the link's sealed address and hands it, with m, to the Sender. A link of a
// type without a channel returns ErrNoChannel; an unverified link ErrNotVerified, unless
// m is a code that proves control of the address (KindCode or KindSignIn, with no
// Request): entering it is what verifies the link.
func (r *Registry) Send(ctx context.Context, l Link, m Message) error {
	ch := l.Type.Channel()
	if ch == "" {
		return ErrNoChannel
	}
	if r.sender == nil {
		return errors.New("identity: no sender is configured")
	}
	rec, err := r.find(ctx, l.Subject, l.Type, l.Hash)
	if err != nil {
		return err
	}
	if !rec.Verified && !((m.Kind == KindCode || m.Kind == KindSignIn) && m.Request == "") {
		return ErrNotVerified
	}
	addr, err := r.vault.Open(ctx, rec.Subject, rec.Address, addressAD(rec.Type, rec.Hash))
	if err != nil {
		return fmt.Errorf("identity: open the address: %w", err)
	}
	return r.sender.Send(ctx, ch, string(addr), m)
}

// Reachable returns the subject's verified link that messages of kind go to: for codes
// and sign-in codes a phone first, then an email (an SMS arrives at once, where the
// subject is); for download links and incident notices an email first, then a phone
// (they are long and kept). Without a verified phone or email: ErrNoAddress.
func (r *Registry) Reachable(ctx context.Context, subject privguard.SubjectID, kind string) (Link, error) {
	recs, err := r.records(ctx, subject)
	if err != nil {
		return Link{}, err
	}
	order := []Type{Phone, Email}
	if kind == KindDownload || kind == KindIncident {
		order = []Type{Email, Phone}
	}
	for _, t := range order {
		var best *record
		for i := range recs {
			rec := &recs[i]
			// The link verified first is the one used: a later one could be a mistake.
			if rec.Type == t && rec.Verified && (best == nil || rec.VerifiedAt.Before(best.VerifiedAt)) {
				best = rec
			}
		}
		if best != nil {
			return best.Link, nil
		}
	}
	return Link{}, ErrNoAddress
}

// Addresses returns the normalised addresses (E.164 phones for channel "sms", lower-case
// emails for "email") of every phone or email link of subject, verified or not, opened from
// the vault, ordered by link hash. Another channel, or a subject without such links, has
// none. A subject whose vault key was shredded has none either: the addresses are gone.
// Other errors: the store or the vault could not be read.
func (r *Registry) Addresses(ctx context.Context, subject privguard.SubjectID, channel string) ([]string, error) {
	recs, err := r.records(ctx, subject)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, rec := range recs {
		if rec.Type.Channel() != channel || channel == "" || len(rec.Address) == 0 {
			continue
		}
		addr, err := r.vault.Open(ctx, rec.Subject, rec.Address, addressAD(rec.Type, rec.Hash))
		if errors.Is(err, vault.ErrShredded) || errors.Is(err, vault.ErrNoKey) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("identity: open the address: %w", err)
		}
		out = append(out, string(addr))
	}
	return out, nil
}
