package outreach

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
)

// ServicePurpose is the purpose a service template is sent for: it rests on the contract,
// so it needs no marketing consent; only a restriction of processing (GDPR Art. 18, PIPL
// Art. 44) holds it back.
const ServicePurpose privguard.Purpose = "essential.service"

// SoftOptInPurpose is the purpose whose grant records an existing customer's soft opt-in
// (ePrivacy Art. 13(2), PECR reg. 22(3); MKT-02): at a sale the notice offered the opt-out
// from email about the controller's similar products and it was not taken. The operator
// configures it with legal_bases {gdpr: [legitimate_interest]} only (no PIPL basis: a PRC
// subject always needs consent); the ledger then records its grant under GDPR, with that
// basis. It is not in the default taxonomy.
const SoftOptInPurpose privguard.Purpose = "marketing.soft_opt_in.email"

// UnsubscribePath is the path of the public one-click unsubscribe route; a token follows it.
const UnsubscribePath = "/v1/outreach/unsubscribe/"

// ListUnsubscribePost is the List-Unsubscribe-Post header value of RFC 8058.
const ListUnsubscribePost = "List-Unsubscribe=One-Click"

// Reason codes of the gate's own, beside the ledger's (consent.withdrawn,
// objection.direct_marketing, restricted, ...).
const (
	// ReasonSubjectInvalid is a recipient that is no subject ID (empty, or too long for a
	// link).
	ReasonSubjectInvalid = "subject.invalid"
	// ReasonQuarantineNoProof is a recipient whose marketing consent comes from a bought or
	// partner list without its provenance (MKT-11): the deciding grant was imported or
	// collected by a third party without a source (evidence.collected_by), a proof of
	// consent scope (evidence.proof_ref) or, from a third party, the contract
	// (evidence.contract_ref). The recipient is quarantined until a grant with the proof
	// is recorded.
	ReasonQuarantineNoProof = "quarantine.no_proof"
	// ReasonSoftOptInPIPL is a recipient a soft opt-in send may not reach because the
	// ledger knows them under PIPL (for email marketing or the soft opt-in): a PRC subject
	// always needs consent (MKT-02). It follows the ledger's consent reason.
	ReasonSoftOptInPIPL = "soft_opt_in.pipl"
)

