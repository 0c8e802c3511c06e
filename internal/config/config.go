// Package config reads privguard's YAML configuration file and validates it with
// go-playground/validator, reporting errors by the field's path in the file
// ("consent.purposes[marketing.communications.sms].validity"). Unknown keys are errors, so a
// misspelt setting is never silently ignored.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/go-playground/validator/v10"
	"go.yaml.in/yaml/v3"

	"github.com/privguard/privguard"
)

// Defaults.
const (
	DefaultDataDir     = "./privguard-data"
	DefaultAdminListen = "127.0.0.1:8081"
)

// File is the configuration file. Names may grow, never change.
type File struct {
	// Data is the directory of the embedded store. Default DefaultDataDir.
	Data string `yaml:"data"`
	// DataDir is another name for Data; setting both is an error.
	DataDir string `yaml:"data_dir"`
	// Listen is the sidecar's address; with Upstream set, serve proxies to it, enforcing
	// Routes.
	Listen string `yaml:"listen" validate:"omitempty,listen_addr"`
	// Upstream is the service the sidecar protects (http or https URL).
	Upstream string `yaml:"upstream" validate:"required_with=Listen,omitempty,url,startswith=http"`
	// Regime is the law that applies to the upstream's subjects: pipl (default) or gdpr.
	Regime string `yaml:"regime" validate:"omitempty,oneof=pipl gdpr"`
	// Routes map the upstream's endpoints to purposes, subjects and data categories.
	Routes []Route `yaml:"routes" validate:"dive"`
	// Unmatched is what the sidecar does with a request no route matches: deny (the
	// default: 403, recorded in the decision log) or pass (sent to the upstream
	// unenforced, which is safe only if every path that carries personal data is a route).
	Unmatched string `yaml:"unmatched" validate:"omitempty,oneof=deny pass"`
	// Paths is how the sidecar treats paths another router could read differently: strict
	// (the default) refuses encoded slashes, dot segments, matrix parameters, method
	// overrides and case or trailing-slash variants of routes; exact matches routes as
	// net/http does and nothing more (for an upstream that routes exactly the same way).
	Paths string `yaml:"paths" validate:"omitempty,oneof=strict exact"`
	// UpstreamSecretFile holds a key (at least 32 bytes) the sidecar signs every request it
	// passes on with (X-Privguard-Signature: HMAC-SHA256 over the time, method, request URI
	// and privguard's headers), so that the upstream can refuse requests that did not come
	// through privguard. Unset: requests are not signed.
	UpstreamSecretFile string `yaml:"upstream_secret_file"`
	// TrustedProxies are the CIDRs whose X-Forwarded-For the sidecar passes on; from any
	// other client it is dropped and replaced by the client's own address. The privacy
	// centre takes the client of its per-client code limit from it likewise.
	TrustedProxies []string `yaml:"trusted_proxies" validate:"dive,cidr"`
	// UpstreamTransport tunes the sidecar's connections to the upstream.
	UpstreamTransport Transport `yaml:"upstream_transport"`
	// AdminListen is the address of the consent and admin APIs. Default DefaultAdminListen.
	AdminListen string  `yaml:"admin_listen" validate:"omitempty,listen_addr"`
	Policy      Policy  `yaml:"policy"`
	Vault       Vault   `yaml:"vault"`
	DSAR        DSAR    `yaml:"dsar"`
	Admin       Admin   `yaml:"admin"`
	Consent     Consent `yaml:"consent"`
	// Store is where the consent ledger, the vault's keys and the requests are kept: the
	// embedded file in Data (the default), or a PostgreSQL database shared by every replica.
	Store StoreConfig `yaml:"store"`
	// Replica names this process in logs, decision-log lines, /readyz and request leases.
	// Default: the --replica flag, else the hostname.
	Replica string `yaml:"replica" validate:"omitempty,max=64,name"`
	// FrequencyStore is where contacts are counted for policy.frequency (default: in
	// memory, per process).
	FrequencyStore FrequencyStore `yaml:"frequency_store"`
	// Controller is the handler responsible and its DPO, for the record of processing and
	// the audit pack (dpo.go).
	Controller Controller `yaml:"controller"`
	// Purposes declare processing activities beside the built-in taxonomy, or describe
	// built-in ones for the record of processing.
	Purposes []DeclaredPurpose `yaml:"purposes" validate:"dive"`
	// Categories declare data categories beside the built-in ones.
	Categories []DeclaredCategory `yaml:"categories" validate:"dive"`
	// Assessments are the impact assessments (PIA/DPIA) in force: processing that needs one
	// is denied without a current one covering it.
	Assessments []Assessment `yaml:"assessments" validate:"dive"`
	// DecisionLog sets the decision log's segment size and retention (decisionlog.go).
	DecisionLog DecisionLog `yaml:"decision_log"`
	// DualControl asks for a second approver before bulk exports of personal data (SEC-07).
	DualControl DualControl `yaml:"dual_control"`
	// Callers are the services (entrusted processors) that call through the sidecar with a
	// credential of their own in X-Privguard-Caller, each scoped to its purposes (PUR-08).
	Callers []Caller `yaml:"callers" validate:"dive"`
	// Incidents configures the incident register's clocks (incidents.go).
	Incidents Incidents `yaml:"incidents"`
	// Retention are the retention rules: how long data of which categories is kept for
	// which purposes, and what happens after (retention.go).
	Retention []RetentionRule `yaml:"retention"`
	// RetentionSweep schedules and paces the sweep that carries the rules out.
	RetentionSweep RetentionSweep `yaml:"retention_sweep"`
	// Portal is the privacy centre, the subjects' own pages (portal.go).
	Portal Portal `yaml:"portal"`
	// Outreach is the outreach gate: message checks, unsubscribe links, SMS replies
	// (outreach.go).
	Outreach Outreach `yaml:"outreach"`
}

