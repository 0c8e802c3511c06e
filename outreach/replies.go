// Package outreach is the outreach gate: what may be sent to whom, and the opt-outs that
// come back.
//
// # SMS replies
//
// An SMS gateway forwards the replies subjects send to the company's numbers (mobile-
// originated messages) to POST /v1/outreach/replies/{gateway} on privguard's admin
// listener, one reply a request, with no bearer token:
//
//	POST /v1/outreach/replies/sms-cn HTTP/1.1
//	Content-Type: application/json
//	Privguard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//
//	{"from":"+8613800138000","text":"TD","received_at":"2026-12-08T09:30:00+08:00"}
//
// from is the sender's number (E.164, or a national number of the default region),
// text the reply as received (at most [MaxReplyText] bytes) and received_at when the
// gateway received it (RFC 3339). The signature is the webhook connector's
// (connector/webhook), with the gateway's own secret (outreach.gateways[].secret_file):
// a timestamp more than webhook.Tolerance from privguard's clock, or a signature and
// body seen before within that window, is refused. Any gateway's format is adapted to
// this shape by a few lines at the gateway or in front of privguard.
//
// The answer is 200 with {"result": ...}: "withdrawn" (the reply was a stop keyword:
// consent for marketing.communications.sms is withdrawn, or was already), "ambiguous"
// (it held a keyword among other words: logged, not acted on), "ignored" (no opt-out)
// or "unknown_number" (no subject is linked to the number: nothing changes, and the
// gateway need not retry). [Keywords] says how a reply is read.
//
// The number is resolved through the identity registry (package identity), verified
// link or not: the reply comes from the number the texts go to, which proves control of
// it at least as well as a one-time code, and a withdrawal only ever stops marketing.
// The withdrawal's evidence names the gateway and the reply ("sms-reply:<gateway>:
// <received_at>") and the number by its link's keyed hash ("phone:<hash>"), never the
// number or the text.
//
// # Concurrency and failure
//
// An [Inbox] is safe for concurrent use. The window of signatures seen is per process:
// behind several replicas a replayed delivery may reach another one, where it is
// recorded once anyway (each reply's withdrawal has an idempotency key of gateway,
// number and received_at). A delivery that fails (the ledger is unavailable) is
// released from the window, so that the gateway's retry of it is taken.
package outreach

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/connector/webhook"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/identity"
)

// Verdict is what an SMS reply says about marketing texts.
type Verdict int

// Verdicts of [Keywords.Parse].
const (
	// Other: the reply is no opt-out (a question, a thank-you, anything else).
	Other Verdict = iota
	// Stop: the reply is an opt-out; SMS marketing is withdrawn.
	Stop
	// Ambiguous: the reply holds a stop keyword but says more, so that it may or may not
	// be an opt-out ("TD please call me", "不要退订"). It is logged and not acted on.
	Ambiguous
)

func (v Verdict) String() string {
	switch v {
	case Stop:
		return "stop"
	case Ambiguous:
		return "ambiguous"
	default:
		return "other"
	}
}

// defaultStopWords are the stop keywords every gateway's replies are read for: TD, T and
// 退订 (the "回T退订" or "回TD退订" of PRC marketing texts, and 退訂 in traditional script), N,
// and STOP and UNSUBSCRIBE.
var defaultStopWords = [...]string{"TD", "T", "退订", "退訂", "N", "STOP", "UNSUBSCRIBE"}

// DefaultStopWords returns the built-in stop keywords (a new slice each call).
func DefaultStopWords() []string { return slices.Clone(defaultStopWords[:]) }

// filler reports whether w may stand beside a keyword without making the reply
// ambiguous ("STOP please", "TD 谢谢").
func filler(w string) bool {
	switch w {
	case "PLEASE", "PLS", "PLZ", "NOW", "ME", "THANKS", "THANK", "YOU", "THX", "OK",
		"请", "谢谢", "谢谢你", "谢谢您", "麻烦", "麻烦了", "好的":
		return true
	}
	return false
}

