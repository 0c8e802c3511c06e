package consent

import (
	"context"
	"crypto/ed25519"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"github.com/privguard/privguard"
)

// ReceiptVersion is the Kantara Consent Receipt specification version receipts follow.
const ReceiptVersion = "KI-CR-v1.1.0"

// Receipt is the Kantara Initiative Consent Receipt v1.1 view of a record, extended with the
// ISO/IEC TS 27560 fields Kantara lacks and with the record's place in the hash chain.
type Receipt struct {
	Version          string            `json:"version"`
	Jurisdiction     string            `json:"jurisdiction"`
	ConsentTimestamp int64             `json:"consentTimestamp"`
	CollectionMethod string            `json:"collectionMethod"`
	ConsentReceiptID string            `json:"consentReceiptID"`
	PublicKey        string            `json:"publicKey"`
	Language         string            `json:"language"`
	PIIPrincipalID   string            `json:"piiPrincipalId"`
	PIIControllers   []ReceiptParty    `json:"piiControllers"`
	PolicyURL        string            `json:"policyUrl"`
	Services         []ReceiptService  `json:"services"`
	Sensitive        bool              `json:"sensitive"`
	SPICat           []string          `json:"spiCat"`
	ISO27560         ReceiptExtensions `json:"iso27560"`
}

// ReceiptParty is a Kantara piiController.
type ReceiptParty struct {
	PIIController string `json:"piiController"`
	Contact       string `json:"contact"`
	Address       string `json:"address,omitempty"`
	OnBehalf      bool   `json:"onBehalf"`
	URL           string `json:"piiControllerUrl,omitempty"`
}

// ReceiptService is a Kantara service with its purposes.
type ReceiptService struct {
	Service  string           `json:"service"`
	Purposes []ReceiptPurpose `json:"purposes"`
}

// ReceiptPurpose is a Kantara purpose.
type ReceiptPurpose struct {
	Purpose              string   `json:"purpose"`
	PurposeCategory      []string `json:"purposeCategory"`
	ConsentType          string   `json:"consentType"`
	PIICategory          []string `json:"piiCategory"`
	PrimaryPurpose       bool     `json:"primaryPurpose"`
	Termination          string   `json:"termination"`
	ThirdPartyDisclosure bool     `json:"thirdPartyDisclosure"`
	ThirdPartyName       string   `json:"thirdPartyName,omitempty"`
}

// ReceiptExtensions carry the ISO/IEC TS 27560 and PIPL fields of the record.
type ReceiptExtensions struct {
	SchemaVersion    uint32     `json:"schema_version"`
	Action           Action     `json:"action"`
	State            string     `json:"state"` // DPV consent status IRI of this event
	LegalBasis       string     `json:"legal_basis,omitempty"`
	Regime           string     `json:"regime,omitempty"`
	NoticeID         string     `json:"notice_id,omitempty"`
	NoticeVersion    uint32     `json:"notice_version,omitempty"`
	NoticeSHA256     string     `json:"notice_sha256,omitempty"`
	Retention        string     `json:"retention,omitempty"`
	StorageLocations []string   `json:"storage_locations,omitempty"`
	Recipients       []string   `json:"recipients,omitempty"`
	WithdrawalMethod []string   `json:"withdrawal_method,omitempty"`
	ValidUntil       string     `json:"valid_until,omitempty"`
	Separate         bool       `json:"separate"`
	SeparateScope    string     `json:"separate_scope,omitempty"`
	Recipient        *Recipient `json:"recipient,omitempty"`
	Guardian         *Guardian  `json:"guardian,omitempty"`
	Channel          string     `json:"channel,omitempty"`
	Method           string     `json:"method,omitempty"`
	Actor            string     `json:"actor,omitempty"`
	ActorType        string     `json:"actor_type,omitempty"`
	LedgerSeq        uint64     `json:"ledger_seq"`
	RecordHash       string     `json:"record_hash"`
	PrevHash         string     `json:"prev_hash"`
}

// SignedReceipt is a receipt with its compact JWS (EdDSA over the receipt JSON), verifiable
// with the key from [Ledger.ReceiptKey].
type SignedReceipt struct {
	Receipt Receipt `json:"receipt"`
	JWS     string  `json:"jws"`
}

// ReceiptKeyID identifies the ledger's receipt-signing key in JWS headers and the JWK set.
func (l *Ledger) ReceiptKeyID() string {
	return "pg-" + hexHash([32]byte(l.ReceiptPublicKey()))[:16]
}

// ReceiptPublicKey is the public key of [Ledger.ReceiptKey].
func (l *Ledger) ReceiptPublicKey() ed25519.PublicKey { return l.signer.Public().(ed25519.PublicKey) }

// SignDocument returns a compact JWS (EdDSA, the receipt key and its kid) over payload with
// header typ, for a document other than a receipt that the ledger's key vouches for (an
// audit pack's statement): the typ says what it is, so one cannot pass for another.
func (l *Ledger) SignDocument(typ string, payload []byte) (string, error) {
	return l.signJWS(typ, payload)
}

// ReceiptKey returns the public key receipts are signed with, as a JWK set.
func (l *Ledger) ReceiptKey() jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: l.signer.Public(), KeyID: l.ReceiptKeyID(), Algorithm: string(jose.EdDSA), Use: "sig",
	}}}
}