// Caller is an entrusted processor calling through the sidecar.
type Caller struct {
	Name string `yaml:"name" validate:"required,max=64,name"`
	// TokenFile holds the caller's credential; SHA256 is its hex SHA-256 instead. Set one.
	TokenFile string `yaml:"token_file" validate:"required_without=SHA256,excluded_with=SHA256"`
	SHA256    string `yaml:"sha256" validate:"required_without=TokenFile,omitempty,len=64,hexadecimal"`
	// Purposes the caller's requests may be decided for (and their sub-purposes).
	Purposes []string `yaml:"purposes" validate:"required,min=1,max=64,dive,required,max=100"`
	// TerminatedAt ends the contract: from then on the credential is refused (401) and the
	// processor's deletion confirmation is awaited.
	TerminatedAt *time.Time `yaml:"terminated_at"`
}

// DualControl configures the second approver of bulk exports.
type DualControl struct {
	// ExportRows: an export of personal data of more rows (or subjects) than this needs
	// another principal's approval (dpo or admin). 0, the default: none does.
	ExportRows int `yaml:"export_rows" validate:"omitempty,min=1"`
}

// StoreConfig selects the store. Without postgres, the embedded bbolt file in data.
type StoreConfig struct {
	Postgres *Postgres `yaml:"postgres"`
	// MaxStaleness, on a shared store, is how long a replica decides on consent state it
	// could not confirm is current before it fails closed (503). Default 5s.
	MaxStaleness *Duration `yaml:"max_staleness"`
}

// Postgres is a PostgreSQL database that every replica shares.
type Postgres struct {
	// DSN is a connection string (postgres://user@host:5432/db?sslmode=verify-full) or
	// key=value pairs; DSNFile names a file holding it (for a password). Set one.
	DSN     string `yaml:"dsn" validate:"required_without=DSNFile,excluded_with=DSNFile,max=4096"`
	DSNFile string `yaml:"dsn_file" validate:"required_without=DSN"`
	// Schema holds privguard's tables (default "privguard"); it never touches others.
	Schema string `yaml:"schema" validate:"omitempty,max=63,name"`
	// MaxConns bounds the connection pool of this replica (default 16).
	MaxConns int `yaml:"max_conns" validate:"omitempty,min=2,max=1000"`
}

