# Unit tests of the default policy: one or more per rule. Run with `privguard policy test
# policy/bundle` or `opa test policy/bundle` (they also run from `go test ./policy`).
package privguard_test

import data.privguard

# A consenting adult, PIPL, SMS marketing, nothing special.
base := {
	"purpose": "marketing.communications.sms",
	"categories": ["user.contact.phone_number", "user.name.nickname"],
	"regime": "pipl",
	"role": "campaign",
	"channel": "sms",
	"gpc": false,
	"recipient": "",
	"pia_id": "",
	"today": "2026-06-15",
	"consent": {"state": "given", "allowed": true, "reason": "consent.given", "guardian": false, "separate": false, "sensitive": false},
	"subject": {"restricted": false, "objected_dm": false, "personalisation_off": false, "gpc_opt_out": false, "minor": false, "age_band": "18+", "contacts": 0},
}

with_consent(c) := object.union(base, {"consent": object.union(base.consent, c)})

with_subject(s) := object.union(base, {"subject": object.union(base.subject, s)})

decision(inp) := d if {
	d := privguard.decision with input as inp
}

denies(inp, reason) if reason in decision(inp).reasons

test_consenting_adult_allowed if {
	d := decision(base)
	d.allow
	d.reasons == ["allow"]
}

# proves PUR-01: an unknown purpose is denied.
test_unknown_purpose_denied if {
	denies(object.union(base, {"purpose": "marketing.carrier_pigeon"}), "purpose.unknown")
	not decision(object.union(base, {"purpose": "marketing.carrier_pigeon"})).allow
}

# proves CON-01: no legitimate interests under PIPL, even when the data offers it.
test_no_legitimate_interest_under_pipl if {
	li := {"analytics.reporting": object.union(data.privguard.purposes["analytics.reporting"], {"bases": {"pipl": ["legitimate_interest"], "gdpr": ["legitimate_interest"]}})}
	purposes := object.union(data.privguard.purposes, li)
	inp := object.union(with_consent({"allowed": false, "reason": "consent.missing"}), {"purpose": "analytics.reporting", "categories": []})
	d := privguard.decision with input as inp with data.privguard.purposes as purposes
	not d.allow
	"legal_basis.missing" in d.reasons
	gdpr := privguard.decision with input as object.union(inp, {"regime": "gdpr"}) with data.privguard.purposes as purposes
	gdpr.allow
}

test_withdrawn_consent_denied if {
	denies(with_consent({"state": "withdrawn", "allowed": false, "reason": "consent.withdrawn"}), "consent.withdrawn")
}

# proves CON-11: expired consent counts as absent.
test_expired_consent_denied if {
	denies(with_consent({"state": "expired", "allowed": false, "reason": "consent.expired"}), "consent.expired")
}

# proves CON-06: a grant invalidated by a material notice change is denied.
test_invalidated_consent_denied if {
	denies(with_consent({"state": "invalidated", "allowed": false, "reason": "consent.invalidated"}), "consent.invalidated")
}

test_missing_reason_defaults if {
	denies(with_consent({"state": "unknown", "allowed": false, "reason": ""}), "consent.missing")
}

# A contract basis serves the purpose without consent.
test_contract_basis_needs_no_consent if {
	inp := object.union(with_consent({"allowed": false, "reason": "consent.missing"}), {"purpose": "essential.service", "categories": ["user.account"]})
	decision(inp).allow
}

# proves PUR-07 and DSR-10: restricted means storage and security only.
test_restricted_denies_all_but_storage if {
	denies(with_subject({"restricted": true}), "subject.restricted")
	storage := object.union(with_subject({"restricted": true}), {"purpose": "essential.storage", "categories": []})
	decision(storage).allow
}