// Receipt returns the signed consent receipt of record id (CON-14), or an error wrapping
// privguard.ErrNotFound.
func (l *Ledger) Receipt(ctx context.Context, id string) (SignedReceipt, error) {
	r, err := l.Record(ctx, id)
	if err != nil {
		return SignedReceipt{}, err
	}
	return l.sign(l.receiptOf(&r, l.receiptNotice(ctx, &r)))
}

// receiptNotice finds the notice that tells the controller and terms of r: its own, or for
// a record that cites none (a withdrawal), the one of the subject's latest grant for the
// same purpose before it.
func (l *Ledger) receiptNotice(ctx context.Context, r *Record) *Notice {
	ref := r.Notice
	if ref == nil {
		hist, err := l.History(ctx, r.Subject)
		if err == nil {
			for i := len(hist) - 1; i >= 0; i-- {
				h := &hist[i]
				if h.Seq < r.Seq && h.Action == ActionGrant && h.Notice != nil && (r.Purpose == "" || h.Purpose == r.Purpose) {
					ref = h.Notice
					break
				}
			}
		}
	}
	if ref == nil {
		return nil
	}
	if n := l.notices.version(ref.ID, ref.Version)[ref.Language]; n != nil {
		return n
	}
	return l.notices.anyOf(ref.ID, ref.Version)
}

func (l *Ledger) receiptOf(r *Record, n *Notice) Receipt {
	pub := l.signer.Public().(ed25519.PublicKey)
	rc := Receipt{
		Version:          ReceiptVersion,
		Jurisdiction:     jurisdiction(r.Regime),
		ConsentTimestamp: r.Time.Unix(),
		CollectionMethod: strings.TrimSuffix(string(r.Channel)+" / "+string(r.Method), " / "),
		ConsentReceiptID: r.ID,
		PublicKey:        hexHash([32]byte(pub)),
		PIIPrincipalID:   string(r.Subject),
		PIIControllers:   []ReceiptParty{},
		SPICat:           []string{},
		ISO27560: ReceiptExtensions{
			SchemaVersion: r.SchemaVersion, Action: r.Action, State: actionState(r.Action).IRI(),
			LegalBasis: string(r.LegalBasis), Regime: string(r.Regime), Separate: r.Separate,
			SeparateScope: string(r.SeparateScope), Recipient: r.Recipient, Guardian: r.Guardian,
			Channel: string(r.Channel), Method: string(r.Method), Actor: r.Actor, ActorType: string(r.ActorType),
			LedgerSeq: r.Seq, RecordHash: hexHash(r.Hash), PrevHash: hexHash(r.PrevHash),
		},
	}
	if !r.ExpiresAt.IsZero() {
		rc.ISO27560.ValidUntil = r.ExpiresAt.Format("2006-01-02T15:04:05Z07:00")
	}
	if r.Notice != nil {
		rc.Language = r.Notice.Language
		rc.ISO27560.NoticeID, rc.ISO27560.NoticeVersion, rc.ISO27560.NoticeSHA256 = r.Notice.ID, r.Notice.Version, hexHash(r.Notice.Hash)
	}
	termination := "until withdrawn"
	if n != nil {
		if rc.Language == "" {
			rc.Language = n.Language
		}
		rc.PIIControllers = append(rc.PIIControllers, ReceiptParty{PIIController: n.Controller.Name, Contact: n.Controller.Contact,
			Address: n.Controller.Address, URL: n.PolicyURL})
		rc.PolicyURL = n.PolicyURL
		rc.ISO27560.Retention, rc.ISO27560.StorageLocations = n.Retention, n.StorageLocations
		rc.ISO27560.Recipients, rc.ISO27560.WithdrawalMethod = n.Recipients, n.RightsChannels
		termination = n.Retention
	}
	consentType := "EXPLICIT"
	switch {
	case r.Separate:
		consentType = "SEPARATE"
	case r.Method == MethodGuardian:
		consentType = "GUARDIAN"
	case r.Method == MethodGPC:
		consentType = "GPC"
	}
	p := ReceiptPurpose{Purpose: string(r.Purpose), PurposeCategory: []string{string(r.Purpose)}, ConsentType: consentType,
		PIICategory: []string{}, Termination: termination}
	if r.Purpose == "" {
		p.Purpose, p.PurposeCategory = "subject:"+string(r.Action), []string{}
	}
	for _, c := range r.Categories {
		p.PIICategory = append(p.PIICategory, string(c))
		if c.Sensitive() {
			rc.Sensitive = true
			rc.SPICat = append(rc.SPICat, string(c))
		}
	}
	if r.Recipient != nil {
		p.ThirdPartyDisclosure, p.ThirdPartyName = true, r.Recipient.Name
	}
	service := string(r.Purpose)
	if info, ok := l.taxonomy.Lookup(r.Purpose); ok {
		service = info.Description
		p.PrimaryPurpose = strings.HasPrefix(string(r.Purpose), "essential.")
	}
	rc.Services = []ReceiptService{{Service: service, Purposes: []ReceiptPurpose{p}}}
	return rc
}

func jurisdiction(r privguard.Regime) string {
	switch r {
	case privguard.RegimePIPL:
		return "CN"
	case privguard.RegimeGDPR:
		return "EU"
	}
	return ""
}

// actionState is the DPV state a record of action a puts its purpose in.
func actionState(a Action) State {
	switch a {
	case ActionGrant:
		return StateGiven
	case ActionRefuse:
		return StateRefused
	case ActionWithdraw, ActionObject, ActionGPCOptOut, ActionPersonalisationOff, ActionErase:
		return StateWithdrawn
	case ActionExpire:
		return StateExpired
	}
	return StateUnknown
}