// DSAR configures data-subject requests: the stores a request reaches.
type DSAR struct {
	// PIPLWorkdays is the PIPL reply deadline in working days (default 15, at most 22).
	PIPLWorkdays int     `yaml:"pipl_workdays" validate:"omitempty,min=1,max=22"`
	Stores       []Store `yaml:"stores" validate:"dive"`
	// IdentityTokenSecretFile holds the HMAC secret (at least 32 bytes) the company's app
	// signs identity tokens with (HS256 JWS {sub, iat, exp}); unset disables tokens.
	IdentityTokenSecretFile string `yaml:"identity_token_secret_file"`
	// Recourse overrides, per regime ("pipl", "gdpr"), the text a rejected subject is told
	// about complaints and courts; name your own authority and court here.
	Recourse map[string]string `yaml:"recourse" validate:"dive,keys,oneof=pipl gdpr,endkeys,required,max=4000"`
	// Outbox is the file one-time codes and download links are appended to, for a mail or
	// SMS gateway to send. Default <data>/outbox.jsonl.
	Outbox string `yaml:"outbox"`
	// ResultTTL is how long an access package can be downloaded (default 168h).
	ResultTTL *Duration `yaml:"result_ttl"`
	// LeaseTTL, on a shared store, is how long a replica holds a request without renewing
	// it (renewed every third of it while it works); a killed replica's requests are taken
	// over this long after it died. Default 30s; at least 1s.
	LeaseTTL *Duration `yaml:"lease_ttl"`
	// LeaseBatch, on a shared store, is how many requests a replica takes at a time
	// (default 256): the work spreads over the replicas in parts of this size, and a replica
	// that dies loses at most this much unwritten progress, done again by the next.
	LeaseBatch int `yaml:"lease_batch" validate:"omitempty,min=1,max=2000"`
	// Disclosure is what access answers say beside the data (GDPR Art. 15, PIPL Art. 45/48).
	Disclosure Disclosure `yaml:"disclosure"`
	// Recipients are the parties data is disclosed to; access answers name them, and those
	// with a webhook are told of every erasure, correction and restriction (GDPR Art. 19).
	Recipients []Recipient `yaml:"recipients" validate:"dive"`
}

// Disclosure is the controller's fixed part of an access answer.
type Disclosure struct {
	Controller struct {
		Name    string `yaml:"name" validate:"max=200"`
		Contact string `yaml:"contact" validate:"max=200"`
	} `yaml:"controller"`
	Retention          string   `yaml:"retention" validate:"max=4000"`
	Sources            []string `yaml:"sources" validate:"dive,max=1000"`
	AutomatedDecisions string   `yaml:"automated_decisions" validate:"max=4000"`
	Rights             string   `yaml:"rights" validate:"max=4000"`
}

// Recipient is a party personal data is disclosed to.
type Recipient struct {
	Name       string   `yaml:"name" validate:"required,max=64,name"`
	Country    string   `yaml:"country" validate:"omitempty,iso3166_1_alpha2"`
	Purposes   []string `yaml:"purposes" validate:"dive,required,max=100"`
	Categories []string `yaml:"categories" validate:"dive,required,max=100"`
	// Webhook receives the recipient's notices (signed like webhook stores).
	Webhook *Webhook `yaml:"webhook"`
	// Role is processor (entrusted: processes on the controller's behalf, PIPL Art. 21,
	// GDPR Art. 28; the default) or handler (receives the data for its own purposes: PIPL
	// Art. 23) or joint (a joint controller: PIPL Art. 20, GDPR Art. 26).
	Role string `yaml:"role" validate:"omitempty,oneof=processor handler joint"`
	// Contact is how to reach the recipient (PIPL Arts. 23 and 39 want it told).
	Contact string `yaml:"contact" validate:"max=200"`
	// Transfer is the mechanism of a transfer to a recipient abroad (outside the PRC under
	// PIPL, outside the EEA under GDPR): without one, such a transfer is refused.
	Transfer *Transfer `yaml:"transfer"`
}

// Webhook is an HTTPS endpoint privguard calls with HMAC-signed JSON bodies.
type Webhook struct {
	URL string `yaml:"url" validate:"required,url,startswith=http"`
	// SecretFile holds the shared HMAC secret (at least 32 bytes).
	SecretFile string `yaml:"secret_file" validate:"required"`
}

