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
	decision(object.union(share, {"consent": object.union(base.consent, {"separate": true})})).allow
}

# proves SEN-03 and SEN-04: sensitive categories need separate consent and an impact assessment.
test_sensitive_needs_separate_consent_and_pia if {
	inp := object.union(base, {"purpose": "marketing.profiling", "categories": ["user.derived.inferred_health"], "channel": ""})
	denies(inp, "separate_consent.required")
	denies(inp, "pia.required")
	ok := object.union(inp, {"pia_id": "pia-2026-07", "consent": object.union(base.consent, {"sensitive": true})})
	not denies(ok, "separate_consent.required")
	not denies(ok, "pia.required")
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
