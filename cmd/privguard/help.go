package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// A command is one privguard command or subcommand as its help page shows it. Commands
// define their flags in a function (flags) that both the command and its help page use, so a
// page always lists the flags the command takes.
type command struct {
	name    string // "keys shred"
	summary string // one line, for the lists of commands
	usage   string // the synopsis after "privguard "
	about   string // what it does, in paragraphs
	example string // shell lines that run as pasted (given the data and a running serve where needed)
	flags   func(fs *flag.FlagSet)
}

// groupAbout returns what the group of subcommands called name ("keys") is for, and false
// if name is not a group.
func groupAbout(name string) (string, bool) {
	switch name {
	case "consent":
		return "The consent ledger: verify its hash chain (offline); export the evidence of a subject's or a purpose's consent for an auditor; import consent collected elsewhere (through a running serve).", true
	case "policy":
		return "The enforcement policy (Rego): run its unit tests.", true
	case "keys":
		return `The master key and the subject keys of the vault, offline. The local master key
(<data>/master.keyset.json) is a development and single-host option: whoever reads the
file can decrypt all personal data. Keep it apart from backups of the data file; a backup
is safe to keep only while the master key that wrapped it can be destroyed. Stop
'privguard serve' first: it holds the data file.`, true
	case "pia":
		return `The register of impact assessments (PIPL Arts. 55-56, GDPR Art. 35): the assessments
the configuration declares, and every version serve has enforced, kept in the store's
journal even after the file drops or changes them. serve records them at every start.`, true
	case "audit":
		return `The DPO's audit pack (PIPL Arts. 54, 64; the Audit Measures): one signed zip of a period
with the record of processing, the request register and its timeliness, the disclosure
and cross-border registers, the impact assessments, the admin trail and its key events,
the heads of every chain, and a report in Chinese and English; privguard verify FILE
checks it offline.`, true
	case "decisions":
		return `The decision log (<data>/decisions.log and its closed segments decisions-NNNNNN.log):
verify its hash chain across segments against the checkpoints in the store, select
decisions, count them. One JSON line per decision, the subject as a keyed pseudonym.
query and stats read the files only and run while serve writes them; verify and
--subject read the store too (stop serve first on the embedded store, or use a copy).`, true
	case "callers":
		return `The sidecar's callers (entrusted processors, PIPL Art. 21, GDPR Art. 28), through a
running 'privguard serve' (its admin API; --admin, --token-file and --data as for dsar).
Terminating a caller revokes its credential at once and opens its deletion confirmation,
shown until you record the processor's acknowledgment.`, true
	case "incident":
		return `The incident register (GDPR Arts. 33-34, PIPL Arts. 51 and 57, the 2025 incident
reporting measures): every personal-information security incident, notified or not, with
its clocks from aware_at. list and show read the store (the data file read-only, or
store.postgres); record and event go through a running serve's admin API, so that the
admin trail names who acted.`, true
	case "retention":
		return `Retention (PIPL Arts. 19, 47; GDPR Art. 5(1)(e)): data whose period under the
configuration's retention rules ended is deleted, anonymised or moved to storage and
security only, without anyone asking. serve runs the sweep every retention_sweep.every
(default 24h); these commands start one now or show one, through a running serve's admin
API (--admin, --token-file and --data as for dsar; the dpo role starts runs).`, true
	case "dsar":
		return `Data-subject requests through a running 'privguard serve' (its admin API). Every
subcommand takes --admin URL (default http://127.0.0.1:8081) and the admin token from
$PRIVGUARD_ADMIN_TOKEN, --token-file FILE or DIR/admin.token (--data DIR, default
./privguard-data).`, true
	}
	return "", false
}