// Store is one downstream store of the data map.
type Store struct {
	Name       string       `yaml:"name" validate:"required,max=64,name"`
	Type       string       `yaml:"type" validate:"required,oneof=postgres mysql redis webhook"`
	DSN        string       `yaml:"dsn" validate:"required_if=Type postgres,required_if=Type mysql"`
	Addr       string       `yaml:"addr" validate:"required_if=Type redis"`
	Tables     []StoreTable `yaml:"tables" validate:"dive"`
	Keys       []string     `yaml:"keys" validate:"dive,required,contains={subject}"`
	SetMembers []string     `yaml:"set_members" validate:"dive,required"`
	// DatedKeys are a redis store's keys with data categories and a date, which retention
	// rules sweep; requests erase them as they do Keys.
	DatedKeys []DatedKey `yaml:"dated_keys" validate:"dive"`
	// Webhook is the endpoint of a webhook store (a SaaS tool holding subjects' data).
	Webhook *Webhook `yaml:"webhook" validate:"required_if=Type webhook"`
}

// StoreTable is one table of a SQL store.
type StoreTable struct {
	Table         string            `yaml:"table" validate:"required,max=128"`
	SubjectColumn string            `yaml:"subject_column" validate:"required,max=64"`
	Columns       map[string]string `yaml:"columns" validate:"dive,keys,max=64,endkeys,required,max=100"`
	Erase         string            `yaml:"erase" validate:"required,oneof=delete mask null"`
	// DatedBy is the column dating each row (when it was collected), which rules from
	// collected sweep by. Unset: the rows are not dated, and such rules leave them.
	DatedBy string `yaml:"dated_by" validate:"max=64"`
	// LastActiveBy is the column marking the subject's last activity, which rules from
	// last_active read.
	LastActiveBy string `yaml:"last_active_by" validate:"max=64"`
}

// Vault configures the encryption of personal data.
type Vault struct {
	// KEKURI names a KMS key that wraps the subject keys (gcp-kms://, aws-kms://,
	// hcvault://). Empty: the local master key file (MasterKeyFile).
	KEKURI string `yaml:"kek_uri" validate:"omitempty,max=512,excluded_with=MasterKeyFile"`
	// MasterKeyFile is the local master keyset (`privguard keys init --out PATH` writes
	// one). Default <data>/master.keyset.json; with a shared store every replica must read
	// the same one, so it (or kek_uri) must be set.
	MasterKeyFile string `yaml:"master_key_file" validate:"omitempty,max=4096"`
}

// Policy configures the policy engine.
type Policy struct {
	// Dir, if set, holds the policy's Rego modules (and their *_test.rego tests), used
	// instead of the embedded default and reloaded when they change; a change that does not
	// compile or fails its tests is rejected and the previous policy keeps serving.
	Dir string `yaml:"dir"`
	// Frequency overrides the outreach limits per channel.
	Frequency map[string]Frequency `yaml:"frequency" validate:"dive,keys,oneof=sms email push wechat,endkeys"`
	// MemoSize is how many distinct decisions the memo holds at first (0: the engine's
	// default, 16,384; -1: no memo, every request is evaluated); it grows while its working
	// set is larger, within 64 MiB.
	MemoSize int `yaml:"memo_size" validate:"omitempty,min=-1"`
	// MemoExactContacts memoises decisions by the exact contact count rather than by whether
	// it is below the channel's limit. The default is true with policy.dir (a policy of your
	// own may read the count otherwise) and false for the embedded policy.
	MemoExactContacts *bool `yaml:"memo_exact_contacts"`
}

