package adminapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-playground/validator/v10"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/disclosure"
	"github.com/privguard/privguard/dsar"
	"github.com/privguard/privguard/identity"
	"github.com/privguard/privguard/incident"
	"github.com/privguard/privguard/internal/authz"
	"github.com/privguard/privguard/internal/callers"
	"github.com/privguard/privguard/internal/ropa"
	"github.com/privguard/privguard/internal/trail"
	"github.com/privguard/privguard/outreach"
	"github.com/privguard/privguard/vault"
)

// Config configures [New].
type Config struct {
	// Ledger is the consent ledger. Required.
	Ledger *consent.Ledger
	// Vault serves /v1/vault/*; nil leaves those routes out.
	Vault *vault.Vault
	// Requests serves /v1/requests/* (data-subject requests); nil leaves them out.
	Requests *dsar.Engine
	// IdentityTokens, if set, verifies the identity tokens a request may carry
	// ("identity_token"): the company's app vouches for its logged-in user.
	IdentityTokens *dsar.TokenVerifier
	// Notifier, if set, sends one-time codes (POST /v1/requests/{id}/code).
	Notifier dsar.Notifier
	// Disclosures serves the disclosure log and the cross-border register
	// (/v1/disclosures, /v1/transfers); nil leaves those routes out.
	Disclosures *disclosure.Gate
	// Trail, if set, receives every privileged call (the admin trail) and serves GET
	// /v1/trail.
	Trail *trail.Trail
	// Regime is the service's regime, the default of /v1/transfers.
	Regime privguard.Regime
	// Tokens authenticate callers. Required and non-empty.
	Tokens Tokens
	// TokenHint, if set, is what a caller whose token is not accepted is told about where
	// valid tokens come from ("use the token in privguard-data/admin.token").
	TokenHint string
	// Logger receives request logs and errors. If nil, nothing is logged.
	Logger *slog.Logger
	// Checks, if set, adds figures to the /readyz details (decision-log counters).
	Checks func() map[string]any
	// Replica names this process in /readyz (ready or not).
	Replica string
	// Metrics, if set, serves GET /metrics (Prometheus), behind the same authentication.
	Metrics http.Handler
	// Authorizer decides which roles may call which routes; nil means the default policy
	// (authz.DefaultPolicy).
	Authorizer *authz.Authorizer
	// CodesPerSubject bounds the one-time codes sent to one subject, over all its requests,
	// in CodeSubjectWindow; zero means DefaultCodesPerSubject.
	CodesPerSubject int
	// Now is the clock (rate limits, readiness); nil means time.Now.
	Now func() time.Time
	// MaxCallbackBody bounds a webhook store's completion callback (POST
	// /v1/callbacks/{store}); zero means DefaultMaxCallbackBody. A recipient's is bounded by
	// MaxAckCallback.
	MaxCallbackBody int64
	// CallbackBudget bounds the callback bytes read at once, over all callbacks; zero means
	// DefaultCallbackBudget (and never less than MaxCallbackBody).
	CallbackBudget int64
	// RecordOfProcessing, if set, serves GET /v1/ropa: it returns the record of processing
	// of the configuration the server enforces (ropa.Build).
	RecordOfProcessing func() (*ropa.Record, error)
	// Assessments serves GET /v1/assessments (the register of impact assessments); nil
	// leaves it out.
	Assessments AssessmentRegister
	// AuditPack serves GET /v1/audit/pack (the signed audit pack of a period); nil leaves it
	// out.
	AuditPack AuditPacker
	// DecisionLog, if set, is the decision log's active file (<data>/decisions.log): GET
	// /v1/decisions/stats counts it and its segments.
	DecisionLog string
	// DualControl asks a second principal's approval before bulk exports of personal data;
	// the zero value asks none. With ExportRows set, /v1/approvals* are served.
	DualControl DualControl
	// Callers serves /v1/callers* (the sidecar's callers, their termination and deletion
	// confirmation); nil leaves them out.
	Callers *callers.Registry
	// Incidents serves /v1/incidents (the incident register); nil leaves it out.
	Incidents *incident.Register
	// Retention serves /v1/retention/runs (the retention sweeper); nil leaves them out.
	Retention RetentionRunner
	// Identities serves /v1/subjects/{subject}/identifiers* (the subjects' phones, emails
	// and other identifiers) and lets POST /v1/requests name the subject by a verified
	// identifier; nil leaves them out.
	Identities *identity.Registry
	// Outreach serves POST /v1/outreach/check (the send gate) and the public one-click
	// unsubscribe route (POST and GET /v1/outreach/unsubscribe/{token}); nil leaves them out.
	Outreach *outreach.Gate
	// Replies serves POST /v1/outreach/replies/{gateway} (SMS gateways' replies, signed,
	// without an API token: replies.go); nil leaves it out.
	Replies *outreach.Inbox
}