// Gate decides who a message may be sent to now. Its zero value is not usable: Ledger,
// PublicURL and Key are required for marketing sends.
type Gate struct {
	// Ledger is the consent ledger the recipients are filtered against. Required.
	Ledger *consent.Ledger
	// Markers are promotional markers beside the built-in ones (config outreach.promo_markers).
	Markers []string
	// PublicURL is the base URL of the public unsubscribe route ("https://privacy.example.com").
	PublicURL string
	// Key seals the unsubscribe tokens (32 bytes, the same on every replica; derived from
	// the vault's blind-index key by the command).
	Key []byte
	// TokenLifetime is how long a link works; zero means DefaultTokenLifetime.
	TokenLifetime time.Duration
	// Regime is recorded on the withdrawals the links make; empty records none.
	Regime privguard.Regime
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Request is one message to many recipients.
type Request struct {
	// Channel is sms, email, push or wechat.
	Channel    string                `json:"channel"`
	Template   Template              `json:"template"`
	Recipients []privguard.SubjectID `json:"recipients"`
	// SoftOptIn also allows, for a marketing email, an existing customer without email
	// consent (none recorded, or expired) who holds a GDPR grant of SoftOptInPurpose and has
	// neither objected nor withdrawn (MKT-02). Any other channel or kind is refused
	// (RuleSoftOptInChannel).
	SoftOptIn bool `json:"soft_opt_in,omitempty"`
}

// Result splits the recipients, each in the order given.
type Result struct {
	Allowed []Allowed `json:"allowed"`
	Denied  []Denied  `json:"denied"`
}

// Allowed is a recipient the message may go to, with its unsubscribe link (marketing
// templates only: a service message has nothing to unsubscribe from).
type Allowed struct {
	Subject privguard.SubjectID `json:"subject"`
	// Unsubscribe is nil for a service template. The links of one check share memory:
	// do not modify them.
	Unsubscribe *Unsubscribe `json:"unsubscribe,omitempty"`
}

// Unsubscribe is a recipient's one-click unsubscribe link for one message: the URL to put
// in the text (for UnsubscribePlaceholder) and the two header values of RFC 8058 for an
// email.
type Unsubscribe struct {
	URL                 string `json:"url"`
	ListUnsubscribe     string `json:"list_unsubscribe"`
	ListUnsubscribePost string `json:"list_unsubscribe_post"`
}

// Denied is a recipient the message may not go to and the ledger's reasons. Reasons
// slices are shared between recipients with the same reasons: do not modify them.
type Denied struct {
	Subject privguard.SubjectID `json:"subject"`
	Reasons []string            `json:"reasons"`
}

func (g *Gate) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

func (g *Gate) lifetime() time.Duration {
	if g.TokenLifetime > 0 {
		return g.TokenLifetime
	}
	return DefaultTokenLifetime
}

// Fact bits of one recipient, written by the FactsBatch callback.
const (
	factAllowed uint8 = 1 << iota
	factObjected
	factRestricted
	factInvalid
	factQuarantined
	factSoftOptInPIPL
)

// Soft opt-in states of one recipient (Request.SoftOptIn).
const (
	softNone     uint8 = iota
	softEligible       // no email consent (missing or expired), not under PIPL
	softPIPL           // known under PIPL
	softAllowed        // eligible, and a GDPR soft opt-in grant counts
)

// Check checks req.Template (CheckTemplate with g.Markers) and then every recipient at one
// instant: for a marketing template, consent to the channel's purpose
// (marketing.communications.<channel>; MKT-01), no objection to direct marketing and no
// restriction (MKT-04: the ledger applies an unsubscribe at once), and a deciding grant with
// its provenance (MKT-11: ReasonQuarantineNoProof otherwise); for a service template
// (ServicePurpose), no restriction. Each allowed recipient of a marketing template gets a
// sealed unsubscribe link.
//
// It returns a *RuleError if the template fails its checks, an error wrapping
// privguard.ErrInvalid if the gate lacks what a marketing send needs (PublicURL, Key), and
// the ledger's error (consent.ErrStale) if it cannot decide: then nobody is allowed.
func (g *Gate) Check(ctx context.Context, req Request) (Result, error) {
	if err := CheckTemplate(req.Channel, req.Template, g.Markers); err != nil {
		return Result{}, err
	}
	if g.Ledger == nil {
		return Result{}, errors.New("outreach: Gate.Ledger is nil")
	}
	marketing := req.Template.Kind == KindMarketing
	if req.SoftOptIn && (!marketing || req.Channel != ChannelEmail) {
		return Result{}, &RuleError{Rule: RuleSoftOptInChannel, Detail: "soft opt-in covers marketing email only (never SMS, push or WeChat)"}
	}
	var soft []uint8
	if req.SoftOptIn {
		soft = make([]uint8, len(req.Recipients))
	}
	purpose := ServicePurpose
	var s *sealer
	if marketing {
		purpose = privguard.Purpose("marketing.communications." + req.Channel)
		if g.PublicURL == "" {
			return Result{}, fmt.Errorf("outreach: no public URL for unsubscribe links: %w", privguard.ErrInvalid)
		}
		var err error
		if s, err = newSealer(g.Key); err != nil {
			return Result{}, err
		}
		if len(req.Template.ID) > maxTokenField {
			return Result{}, &RuleError{Rule: RuleIDTooLong, Detail: "a template ID has at most 255 bytes"}
		}
	}
	facts := make([]uint8, len(req.Recipients))
	// A reason is a byte a recipient (a number in codes), not a string: a million strings
	// would be 16 MB more for the garbage collector to follow.
	reasons := make([]uint8, len(req.Recipients))
	var codes reasonCodes
	err := g.Ledger.FactsBatch(ctx, privguard.Input{Purpose: purpose, Channel: req.Channel}, req.Recipients,
		func(i int, c privguard.ConsentFacts, f privguard.SubjectFacts) {
			var b uint8
			if sub := req.Recipients[i]; sub == "" || len(sub) > maxTokenField {
				b |= factInvalid
			}
			if f.Restricted {
				b |= factRestricted
			}
			if marketing {
				if f.ObjectedToDM {
					b |= factObjected
				}
				switch {
				case c.Allowed && c.Quarantined:
					b |= factQuarantined
				case c.Allowed:
					b |= factAllowed
				default:
					reasons[i] = codes.code(i, c.Reason)
					switch {
					case soft == nil:
					case c.Regime == privguard.RegimePIPL:
						soft[i] = softPIPL
					case c.Reason == privguard.ReasonConsentMissing || c.Reason == privguard.ReasonConsentExpired:
						soft[i] = softEligible
					}
				}
			} else {
				b |= factAllowed
			}
			facts[i] = b
		})
	if err != nil {
		return Result{}, err
	}
	if soft != nil {
		if err := g.softOptIn(ctx, req.Recipients, soft, facts, reasons); err != nil {
			return Result{}, err
		}
	}
	n := 0
	for _, b := range facts {
		if b == factAllowed {
			n++
		}
	}
	res := Result{Allowed: make([]Allowed, 0, n), Denied: make([]Denied, 0, len(facts)-n)}
	// The combinations of reasons are few: a short list, the last one found tried first.
	var shared []deniedReasons
	last := -1
	for i, b := range facts {
		sub := req.Recipients[i]
		if b == factAllowed {
			res.Allowed = append(res.Allowed, Allowed{Subject: sub})
			continue
		}
		k := deniedKey{b, codes.reason(i, reasons[i])}
		if last < 0 || shared[last].key != k {
			last = slices.IndexFunc(shared, func(d deniedReasons) bool { return d.key == k })
			if last < 0 {
				shared = append(shared, deniedReasons{k, k.reasons()})
				last = len(shared) - 1
			}
		}
		res.Denied = append(res.Denied, Denied{Subject: sub, Reasons: shared[last].reasons})
	}
	if marketing {
		g.links(s, req, res.Allowed)
	}
	return res, nil
}

// softOptIn reads the soft opt-in grants of the recipients soft marks eligible and allows
// those whose grant counts under GDPR with no objection or restriction after it; it marks
// a recipient known under PIPL (ReasonSoftOptInPIPL).
func (g *Gate) softOptIn(ctx context.Context, recipients []privguard.SubjectID, soft, facts, reasons []uint8) error {
	if !slices.ContainsFunc(soft, func(s uint8) bool { return s != softNone }) {
		return nil
	}
	err := g.Ledger.FactsBatch(ctx, privguard.Input{Purpose: SoftOptInPurpose, Channel: ChannelEmail, Regime: privguard.RegimeGDPR}, recipients,
		func(i int, c privguard.ConsentFacts, f privguard.SubjectFacts) {
			switch {
			case soft[i] != softEligible:
			case c.Regime == privguard.RegimePIPL:
				soft[i] = softPIPL
			case c.Allowed && !c.Quarantined && c.Regime == privguard.RegimeGDPR && !f.ObjectedToDM && !f.Restricted:
				soft[i] = softAllowed
			}
		})
	if err != nil {
		return err
	}
	for i, s := range soft {
		switch {
		case s == softAllowed && facts[i] == 0:
			// Denied for its consent alone: the soft opt-in stands in for it.
			facts[i], reasons[i] = factAllowed, 0
		case s == softPIPL:
			facts[i] |= factSoftOptInPIPL
		}
	}
	return nil
}

// reasonCodes numbers the ledger's reason codes of one check, which are few, from 1; it
// is safe for concurrent use (FactsBatch calls back from several goroutines). Past 254
// codes, a recipient's reason is kept by its position instead.
type reasonCodes struct {
	n     atomic.Int32
	codes [254]privguard.Reason
	mu    sync.Mutex
	other map[int]privguard.Reason
}

// code returns the number of recipient i's reason r (0 for none).
func (c *reasonCodes) code(i int, r privguard.Reason) uint8 {
	if r == "" {
		return 0
	}
	// Codes below n are written once, before n is stored, so they are read without the lock.
	for j := range c.n.Load() {
		if c.codes[j] == r {
			return uint8(j + 1)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n.Load()
	for j := range n {
		if c.codes[j] == r {
			return uint8(j + 1)
		}
	}
	if int(n) < len(c.codes) {
		c.codes[n] = r
		c.n.Store(n + 1)
		return uint8(n + 1)
	}
	if c.other == nil {
		c.other = make(map[int]privguard.Reason)
	}
	c.other[i] = r
	return math.MaxUint8
}

// reason returns recipient i's reason from its code (after FactsBatch has returned).
func (c *reasonCodes) reason(i int, code uint8) privguard.Reason {
	switch code {
	case 0:
		return ""
	case math.MaxUint8:
		return c.other[i]
	}
	return c.codes[code-1]
}

// deniedReasons are the reasons of a combination.
type deniedReasons struct {
	key     deniedKey
	reasons []string
}

// deniedKey is a combination of reasons.
type deniedKey struct {
	facts  uint8
	reason privguard.Reason
}

func (k deniedKey) reasons() []string {
	var out []string
	if k.facts&factInvalid != 0 {
		out = append(out, ReasonSubjectInvalid)
	}
	if k.facts&factQuarantined != 0 {
		out = append(out, ReasonQuarantineNoProof)
	}
	if k.reason != "" {
		out = append(out, string(k.reason))
	}
	if k.facts&factSoftOptInPIPL != 0 {
		out = append(out, ReasonSoftOptInPIPL)
	}
	if k.facts&factObjected != 0 {
		out = append(out, string(privguard.ReasonObjectionDirectMarketing))
	}
	if k.facts&factRestricted != 0 {
		out = append(out, string(privguard.ReasonRestricted))
	}
	return out
}

// links seals a token for each allowed recipient, in parallel, into one string per worker
// that every link of the worker slices (ListUnsubscribe is "<URL>", URL the inside), so
// a million links cost a few allocations.
func (g *Gate) links(s *sealer, req Request, allowed []Allowed) {
	if len(allowed) == 0 {
		return
	}
	prefix := "<" + strings.TrimRight(g.PublicURL, "/") + UnsubscribePath
	issued := g.now()
	workers := min(runtime.GOMAXPROCS(0), (len(allowed)+4095)/4096)
	chunk := (len(allowed) + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := 0; lo < len(allowed); lo += chunk {
		part := allowed[lo:min(lo+chunk, len(allowed))]
		wg.Go(func() {
			size := 0
			for _, a := range part {
				size += len(prefix) + tokenLen(len(a.Subject), len(req.Template.ID)) + 1
			}
			// Every link is appended to one buffer, which is never written again once it
			// is a string (as strings.Builder does): one allocation and one copy a link.
			all := make([]byte, 0, size)
			seal := s.batch()
			for _, a := range part {
				all = append(all, prefix...)
				all = seal.appendToken(all, Token{Subject: a.Subject, Channel: req.Channel, Template: req.Template.ID, Issued: issued})
				all = append(all, '>')
			}
			// A link's length follows from its subject's, so the links are found again
			// without a list of where each ends.
			text, start := unsafe.String(unsafe.SliceData(all), len(all)), 0
			links := make([]Unsubscribe, len(part))
			for i, a := range part {
				end := start + len(prefix) + tokenLen(len(a.Subject), len(req.Template.ID)) + 1
				whole := text[start:end]
				links[i] = Unsubscribe{URL: whole[1 : len(whole)-1], ListUnsubscribe: whole, ListUnsubscribePost: ListUnsubscribePost}
				part[i].Unsubscribe = &links[i]
				start = end
			}
		})
	}
	wg.Wait()
}