// Transport tunes the sidecar's connections to the upstream. Unset fields take the
// defaults in parentheses, chosen so that a sidecar under load reuses its connections
// instead of opening one per request (net/http's default keeps only 2 idle per host).
type Transport struct {
	// MaxIdleConnsPerHost is how many idle connections to the upstream are kept (256).
	MaxIdleConnsPerHost int `yaml:"max_idle_conns_per_host" validate:"omitempty,min=1,max=65536"`
	// MaxConnsPerHost bounds the connections to the upstream, idle or busy (0: no bound);
	// requests over it wait for a connection.
	MaxConnsPerHost int `yaml:"max_conns_per_host" validate:"omitempty,min=0,max=65536"`
	// IdleConnTimeout closes a connection idle this long (90s).
	IdleConnTimeout *Duration `yaml:"idle_conn_timeout"`
	// DialTimeout bounds opening a connection, TLS handshake included (5s).
	DialTimeout *Duration `yaml:"dial_timeout"`
	// ResponseHeaderTimeout bounds the wait for the upstream's response headers once the
	// request is sent (0: none, for long polls and slow reports); a request over it gets 502.
	ResponseHeaderTimeout *Duration `yaml:"response_header_timeout"`
}

// Frequency is an outreach limit: at most Max contacts per subject within Window. A key
// left out keeps the channel's default.
type Frequency struct {
	Max    *int   `yaml:"max" validate:"omitempty,min=0,max=10000"`
	Window string `yaml:"window" validate:"omitempty,duration"`
	// OnUnavailable is what happens to a send when frequency_store does not answer: deny
	// (the default: refused, 503) or allow (sent uncounted, the decision log says so).
	OnUnavailable string `yaml:"on_unavailable" validate:"omitempty,oneof=deny allow"`
}

// Route is one route of the sidecar's route table (see middleware.Route).
type Route struct {
	Match string `yaml:"match" validate:"required,max=300"`
	// Pass declares a route that handles no personal data (health checks, assets): its
	// requests reach the upstream without a decision. It takes no other key.
	Pass      bool              `yaml:"pass"`
	Purpose   string            `yaml:"purpose" validate:"required_without_all=Purposes Pass,omitempty,max=100"`
	Purposes  []string          `yaml:"purposes" validate:"dive,max=100"`
	Subject   Locator           `yaml:"subject"`
	Subjects  Locator           `yaml:"subjects"`
	Fields    map[string]string `yaml:"fields" validate:"dive,keys,max=200,endkeys,max=100"`
	Channel   string            `yaml:"channel" validate:"omitempty,oneof=sms email push wechat"`
	Recipient string            `yaml:"recipient" validate:"max=200"`
	// Encrypt lists fields (paths, or data categories of Fields) sealed by the vault in
	// request bodies and opened in responses. An entry that is not a key of Fields and
	// starts with "user." is a data category: it must be known and be the category of at
	// least one field.
	Encrypt []string `yaml:"encrypt" validate:"dive,required,max=200"`
	Role    string   `yaml:"role" validate:"max=64"`
	// PIA names the assessment (assessments[].id) the route's processing rests on: only that
	// one then covers it. Unset: any current assessment covering the use does.
	PIA string `yaml:"pia" validate:"max=64"`
}

// Locator says where a request carries its subject (one key).
type Locator struct {
	Path   string `yaml:"path" validate:"max=64"`
	Header string `yaml:"header" validate:"max=128"`
	Query  string `yaml:"query" validate:"max=128"`
	JSON   string `yaml:"json" validate:"max=128"`
}

// Admin configures access to the admin APIs.
type Admin struct {
	// Tokens are the bearer tokens accepted, by the hex SHA-256 of their value
	// (`printf %s "$TOKEN" | sha256sum`). With none, serve creates one in <data>/admin.token.
	Tokens []Token `yaml:"tokens" validate:"dive"`
	// PolicyFile replaces the default role policy (casbin CSV lines, see
	// internal/authz/policy.csv): which roles may call which routes.
	PolicyFile string `yaml:"policy_file"`
}

