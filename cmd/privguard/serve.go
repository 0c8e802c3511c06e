package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/audit"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/internal/adminapi"
	"github.com/privguard/privguard/internal/approval"
	"github.com/privguard/privguard/internal/authz"
	"github.com/privguard/privguard/internal/config"
	"github.com/privguard/privguard/internal/metrics"
	"github.com/privguard/privguard/internal/ropa"
	"github.com/privguard/privguard/middleware"
	"github.com/privguard/privguard/retention"
	"github.com/privguard/privguard/vault"
)

// Server timeouts.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
	shutdownTimeout   = 15 * time.Second
	adminTokenFile    = "admin.token"
	decisionLogFile   = "decisions.log"
)

// serveFlags are the flags of 'privguard serve'.
type serveFlags struct {
	config, data, adminListen, logLevel, replica *string
}

func newServeFlags(fs *flag.FlagSet) serveFlags {
	return serveFlags{
		config:      fs.String("config", "", "YAML configuration `file` (optional; see above)"),
		data:        fs.String("data", "", "data `directory` of the embedded store (default "+config.DefaultDataDir+"; overrides the file's data)"),
		adminListen: fs.String("admin-listen", "", "`address` of the consent and admin APIs (default "+config.DefaultAdminListen+"; overrides admin_listen)"),
		logLevel:    fs.String("log-level", "info", "log `level`: debug, info, warn or error"),
		replica:     fs.String("replica", "", "this process's `name` in logs, decision-log lines, /readyz and request leases (default: the file's replica, else the hostname)"),
	}
}

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fset := newFlagSet("serve")
	f := newServeFlags(fset)
	positional, code, ok := parseFlags(fset, "serve", args, stdout, stderr)
	if !ok {
		return code
	}
	if len(positional) > 0 {
		return usageError(stderr, "serve", fmt.Sprintf("unexpected argument %q (the configuration file goes after --config)", positional[0]))
	}
	configPath, data, adminListen, logLevel := f.config, f.data, f.adminListen, f.logLevel
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "privguard: --log-level %q: want debug, info, warn or error\n", *logLevel)
		return 2
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))

	cfg := &config.File{Data: config.DefaultDataDir, AdminListen: config.DefaultAdminListen}
	if *configPath != "" {
		var err error
		if cfg, err = config.Load(*configPath); err != nil {
			fmt.Fprintf(stderr, "privguard: %v\n", err)
			return 2
		}
	}
	if *data != "" {
		cfg.Data = *data
	}
	if *adminListen != "" {
		cfg.AdminListen = *adminListen
	}
	if *f.replica != "" {
		if !validReplica(*f.replica) {
			fmt.Fprintf(stderr, "privguard: --replica %q: a replica name is 1 to 64 letters, digits, - and _\n", *f.replica)
			return 2
		}
		cfg.Replica = *f.replica
	}
	cfg.Replica = replicaName(cfg)
	log = log.With("replica", cfg.Replica)
	// The names the file uses (purposes, data categories) are checked before anything
	// starts, and reported plainly rather than as a log line.
	if _, err := cfg.Taxonomy(); err != nil {
		fmt.Fprintf(stderr, "privguard: %v\n", err)
		return 2
	}
	if err := runServer(ctx, cfg, log, stdout); err != nil {
		if errors.Is(err, boltstore.ErrLocked) {
			fmt.Fprintf(stderr, "privguard: the data file %s is in use by another privguard process (another serve, or a keys command): stop it first, or give this serve its own --data directory\n",
				filepath.Join(cfg.Data, dataFile))
			return 2
		}
		log.Error("privguard serve stopped", "err", err)
		return 2
	}
	return 0
}

