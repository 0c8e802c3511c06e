package ropa

import "slices"

// eea are the members of the European Economic Area (ISO 3166-1 alpha-2): the EU's 27 and
// Iceland, Liechtenstein and Norway.
var eea = []string{"AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IS",
	"IT", "LI", "LT", "LU", "LV", "MT", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "SK"}

// abroad reports whether a recipient in country is outside the regime's area: the
// mainland of the PRC under PIPL (Hong Kong, Macao and Taiwan, ISO HK, MO and TW, are
// outside it for the transfer rules), the EEA under GDPR.
func abroad(regime, country string) bool {
	if regime == "gdpr" {
		return !slices.Contains(eea, country)
	}
	return country != "CN"
}

// area names the regime's area.
func area(regime string) string {
	if regime == "gdpr" {
		return "the EEA"
	}
	return "the PRC"
}

// mechanisms lists the transfer mechanisms of the regime, as config.Transfer names them
// ("a, b, c or d").
func mechanisms(regime string) string {
	if regime == "gdpr" {
		return "adequacy, scc, bcr or derogation"
	}
	return "cac_assessment, standard_contract, certification or exemption"
}

// lawfulMechanism reports whether m is a transfer mechanism of the regime.
func lawfulMechanism(regime, m string) bool {
	if regime == "gdpr" {
		return slices.Contains([]string{"adequacy", "scc", "bcr", "derogation"}, m)
	}
	return slices.Contains([]string{"cac_assessment", "standard_contract", "certification", "exemption"}, m)
}