// Token is one accepted bearer token.
type Token struct {
	Name   string `yaml:"name" validate:"required,max=64,printascii"`
	SHA256 string `yaml:"sha256" validate:"required,len=64,hexadecimal"`
	// Roles decide what the token may call: app (default), auditor, dpo, importer, operator (reviews
	// contested automated decisions), admin, or
	// those of admin.policy_file.
	Roles []string `yaml:"roles" validate:"dive,required,max=64"`
	// Purposes, if set, scope the token (an entrusted processor's, PUR-08): it records and
	// reads consent only for these purposes or their sub-purposes (403
	// token.purpose_not_allowed otherwise). Unset: every purpose.
	Purposes []string `yaml:"purposes" validate:"max=64,dive,required,max=100"`
	// SubjectsRequests false keeps the token off the data-subject request routes
	// (/v1/requests*: 403 token.requests_not_allowed). Default true.
	SubjectsRequests *bool `yaml:"subjects_requests"`
}

// Consent configures the consent ledger.
type Consent struct {
	// EUConsentAge is the GDPR Art. 8 age of digital consent, 13 to 16. Default 16.
	EUConsentAge int `yaml:"eu_consent_age" validate:"omitempty,min=13,max=16"`
	// Purposes override the default taxonomy's settings per purpose.
	Purposes map[string]PurposeOverride `yaml:"purposes" validate:"dive,keys,max=100,endkeys"`
}

// PurposeOverride changes one purpose of the default taxonomy.
type PurposeOverride struct {
	// Validity is how long consent for the purpose lasts ("8760h"); "0s" means until withdrawn.
	Validity *Duration `yaml:"validity"`
	// LegalBases replaces the lawful bases per regime (pipl, gdpr).
	LegalBases map[string][]string `yaml:"legal_bases" validate:"dive,keys,oneof=pipl gdpr,endkeys,dive,required"`
}

// Duration is a time.Duration written as "720h" in YAML.
type Duration struct{ time.Duration }

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	switch {
	case err != nil:
		return fmt.Errorf("line %d: %q is not a duration such as 720h", n.Line, n.Value)
	case v < 0:
		return fmt.Errorf("line %d: %q is negative; a duration here is 0 or more, such as 720h", n.Line, n.Value)
	}
	d.Duration = v
	return nil
}

// Load reads and validates the file at path.
func Load(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(b)
}

// Parse parses and validates a configuration file's contents.
func Parse(b []byte) (*File, error) {
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, decodeProblem(err, b)
	}
	v := validator.New(validator.WithRequiredStructEnabled())
	// host:port where the port may be 0 (any free port), which hostname_port refuses.
	_ = v.RegisterValidation("listen_addr", func(fl validator.FieldLevel) bool {
		host, port, err := net.SplitHostPort(fl.Field().String())
		if err != nil || strings.ContainsAny(host, " /") {
			return false
		}
		n, err := strconv.Atoi(port)
		return err == nil && n >= 0 && n <= 65535
	})
	// Store and recipient names appear in paths (/v1/callbacks/<store>) and file names.
	_ = v.RegisterValidation("name", func(fl validator.FieldLevel) bool {
		s := fl.Field().String()
		return s != "" && strings.IndexFunc(s, func(r rune) bool {
			return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '-' && r != '_'
		}) < 0
	})
	_ = v.RegisterValidation("host_port", func(fl validator.FieldLevel) bool {
		host, port, err := net.SplitHostPort(fl.Field().String())
		n, perr := strconv.Atoi(port)
		return err == nil && host != "" && !strings.ContainsAny(host, " /") && perr == nil && n > 0 && n <= 65535
	})
	_ = v.RegisterValidation("duration", func(fl validator.FieldLevel) bool {
		d, err := time.ParseDuration(fl.Field().String())
		return err == nil && d > 0
	})
	// A Duration is checked as the time.Duration it holds (min=4416h).
	v.RegisterCustomTypeFunc(func(v reflect.Value) any { return v.Interface().(Duration).Duration }, Duration{})
	v.RegisterTagNameFunc(func(fld reflect.StructField) string {
		name, _, _ := strings.Cut(fld.Tag.Get("yaml"), ",")
		return name
	})
	if err := v.Struct(&f); err != nil {
		var ve validator.ValidationErrors
		if errors.As(err, &ve) {
			var msgs []string
			for _, fe := range ve {
				msgs = append(msgs, message(fe))
			}
			return nil, problems(msgs)
		}
		return nil, fmt.Errorf("config: %w", err)
	}
	if msgs := slices.Concat(f.routeProblems(), f.frequencyProblems(), f.assessmentProblems(), f.retentionProblems()); len(msgs) > 0 {
		return nil, problems(msgs)
	}
	// A records: decision_log rule sets the decision log's retention.
	if d, ok := f.RecordsRetention("decision_log"); ok {
		f.DecisionLog.Retention = &Duration{d}
	}
	if f.Data != "" && f.DataDir != "" {
		return nil, errors.New("config: data and data_dir are two names for the data directory; set only one")
	}
	if f.Data == "" {
		f.Data = f.DataDir
	}
	if f.Data == "" {
		f.Data = DefaultDataDir
	}
	if f.Regime == "" {
		f.Regime = "pipl"
	}
	if f.AdminListen == "" {
		f.AdminListen = DefaultAdminListen
	}
	return &f, nil
}

