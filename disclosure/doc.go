// Package disclosure is privguard's egress gate: every provision of personal data to a
// recipient is checked and logged before it happens.
//
//   - A transfer abroad — a recipient outside the PRC under PIPL, outside the EEA under
//     GDPR — needs a current transfer mechanism for the regime (PIPL Art. 38: a CAC
//     security assessment, the standard contract, certification, or an exemption; GDPR
//     Arts. 45–49: adequacy, SCCs, BCRs, a derogation), or it is refused with
//     transfer.no_mechanism.
//   - The people whose data left the PRC are counted per calendar year (China Standard
//     Time) as keyed hashes in a set of the store (journal.SetStore), all of them and those
//     with sensitive data separately, against the 2024 provisions' thresholds (促进和规范数据跨境
//     流动规定 Arts. 5, 7, 8): the volume exemption covers fewer than 100,000 people and no
//     sensitive data; the standard contract and certification fewer than 1,000,000 people
//     and fewer than 10,000 with sensitive data; a CAC assessment has no bound. A transfer
//     that would pass its mechanism's bound is refused with transfer.threshold, and adds
//     nobody to the count. The counts are warned about at 80 % and 90 % of each threshold
//     and when one is reached.
//   - Every provision that goes ahead is first appended to the journal log "disclosures"
//     (date, route or notice, recipient and country, role, purpose, categories, regime,
//     the number of people, the mechanism): an entry that cannot be written refuses the
//     provision (AUD-07). Entries are written in groups, so that concurrent requests share
//     one write.
//
// A refused transfer may have added its sensitive-data subjects to their count before its
// total was refused (the two counts are two atomic steps): the count errs high, never low.
package disclosure
