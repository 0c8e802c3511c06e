package privguard

import "slices"

// Area returns the countries inside the regime's area (ISO 3166-1 alpha-2): data provided
// to a recipient elsewhere is a transfer abroad. PIPL: the mainland of the PRC (Hong Kong,
// Macao and Taiwan are outside it for data export, as the CAC's rules treat them). GDPR:
// the EEA (the EU's 27, Iceland, Liechtenstein and Norway); an adequacy decision makes a
// transfer lawful, it does not make it domestic.
func Area(r Regime) []string {
	switch r {
	case RegimePIPL:
		return []string{"CN"}
	case RegimeGDPR:
		return []string{"AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE",
			"IS", "IT", "LI", "LT", "LU", "LV", "MT", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "SK"}
	}
	return nil
}

// Abroad reports whether a recipient in country is outside the regime's area. An unknown
// country ("") is abroad: a destination nobody declared cannot be shown to be at home.
func Abroad(r Regime, country string) bool { return !slices.Contains(Area(r), country) }