# proves DSR-13: objection to direct marketing is absolute, whatever the basis.
test_objection_is_absolute if {
	denies(with_subject({"objected_dm": true}), "objection.direct_marketing")
	li := {"marketing.communications.email": object.union(data.privguard.purposes["marketing.communications.email"], {"bases": {"gdpr": ["legitimate_interest"]}})}
	inp := object.union(with_subject({"objected_dm": true}), {"regime": "gdpr", "purpose": "marketing.communications.email", "channel": "email", "categories": []})
	d := privguard.decision with input as inp with data.privguard.purposes as object.union(data.privguard.purposes, li)
	"objection.direct_marketing" in d.reasons
	not d.allow
}

# proves MKT-09: Sec-GPC: 1 opts out of sale/sharing and targeted advertising.
test_gpc_header_opts_out_of_targeted_ads if {
	ads := object.union(base, {"purpose": "marketing.advertising.first_party", "categories": ["user.behavior"], "channel": ""})
	decision(ads).allow
	denies(object.union(ads, {"gpc": true}), "gpc.opt_out")
	denies(object.union(ads, {"subject": object.union(base.subject, {"gpc_opt_out": true})}), "gpc.opt_out")
	decision(object.union(base, {"gpc": true})).allow # SMS is not sale or sharing
}

# proves CON-12: sharing needs separate consent.
test_sharing_needs_separate_consent if {
	share := object.union(base, {"purpose": "third_party.sharing", "recipient": "Acme", "categories": [], "channel": ""})
	denies(share, "separate_consent.required")
	d := privguard.decision with input as object.union(share, {"consent": object.union(base.consent, {"separate": true})})
		with data.privguard.assessments as assessments
		with data.privguard.recipients as recipients
	d.allow
}

# proves SEN-03 and SEN-04: sensitive categories need separate consent and an impact assessment.
test_sensitive_needs_separate_consent_and_pia if {
	inp := object.union(base, {"purpose": "marketing.profiling", "categories": ["user.derived.inferred_health"], "channel": ""})
	denies(inp, "separate_consent.required")
	denies(inp, "pia.required")
	ok := object.union(inp, {"pia_id": "pia-2026-07", "consent": object.union(base.consent, {"sensitive": true})})
	d := privguard.decision with input as ok with data.privguard.assessments as assessments
	not "separate_consent.required" in d.reasons
	not "pia.required" in d.reasons
	d.allow
	d.assessment == "pia-2026-07"
}

# --- impact assessments (AUD-04) ---------------------------------------------------------

assessments := {
	"pia-2026-07": {
		"purposes": ["marketing.profiling", "third_party.sharing", "cross_border.transfer"],
		"categories": ["user.derived", "user.behavior", "user.contact"], "recipients": ["Acme", "Overseas"],
		"date": "2026-01-01", "review": "2027-01-01", "conclusion": "approved",
	},
	"pia-rejected": {
		"purposes": ["marketing", "third_party", "cross_border"], "categories": ["user"], "recipients": ["Acme", "Overseas", "Other"],
		"date": "2026-01-01", "review": "2030-01-01", "conclusion": "rejected",
	},
}

recipients := {"Acme": {"country": "CN", "role": "processor"}, "Overseas": {"country": "US", "role": "handler"}, "Berlin": {"country": "DE", "role": "processor"}}

gated(inp) := d if {
	d := privguard.decision with input as inp with data.privguard.assessments as assessments with data.privguard.recipients as recipients
}

profiling := object.union(base, {"purpose": "marketing.profiling", "categories": ["user.derived.tags"], "channel": ""})

# A purpose that decides automatically, as the engine describes it in the data (the flags
# and what they imply per regime, policy.assessmentNeeded).
automated := {"marketing.profiling": object.union(data.privguard.purposes["marketing.profiling"], {
	"automated_decision": true,
	"assessment_needed": {"pipl": true, "gdpr": true},
})}