// runServer runs until ctx ends.
func runServer(ctx context.Context, cfg *config.File, log *slog.Logger, stdout io.Writer) error {
	taxonomy, err := cfg.Taxonomy()
	if err != nil {
		return err
	}
	// The role policy and the tokens' roles are checked before anything is written.
	var policy []byte
	if cfg.Admin.PolicyFile != "" {
		if policy, err = os.ReadFile(cfg.Admin.PolicyFile); err != nil {
			return fmt.Errorf("admin policy: %w", err)
		}
	}
	authorizer, err := authz.New(string(policy))
	if err != nil {
		return err
	}
	if err := checkTokenRoles(cfg.Admin.Tokens, authorizer.Roles()); err != nil {
		return err
	}
	keys := vaultKeys{kekURI: cfg.Vault.KEKURI, master: masterKeyPath(cfg), next: filepath.Join(cfg.Data, nextKeyFile)}
	if cfg.Store.Postgres != nil {
		if keys.kekURI == "" && cfg.Vault.MasterKeyFile == "" {
			return errors.New("config: with store.postgres every replica must use the same key-encryption key: set vault.kek_uri, or vault.master_key_file to a keyset every replica reads (privguard keys init --out PATH writes one)")
		}
		keys.next = ""
	}
	be, err := openBackend(ctx, cfg, true, log)
	if err != nil {
		return err
	}
	defer be.Close()
	stale := maxStaleness(cfg)
	if be.Shared && stale > time.Minute {
		log.Warn("store.max_staleness is over a minute: a replica cut off from the store keeps deciding on what it knew for that long, missing withdrawals made through the others", "max_staleness", stale.String())
	}
	vlt, err := openVaultKEK(ctx, keys, be.Vault, vault.Config{MaxStaleness: stale}, be.Fresh, log)
	if err != nil {
		return err
	}
	defer vlt.Close()
	ledger, err := consent.Open(ctx, consent.Config{Store: be.Consent, Taxonomy: taxonomy,
		EUConsentAge: cfg.Consent.EUConsentAge, Logger: log, MaxStaleness: stale})
	if err != nil {
		return err
	}
	defer ledger.Close()
	log.Info("privguard store open", "store", be.Where, "shared", be.Shared)
	// The impact assessments enforced are recorded before anything is enforced (AUD-03).
	assessments, err := newRegistry(cfg, be.Journal)
	if err != nil {
		return err
	}
	if err := recordAssessments(ctx, assessments, log); err != nil {
		return err
	}

	tokens := adminapi.Tokens{}
	for _, t := range cfg.Admin.Tokens {
		p := adminapi.Principal{Name: t.Name, Roles: t.Roles, NoRequests: t.SubjectsRequests != nil && !*t.SubjectsRequests}
		for _, pu := range t.Purposes {
			p.Purposes = append(p.Purposes, privguard.Purpose(pu))
		}
		if err := tokens.AddHash(t.SHA256, p); err != nil {
			return fmt.Errorf("config: admin.tokens: %w", err)
		}
	}
	if len(tokens) > 0 {
		warnIgnoredToken(filepath.Join(cfg.Data, adminTokenFile), tokens, log)
	}
	if len(tokens) == 0 {
		token, created, err := loadOrCreateToken(filepath.Join(cfg.Data, adminTokenFile))
		if err != nil {
			return err
		}
		tokens.Add(token, adminapi.Principal{Name: "admin", Roles: []string{"admin"}})
		if created {
			log.Info("created an admin bearer token", "file", filepath.Join(cfg.Data, adminTokenFile))
		} else {
			log.Info("using the admin bearer token", "file", filepath.Join(cfg.Data, adminTokenFile))
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := errors.Join(
		metrics.Gauge(reg, "privguard_consent_records", "Records in the consent ledger.", func() float64 { return float64(ledger.Stats().Records) }),
		metrics.Gauge(reg, "privguard_consent_subjects", "Subjects in the consent ledger.", func() float64 { return float64(ledger.Stats().Subjects) }),
		metrics.Gauge(reg, "privguard_consent_staleness_seconds", "On a shared store: seconds since this replica last confirmed its consent state is current (0 on the embedded store).",
			func() float64 { return ledger.Follow().Lag.Seconds() }),
		metrics.Counter(reg, "privguard_consent_followed_records_total", "Records committed by other replicas and applied by this one.",
			func() float64 { return float64(ledger.Follow().Followed) }),
	); err != nil {
		return err
	}
	adminTrail, err := openTrail(ctx, be, cfg.Replica, log)
	if err != nil {
		return err
	}
	defer adminTrail.Close()
	if err := metrics.Counter(reg, "privguard_trail_write_failures_total", "Acts that could not be written to the admin trail.",
		func() float64 { return float64(adminTrail.Failures()) }); err != nil {
		return err
	}
	// The egress gate: the sidecar's routes with a recipient and the requests' notices to
	// recipients are checked and logged through it.
	gate, err := disclosureGate(ctx, cfg, be, reg, log)
	if err != nil {
		return err
	}
	defer gate.Close()
	// The sidecar's callers (entrusted processors, PUR-08), refreshed from the log.
	callerReg, err := openCallers(ctx, cfg, be.Journal)
	if err != nil {
		return err
	}
	var sidecarCallers middleware.Callers
	if callerReg != nil {
		sidecarCallers = callerReg
		refreshCtx, stopRefresh := context.WithCancel(context.Background())
		refreshDone := make(chan struct{})
		go func() { defer close(refreshDone); refreshCallers(refreshCtx, callerReg, log) }()
		defer func() { stopRefresh(); <-refreshDone }()
	}
	var checks func() map[string]any
	if cfg.Listen == "" {
		// Only the sidecar enforces routes with the policy; without listen they do nothing.
		var unused []string
		for _, u := range []struct {
			set  bool
			name string
		}{
			{len(cfg.Routes) > 0, "routes"}, {cfg.Policy.Dir != "", "policy.dir"}, {len(cfg.Policy.Frequency) > 0, "policy.frequency"},
			{cfg.FrequencyStore != (config.FrequencyStore{}), "frequency_store"},
			{cfg.Policy.MemoSize != 0 || cfg.Policy.MemoExactContacts != nil, "policy.memo_*"},
			{cfg.UpstreamTransport != (config.Transport{}), "upstream_transport"},
		} {
			if u.set {
				unused = append(unused, u.name)
			}
		}
		if len(unused) > 0 {
			log.Warn(strings.Join(unused, ", ") + " set, but used by the sidecar only, which runs when listen and upstream are set: ignored")
		}
	}
	if cfg.Listen != "" {
		key, err := be.Consent.Secret(ctx, "audit.subject-hmac", func() ([]byte, error) {
			k := make([]byte, 32)
			_, err := rand.Read(k)
			return k, err
		})
		if err != nil {
			return fmt.Errorf("decision log key: %w", err)
		}
		decisions, err := audit.Open(audit.Config{Path: filepath.Join(cfg.Data, decisionLogFile), Key: key, Logger: log, Replica: cfg.Replica,
			Checkpoints: be.Journal, MaxSize: cfg.DecisionLog.Size(), Retention: cfg.DecisionLog.Keep()})
		if err != nil {
			return err
		}
		defer decisions.Close()
		engine, err := newEngine(ctx, cfg, taxonomy, log)
		if err != nil {
			return err
		}
		if cfg.Policy.Dir != "" {
			watchCtx, stopWatch := context.WithCancel(context.Background())
			watchDone := make(chan struct{})
			go func() { defer close(watchDone); engine.Watch(watchCtx, cfg.Policy.Dir, 0) }()
			trailDone := make(chan struct{})
			go func() { defer close(trailDone); trailReloads(watchCtx, engine, adminTrail) }()
			defer func() { stopWatch(); <-trailDone }()
			defer func() { stopWatch(); <-watchDone }()
		}
		checks = func() map[string]any {
			st := engine.Status()
			c := map[string]any{"decision_log_written": decisions.Written(), "decision_log_dropped": decisions.Dropped(),
				"policy_revision": st.Revision, "policy_reload_failures": st.Failures,
				"policy_memo_hits": st.MemoHits, "policy_evaluations": st.Evaluated}
			if st.LastError != nil {
				c["policy_last_reload_error"] = st.LastError.Error()
			}
			return c
		}
		if err := errors.Join(
			metrics.Counter(reg, "privguard_decision_log_dropped_total", "Decision-log events dropped because the buffer was full.",
				func() float64 { return float64(decisions.Dropped()) }),
			metrics.Counter(reg, "privguard_decision_log_written_total", "Decision-log events written.",
				func() float64 { return float64(decisions.Written()) }),
			metrics.Counter(reg, "privguard_policy_reload_failures_total", "Policy reloads rejected (compile error or failing tests).",
				func() float64 { return float64(engine.Status().Failures) }),
			metrics.Counter(reg, "privguard_policy_evaluations_total", "Decisions evaluated by OPA (memo misses).",
				func() float64 { return float64(engine.Status().Evaluated) }),
			metrics.Counter(reg, "privguard_policy_memo_hits_total", "Decisions answered from the memo.",
				func() float64 { return float64(engine.Status().MemoHits) }),
		); err != nil {
			return err
		}
		recorder, err := metrics.NewRecorder(reg, decisions)
		if err != nil {
			return err
		}
		h, closeSidecar, err := sidecar(ctx, cfg, ledger, be.Consent, engine, recorder, vlt, gate, sidecarCallers, log)
		if err != nil {
			return err
		}
		defer closeSidecar()
		stop, bound, err := serveSidecar(ctx, cfg.Listen, h, log)
		if err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			defer cancel()
			stop(sctx)
		}()
		log.Info("privguard sidecar serving", "listen", bound, "upstream", cfg.Upstream)
		fmt.Fprintf(stdout, "privguard: sidecar on http://%s -> %s\n", bound, cfg.Upstream)
	}
	conns, closeConns, err := connectors(ctx, cfg.DSAR.Stores, log)
	if err != nil {
		return err
	}
	defer closeConns()
	if cfg.DSAR.Disclosure.Controller.Name == "" || cfg.DSAR.Disclosure.Retention == "" {
		log.Warn("dsar.disclosure names no controller or retention: access answers will say \"see the privacy notice\" (GDPR Art. 15, PIPL Art. 45 want them)")
	}
	// The subjects' identity links (phones, emails, WeChat ids), on the backend's store:
	// codes, download links and incident notices go to their verified phones and emails.
	identities, err := openIdentities(cfg, be, vlt)
	if err != nil {
		return err
	}
	idTokens, notifier, err := identityVerification(cfg, identities)
	if err != nil {
		return err
	}
	// SMS gateways' replies: a stop keyword withdraws the number's subject's SMS marketing.
	inbox, err := newInbox(cfg.Outreach, ledger, identities, log)
	if err != nil {
		return err
	}
	incidents, err := openIncidents(cfg, be, adminTrail, notifier, log)
	if err != nil {
		return err
	}
	if err := incidentMetrics(reg, incidents); err != nil {
		return err
	}
	incidentCtx, stopIncidents := context.WithCancel(context.Background())
	incidentsDone := make(chan struct{})
	go func() { defer close(incidentsDone); incidents.Run(incidentCtx, incidentInterval) }()
	defer func() { stopIncidents(); <-incidentsDone }()
	// The decision log's key, for the subject's decisions an explanation shows; none if the
	// sidecar never wrote a decision log.
	decisionKey := func(ctx context.Context) ([]byte, error) {
		return be.Consent.Secret(ctx, "audit.subject-hmac", func() ([]byte, error) { return nil, errNoDecisionLog })
	}
	requests, err := newDSAR(cfg, be.Requests, conns, ledger, vlt, taxonomy, notifier, identities, gate, decisionKey, log)
	if err != nil {
		return err
	}
	dsarCtx, stopDSAR := context.WithCancel(context.Background())
	dsarDone := make(chan struct{})
	go func() { defer close(dsarDone); requests.Run(dsarCtx, dsarStepInterval) }()
	defer func() { stopDSAR(); <-dsarDone }()
	sweeper := newRetention(cfg, conns, requests, ledger, log)
	for _, c := range retention.Uncovered(sweeper.planner.Rules, sweeper.planner.Stores, nil) {
		log.Warn("no retention rule covers a category the data map holds: it is kept indefinitely (PIPL Art. 19, GDPR Art. 5(1)(e) want a period)", "category", string(c))
	}
	if every := cfg.RetentionSweep.Schedule(); every > 0 && len(sweeper.planner.Rules) > 0 {
		sweepDone := make(chan struct{})
		go func() { defer close(sweepDone); sweeper.sweepEvery(dsarCtx, every) }()
		defer func() { stopDSAR(); <-sweepDone }()
	}
	tokenHint := "use the token in " + filepath.Join(cfg.Data, adminTokenFile)
	if len(cfg.Admin.Tokens) > 0 {
		tokenHint = "only the tokens admin.tokens lists are accepted (not one serve generated in " + filepath.Join(cfg.Data, adminTokenFile) + ")"
	}
	var dual adminapi.DualControl
	if n := cfg.DualControl.ExportRows; n > 0 {
		key, err := be.Consent.Secret(ctx, "approval.digest-hmac", func() ([]byte, error) {
			k := make([]byte, 32)
			_, err := rand.Read(k)
			return k, err
		})
		if err != nil {
			return fmt.Errorf("approvals key: %w", err)
		}
		reg, err := approval.Open(be.Journal, key, nil)
		if err != nil {
			return err
		}
		dual = adminapi.DualControl{ExportRows: n, Approvals: reg}
	}
	if callerReg != nil && cfg.Listen == "" {
		log.Warn("callers set, but used by the sidecar only, which runs when listen and upstream are set")
	}
	gateOut, err := newOutreachGate(ctx, cfg, ledger, vlt, log)
	if err != nil {
		return err
	}
	api, err := adminapi.New(adminapi.Config{Ledger: ledger, Outreach: gateOut, DualControl: dual, Callers: callerReg, Authorizer: authorizer, TokenHint: tokenHint, Vault: vlt, Requests: requests, IdentityTokens: idTokens, Notifier: notifier, Tokens: tokens, Logger: log, Checks: checks, Replica: cfg.Replica, DecisionLog: filepath.Join(cfg.Data, decisionLogFile),
		Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), Disclosures: gate, Regime: privguard.Regime(cfg.Regime), Trail: adminTrail,
		// The record of processing of the configuration this server enforces (GET /v1/ropa).
		RecordOfProcessing: func() (*ropa.Record, error) { return ropa.Build(cfg, ropa.Options{}) },
		Assessments:        assessments, Incidents: incidents, Retention: sweeper, Identities: identities, Replies: inbox,
		AuditPack: auditPacker(cfg, be, ledger, requests, gate, assessments, incidents)})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.AdminListen)
	if err != nil {
		return fmt.Errorf("admin listener: %w", err)
	}
	if cfg.Portal.Listen != "" {
		centre, err := newPortal(ctx, cfg, portalDeps{ledger: ledger, vault: vlt, requests: requests, tokens: idTokens, profiles: engineProfiles{requests},
			directory: identityDirectory{identities}}, log)
		if err != nil {
			ln.Close()
			return err
		}
		stop, bound, err := servePortal(cfg.Portal.Listen, withUnsubscribe(centre, gateOut, log), log)
		if err != nil {
			ln.Close()
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			defer cancel()
			stop(sctx)
		}()
		log.Info("privacy centre serving", "listen", bound)
		fmt.Fprintf(stdout, "privguard: privacy centre on http://%s\n", bound)
	}
	srv := &http.Server{
		Handler:           api,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	sweepDone := make(chan struct{})
	go func() {
		defer close(sweepDone)
		sweepExpired(sweepCtx, ledger, log)
	}()
	defer func() { stopSweep(); <-sweepDone }()
	log.Info("privguard serving", "admin_listen", ln.Addr().String(), "data", cfg.Data, "store", be.Where)
	fmt.Fprintf(stdout, "privguard: admin API on http://%s\n", ln.Addr())
	select {
	case err := <-errc:
		return fmt.Errorf("admin server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown did not finish in time", "err", err)
	}
	return nil
}