// Taxonomy returns the taxonomy privguard enforces: the default purposes with the file's
// overrides (consent.purposes) applied and validated (legitimate interests under PIPL is
// rejected here: CON-01), the purposes and data categories the file declares (purposes,
// categories: purposes.go), and checks every purpose, data category and legal basis the
// file names against them (see checkNames): an unknown one is an error naming its path
// and, where one is close, the name probably meant. Serve calls it at start and refuses to
// start on an error; the policy's data (policy.Data) and the record of processing are built
// from what it returns.
func (f *File) Taxonomy() (*privguard.Taxonomy, error) {
	infos := privguard.DefaultPurposes()
	seen := map[string]bool{}
	for i := range infos {
		o, ok := f.Consent.Purposes[string(infos[i].Purpose)]
		if !ok {
			continue
		}
		seen[string(infos[i].Purpose)] = true
		if o.Validity != nil {
			infos[i].Validity = o.Validity.Duration
		}
		if o.LegalBases != nil {
			bases := map[privguard.Regime][]privguard.LegalBasis{}
			for r, list := range o.LegalBases {
				for _, b := range list {
					bases[privguard.Regime(r)] = append(bases[privguard.Regime(r)], privguard.LegalBasis(b))
				}
			}
			infos[i].Bases = bases
		}
	}
	var names []string
	for _, info := range infos {
		names = append(names, string(info.Purpose))
	}
	slices.Sort(names)
	var msgs []string
	for _, name := range sortedKeys(f.Consent.Purposes) {
		if !seen[name] {
			msgs = append(msgs, fmt.Sprintf("consent.purposes[%s]: not a purpose of the default taxonomy%s", name, suggestPurpose(name, names)))
		}
	}
	msgs = append(msgs, f.checkBases()...)
	// The declared categories and purposes (purposes.go) join the built-in ones before the
	// names the rest of the file uses are checked against them.
	declared, cmsgs := f.declaredCategories()
	msgs = append(msgs, cmsgs...)
	cats, err := privguard.NewTaxonomy(nil, declared...)
	if err != nil {
		return nil, fmt.Errorf("config: categories: %w", err)
	}
	infos, pmsgs := f.declaredPurposes(infos, cats)
	msgs = append(msgs, pmsgs...)
	names = names[:0]
	for _, info := range infos {
		names = append(names, string(info.Purpose))
	}
	slices.Sort(names)
	msgs = append(msgs, f.checkNames(names, cats)...)
	msgs = append(msgs, f.checkAssessmentNames(names, cats)...)
	msgs = append(msgs, f.checkRetentionNames(names, cats)...)
	msgs = append(msgs, f.checkPortalNames(names, cats)...)
	if len(msgs) > 0 {
		return nil, problems(msgs)
	}
	t, err := privguard.NewTaxonomy(infos, declared...)
	if err != nil {
		return nil, fmt.Errorf("config: consent.purposes: %w", err)
	}
	return t, nil
}

// problems is the error for the configuration problems msgs: one per line when there are
// several.
func problems(msgs []string) error {
	if len(msgs) == 1 {
		return fmt.Errorf("config: %s", msgs[0])
	}
	return fmt.Errorf("config: %d problems:\n  %s", len(msgs), strings.Join(msgs, "\n  "))
}