// commands returns every command, in the order help lists them.
func commands() []command {
	return []command{
		{name: "serve", summary: "run the consent ledger and the admin API (and, with listen and upstream, the sidecar proxy)",
			usage: "serve [--config FILE] [--data DIR] [--admin-listen ADDR] [--log-level LEVEL] [--replica NAME]",
			about: `Runs the consent ledger, the vault, data-subject requests and their HTTP API on one
embedded bbolt file; no other service is needed. With store.postgres, on a PostgreSQL
database shared by any number of replicas instead (README "Several replicas"). Every API call needs
"Authorization: Bearer <token>": with no token configured, the first start writes one to
<data>/admin.token (mode 0600) and logs the file's path. SIGINT or SIGTERM shut down
cleanly: requests in flight finish, then the ledger and the file are closed.

The configuration file (YAML; every key optional, unknown keys, purposes and data
categories are errors) has these main keys:
  data              data directory (default ./privguard-data; data_dir is the same key)
  admin_listen      address of the admin API (default 127.0.0.1:8081)
  admin             tokens (by SHA-256), their roles and purposes; policy_file: your role policy
  consent           eu_consent_age, and per-purpose validity and legal_bases
  policy            dir (your own Rego, hot-reloaded), frequency limits per channel,
                    memo_size, memo_exact_contacts (all used by the sidecar only)
  vault             kek_uri: a KMS key instead of the local master key file;
                    master_key_file: where that file is (one for every replica)
  store             postgres: {dsn or dsn_file, schema, max_conns}: one store shared by
                    every replica; max_staleness (5s): fail closed when not current
  replica           this process's name in logs, decision lines, /readyz, leases
  frequency_store   redis: count frequency limits on Redis, shared by the replicas
  dsar              stores (postgres, mysql, redis, webhook), recipients, disclosure, ...
  purposes          purposes of your own (legal_bases, categories, mask, flags) or
                    refinements of built-in ones, with their facts for 'privguard ropa'
  categories        data categories of your own (below user.; sensitive: true)
  controller        the controller and its DPO (name, contact), for the record
  assessments       impact assessments (id, purposes, categories, recipients, date,
                    review, conclusion, legitimacy, impact, measures): high-impact
                    processing needs a current one covering it; recorded at every start
  dual_control      export_rows: a bulk export of more rows needs a second approver
  decision_log      max_size (256MiB): the decision log's segment size; retention
                    (4416h, also the least allowed): how long closed segments are kept
  incidents         cii_operator (the CAC report within 1 h, not 4), regimes: whose
                    notice clocks run (default: regime's); the incident register
The sidecar, for services in any language (serve then proxies and enforces):
  listen            the sidecar's address, where clients connect (e.g. 127.0.0.1:8080)
  upstream          the service it protects (http or https URL); required with listen
  regime            the law for the upstream's subjects: pipl (default) or gdpr
  routes            match ("GET /api/profiles/{id}"), purpose or purposes, subject or
                    subjects ({path|header|query|json: NAME}), fields (JSON path: data
                    category), channel, recipient, role, encrypt, pia; or pass: true
  unmatched         deny (default) or pass: what happens to a path no route matches
  paths             strict (default) or exact: refuse paths other routers read otherwise
  upstream_secret_file  a key to sign every request passed on with
  trusted_proxies   CIDRs whose X-Forwarded-For is passed on (and names the
                    privacy centre's client for its per-client code limit)
  callers           processors calling with X-Privguard-Caller: name, token_file or
                    sha256, purposes, terminated_at ('privguard callers')
  upstream_transport  connections to the upstream: max_idle_conns_per_host (256),
                    max_conns_per_host, idle_conn_timeout, dial_timeout,
                    response_header_timeout
The README's "The sidecar" and "Configuration" sections show complete files.`,
			example: `privguard serve
privguard serve --config privguard.yaml --log-level debug`,
			flags: func(fs *flag.FlagSet) { newServeFlags(fs) }},
		{name: "consent verify", summary: "check the consent ledger's hash chain; names the first record that does not match",
			usage: "consent verify [--data DIR | --store URL [--schema NAME]] [--anchor SEQ:SHA256]...",
			about: `Checks every record of the consent ledger: its hash, its place in the chain, the notice
it cites. Prints a summary and the head (last record and its hash); if a record does not
match, names the first one and exits 1. The file is opened read-only; stop
'privguard serve' first (it holds the file), or run this against a copy of the directory.
A shared PostgreSQL store (--store) is verified while its replicas run.

The chain proves the ledger consistent, not that nobody with write access to the file
rewrote it end to end. Keep the printed head outside the file (a DPO export, a ticket, a
public log) and pass it back with --anchor: verify then also checks that record is
unchanged.`,
			example: `privguard consent verify --data privguard-data
privguard consent verify --data privguard-data --anchor 1042:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08`,
			flags: func(fs *flag.FlagSet) { newVerifyFlags(fs) }},
		{name: "consent export", summary: "export consent evidence an auditor verifies offline (privguard verify FILE)",
			usage: "consent export (--subject ID | --purpose P --from DATE --to DATE) [--config FILE] [--data DIR] --out FILE",
			about: `Writes one zip: the consent records in scope with their signed receipts, counts of grants,
withdrawals, expiries and refusals per day and purpose, a Merkle inclusion proof of every
record (RFC 6962) against a checkpoint of the ledger's head signed with the receipt key,
that key, and a manifest with the SHA-256 of every member. --subject exports every record
of one subject (and names it); --purpose exports the grants, refusals, withdrawals and
expiries of that purpose and those below it (and the withdrawals of a purpose above it, or
of all) from --from (included) to --to (excluded), with subjects as keyed pseudonyms and
without user agents or network prefixes. The whole ledger is read once and its chain
checked: a break is named and nothing is written (exit 1). The file is written through a
temporary file and renamed, so an interrupted export leaves none. The data file is opened
read-only (stop serve, or use GET /v1/consents/export); store.postgres is read while
replicas run. It is offline, for the operator holding the data file: dual_control, which
guards GET /v1/consents/export by purpose, does not apply. 'privguard verify FILE' checks
the export without the data file.`,
			example: `privguard consent export --subject cust-8841 --out cust-8841-consent.zip
privguard consent export --purpose marketing.communications --from 2026-01-01 --to 2026-04-01 --out q1-marketing.zip`,
			flags: func(fs *flag.FlagSet) { newExportFlags(fs) }},
		{name: "verify", summary: "verify an evidence file (a consent export) offline, from the file alone",
			usage: "verify [--key FILE] FILE",
			about: `Checks an evidence file by the kind its manifest names, needing no data directory and no
configuration. For a consent export: every member against the manifest's SHA-256, the
checkpoint's signature and that it covers the members, each record's receipt signature
and that it is the record's, each record's encoding against its hash (an export about one
subject), that each record is in scope, each record's inclusion in the checkpoint's tree,
and the counts recomputed from the records. Prints OK with the figures and the head to
check against the ledger (privguard consent verify --anchor), or FAIL naming the member,
line and record, and exits 1. The file is checked against the key it carries: --key pins
the ledger's (a saved GET /v1/receipts/keys). Exits 2 for a file that is not an evidence
file. The ledger itself is checked with privguard consent verify.`,
			example: `privguard verify q1-marketing.zip
privguard verify --key receipt-keys.json cust-8841-consent.zip`,
			flags: func(fs *flag.FlagSet) { newVerifyFileFlags(fs) }},
		{name: "migrate", summary: "bring a shared PostgreSQL store's schema to this binary's version",
			usage: "migrate (--config FILE | --store URL [--schema NAME])",
			about: `Applies the schema migrations this binary carries to the PostgreSQL store the
configuration names (store.postgres), or to --store, and prints the version before and
after. serve does the same at start; run this to migrate before rolling out replicas. Two
processes migrating at once migrate once (an advisory lock). A schema newer than this
binary knows is refused, here and by serve: upgrade privguard instead.`,
			example: `privguard migrate --config privguard.yaml
privguard migrate --store postgres://privguard@db.internal/privguard?sslmode=verify-full`,
			flags: func(fs *flag.FlagSet) { newMigrateFlags(fs) }},
		{name: "consent import", summary: "import consent collected elsewhere (NDJSON, one grant a line) through a running serve",
			usage: "consent import [--admin URL] [--data DIR] [--token-file FILE] [--rest FILE] [--answers FILE] FILE",
			about: `Streams FILE (NDJSON: one POST /v1/consents body a line, with its provenance; "-" reads
stdin) to POST /v1/consents/import of a running serve and reads the answers as they come:
each item is committed or refused on its own. Imported consent has method imported, names
who collected it (evidence.collected_by: first_party or third_party), the reference to the
original proof (evidence.proof_ref) and, from a third party, the contract
(evidence.contract_ref); a grant for direct marketing is refused for a subject who
objected. Give each line an "idempotency_key" to make importing a file again safe.

Prints the counts; the first refusals go to stderr by line number. --rest writes every
item not committed (refused, failed, or not reached because the import stopped), exactly
as it was, to a file: fix it and import that file. Exits 0 if every item was committed, 1
if any was not, 2 if the import could not run. The token needs the role importer or admin.`,
			example: `privguard consent import --rest rest.ndjson audience.ndjson
privguard consent import --admin http://127.0.0.1:8081 --token-file importer.token - `,
			flags: func(fs *flag.FlagSet) { newImportFlags(fs) }},
		{name: "policy test", summary: "run a policy's Rego unit tests (the default bundle: policy/bundle)",
			usage: "policy test [-v] DIR...",
			about: `Runs the Rego unit tests (rules named test_* in *_test.rego files) of the policy in each
DIR, with the data files (data.json) found there. Exits 1 if a test fails, 2 if the policy
does not load. The default bundle is in policy/bundle of the source tree.`,
			example: `privguard policy test policy/bundle
privguard policy test -v ./policies`,
			flags: func(fs *flag.FlagSet) { newPolicyTestFlags(fs) }},
		{name: "keys init", summary: "create the local master key (<data>/master.keyset.json, or --out FILE; mode 0600)",
			usage: "keys init [--data DIR] [--out FILE]",
			about: `Creates the local master key of a new installation. An existing key is never
overwritten. 'privguard serve' creates one on its first start anyway; use this to create it
before, for example to keep a copy of it somewhere safe first. Replicas on a shared
PostgreSQL store must all read one key: write it with --out and name that file in
vault.master_key_file (a Kubernetes secret, say) of every replica.`,
			example: `privguard keys init --data privguard-data
privguard keys init --out /etc/privguard/master.keyset.json`,
			flags: func(fs *flag.FlagSet) { newKeysInitFlags(fs) }},
		{name: "keys status", summary: "subject keys, KEK rotation state, master key file permissions",
			usage:   "keys status [--data DIR]",
			about:   `Prints how many subject keys the vault holds, where the master key is and its file mode, and whether a master key rotation is unfinished.`,
			example: `privguard keys status --data privguard-data`,
			flags:   func(fs *flag.FlagSet) { newKeysFlags(fs) }},
		{name: "keys shred", summary: "destroy a subject's keys: every ciphertext of the subject becomes unreadable",
			usage: "keys shred [--data DIR] SUBJECT",
			about: `Destroys the subject's keys (crypto-shredding): every copy of the subject's sealed data,
in databases, caches, exports and backups, becomes unreadable at once. Run
'privguard keys compact' afterwards to remove the key's bytes from the data file.`,
			example: `privguard keys shred --data privguard-data cust-8841`,
			flags:   func(fs *flag.FlagSet) { newKeysFlags(fs) }},
		{name: "keys compact", summary: "rewrite the data file so shredded keys leave no bytes behind",
			usage: "keys compact [--data DIR]",
			about: `Rewrites the data file keeping only live data: bbolt keeps the bytes of deleted values in
free pages until they are reused, so a shredded key's wrapped bytes stay in the file until
then. Copies and backups made earlier still hold them (see keys rotate-kek).`,
			example: `privguard keys compact --data privguard-data`,
			flags:   func(fs *flag.FlagSet) { newKeysFlags(fs) }},
		{name: "keys rotate", summary: "add a new key to the subjects' keysets (all subjects if none named)",
			usage:   "keys rotate [--data DIR] [SUBJECT...]",
			about:   `Adds a new primary key to each named subject's keyset (every subject's, if none is named). New data is sealed with it; older data stays readable.`,
			example: `privguard keys rotate --data privguard-data cust-8841`,
			flags:   func(fs *flag.FlagSet) { newKeysFlags(fs) }},
		{name: "keys rotate-kek", summary: "wrap every subject key with a new master key, then destroy the old one",
			usage: "keys rotate-kek [--data DIR]",
			about: `Creates a new master key (<data>/master.next.json), rewraps every subject key with it,
then replaces the old master key with it, destroying the old one: backups taken before are
unreadable from then on. Resumable: after an interruption, run it again.`,
			example: `privguard keys rotate-kek --data privguard-data`,
			flags:   func(fs *flag.FlagSet) { newKeysFlags(fs) }},
		{name: "dsar submit", summary: "submit requests, for one subject or a file of them",
			usage: "dsar submit --type TYPE (--subject ID | --subjects-file FILE) [--regime LAW] [--operator-note TEXT] [--patch CATEGORY=VALUE]... [--trigger WHY]",
			about: `Submits a data-subject request. TYPE is access, portability, categories, correction,
deletion, restriction, objection or explanation (of automated decisions). With --operator-note you attest that you verified the
requester's identity (say how). --trigger starts a deletion the controller owes on its own
(purpose_achieved, service_ended, retention_expired, consent_withdrawn,
unlawful_processing). A subjects file has one id per line (# comments allowed); progress
goes to stderr, and failures name the line, never the id. Prints "ID<TAB>STATE" per request.`,
			example: `privguard dsar submit --type deletion --subject cust-8841 --operator-note "ID card at the desk"
privguard dsar submit --type deletion --trigger retention_expired --subjects-file expired.txt`,
			flags: func(fs *flag.FlagSet) { newDsarFlags(fs, "submit") }},
		{name: "dsar status", summary: "print one request (state, deadline, tasks per store)",
			usage:   "dsar status ID",
			about:   `Prints the request as JSON: its state, its legal deadline, and each store's task.`,
			example: `privguard dsar status "$ID"`,
			flags:   func(fs *flag.FlagSet) { newDsarFlags(fs, "status") }},
		{name: "dsar list", summary: "list requests, optionally only those in a state or overdue",
			usage: "dsar list [--state STATE] [--overdue] [--approval ID]",
			about: `Lists requests with their type, law, state and due date; marks overdue and soon-due ones.
Each request names its subject: with dual_control.export_rows, a list longer than that is
refused naming the approval it asked for; once another dpo approved it, --approval ID runs it.`,
			example: `privguard dsar list --overdue`,
			flags:   func(fs *flag.FlagSet) { newDsarFlags(fs, "list") }},
		{name: "dsar retry", summary: "run a request's failed tasks now, not at their backoff time",
			usage:   "dsar retry ID",
			about:   `Runs the request's failed store tasks now (a store is back), instead of waiting for their next backoff time.`,
			example: `privguard dsar retry "$ID"`,
			flags:   func(fs *flag.FlagSet) { newDsarFlags(fs, "retry") }},
		{name: "dsar approve", summary: "approve a correction's patch (someone with the dpo role)",
			usage:   "dsar approve ID --note TEXT",
			about:   `Approves the new values of a correction request, which then reaches the stores. Say how you checked them.`,
			example: `privguard dsar approve "$ID" --note "matches the order confirmation"`,
			flags:   func(fs *flag.FlagSet) { newDsarFlags(fs, "approve") }},
		{name: "dsar result", summary: "download a finished access request's package, to hand it over yourself",
			usage: "dsar result ID --out FILE",
			about: `Downloads the zip of a finished access or portability request to FILE (mode 0600, never
overwritten). It can be downloaded once: the server then destroys its copy.`,
			example: `privguard dsar result "$ID" --out copy.zip`,
			flags:   func(fs *flag.FlagSet) { newDsarFlags(fs, "result") }},
		{name: "dsar register", summary: "the register of every request as CSV (no subject ids), for the DPO",
			usage:   "dsar register --out FILE",
			about:   `Saves the register of every request, on time or not, as CSV (mode 0600). It holds no subject ids.`,
			example: `privguard dsar register --out register.csv`,
			flags:   func(fs *flag.FlagSet) { newDsarFlags(fs, "register") }},
		{name: "retention run", summary: "sweep the data whose retention ended now (or count it with --dry-run)",
			usage: "retention run [--dry-run] [--wait DURATION]",
			about: `Plans a retention run from the rules, the data map and the ledger's facts, and starts
it: every store's part runs as a durable task (a batch of rows a statement, retried when a
store fails, resumed after a restart). Prints one line per action: the store, the rule,
the table or key, the mode, what it is limited to (a cut-off date, the subjects whose
account closed, whose consent lapsed or who were inactive) and the rows changed; then the
full deletions it submitted, the restrictions it recorded, and what it skipped or kept and
why (which rule still needs the data). --dry-run counts what each action would change and
changes nothing. Exit status 1 if a store failed.`,
			example: `privguard retention run --dry-run`,
			flags:   func(fs *flag.FlagSet) { newRetentionFlags(fs, "run") }},
		{name: "retention show", summary: "the report of a retention run as it stands",
			usage:   "retention show RUN",
			about:   `Prints the report of the run RUN (its id, as retention run printed it): what each action changed so far, and what failed.`,
			example: `privguard retention show 0193c2d4-5e6f-7a8b-9c0d-1e2f3a4b5c6d`,
			flags:   func(fs *flag.FlagSet) { newRetentionFlags(fs, "show") }},
		{name: "callers list", summary: "list the sidecar's callers, their state and deletion confirmation",
			usage:   "callers list",
			about:   `Prints NAME<TAB>STATE<TAB>DELETION per caller: active or terminated, and for a terminated one awaiting_confirmation or confirmed.`,
			example: `privguard callers list`,
			flags:   func(fs *flag.FlagSet) { newCallersFlags(fs, "list") }},
		{name: "callers terminate", summary: "end a processor's contract: revoke its credential, await its deletion confirmation",
			usage: "callers terminate NAME",
			about: `Ends the contract of the caller NAME (someone with the dpo role): from now on the
sidecar refuses its credential (401) on every replica (within 5 seconds on the others), and
its deletion confirmation is awaited until 'privguard callers confirm' records it.`,
			example: `privguard callers terminate sms-gateway`,
			flags:   func(fs *flag.FlagSet) { newCallersFlags(fs, "terminate") }},
		{name: "callers confirm", summary: "record a terminated processor's deletion confirmation",
			usage:   "callers confirm NAME --reference TEXT",
			about:   `Records that the terminated caller NAME confirmed it deleted (or returned) the data; --reference says where its acknowledgment is.`,
			example: `privguard callers confirm sms-gateway --reference "deletion certificate, ticket PRC-2291"`,
			flags:   func(fs *flag.FlagSet) { newCallersFlags(fs, "confirm") }},
		{name: "ropa", summary: "the record of processing (GDPR Art. 30, PIPL Art. 55) generated from a configuration, as JSON, CSV or HTML",
			usage: "ropa --config FILE [--format json|csv|html] [--lang en|zh] [--out FILE] [--strict]",
			about: `Writes the record of processing activities of the configuration serve enforces: one
activity per purpose in use (named by a route, declared under purposes:, overridden under
consent.purposes, or named by a recipient) with its legal bases per regime, the data
categories it may process and those its routes and stores actually hold (sensitive ones
marked), sources, recipients with role, country and contact, transfers abroad with their
mechanism, retention, security measures (what the vault seals, masking, the decision
log), scale, scenario, systems and owner (GDPR Art. 30(1)(a)-(g), GB/T 35273 §11.3). It
is generated from the file alone, so it never drifts from what is enforced; serve answers
the same at GET /v1/ropa.

JSON follows docs/ropa.schema.json. CSV is UTF-8 with a byte order mark (Excel and WPS
open it), headings in Chinese and English, one row per activity and recipient. HTML is a
printable page in Chinese or English. A fact the file does not declare is never
invented: the record says "not declared", and stderr lists each one with the key that
declares it; --strict then exits 1. Exits 2 if the configuration is invalid.`,
			example: `privguard ropa --config examples/dpo/privguard.yaml --format csv --out ropa.csv
privguard ropa --config privguard.yaml --format html --lang zh --out ropa.html --strict`,
			flags: func(fs *flag.FlagSet) { newRopaFlags(fs) }},
		{name: "audit pack", summary: "the signed audit pack of a period, from a running serve (GET /v1/audit/pack)",
			usage: "audit pack --from DATE --to DATE --out FILE [--admin URL] [--data DIR] [--token-file FILE]",
			about: `Asks a running serve for the audit pack of the period from ≤ t < to (--to 2027-01-01 is
the end of 2026) and writes it to --out whole or not at all, then verifies it. The token
must be an auditor's or the DPO's. The pack is an evidence bundle (a zip whose manifest.json
lists every member's size and SHA-256, as privguard consent export writes): statement.jws,
signed with the ledger's receipt key, holds the period, the chain heads it was made at and
every member's digest; summary.json the figures; ropa.json and .csv, requests.csv,
disclosures.csv, transfers.json, assessments.json and .csv, trail.csv, key-events.csv,
heads.json, decisions.json, incidents.csv and .json, report.zh.html and report.en.html
(charts, printable). Made again at the same heads, it is the same file byte for byte. No
member names a subject. privguard verify FILE [--key keys.json] checks it offline.`,
			example: `privguard audit pack --from 2026-01-01 --to 2027-01-01 --out audit-2026.zip`,
			flags:   func(fs *flag.FlagSet) { newAuditFlags(fs, "pack") }},
		{name: "pia list", summary: "the register of impact assessments: every version, its status today",
			usage: "pia list [--config FILE] [--data DIR] [--format table|json|csv] [--status LIST] [--out FILE]",
			about: `Prints the register of impact assessments: each assessment the configuration declares
and every version the store's journal recorded (serve records what it enforces at every
start), with its status today — current, due_for_review (review within 30 days),
expired (the review date has come: the policy denies what it covered, pia.expired),
rejected, pending (dated after today), superseded (a later version replaced it), removed
(the configuration no longer declares it). An assessment covers high-impact processing
(sensitive data, automated decisions, large-scale profiling, providing data to a
recipient, a transfer abroad) of its purposes, categories and recipients from its date
until its review date. The store is the file's: the data file, opened read-only (stop
serve first, or run this against a copy), or store.postgres, read while replicas run.
Exits 1 if the journal's hash chain does not verify (the break is named), 2 on errors.
GET /v1/assessments answers the same through a running serve.`,
			example: `privguard pia list --config privguard.yaml
privguard pia list --config privguard.yaml --status expired,due_for_review --format csv --out assessments.csv`,
			flags: func(fs *flag.FlagSet) { newPIAFlags(fs, "list") }},
		{name: "pia record", summary: "record the configured impact assessments in the register, as serve does at start",
			usage: "pia record [--config FILE] [--data DIR]",
			about: `Records in the store's journal every assessment of the configuration that is new or
changed, and the removal of every one it no longer declares, as serve does at every
start; prints what it recorded. Needs the data file to itself (stop serve), or
store.postgres.`,
			example: `privguard pia record --config privguard.yaml`,
			flags:   func(fs *flag.FlagSet) { newPIAFlags(fs, "record") }},
		{name: "decisions verify", summary: "check the decision log's chain across its segments and their checkpoints",
			usage: "decisions verify [--config FILE] [--data DIR] [--replica NAME]",
			about: `Checks every line of the decision log links to the one before it, across the closed
segments and the active file, and every segment against the checkpoint serve recorded
in the store when it closed it (its lines, its first and last hashes): a removed,
truncated or altered segment, or a line removed or altered in one, is found even when
the chain on disk was re-linked around it; segments retention deleted are recorded as
such. Prints the lines and segments verified and the head hash; on a break, names the
segment and line and exits 1. Exits 2 on errors. Needs the store: the data file,
opened read-only (stop serve first, or run this against a copy), or store.postgres
(with --replica naming whose log it is).`,
			example: `privguard decisions verify --data privguard-data`,
			flags:   func(fs *flag.FlagSet) { newDecisionFlags(fs, "verify") }},
		{name: "decisions query", summary: "print the decisions a filter selects, as logged (NDJSON) or as CSV",
			usage: "decisions query [--data DIR] [--from TIME] [--to TIME] [--purpose P] [--reason R] [--route R] [--decision allow|deny] [--subject ID] [--format ndjson|csv]",
			about: `Prints the decisions the filters select, in order: the lines as logged (NDJSON) or CSV
(UTF-8 with a byte order mark, cells that a spreadsheet would run as formulas defused).
Filters combine; --subject turns the id into the pseudonym the log uses, with the key
kept in the store, and never prints it. The chain is checked as the log is read: a
break stops the output there and exits 1. A bad filter exits 2.`,
			example: `privguard decisions query --data privguard-data --decision deny --from 2026-03-01 --to 2026-04-01
privguard decisions query --data privguard-data --purpose marketing --format csv > marketing.csv`,
			flags: func(fs *flag.FlagSet) { newDecisionFlags(fs, "query") }},
		{name: "decisions stats", summary: "count decisions by decision, purpose, reason, route and day",
			usage: "decisions stats [--data DIR] [filters as query] [--format table|json]",
			about: `Counts the decisions the filters select by decision (allow, deny), purpose, reason code,
route and day (UTC), reading the log once in constant memory (at most 10,000 distinct
values per dimension; the rest count as "(other)"). The chain is checked as the log is
read: a break exits 1. GET /v1/decisions/stats answers the same through a running serve
(roles auditor and dpo).`,
			example: `privguard decisions stats --data privguard-data
privguard decisions stats --data privguard-data --from 2026-03-01 --format json`,
			flags: func(fs *flag.FlagSet) { newDecisionFlags(fs, "stats") }},
		{name: "incident list", summary: "the incident register: every incident, its clocks and gaps now",
			usage: "incident list [--config FILE] [--data DIR] [--format table|json|csv] [--status open|closed] [--overdue] [--out FILE]",
			about: `Prints the incident register: every incident recorded, notified or not, with the state of
each clock now — gdpr.authority (the supervisory authority within 72 hours of aware_at
unless the risk is none; alert 4 hours before), pipl.authority (the provincial CAC within
4 hours for a level of 较大 or worse, 1 hour with incidents.cii_operator; alert at once),
subjects (without undue delay when the risk is high) — as running, alert, overdue, met,
met_late or not_required; an incident not assessed runs the strictest clocks. Gaps name
what the register still lacks (facts, cause, effects, actions, categories, severity,
risk). The store is the file's: the data file, opened read-only (stop serve first, or
run this against a copy), or store.postgres, read while replicas run. Exits 2 if the
journal's hash chain does not verify (the break is named). GET /v1/incidents answers the
same through a running serve.`,
			example: `privguard incident list --config privguard.yaml
privguard incident list --config privguard.yaml --overdue --format csv --out incidents.csv`,
			flags: func(fs *flag.FlagSet) { newIncidentFlags(fs, "list") }},
		{name: "incident show", summary: "one incident: its facts, assessment, notices and clocks, as JSON",
			usage: "incident show [--config FILE] [--data DIR] ID",
			about: `Prints one incident of the register as JSON: what was recorded (facts, cause, effects,
remedial actions, categories, the count and the pseudonyms of the subjects), the
assessment, the notices made with their text, the clocks now and the gaps.`,
			example: `privguard incident show --config privguard.yaml inc_0123456789abcdef`,
			flags:   func(fs *flag.FlagSet) { newIncidentFlags(fs, "show") }},
		{name: "incident record", summary: "record an incident through a running serve",
			usage: "incident record [--admin URL] [--data DIR] [--token-file FILE] FILE",
			about: `Records an incident: FILE ("-" for standard input) is the JSON body of POST
/v1/incidents (title, facts and aware_at required; cause, occurred_at, severity, risk,
categories, subject_count, subjects, effects, actions, advice). Prints the incident with
its clocks. The token needs the dpo or admin role.`,
			example: `privguard incident record incident.json`,
			flags:   func(fs *flag.FlagSet) { newIncidentFlags(fs, "record") }},
		{name: "incident event", summary: "assess, complete, notify or close an incident through a running serve",
			usage: "incident event [--admin URL] [--data DIR] [--token-file FILE] ID FILE",
			about: `Applies an event to an incident: FILE ("-" for standard input) is the JSON body of POST
/v1/incidents/{id}/events — {"kind":"assess","severity":"较大","risk":"high"}, "update"
(facts, cause, effects, actions, advice, categories, subject_count, subjects),
"notify-authority" (authority sa or cac, reference, at, delay_reason when late),
"notify-subjects" (one notice per affected subject, through the outbox), "close". A
notice that would lack an element the law requires is refused, naming it.`,
			example: `privguard incident event inc_0123456789abcdef assess.json`,
			flags:   func(fs *flag.FlagSet) { newIncidentFlags(fs, "event") }},
		{name: "version", summary: "print the version",
			usage: "version",
			about: `Prints the version: the one set at build time (-ldflags "-X main.version=v1.2.3"), else
the module version (go install ...@v1.2.3), else the git revision go build stamped (with
"-dirty" for uncommitted changes, and the commit time). go run stamps none.`,
			example: `privguard version`,
			flags:   func(*flag.FlagSet) {}},
		{name: "help", summary: "print this help, or a command's (privguard help keys shred)",
			usage:   "help [COMMAND [SUBCOMMAND]]",
			about:   `Prints the list of commands, or the help page of one.`,
			example: `privguard help consent verify`,
			flags:   func(*flag.FlagSet) {}},
	}
}