// warnIgnoredToken says at start that the token a first start generated no longer works
// once admin.tokens is configured (unless it is one of them): otherwise its 401s are a
// mystery. It never logs the token.
func warnIgnoredToken(path string, tokens adminapi.Tokens, log *slog.Logger) {
	b, err := os.ReadFile(path)
	if err != nil {
		return // no generated token to be confused by
	}
	if _, ok := tokens[sha256.Sum256([]byte(strings.TrimSpace(string(b))))]; ok {
		return
	}
	log.Warn("admin.tokens is configured, so the generated token in this file is NOT accepted: "+
		"use a token listed in admin.tokens, or list this one (printf %s \"$(cat FILE)\" | sha256sum) or delete the file",
		"file", path)
}

// loadOrCreateToken reads the admin token file, creating it (mode 0600) with a fresh token
// on first start. A file others can read is refused.
func loadOrCreateToken(path string) (token string, created bool, err error) {
	b, err := os.ReadFile(path)
	if err == nil {
		st, serr := os.Stat(path)
		if serr == nil && st.Mode().Perm()&0o077 != 0 {
			return "", false, fmt.Errorf("%s is readable by others (mode %v); chmod 600 it", path, st.Mode().Perm())
		}
		token = strings.TrimSpace(string(b))
		if len(token) < 16 {
			return "", false, fmt.Errorf("%s holds no usable token (shorter than 16 characters)", path)
		}
		return token, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, err
	}
	token, err = adminapi.NewToken()
	if err != nil {
		return "", false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", false, err
	}
	if _, err := f.WriteString(token + "\n"); err != nil {
		f.Close()
		return "", false, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", false, err
	}
	return token, true, f.Close()
}

