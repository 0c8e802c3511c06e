# privguard default policy: purpose limitation for precision marketing under PIPL and GDPR.
#
# Input: the use of personal data being decided (see ARCHITECTURE.md, "Policy input"):
#   purpose, categories, regime, role, channel, gpc, recipient, pia_id, today (2026-03-01),
#   consent {state, allowed, reason, guardian, separate, sensitive},
#   subject {restricted, objected_dm, personalisation_off, gpc_opt_out, minor, age_band, contacts}.
# Data: data.privguard.purposes (from the purpose taxonomy), data.privguard.frequency
#   (outreach limits per channel), data.privguard.sensitive (sensitive category prefixes),
#   data.privguard.assessments (impact assessments by id: purposes, categories, recipients,
#   date, review, conclusion), data.privguard.recipients (by name: country, role),
#   data.privguard.areas (per regime, the countries inside it).
# Output: data.privguard.decision = {allow, reasons, obligations, assessment}.
#
# Written for the evaluator: every decision evaluates this module, so rules start with a
# comparison of an input field with a constant where they can (OPA's rule index then skips
# them without evaluating them), data is looked up by key rather than scanned, and sets are
# built only where the output needs them. subject.contacts is used only against the
# channel's limit (denied at the limit, the remaining budget below it): the engine's
# decision memo relies on that (policy.Config.MemoExactContacts otherwise).
package privguard

purpose := data.privguard.purposes[input.purpose]

# --- legal basis (PIPL Art. 13, GDPR Art. 6; CON-01) -------------------------------------

# The bases the purpose may rest on under the subject's regime.
bases := object.get(purpose.bases, input.regime, [])

consent_basis if "consent" in bases

# A basis other than consent serves the purpose: consent is not needed. PIPL knows no
# legitimate interests, whatever the data says.
other_basis if {
	some b in bases
	b != "consent"
	b != "legitimate_interest"
}

other_basis if {
	input.regime != "pipl"
	"legitimate_interest" in bases
}

# --- reasons to deny ---------------------------------------------------------------------

deny contains "purpose.unknown" if not purpose

deny contains "legal_basis.missing" if {
	purpose
	not consent_basis
	not other_basis
}

# Consent per specific purpose, as the ledger reports it (given/renewed, unexpired, notice
# current, guardian where needed).
deny contains reason if {
	not input.consent.allowed
	consent_basis
	not other_basis
	reason := consent_reason
}

consent_reason := input.consent.reason if {
	input.consent.reason != ""
} else := "consent.missing"

# Storage and security only (PIPL Art. 47(2), GDPR Art. 18; PUR-07, DSR-10).
deny contains "subject.restricted" if {
	input.subject.restricted == true
	not purpose.retained
}

# Objection to direct marketing is absolute (GDPR Art. 21(3); DSR-13), whatever the basis.
deny contains "objection.direct_marketing" if {
	input.subject.objected_dm == true
	purpose.direct_marketing
}

# Global Privacy Control: an opt-out of sale, sharing and targeted advertising (MKT-09).
deny contains "gpc.opt_out" if {
	input.gpc == true
	purpose.sale_or_sharing
}

deny contains "gpc.opt_out" if {
	input.subject.gpc_opt_out == true
	purpose.sale_or_sharing
}

# Separate consent (单独同意) for providing data to another handler, cross-border transfer,
# publication and sensitive data (PIPL Arts. 23, 25, 29, 39; CON-12).
deny contains "separate_consent.required" if {
	purpose.separate != ""
	not input.consent.separate
}

deny contains "separate_consent.required" if {
	sensitive_requested
	not input.consent.sensitive
}

# High-impact processing needs a current impact assessment covering it (PIPL Arts. 55-56,
# GDPR Art. 35; AUD-04, and SEN-03/SEN-04 for sensitive data): see "impact assessments".
deny contains pia_reason if {
	high_impact
	count(covering) == 0
}

# Children: a guardian's consent (PIPL Art. 31 under 14; GDPR Art. 8; SEN-01).
deny contains "guardian_consent.required" if {
	input.subject.minor == true
	not input.consent.guardian
	not purpose.retained
	not contract_only
}

contract_only if {
	other_basis
	not consent_basis
}

# Profiling-based targeting of minors (DSA Art. 28(2); SEN-05).
deny contains "minor.profiling" if {
	input.subject.minor == true
	purpose.personalised
	purpose.direct_marketing
}

# Personalisation off (PIPL Art. 24(2); MKT-06): purposes without a non-personalised
# alternative are denied; the others are served non-personalised.
deny contains "personalisation.off" if {
	input.subject.personalisation_off == true
	purpose.personalised
	not purpose.non_personalised_fallback
}

# Categories a purpose must never use (pricing never sees behaviour or profiles: PIPL
# Art. 24(1), MKT-07): the request is denied, not minimised.
deny contains "purpose.category_not_allowed" if {
	some p in purpose.prohibited
	some c in input.categories
	within_one(c, p)
}

# Outreach frequency per subject and channel.
deny contains "frequency.exceeded" if {
	purpose.direct_marketing
	object.get(input.subject, "contacts", 0) >= data.privguard.frequency[input.channel].max
}

# --- impact assessments (PIPL Arts. 55-56, GDPR Art. 35; AUD-04) ------------------------