// negations are what, just before a Chinese keyword, turn it around ("不要退订", "别退订").
var negations = [...]string{"不", "别", "勿", "没", "未", "无需", "不用", "不必", "不想", "不要"}

// keyword is one stop keyword, normalised: its words, and whether it is one word of Han
// script (such keywords are found inside longer Chinese text, which has no spaces).
type keyword struct {
	words []string
	han   bool
	name  string // as matched: the normalised form
}

// Keywords classifies SMS replies ([Keywords.Parse]). It is safe for concurrent use.
//
// A reply is normalised first: Unicode NFKC (full-width "ＴＤ" is "TD", "Ⓣ" is "T"), upper
// case, and split into words at anything that is not a letter, a digit or an apostrophe
// inside a word (spaces, punctuation such as "【TD】" or "TD。", emoji), and where the script
// changes between Han and other letters ("TD谢谢" is "TD", "谢谢"). Then:
//
//   - A reply whose words are a keyword's words (and, around them, only fillers such as
//     "please", "谢谢": "STOP please", "T!") is [Stop].
//   - A keyword of Han script (退订) anywhere in a reply is Stop ("不要再发了 退订",
//     "回T退订"), unless a negation stands just before it ("不要退订", "别退订"): that is
//     [Ambiguous].
//   - A keyword of two or more letters among other words ("TD please call me", "don't
//     stop") is Ambiguous.
//   - A one-letter keyword (T, N) counts only as the whole reply (with fillers): "N" is
//     Stop; "T shirt size M" is [Other], as letters alone are too common to mean anything.
//   - Anything else is Other.
//
// The rules never guess an opt-out from words they do not know, and never drop a clear
// one for the words around it: a reply in doubt is Ambiguous, for a person to read the
// counts of.
type Keywords struct {
	list []keyword
	// single are the one-word keywords, which may stand beside another ("STOP STOP").
	single map[string]bool
}

// NewKeywords returns the built-in keywords ([DefaultStopWords]) and extra. An extra word
// that normalises to nothing (only punctuation or spaces) is skipped.
func NewKeywords(extra []string) *Keywords {
	k := &Keywords{single: map[string]bool{}}
	seen := map[string]bool{}
	for _, w := range append(DefaultStopWords(), extra...) {
		words := tokens(w)
		if len(words) == 0 {
			continue
		}
		name := strings.Join(words, " ")
		if seen[name] {
			continue
		}
		seen[name] = true
		k.list = append(k.list, keyword{words: words, han: len(words) == 1 && isHan(words[0]), name: name})
		if len(words) == 1 {
			k.single[words[0]] = true
		}
	}
	return k
}

// ParseReply classifies text with the built-in keywords and extra ([Keywords.Parse]).
func ParseReply(text string, extra []string) (Verdict, string) {
	return NewKeywords(extra).Parse(text)
}

// Parse classifies a reply (see [Keywords]) and returns the keyword it matched, in its
// normalised form ("TD", "退订"), or "" for Other.
func (k *Keywords) Parse(text string) (Verdict, string) {
	words := tokens(text)
	if len(words) == 0 {
		return Other, ""
	}
	// The whole reply is a keyword, with fillers around it at most.
	for _, kw := range k.list {
		if i := index(words, kw.words); i >= 0 && k.onlyFillers(words[:i]) && k.onlyFillers(words[i+len(kw.words):]) {
			return Stop, kw.name
		}
	}
	verdict, matched := Other, ""
	for _, kw := range k.list {
		switch {
		case kw.han:
			for _, w := range words {
				at := strings.Index(w, kw.words[0])
				if at < 0 {
					continue
				}
				if negated(w, kw.words[0]) {
					verdict, matched = Ambiguous, kw.name
					continue
				}
				return Stop, kw.name
			}
		case len(kw.words) > 1 || len([]rune(kw.words[0])) > 1:
			if index(words, kw.words) >= 0 && verdict == Other {
				verdict, matched = Ambiguous, kw.name
			}
		}
	}
	return verdict, matched
}