// lookup returns the command called name ("keys shred").
func lookup(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// subcommands returns the commands under group ("keys").
func subcommands(group string) []command {
	var out []command
	for _, c := range commands() {
		if strings.HasPrefix(c.name, group+" ") {
			out = append(out, c)
		}
	}
	return out
}

// writeUsage prints the top-level help.
func writeUsage(w io.Writer) {
	fmt.Fprint(w, `privguard — privacy and consent compliance (PIPL, GDPR) for marketing stacks.

Usage:
  privguard <command> [subcommand] [flags]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-16s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run 'privguard <command> --help' (or 'privguard help <command>') for a command's page.

Quick start:
  privguard serve                       # data in ./privguard-data, APIs on 127.0.0.1:8081
  TOKEN=$(cat privguard-data/admin.token)
  curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8081/readyz
`)
}

// writeGroup prints the page of a group of subcommands ("keys").
func writeGroup(w io.Writer, group string) {
	about, _ := groupAbout(group)
	fmt.Fprintf(w, "Usage: privguard %s <subcommand> [flags]\n\n%s\n\nSubcommands:\n", group, about)
	for _, c := range subcommands(group) {
		fmt.Fprintf(w, "  %-20s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'privguard %s <subcommand> --help' for a subcommand's flags and an example.\n", group)
}

// writePage prints c's help page: usage, what it does, its flags (from fs), an example.
func writePage(w io.Writer, c command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: privguard %s\n\n%s\n", c.usage, wrap(c.about, "", pageWidth))
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprint(w, "\nFlags:\n")
		fs.VisitAll(func(f *flag.Flag) {
			arg, usage := flag.UnquoteUsage(f)
			dash := "--"
			if len(f.Name) == 1 {
				dash = "-"
			}
			line := "  " + dash + f.Name
			if arg != "" {
				line += " " + argName(arg)
			}
			if f.DefValue != "" && f.DefValue != "false" {
				usage += " (default " + f.DefValue + ")"
			}
			fmt.Fprintf(w, "%s\n%s\n", line, wrap(usage, "      ", pageWidth))
		})
	}
	fmt.Fprint(w, "\nExample:\n")
	for _, line := range strings.Split(c.example, "\n") {
		fmt.Fprintf(w, "  %s\n", line)
	}
}

// newFlagSet returns the flag set of the command called name, whose errors parseFlags
// reports.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("privguard "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseFlags parses args with fs, the flag set of the command called name, and returns the
// positional arguments; flags may come before or after them (privguard keys shred ID
// --data DIR), and everything after "--" is positional. On -h or --help it prints the
// command's page to stdout and returns 0, false; on a bad flag, the error and where to find
// help to stderr, and 2, false.
func parseFlags(fs *flag.FlagSet, name string, args []string, stdout, stderr io.Writer) (positional []string, code int, ok bool) {
	for rest := args; ; {
		err := fs.Parse(rest)
		if errors.Is(err, flag.ErrHelp) {
			c, _ := lookup(name)
			writePage(stdout, c, fs)
			return nil, 0, false
		}
		if err != nil {
			return nil, usageError(stderr, name, err.Error()), false
		}
		left := fs.Args()
		if len(left) == 0 {
			return positional, 0, true
		}
		if n := len(rest) - len(left); n > 0 && rest[n-1] == "--" {
			return append(positional, left...), 0, true
		}
		positional, rest = append(positional, left[0]), left[1:]
	}
}

// usageError prints a usage mistake of the command called name and returns exit code 2.
func usageError(stderr io.Writer, name, msg string) int {
	fmt.Fprintf(stderr, "privguard %s: %s\nRun 'privguard %s --help' for usage.\n", name, msg, name)
	return 2
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help" || arg == "help"
}

// help prints the help page for the words after 'privguard help' and returns the exit code.
func help(words []string, stdout, stderr io.Writer) int {
	if len(words) == 1 && words[0] != "help" && isHelp(words[0]) {
		words = []string{"help"} // privguard help --help
	}
	name := strings.Join(words, " ")
	if name == "" {
		writeUsage(stdout)
		return 0
	}
	if _, ok := groupAbout(name); ok {
		writeGroup(stdout, name)
		return 0
	}
	c, ok := lookup(name)
	if !ok {
		fmt.Fprintf(stderr, "privguard help: no command %q\n\n", name)
		writeUsage(stderr)
		return 2
	}
	fs := newFlagSet(c.name)
	c.flags(fs)
	writePage(stdout, c, fs)
	return 0
}

// pageWidth is the width help pages are wrapped to.
const pageWidth = 92

// argName is the placeholder a help page shows for a flag's value: the name in the flag's
// usage (`directory`), as the synopses write it (DIR).
func argName(name string) string {
	switch name {
	case "directory":
		return "DIR"
	case "address":
		return "ADDR"
	case "string":
		return "TEXT"
	}
	return strings.ToUpper(name)
}

// wrap breaks the lines of text longer than width at spaces, indenting every line with
// indent; shorter lines (and their own indentation) are kept as they are.
func wrap(text, indent string, width int) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		for len(indent)+len(line) > width {
			cut := strings.LastIndexByte(line[:width-len(indent)], ' ')
			if cut <= 0 {
				break
			}
			out = append(out, indent+line[:cut])
			line = line[cut+1:]
		}
		out = append(out, indent+line)
	}
	return strings.Join(out, "\n")
}
