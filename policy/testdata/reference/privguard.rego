# privguard default policy: purpose limitation for precision marketing under PIPL and GDPR.
#
# Input: the use of personal data being decided (see ARCHITECTURE.md, "Policy input"):
#   purpose, categories, regime, role, channel, gpc, recipient, pia_id,
#   consent {state, allowed, reason, guardian, separate, sensitive},
#   subject {restricted, objected_dm, personalisation_off, gpc_opt_out, minor, age_band, contacts}.
# Data: data.privguard.purposes (from the purpose taxonomy), data.privguard.frequency
#   (outreach limits per channel), data.privguard.sensitive (sensitive category prefixes).
# Output: data.privguard.decision = {allow, reasons, obligations}.
package privguard

purpose := data.privguard.purposes[input.purpose]

# --- legal basis (PIPL Art. 13, GDPR Art. 6; CON-01) -------------------------------------

# The bases the purpose may rest on under the subject's regime; PIPL knows no legitimate
# interests, whatever the data says.
lawful_bases contains b if {
	some b in object.get(purpose.bases, input.regime, [])
	not unlawful(b)
}

unlawful("legitimate_interest") if input.regime == "pipl"

# A basis other than consent serves the purpose: consent is not needed.
other_basis if {
	some b in lawful_bases
	b != "consent"
}

needs_consent if {
	lawful_bases.consent
	not other_basis
}

# --- reasons to deny ---------------------------------------------------------------------

deny contains "purpose.unknown" if not data.privguard.purposes[input.purpose]

deny contains "legal_basis.missing" if {
	purpose
	count(lawful_bases) == 0
}

# Consent per specific purpose, as the ledger reports it (given/renewed, unexpired, notice
# current, guardian where needed).
deny contains reason if {
	needs_consent
	not input.consent.allowed
	reason := consent_reason
}

consent_reason := input.consent.reason if {
	input.consent.reason != ""
} else := "consent.missing"

# Storage and security only (PIPL Art. 47(2), GDPR Art. 18; PUR-07, DSR-10).
deny contains "subject.restricted" if {
	input.subject.restricted
	not purpose.retained
}

# Objection to direct marketing is absolute (GDPR Art. 21(3); DSR-13), whatever the basis.
deny contains "objection.direct_marketing" if {
	purpose.direct_marketing
	input.subject.objected_dm
}

# Global Privacy Control: an opt-out of sale, sharing and targeted advertising (MKT-09).
deny contains "gpc.opt_out" if {
	purpose.sale_or_sharing
	gpc
}

gpc if input.gpc

gpc if input.subject.gpc_opt_out

# Separate consent (单独同意) for providing data to another handler, cross-border transfer,
# publication and sensitive data (PIPL Arts. 23, 25, 29, 39; CON-12).
deny contains "separate_consent.required" if {
	purpose.separate != ""
	not input.consent.separate
}

deny contains "separate_consent.required" if {
	count(sensitive_requested) > 0
	not input.consent.sensitive
}

# Impact assessments (issue 12; written plainly, as sets, for the differential test: the
# bundle's gate must decide as this does). High-impact processing needs an approved
# assessment dated on or before today, to be reviewed after today, covering the purpose,
# every category processed and the recipient; the route's (pia_id) if it names one.
triggers contains "sensitive" if count(sensitive_requested) > 0

triggers contains "sensitive" if {
	input.regime in {"pipl", "gdpr"} # what the purpose implies is stated per regime
	purpose.separate == "sensitive"
}

triggers contains "automated_decision" if {
	input.regime in {"pipl", "gdpr"}
	purpose.automated_decision
}

triggers contains "large_scale_profiling" if {
	input.regime in {"pipl", "gdpr"}
	purpose.large_scale
	purpose.personalised
}

triggers contains "provision" if {
	input.regime == "pipl"
	input.recipient != ""
}

triggers contains "provision" if {
	input.regime == "pipl"
	purpose.separate in {"provide_to_handler", "public_disclosure"}
}

triggers contains "cross_border" if {
	input.regime in {"pipl", "gdpr"}
	purpose.separate == "cross_border"
}

triggers contains "cross_border" if {
	input.recipient != ""
	country := object.get(data.privguard.recipients, [input.recipient, "country"], "")
	not country in {c | some c, _ in object.get(data.privguard.areas, input.regime, {})}
}