# proves AUD-04: a purpose that decides automatically is denied without a current
# assessment, allowed with one, denied once its review date has passed and when it does not
# cover a category; the decision names the assessment.
test_automated_decision_needs_an_assessment if {
	purposes := object.union(data.privguard.purposes, automated)
	without := privguard.decision with input as profiling with data.privguard.purposes as purposes
	"pia.required" in without.reasons
	d := privguard.decision with input as profiling with data.privguard.purposes as purposes with data.privguard.assessments as assessments
	d.allow
	d.assessment == "pia-2026-07"
	late := privguard.decision with input as object.union(profiling, {"today": "2027-01-01"}) with data.privguard.purposes as purposes with data.privguard.assessments as assessments
	late.reasons == ["pia.expired"]
	early := privguard.decision with input as object.union(profiling, {"today": "2025-12-31"}) with data.privguard.purposes as purposes with data.privguard.assessments as assessments
	early.reasons == ["pia.required"]
	wider := object.union(profiling, {"categories": ["user.derived.tags", "user.location.imprecise"]})
	purposes_wider := object.union(purposes, {"marketing.profiling": object.union(purposes["marketing.profiling"], {"categories": ["user.derived", "user.location"]})})
	nc := privguard.decision with input as wider with data.privguard.purposes as purposes_wider with data.privguard.assessments as assessments
	nc.reasons == ["pia.not_covering"]
	not decision(profiling).assessment # no gate, no assessment named
}

# proves AUD-04: under PIPL, providing data to a recipient (a processor in China included)
# needs an assessment covering that recipient; another recipient is not covered.
test_provision_needs_an_assessment_for_the_recipient if {
	share := object.union(base, {"purpose": "third_party.sharing", "recipient": "Acme", "categories": ["user.contact.email"], "channel": "",
		"consent": object.union(base.consent, {"separate": true})})
	decision(share).reasons == ["pia.required"]
	gated(share).allow
	gated(object.union(share, {"recipient": "Berlin"})).reasons == ["pia.not_covering"]
	gated(object.union(share, {"today": "2027-02-01"})).reasons == ["pia.expired"]
}

# proves AUD-04: a transfer abroad needs an assessment under either regime; a recipient in
# the regime's area does not under GDPR, one without a declared country counts as abroad.
test_cross_border_needs_an_assessment if {
	gdpr := object.union(base, {"regime": "gdpr", "purpose": "marketing.profiling", "categories": ["user.derived.tags"], "channel": ""})
	gated(object.union(gdpr, {"recipient": "Berlin"})).allow
	gated(object.union(gdpr, {"recipient": "Overseas"})).allow
	abroad := privguard.decision with input as object.union(gdpr, {"recipient": "Overseas"}) with data.privguard.recipients as recipients
	abroad.reasons == ["pia.required"]
	unknown := privguard.decision with input as object.union(gdpr, {"recipient": "Nowhere"}) with data.privguard.recipients as recipients
	unknown.reasons == ["pia.required"]
	transfer := object.union(base, {"purpose": "cross_border.transfer", "categories": ["user.contact.email"], "channel": "", "consent": object.union(base.consent, {"separate": true})})
	decision(transfer).reasons == ["pia.required"]
	gated(transfer).allow # the purpose needs no category: the email is dropped, not processed
	gated(object.union(transfer, {"recipient": "Berlin"})).reasons == ["pia.not_covering"]
}

# proves AUD-04: a rejected assessment never covers, even when it names everything; a route
# that names an assessment accepts only that one.
test_rejected_and_pinned_assessments if {
	share := object.union(base, {"purpose": "third_party.sharing", "recipient": "Other", "categories": [], "channel": "",
		"consent": object.union(base.consent, {"separate": true})})
	gated(share).reasons == ["pia.not_covering"] # pia-2026-07 is for the purpose, not for Other
	gated(object.union(share, {"pia_id": "pia-rejected"})).reasons == ["pia.required"]
	rejected_only := privguard.decision with input as share with data.privguard.assessments as {"pia-rejected": assessments["pia-rejected"]}
	rejected_only.reasons == ["pia.required"]
	pinned := object.union(share, {"recipient": "Acme", "pia_id": "pia-2026-07"})
	gated(pinned).allow
	gated(pinned).assessment == "pia-2026-07"
	gated(object.union(pinned, {"pia_id": "pia-unknown"})).reasons == ["pia.required"]
	gated(object.union(pinned, {"pia_id": "pia-2026-07", "purpose": "marketing.advertising.third_party"})).reasons == ["pia.not_covering"]
}