// Server is the admin HTTP API.
type Server struct {
	ledger   *consent.Ledger
	vault    *vault.Vault
	requests *dsar.Engine
	idTokens *dsar.TokenVerifier
	notifier dsar.Notifier
	// disclosures and regime serve the DPO's registers of provisions.
	disclosures *disclosure.Gate
	regime      privguard.Regime
	trail       *trail.Trail
	tokens      Tokens
	tokenHint   string
	log         *slog.Logger
	validate    *validator.Validate
	mux         *http.ServeMux
	checks      func() map[string]any
	replica     string
	authz       *authz.Authorizer
	codes       *codeLimiter
	now         func() time.Time
	// probeMu guards requestsOK, when the request store's last probe succeeded.
	probeMu    sync.Mutex
	requestsOK time.Time
	// maxCallback and callbacks bound the unauthenticated callback bodies.
	maxCallback int64
	callbacks   *callbackBudget
	ropa        func() (*ropa.Record, error)
	assessments AssessmentRegister
	auditPack   AuditPacker
	// decisionLog is counted one scan at a time (decisionScan holds the turn).
	decisionLog  string
	decisionScan chan struct{}
	dual         DualControl
	callers      *callers.Registry
	// authed are the patterns of the routes that take a bearer token (Routes).
	authed     []string
	incidents  *incident.Register
	retention  RetentionRunner
	identities *identity.Registry
	outreach   *outreach.Gate
	replies    *outreach.Inbox
}