candidates := {id: a | some id, a in data.privguard.assessments; object.get(input, "pia_id", "") in {"", id}}

in_force := {id | some id, a in candidates; a.conclusion != "rejected"; a.date <= input.today; input.today < a.review}

lapsed := {id | some id, a in candidates; a.conclusion != "rejected"; a.review <= input.today}

for_purpose := {id | some id, a in candidates; some p in a.purposes; within(input.purpose, p)}

whole_scope := {id |
	some id in for_purpose
	a := candidates[id]
	count({c | some c in requested; needed(c); not covered_by(c, a.categories)}) == 0
	input.recipient in array.concat(a.recipients, [""])
}

covered_by(c, list) if {
	some x in list
	within(c, x)
}

usable := in_force & whole_scope

deny contains "pia.expired" if {
	count(triggers) > 0
	count(usable) == 0
	count(lapsed & whole_scope) > 0
}

deny contains "pia.not_covering" if {
	count(triggers) > 0
	count(usable) == 0
	count(lapsed & whole_scope) == 0
	count(in_force & for_purpose) + count({1 | object.get(input, "pia_id", "") != ""; count(in_force) > 0}) > 0
}

deny contains "pia.required" if {
	count(triggers) > 0
	count(usable) == 0
	count(lapsed & whole_scope) == 0
	count(in_force & for_purpose) + count({1 | object.get(input, "pia_id", "") != ""; count(in_force) > 0}) == 0
}

assessment := min(usable) if {
	count(triggers) > 0
	count(usable) > 0
} else := ""

# Children: a guardian's consent (PIPL Art. 31 under 14; GDPR Art. 8; SEN-01).
deny contains "guardian_consent.required" if {
	input.subject.minor
	not input.consent.guardian
	not purpose.retained
	not contract_only
}

contract_only if {
	other_basis
	not lawful_bases.consent
}

# Profiling-based targeting of minors (DSA Art. 28(2); SEN-05).
deny contains "minor.profiling" if {
	input.subject.minor
	purpose.personalised
	purpose.direct_marketing
}

# Personalisation off (PIPL Art. 24(2); MKT-06): purposes without a non-personalised
# alternative are denied; the others are served non-personalised.
deny contains "personalisation.off" if {
	purpose.personalised
	input.subject.personalisation_off
	not purpose.non_personalised_fallback
}

# Categories a purpose must never use (pricing never sees behaviour or profiles: PIPL
# Art. 24(1), MKT-07): the request is denied, not minimised.
deny contains "purpose.category_not_allowed" if {
	some c in requested
	some p in object.get(purpose, "prohibited", [])
	within(c, p)
}

# Outreach frequency per subject and channel.
limit := data.privguard.frequency[input.channel]

deny contains "frequency.exceeded" if {
	purpose.direct_marketing
	object.get(input.subject, "contacts", 0) >= limit.max
}

# --- obligations -------------------------------------------------------------------------

requested := {c | some c in object.get(input, "categories", [])}

# Minimum necessary (PIPL Art. 6, GDPR Art. 5(1)(c); PUR-03): a purpose sees only the
# categories it needs; the rest are dropped.
needed(c) if {
	some a in purpose.categories
	within(c, a)
}

within(c, a) if c == a

within(c, a) if startswith(c, concat("", [a, "."]))

dropped := {c | some c in requested; not needed(c)}

masked := {c | some c in requested; needed(c); some m in object.get(purpose, "mask", []); within(c, m)}

# Sensitive categories the purpose would actually process (the dropped ones it never sees).
sensitive_requested := {c | some c in requested; needed(c); some s in data.privguard.sensitive; within(c, s)}

obligations contains {"kind": "drop", "categories": sort(dropped)} if count(dropped) > 0

obligations contains {"kind": "mask", "categories": sort(masked)} if count(masked) > 0

obligations contains {"kind": "non_personalised"} if {
	purpose.personalised
	input.subject.personalisation_off
	purpose.non_personalised_fallback
}

obligations contains {"kind": "contact_budget", "remaining": limit.max - object.get(input.subject, "contacts", 0)} if {
	purpose.direct_marketing
	count(deny) == 0
}

# --- the decision ------------------------------------------------------------------------

decision := {
	"allow": count(deny) == 0,
	"reasons": reasons,
	"obligations": [o | some o in obligations],
	"assessment": assessment,
}

reasons := sort(deny) if {
	count(deny) > 0
} else := ["allow"]
