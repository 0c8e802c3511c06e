package adminapi

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/evidence"
)

// getConsentExport streams the consent evidence export (evidence.Export) of
// ?subject=ID, or of ?purpose=P&from=&to= (from ≤ time < to; subjects pseudonymous): the
// same zip `privguard consent export` writes, which `privguard verify` checks offline.
//
// The ledger's chain is checked before anything is sent, so a broken chain is a problem
// (500 chain-broken, naming the record), never a file. The export then reads the ledger a
// second time as it streams; if that fails (the store goes away, or the ledger is altered
// in between), the connection is cut, so that the client holds a truncated zip, which
// verify refuses, rather than one that looks complete.
func (s *Server) getConsentExport(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := knownQuery(q, "subject", "purpose", "from", "to"); err != nil {
		return err
	}
	scope, err := evidence.ParseScope(q.Get("subject"), q.Get("purpose"), q.Get("from"), q.Get("to"))
	if err == nil {
		err = scope.Check(s.ledger)
	}
	var se *evidence.ScopeError
	if errors.As(err, &se) {
		typ, title := TypeValidation, "Invalid query"
		if se.Field == "subject" && scope.Subject != "" && scope.Subject.Validate() != nil {
			typ, title = TypeInvalidSubject, "Malformed subject id"
		}
		p := privguard.NewProblem(http.StatusBadRequest, typ, title, se.Problem)
		p.Field = se.Field
		return p
	}
	if err != nil {
		return err
	}
	// The chain check is a first walk of the ledger; it counts the records in scope too,
	// so that the dual-control bound costs no further read.
	rows := 0
	if _, _, err := s.ledger.Walk(r.Context(), func(rec *consent.Record, _ []byte) error {
		if scope.Subject == "" && scope.Holds(rec) {
			rows++
		}
		return nil
	}); err != nil {
		var brk *consent.Break
		if errors.As(err, &brk) {
			return privguard.NewProblem(http.StatusInternalServerError, TypeChainBroken, "The consent ledger's chain is broken",
				"the ledger does not verify at "+brk.Error()+"; run privguard consent verify")
		}
		return err
	}
	// An export by purpose names its subjects by pseudonym and carries their records: over
	// dual_control.export_rows it needs a second approver (SEC-07), bound to the scope. An
	// export of one subject is that subject's own and needs none.
	if scope.Subject == "" {
		params := url.Values{"purpose": {string(scope.Purpose)}, "from": {scope.From.UTC().Format(time.RFC3339Nano)},
			"to": {scope.To.UTC().Format(time.RFC3339Nano)}}
		if err := s.dualControl(r, "GET /v1/consents/export", []byte(params.Encode()), rows); err != nil {
			return err
		}
	}
	name := "consent-evidence-subject.zip"
	if scope.Subject == "" {
		name = "consent-evidence-" + strings.ReplaceAll(string(scope.Purpose), ".", "-") + "-" +
			scope.From.Format("20060102") + "-" + scope.To.Format("20060102") + ".zip"
	}
	h := w.Header()
	h.Set("Content-Type", "application/zip")
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	out := &idleWriter{w: w, rc: http.NewResponseController(w)}
	defer out.rc.SetWriteDeadline(time.Time{})
	if _, err := evidence.Export(r.Context(), s.ledger, scope, out, s.now(), "privguard serve"); err != nil {
		s.log.Error("consent export cut short: the connection is closed so that no complete-looking file is left", "err", err)
		panic(http.ErrAbortHandler)
	}
	return nil
}

// exportIdle is how long an export's client may take to accept more bytes. serve's
// per-request write timeout is for answers, not for a walk of the whole ledger: an export
// sets its own deadline, moved on as it writes (like an import's).
const exportIdle = time.Minute

// idleWriter moves the connection's write deadline on as it writes.
type idleWriter struct {
	w     http.ResponseWriter
	rc    *http.ResponseController
	moved time.Time
}

func (w *idleWriter) Write(p []byte) (int, error) {
	if now := time.Now(); now.Sub(w.moved) > time.Second {
		_ = w.rc.SetWriteDeadline(now.Add(exportIdle))
		w.moved = now
	}
	return w.w.Write(p)
}