// New returns the API server.
func New(cfg Config) (*Server, error) {
	if cfg.Ledger == nil {
		return nil, errors.New("adminapi: Config.Ledger is nil")
	}
	if len(cfg.Tokens) == 0 {
		return nil, errors.New("adminapi: no bearer token configured")
	}
	if cfg.DualControl.ExportRows < 0 || (cfg.DualControl.ExportRows > 0 && cfg.DualControl.Approvals == nil) {
		return nil, errors.New("adminapi: Config.DualControl needs a positive ExportRows and Approvals")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Authorizer == nil {
		a, err := authz.New("")
		if err != nil {
			return nil, err
		}
		cfg.Authorizer = a
	}
	if cfg.CodesPerSubject <= 0 {
		cfg.CodesPerSubject = DefaultCodesPerSubject
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxCallbackBody <= 0 {
		cfg.MaxCallbackBody = DefaultMaxCallbackBody
	}
	if cfg.CallbackBudget <= 0 {
		cfg.CallbackBudget = DefaultCallbackBudget
	}
	cfg.CallbackBudget = max(cfg.CallbackBudget, cfg.MaxCallbackBody)
	s := &Server{ledger: cfg.Ledger, vault: cfg.Vault, requests: cfg.Requests, idTokens: cfg.IdentityTokens, notifier: cfg.Notifier, disclosures: cfg.Disclosures, regime: cfg.Regime, trail: cfg.Trail,
		tokens: cfg.Tokens, tokenHint: cfg.TokenHint, log: cfg.Logger, validate: newValidator(), mux: http.NewServeMux(), checks: cfg.Checks, replica: cfg.Replica, authz: cfg.Authorizer,
		codes: newCodeLimiter(cfg.CodesPerSubject, CodeSubjectWindow), now: cfg.Now,
		maxCallback: cfg.MaxCallbackBody, callbacks: &callbackBudget{max: cfg.CallbackBudget}, ropa: cfg.RecordOfProcessing, auditPack: cfg.AuditPack,
		assessments: cfg.Assessments, decisionLog: cfg.DecisionLog, decisionScan: make(chan struct{}, 1), dual: cfg.DualControl, callers: cfg.Callers,
		incidents: cfg.Incidents, retention: cfg.Retention, identities: cfg.Identities, replies: cfg.Replies, outreach: cfg.Outreach}
	s.routes()
	if cfg.Metrics != nil {
		s.authed = append(s.authed, "GET /metrics")
		s.mux.Handle("GET /metrics", s.logRequests("GET /metrics", s.authenticate("GET /metrics", s.authorize("GET /metrics", cfg.Metrics))))
	}
	return s, nil
}

// Routes returns the patterns ("POST /v1/requests/{id}/approve") of every route the
// server registered that takes a bearer token, sorted: the routes the role policy governs.
func (s *Server) Routes() []string {
	out := slices.Clone(s.authed)
	slices.Sort(out)
	return out
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// handler is an API handler: it writes a success response or returns an error for
// writeError.
type handler func(w http.ResponseWriter, r *http.Request) error

func (s *Server) routes() {
	authed := func(pattern string, h handler) {
		s.authed = append(s.authed, pattern)
		if strings.Contains(pattern, " /v1/requests/{id}") {
			h = s.subjectRequest(h)
		}
		s.mux.Handle(pattern, s.logRequests(pattern, s.authenticate(pattern, s.trailed(pattern, s.authorize(pattern, s.scoped(pattern, s.wrap(h)))))))
	}
	authed("POST /v1/notices", s.postNotice)
	authed("GET /v1/notices/{id}", s.getNotices)
	// The route is an app's (the subjects' choices) and, for the controller's own facts
	// (erase, expire, lift_restriction), a dpo's: postConsent checks which per action.
	s.authed = append(s.authed, "POST /v1/consents")
	s.mux.Handle("POST /v1/consents", s.logRequests("POST /v1/consents", s.authenticate("POST /v1/consents",
		s.trailed("POST /v1/consents", s.authorizeOr("POST /v1/consents", authz.RecordFacts, s.wrap(s.postConsent))))))
	authed("POST /v1/consents/import", s.importConsents)
	authed("GET /v1/consents/export", s.getConsentExport)
	authed("GET /v1/consents/{id}/receipt", s.getReceipt)
	authed("GET /v1/subjects/{subject}/consents", s.getSubjectConsents)
	authed("GET /v1/subjects/{subject}/consents/history", s.getSubjectHistory)
	s.accountRoute()
	var identifierPaths []string
	if s.identities != nil {
		identifierPaths = s.identifierRoutes(authed)
	}
	if s.vault != nil {
		authed("POST /v1/vault/seal", s.vaultSeal)
		authed("POST /v1/vault/open", s.vaultOpen)
		authed("POST /v1/vault/blind-index", s.vaultBlindIndex)
		authed("DELETE /v1/vault/subjects/{subject}", s.vaultShred)
	}
	if s.requests != nil {
		authed("POST /v1/requests", s.postRequest)
		authed("POST /v1/requests/bulk", s.postRequestsBulk)
		authed("GET /v1/requests", s.listRequests)
		authed("GET /v1/requests/register", s.requestRegister)
		authed("GET /v1/requests/{id}", s.getRequest)
		authed("POST /v1/requests/{id}/verify", s.verifyRequest)
		authed("POST /v1/requests/{id}/code", s.sendCode)
		authed("POST /v1/requests/{id}/code/verify", s.verifyCode)
		authed("POST /v1/requests/{id}/extend", s.extendRequest)
		authed("POST /v1/requests/{id}/cancel", s.cancelRequest)
		authed("POST /v1/requests/{id}/reject", s.rejectRequest)
		authed("POST /v1/requests/{id}/retry", s.retryRequest)
		authed("POST /v1/requests/{id}/approve", s.approveRequest)
		authed("POST /v1/requests/{id}/review", s.reviewRequest)
		authed("POST /v1/requests/{id}/human-review", s.askHumanReview)
		authed("POST /v1/requests/{id}/link", s.issueLink)
		// The subject's tags, segments and scores, and their deletion (MKT-06).
		authed("GET /v1/subjects/{subject}/profile", s.getProfile)
		authed("POST /v1/subjects/{subject}/profile/delete", s.postProfileDelete)
		// The download token is the credential: the subject fetches the package without
		// an API token (through the company's portal or the link they were sent).
		s.mux.Handle("GET /v1/requests/{id}/result", s.logRequests("GET /v1/requests/{id}/result",
			s.trailedLink("GET /v1/requests/{id}/result", s.wrap(s.downloadResult))))
		// Stores and recipients behind webhooks report completions here, authenticated by
		// their HMAC signature rather than an API token.
		s.mux.Handle("POST /v1/callbacks/{store}", s.logRequests("POST /v1/callbacks/{store}", s.wrap(s.callback)))
	}
	if s.trail != nil {
		authed("GET /v1/trail", s.getTrail)
	}
	if s.disclosures != nil {
		authed("GET /v1/disclosures", s.getDisclosures)
		authed("GET /v1/transfers", s.getTransfers)
	}
	if s.ropa != nil {
		authed("GET /v1/ropa", s.getRopa)
	}
	if s.assessments != nil {
		authed("GET /v1/assessments", s.getAssessments)
	}
	if s.auditPack != nil {
		authed("GET /v1/audit/pack", s.getAuditPack)
	}
	if s.decisionLog != "" {
		authed("GET /v1/decisions/stats", s.getDecisionStats)
	}
	if s.dual.ExportRows > 0 {
		authed("GET /v1/approvals", s.getApprovals)
		authed("GET /v1/approvals/{id}", s.getApproval)
		authed("POST /v1/approvals/{id}/approve", s.approve)
	}
	if s.callers != nil {
		authed("GET /v1/callers", s.getCallers)
		authed("POST /v1/callers/{name}/terminate", s.terminateCaller)
		authed("POST /v1/callers/{name}/deletion-confirmation", s.confirmDeletion)
	}
	if s.incidents != nil {
		authed("POST /v1/incidents", s.postIncident)
		authed("GET /v1/incidents", s.getIncidents)
		authed("GET /v1/incidents/{id}", s.getIncident)
		authed("POST /v1/incidents/{id}/events", s.postIncidentEvent)
		authed("GET /v1/incidents/{id}/notices/{kind}", s.getIncidentNotice)
	}
	if s.retention != nil {
		authed("POST /v1/retention/runs", s.postRetentionRun)
		authed("GET /v1/retention/runs/{id}", s.getRetentionRun)
	}
	if s.outreach != nil {
		authed("POST /v1/outreach/check", s.postOutreachCheck)
		// Public: the sealed token is the credential (RFC 8058 one-click, no login).
		unsub := s.outreach.UnsubscribeHandler(s.log)
		s.mux.Handle("POST /v1/outreach/unsubscribe/{token}", s.logRequests("POST /v1/outreach/unsubscribe/{token}", unsub))
		s.mux.Handle("GET /v1/outreach/unsubscribe/{token}", s.logRequests("GET /v1/outreach/unsubscribe/{token}", unsub))
	}
	if s.identities != nil {
		authed("GET /v1/outreach/suppressions", s.getSuppressions)
	}
	var replyPaths []string
	if s.replies != nil {
		replyPaths = s.replyRoutes()
	}
	authed("GET /healthz", s.healthz)
	authed("GET /readyz", s.readyz)
	// Public: the key receipts are signed with exists to be published.
	s.mux.Handle("GET /v1/receipts/keys", s.logRequests("GET /v1/receipts/keys", s.wrap(s.getReceiptKeys)))
	// Public: the JSON Schemas access packages follow (DSR-07).
	s.mux.Handle("GET /v1/schema/{name}", s.logRequests("GET /v1/schema/{name}", s.wrap(s.getSchema)))

	// Other methods on known paths get 405, unknown paths 404, both as problems.
	paths := []string{"/v1/notices", "/v1/notices/{id}", "/v1/consents", "/v1/consents/import", "/v1/consents/export", "/v1/consents/{id}/receipt",
		"/v1/subjects/{subject}/consents", "/v1/subjects/{subject}/consents/history", "/healthz", "/readyz", "/v1/receipts/keys",
		"/v1/schema/{name}"}
	paths = append(paths, identifierPaths...)
	paths = append(paths, replyPaths...)
	if s.disclosures != nil {
		paths = append(paths, "/v1/disclosures", "/v1/transfers")
	}
	if s.trail != nil {
		paths = append(paths, "/v1/trail")
	}
	if s.requests != nil {
		paths = append(paths, "/v1/requests", "/v1/requests/{id}", "/v1/callbacks/{store}", // {id} covers register
			"/v1/subjects/{subject}/profile", "/v1/subjects/{subject}/profile/delete")
		for _, action := range []string{"verify", "code", "code/verify", "extend", "cancel", "reject", "retry", "approve", "review", "human-review", "link", "result"} {
			paths = append(paths, "/v1/requests/{id}/"+action)
		}
	}
	if s.ropa != nil {
		paths = append(paths, "/v1/ropa")
	}
	if s.assessments != nil {
		paths = append(paths, "/v1/assessments")
	}
	if s.decisionLog != "" {
		paths = append(paths, "/v1/decisions/stats")
	}
	if s.dual.ExportRows > 0 {
		paths = append(paths, "/v1/approvals", "/v1/approvals/{id}", "/v1/approvals/{id}/approve")
	}
	if s.callers != nil {
		paths = append(paths, "/v1/callers", "/v1/callers/{name}/terminate", "/v1/callers/{name}/deletion-confirmation")
	}
	if s.auditPack != nil {
		paths = append(paths, "/v1/audit/pack")
	}
	if s.incidents != nil {
		paths = append(paths, "/v1/incidents", "/v1/incidents/{id}", "/v1/incidents/{id}/events", "/v1/incidents/{id}/notices/{kind}")
	}
	if s.retention != nil {
		paths = append(paths, "/v1/retention/runs", "/v1/retention/runs/{id}")
	}
	if s.outreach != nil {
		paths = append(paths, "/v1/outreach/check", "/v1/outreach/unsubscribe/{token}")
	}
	if s.identities != nil {
		paths = append(paths, "/v1/outreach/suppressions")
	}
	for _, path := range paths {
		s.mux.Handle(path, s.logRequests(path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			privguard.NewProblem(http.StatusMethodNotAllowed, TypeMethodNotAllowed, "Method not allowed", "").Write(w)
		})))
	}
	s.mux.Handle("/", s.logRequests("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		privguard.NewProblem(http.StatusNotFound, TypeNotFound, "Not found", "no such API").Write(w)
	})))
}