// expirySweepInterval is how often serve records consents whose validity has ended.
const expirySweepInterval = time.Minute

// sweepExpired records expired consents every expirySweepInterval until ctx ends.
func sweepExpired(ctx context.Context, ledger *consent.Ledger, log *slog.Logger) {
	t := time.NewTicker(expirySweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := ledger.ExpireDue(ctx, consent.DefaultSweepLimit)
		if err != nil && ctx.Err() == nil {
			log.Error("expiry sweep failed", "recorded", n, "err", err)
		} else if n > 0 {
			log.Info("expiry sweep recorded expired consents", "records", n)
		}
	}
}

// randomKey returns 32 random bytes.
func randomKey() ([]byte, error) {
	k := make([]byte, 32)
	_, err := rand.Read(k)
	return k, err
}

// checkTokenRoles refuses a configured token whose role the role policy does not know: a
// misspelt role ("dpoo") would otherwise make every call of that token a 403.
func checkTokenRoles(tokens []config.Token, known []string) error {
	var errs []error
	for i, t := range tokens {
		for _, r := range t.Roles {
			if !slices.Contains(known, r) {
				errs = append(errs, fmt.Errorf("config: admin.tokens[%d] (%s): role %q is not in the role policy (known: %s)",
					i, t.Name, r, strings.Join(known, ", ")))
			}
		}
	}
	return errors.Join(errs...)
}