# Ordinary processing never meets the gate, with assessments or without.
test_ordinary_processing_needs_no_assessment if {
	d := gated(base)
	d.allow
	not d.assessment
}

# proves SEN-01: a minor needs a guardian's consent.
test_minor_needs_guardian if {
	denies(with_subject({"minor": true, "age_band": "13"}), "guardian_consent.required")
	inp := object.union(with_subject({"minor": true, "age_band": "13"}), {"consent": object.union(base.consent, {"guardian": true})})
	decision(inp).allow
}

test_no_profiled_ads_to_minors if {
	inp := object.union(with_subject({"minor": true}), {"purpose": "marketing.advertising.first_party", "categories": [], "channel": "", "consent": object.union(base.consent, {"guardian": true})})
	denies(inp, "minor.profiling")
}

# proves MKT-06: with personalisation off, recommendation falls back to non-personalised and
# profiling is denied.
test_personalisation_off if {
	rec := object.union(with_subject({"personalisation_off": true}), {"purpose": "personalize.recommendation", "categories": ["user.behavior"], "channel": ""})
	d := decision(rec)
	d.allow
	{"kind": "non_personalised"} in d.obligations
	prof := object.union(rec, {"purpose": "marketing.profiling"})
	denies(prof, "personalisation.off")
}

# proves PUR-03: a purpose sees only the categories it needs.
test_minimum_necessary_drops_unneeded_categories if {
	inp := object.union(base, {"categories": ["user.contact.phone_number", "user.government_id.id_card", "user.behavior.browsing_history"]})
	d := decision(inp)
	d.allow
	{"kind": "drop", "categories": ["user.behavior.browsing_history", "user.government_id.id_card"]} in d.obligations
}

test_mask_obligation if {
	masked := {"marketing.communications.sms": object.union(data.privguard.purposes["marketing.communications.sms"], {"mask": ["user.contact.phone_number"]})}
	d := privguard.decision with input as base with data.privguard.purposes as object.union(data.privguard.purposes, masked)
	{"kind": "mask", "categories": ["user.contact.phone_number"]} in d.obligations
}

# proves MKT-07: pricing is denied any access to behavioural tags; without them it is allowed.
test_pricing_sees_no_behaviour if {
	inp := object.union(base, {"purpose": "essential.pricing", "channel": "", "categories": ["user.behavior.purchase_history", "user.derived.rfm_score", "user.account"]})
	denies(inp, "purpose.category_not_allowed")
	decision(object.union(inp, {"categories": ["user.account"]})).allow
}

test_frequency_limit if {
	d := decision(with_subject({"contacts": 2}))
	d.allow
	{"kind": "contact_budget", "remaining": 1} in d.obligations
	denies(with_subject({"contacts": 3}), "frequency.exceeded")
}

# proves MKT-01 and MKT-04: channel-specific consent; refusal or unsubscribe blocks the send.
test_channel_consent_is_specific if {
	denies(object.union(with_consent({"allowed": false, "reason": "consent.missing"}), {"purpose": "marketing.communications.email", "channel": "email"}), "consent.missing")
	denies(with_consent({"state": "refused", "allowed": false, "reason": "consent.refused"}), "consent.refused")
}

test_reasons_are_sorted_and_complete if {
	d := decision(object.union(with_subject({"restricted": true, "objected_dm": true}), {"consent": object.union(base.consent, {"allowed": false, "reason": "consent.withdrawn"})}))
	d.reasons == ["consent.withdrawn", "objection.direct_marketing", "subject.restricted"]
}