func (s *Server) wrap(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// readyz reports ready when privguard can commit: the consent ledger (its latest commit or
// probe, consent.Ledger.Ping) and, with requests configured, the request store (a probe,
// dsar.Engine.Ping, at most once per consent.ProbeInterval while it succeeds). A store
// that answers reads but takes no writes (a read-only file system) is not ready.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{"consent_store": "ok"}
	ready := true
	if err := s.ledger.Ping(ctx); err != nil {
		s.log.Error("readiness check failed", "store", "consent", "err", err)
		checks["consent_store"], ready = "unavailable", false
		if f := s.ledger.Follow(); errors.Is(err, consent.ErrStale) && f.Corrupt {
			checks["consent_store"] = fmt.Sprintf("stale for %s: a record in the shared store does not fit the chain (the ledger was altered in the database); consent decisions fail closed: run privguard consent verify --store",
				f.Lag.Round(time.Millisecond))
		} else if errors.Is(err, consent.ErrStale) {
			checks["consent_store"] = fmt.Sprintf("stale: not confirmed current for %s (max_staleness %s); consent decisions fail closed until the shared store answers",
				f.Lag.Round(time.Millisecond), f.MaxStaleness)
		}
	}
	if s.requests != nil {
		checks["request_store"] = "ok"
		if err := s.pingRequests(ctx); err != nil {
			s.log.Error("readiness check failed", "store", "requests", "err", err)
			checks["request_store"], ready = "unavailable", false
		}
	}
	if !ready {
		body := map[string]any{"status": "unavailable", "checks": checks}
		if s.replica != "" {
			body["replica"] = s.replica
		}
		writeJSON(w, http.StatusServiceUnavailable, body)
		return nil
	}
	stats := s.ledger.Stats()
	details := map[string]any{"consent_records": stats.Records, "subjects": stats.Subjects}
	if s.replica != "" {
		details["replica"] = s.replica
	}
	if f := s.ledger.Follow(); f.Shared {
		details["consent_lag_seconds"], details["consent_followed_records"] = f.Lag.Seconds(), f.Followed
	}
	for k, v := range checks {
		details[k] = v
	}
	if s.checks != nil {
		for k, v := range s.checks() {
			details[k] = v
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "checks": details})
	return nil
}

// pingRequests probes the request store unless a probe succeeded within
// consent.ProbeInterval; a failure is never cached, so recovery shows at once.
func (s *Server) pingRequests(ctx context.Context) error {
	s.probeMu.Lock()
	defer s.probeMu.Unlock()
	if now := s.now(); !s.requestsOK.IsZero() && now.Sub(s.requestsOK) < consent.ProbeInterval {
		return nil
	}
	if err := s.requests.Ping(ctx); err != nil {
		s.requestsOK = time.Time{}
		return err
	}
	s.requestsOK = s.now()
	return nil
}