// negated reports whether every occurrence of kw in w follows a negation.
func negated(w, kw string) bool {
	for rest, before := w, ""; ; {
		at := strings.Index(rest, kw)
		if at < 0 {
			return true
		}
		before += rest[:at]
		if !slices.ContainsFunc(negations[:], func(n string) bool { return strings.HasSuffix(before, n) }) {
			return false
		}
		before += kw
		rest = rest[at+len(kw):]
	}
}

func (k *Keywords) onlyFillers(words []string) bool {
	for _, w := range words {
		if !filler(w) && !k.single[w] {
			return false
		}
	}
	return true
}

// index returns where sub starts in words as a run, or -1.
func index(words, sub []string) int {
	for i := 0; i+len(sub) <= len(words); i++ {
		if slices.Equal(words[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}

// MaxReplyText is the longest reply text read, in bytes (ten concatenated SMS segments of
// 160 characters are 1,600 bytes of GSM text, or about 670 Chinese characters).
const MaxReplyText = 2048

// tokens normalises s and splits it into words (see [Keywords]).
func tokens(s string) []string {
	if len(s) > MaxReplyText {
		s = s[:MaxReplyText]
	}
	s = strings.ToUpper(norm.NFKC.String(s))
	var out []string
	var cur strings.Builder
	curHan := false
	flush := func() {
		if cur.Len() > 0 {
			out = append(out, strings.Trim(cur.String(), "'"))
			cur.Reset()
		}
	}
	for _, r := range s {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			han := unicode.Is(unicode.Han, r)
			if cur.Len() > 0 && han != curHan {
				flush()
			}
			curHan = han
			cur.WriteRune(r)
		case (r == '\'' || r == '’') && cur.Len() > 0 && !curHan:
			cur.WriteByte('\'')
		default:
			flush()
		}
	}
	flush()
	return slices.DeleteFunc(out, func(w string) bool { return w == "" })
}

func isHan(w string) bool {
	for _, r := range w {
		if !unicode.Is(unicode.Han, r) {
			return false
		}
	}
	return w != ""
}

// SMSPurpose is the purpose an SMS stop reply withdraws.
const SMSPurpose privguard.Purpose = "marketing.communications.sms"

// Defaults of [InboxConfig].
const (
	// DefaultMaxSeen bounds the signatures remembered within webhook.Tolerance (against
	// replays): past it, deliveries are refused with [ErrBusy] until old ones expire.
	DefaultMaxSeen = 1 << 16
)

// Errors of [Inbox.Authenticate] and [Inbox.Apply].
var (
	// ErrUnknownGateway: no gateway of that name is configured.
	ErrUnknownGateway = fmt.Errorf("outreach: no such SMS gateway: %w", privguard.ErrNotFound)
	// ErrNotAuthentic: no signature, a signature that does not match, or one outside the
	// timestamp tolerance.
	ErrNotAuthentic = errors.New("outreach: reply not authentic")
	// ErrReplayed: the same signature and body were received before within the window.
	ErrReplayed = errors.New("outreach: reply already received")
	// ErrBusy: too many deliveries are remembered at once; retry shortly.
	ErrBusy = fmt.Errorf("outreach: too many replies at once: %w", privguard.ErrUnavailable)
)

// ReplyError is a reply that breaks a rule: Field names the JSON field. It wraps
// privguard.ErrInvalid.
type ReplyError struct {
	Field  string
	Detail string
}

func (e *ReplyError) Error() string { return "outreach: reply: " + e.Field + ": " + e.Detail }

// Unwrap returns privguard.ErrInvalid.
func (e *ReplyError) Unwrap() error { return privguard.ErrInvalid }

// Reply is one SMS reply, as a gateway posts it (see the package doc).
type Reply struct {
	From       string    `json:"from" validate:"required,max=64"`
	Text       string    `json:"text" validate:"max=2048"`
	ReceivedAt time.Time `json:"received_at" validate:"required"`
}

// ReplyResult is what became of a reply.
type ReplyResult string

// Results of [Inbox.Apply].
const (
	ResultWithdrawn     ReplyResult = "withdrawn"
	ResultAmbiguous     ReplyResult = "ambiguous"
	ResultIgnored       ReplyResult = "ignored"
	ResultUnknownNumber ReplyResult = "unknown_number"
)

// InboxConfig configures [NewInbox].
type InboxConfig struct {
	// Ledger records the withdrawals. Required; its taxonomy must have [SMSPurpose].
	Ledger *consent.Ledger
	// Identities resolves the numbers to subjects. Required.
	Identities *identity.Registry
	// Gateways are the secrets of the gateways, by name; each at least webhook.MinSecret
	// bytes.
	Gateways map[string][]byte
	// StopWords are keywords beside the built-in ones ([NewKeywords]).
	StopWords []string
	// Logger receives the ambiguous replies (gateway, the number's keyed hash, the
	// reply's length and the keyword: never the number or the text). If nil, nothing is
	// logged.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxSeen bounds the signatures remembered; zero means DefaultMaxSeen.
	MaxSeen int
}

// Inbox takes SMS replies in: it authenticates them and withdraws SMS marketing for the
// stop replies. It is safe for concurrent use.
type Inbox struct {
	ledger     *consent.Ledger
	identities *identity.Registry
	gateways   map[string][]byte
	keywords   *Keywords
	log        *slog.Logger
	now        func() time.Time
	maxSeen    int

	mu   sync.Mutex
	seen map[[32]byte]time.Time // delivery digest -> when it leaves the window
}

// NewInbox returns an inbox.
func NewInbox(cfg InboxConfig) (*Inbox, error) {
	if cfg.Ledger == nil || cfg.Identities == nil {
		return nil, errors.New("outreach: InboxConfig.Ledger and InboxConfig.Identities are required")
	}
	if _, ok := cfg.Ledger.Taxonomy().Lookup(SMSPurpose); !ok {
		return nil, fmt.Errorf("outreach: the taxonomy has no purpose %s, which SMS replies withdraw", SMSPurpose)
	}
	gw := make(map[string][]byte, len(cfg.Gateways))
	for name, secret := range cfg.Gateways {
		if len(secret) < webhook.MinSecret {
			return nil, fmt.Errorf("outreach: gateway %s: the secret is %d bytes; want at least %d", name, len(secret), webhook.MinSecret)
		}
		gw[name] = slices.Clone(secret)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxSeen <= 0 {
		cfg.MaxSeen = DefaultMaxSeen
	}
	return &Inbox{ledger: cfg.Ledger, identities: cfg.Identities, gateways: gw, keywords: NewKeywords(cfg.StopWords),
		log: cfg.Logger, now: cfg.Now, maxSeen: cfg.MaxSeen, seen: map[[32]byte]time.Time{}}, nil
}

// Gateway reports whether a gateway of that name is configured.
func (in *Inbox) Gateway(name string) bool {
	_, ok := in.gateways[name]
	return ok
}

// Authenticate checks a delivery's signature (the Privguard-Signature header value) over
// body with gateway's secret, and claims it against replays. The caller calls release
// with whether the delivery was applied: a delivery not applied leaves the window, so
// that its retry is taken. Errors: [ErrUnknownGateway], [ErrNotAuthentic], [ErrReplayed],
// [ErrBusy]; release is nil with an error.
func (in *Inbox) Authenticate(gateway, signature string, body []byte) (release func(applied bool), err error) {
	secret, ok := in.gateways[gateway]
	if !ok {
		return nil, ErrUnknownGateway
	}
	now := in.now()
	if webhook.Verify(secret, signature, body, now) != nil {
		return nil, ErrNotAuthentic
	}
	h := sha256.New()
	h.Write([]byte(gateway))
	h.Write([]byte{0})
	h.Write([]byte(signature))
	h.Write([]byte{0})
	h.Write(body)
	var key [32]byte
	h.Sum(key[:0])
	in.mu.Lock()
	defer in.mu.Unlock()
	if until, ok := in.seen[key]; ok && now.Before(until) {
		return nil, ErrReplayed
	}
	if len(in.seen) >= in.maxSeen {
		maps.DeleteFunc(in.seen, func(_ [32]byte, until time.Time) bool { return !now.Before(until) })
		if len(in.seen) >= in.maxSeen {
			return nil, ErrBusy
		}
	}
	// A signature is valid up to Tolerance after its timestamp, which is at most
	// Tolerance from now: two tolerances cover it.
	in.seen[key] = now.Add(2 * webhook.Tolerance)
	return func(applied bool) {
		if applied {
			return
		}
		in.mu.Lock()
		delete(in.seen, key)
		in.mu.Unlock()
	}, nil
}

// Apply acts on an authenticated reply from gateway (see the package doc). A reply whose
// from is not a phone number, or whose received_at is later than now (past
// webhook.Tolerance), is a [*ReplyError]; an error of the ledger or the registry is
// returned as it is, and nothing is recorded.
func (in *Inbox) Apply(ctx context.Context, gateway string, r Reply) (ReplyResult, error) {
	if _, err := identity.Normalise(identity.Phone, r.From); err != nil {
		return "", &ReplyError{Field: "from", Detail: "not a phone number"}
	}
	if r.ReceivedAt.IsZero() {
		return "", &ReplyError{Field: "received_at", Detail: "required (RFC 3339)"}
	}
	if r.ReceivedAt.After(in.now().Add(webhook.Tolerance)) {
		return "", &ReplyError{Field: "received_at", Detail: "in the future"}
	}
	if len(r.Text) > MaxReplyText {
		return "", &ReplyError{Field: "text", Detail: fmt.Sprintf("at most %d bytes", MaxReplyText)}
	}
	verdict, matched := in.keywords.Parse(r.Text)
	link, err := in.identities.Lookup(ctx, identity.Phone, r.From)
	switch {
	case errors.Is(err, privguard.ErrNotFound):
		return ResultUnknownNumber, nil
	case err != nil:
		return "", err
	}
	switch verdict {
	case Other:
		return ResultIgnored, nil
	case Ambiguous:
		in.log.Info("SMS reply ambiguous: not acted on", "gateway", gateway, "phone", "phone:"+link.Hash,
			"length", utf8.RuneCountInString(r.Text), "verdict", verdict.String(), "keyword", matched)
		return ResultAmbiguous, nil
	}
	st, err := in.ledger.Check(ctx, link.Subject, SMSPurpose)
	if err != nil {
		return "", err
	}
	if st.State == consent.StateWithdrawn {
		return ResultWithdrawn, nil // a repeat: the last record already withdrew it
	}
	at := r.ReceivedAt.UTC().Format(time.RFC3339Nano)
	_, _, err = in.ledger.Append(ctx, consent.Request{
		Subject: link.Subject, Purpose: SMSPurpose, Action: consent.ActionWithdraw,
		Channel: consent.ChannelSMS, Method: consent.MethodExplicit, ActorType: consent.ActorSubject,
		Actor:          "gateway:" + gateway,
		Evidence:       consent.Evidence{ProofRef: "sms-reply:" + gateway + ":" + at, Identifier: "phone:" + link.Hash},
		IdempotencyKey: "sms-reply:" + gateway + ":" + link.Hash + ":" + at,
	})
	if err != nil {
		return "", err
	}
	return ResultWithdrawn, nil
}