# Processing that needs an assessment: sensitive data, automated decisions, large-scale
# profiling, cross-border transfers under either regime, and under PIPL also providing data
# to a recipient (another handler or a processor: entrusting) or publishing it. What the
# purpose alone implies is data.privguard.purposes[p].assessment_needed[regime], which the
# engine derives from the purpose's flags (automated_decision; large_scale with personalised;
# separate consent for sensitive data or a transfer abroad; under PIPL also for providing or
# publishing): one lookup, as every decision meets this rule.
high_impact if purpose.assessment_needed[input.regime] == true

high_impact if sensitive_requested

high_impact if {
	input.recipient != ""
	recipient_gated
}

# Under PIPL providing data to any recipient is assessed; under GDPR a recipient abroad is.
recipient_gated if input.regime == "pipl"

# A recipient is abroad unless its declared country is in the regime's area (the PRC under
# PIPL, the EEA under GDPR): a recipient without a declared country counts as abroad.
recipient_gated if not recipient_inside

# (A rule of its own: under "not", OPA would evaluate the nested reference outside the
# negation, and an undeclared recipient would then count as inside.)
recipient_inside if data.privguard.areas[input.regime][data.privguard.recipients[input.recipient].country]

# The assessments a decision may rest on: the one the route names (input.pia_id), else all.
pool[id] := a if {
	object.get(input, "pia_id", "") == ""
	some id, a in data.privguard.assessments
}

pool[id] := a if {
	id := input.pia_id
	a := data.privguard.assessments[id]
}

approved(a) if a.conclusion in {"approved", "approved_with_measures"}

# Current: concluded on or before today, to be reviewed after today (dates as 2026-03-01
# compare as strings), and not rejected.
current(a) if {
	approved(a)
	a.date <= input.today
	input.today < a.review
}

# An assessment covers the processing if its purposes include the purpose (or one above it),
# its categories every category the purpose would process (the dropped ones it never sees),
# and its recipients the recipient.
covers(a) if {
	covers_purpose(a)
	every c in input.categories {
		category_covered(a, c)
	}
	recipient_covered(a)
}

covers_purpose(a) if {
	some p in a.purposes
	within_one(input.purpose, p)
}

category_covered(_, c) if not needed(c)

category_covered(a, c) if within(c, a.categories)

recipient_covered(_) if input.recipient == ""

recipient_covered(a) if input.recipient in a.recipients

covering contains id if {
	high_impact
	some id, a in pool
	current(a)
	covers(a)
}

# Why none covers: one did until its review date; a current one (the route's, or one for the
# purpose) leaves out a category or the recipient; or there is none.
pia_reason := "pia.expired" if {
	some a in pool
	approved(a)
	a.review <= input.today
	covers(a)
} else := "pia.not_covering" if {
	some a in pool
	current(a)
	about_the_purpose(a)
} else := "pia.required"

about_the_purpose(a) if covers_purpose(a)

about_the_purpose(_) if object.get(input, "pia_id", "") != ""

# The assessment the decision rests on, for the decision log ("" when none is needed).
default assessment := ""

assessment := min(covering) if count(covering) > 0

# --- obligations -------------------------------------------------------------------------

# within(c, list): c is one of the categories of list or below one of them ("a.b.c" is
# within "a.b"). The candidates are c and its ancestors, looked up in list.
within(c, list) if c in list

within(c, list) if {
	some i in indexof_n(c, ".")
	substring(c, 0, i) in list
}

# within_one(c, a): within(c, [a]).
within_one(c, a) if c == a

within_one(c, a) if startswith(c, concat("", [a, "."]))

# Minimum necessary (PIPL Art. 6, GDPR Art. 5(1)(c); PUR-03): a purpose sees only the
# categories it needs; the rest are dropped.
needed(c) if within(c, purpose.categories)

dropped := {c | some c in input.categories; not needed(c)}

masked := {c | some m in purpose.mask; some c in input.categories; within_one(c, m); needed(c)}

# Sensitive categories the purpose would actually process (the dropped ones it never sees).
sensitive_requested if {
	some c in input.categories
	strings.any_prefix_match(c, data.privguard.sensitive) # a quick no for most
	within(c, data.privguard.sensitive)
	needed(c)
}

obligations contains {"kind": "drop", "categories": sort(dropped)} if count(dropped) > 0

obligations contains {"kind": "mask", "categories": sort(masked)} if {
	purpose.mask
	count(masked) > 0
}

obligations contains {"kind": "non_personalised"} if {
	input.subject.personalisation_off == true
	purpose.personalised
	purpose.non_personalised_fallback
}

obligations contains {"kind": "contact_budget", "remaining": data.privguard.frequency[input.channel].max - object.get(input.subject, "contacts", 0)} if {
	purpose.direct_marketing
	allow
}

# --- the decision ------------------------------------------------------------------------

allow := count(deny) == 0

# The assessment is named only where one was needed, so that ordinary decisions do not
# evaluate its rules.
decision := {
	"allow": allow,
	"reasons": reasons,
	"obligations": [o | some o in obligations],
	"assessment": assessment,
} if {
	high_impact
} else := {
	"allow": allow,
	"reasons": reasons,
	"obligations": [o | some o in obligations],
}

reasons := ["allow"] if {
	allow
} else := sort(deny)
