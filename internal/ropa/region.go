package ropa

import (
	"slices"

	"github.com/privguard/privguard"
)

// abroad reports whether a recipient in country is outside the regime's area
// (privguard.Abroad; an undeclared country is abroad).
func abroad(regime, country string) bool { return privguard.Abroad(privguard.Regime(regime), country) }

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
