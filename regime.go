package privguard

// Regime is the data-protection law that governs a subject's data for a decision.
type Regime string

// The regimes privguard encodes.
const (
	// RegimePIPL is China's Personal Information Protection Law (个人信息保护法).
	RegimePIPL Regime = "pipl"
	// RegimeGDPR is the EU General Data Protection Regulation.
	RegimeGDPR Regime = "gdpr"
)

// Valid reports whether r is a known regime.
func (r Regime) Valid() bool { return r == RegimePIPL || r == RegimeGDPR }

// LegalBasis is the lawful ground for processing personal data for a purpose
// (PIPL Art. 13, GDPR Art. 6(1)).
type LegalBasis string

// Legal bases. PIPL Art. 13 has no legitimate-interests ground: [LegalBasis.AllowedIn]
// rejects it for [RegimePIPL].
const (
	BasisConsent            LegalBasis = "consent"             // PIPL 13(1); GDPR 6(1)(a)
	BasisContract           LegalBasis = "contract"            // PIPL 13(2); GDPR 6(1)(b)
	BasisLegalObligation    LegalBasis = "legal_obligation"    // PIPL 13(3); GDPR 6(1)(c)
	BasisVitalInterests     LegalBasis = "vital_interests"     // PIPL 13(4); GDPR 6(1)(d)
	BasisPublicTask         LegalBasis = "public_task"         // PIPL 13(5); GDPR 6(1)(e)
	BasisLegitimateInterest LegalBasis = "legitimate_interest" // GDPR 6(1)(f) only
	BasisHRManagement       LegalBasis = "hr_management"       // PIPL 13(2), second half
	BasisPublicDisclosed    LegalBasis = "publicly_disclosed"  // PIPL 13(6)
)

// AllowedIn reports whether b is a lawful basis under regime r.
func (b LegalBasis) AllowedIn(r Regime) bool {
	switch b {
	case BasisConsent, BasisContract, BasisLegalObligation, BasisVitalInterests, BasisPublicTask:
		return r.Valid()
	case BasisLegitimateInterest:
		return r == RegimeGDPR
	case BasisHRManagement, BasisPublicDisclosed:
		return r == RegimePIPL
	}
	return false
}
