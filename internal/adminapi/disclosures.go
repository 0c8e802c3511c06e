package adminapi

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/disclosure"
	"github.com/privguard/privguard/journal"
)

// knownQuery refuses a query with a parameter the route does not take, or one given
// twice: a misspelt filter would otherwise widen the answer silently.
func knownQuery(q url.Values, known ...string) error {
	if err := onceQuery(q); err != nil {
		return err
	}
	for k := range q {
		ok := false
		for _, n := range known {
			ok = ok || k == n
		}
		if !ok {
			p := privguard.NewProblem(http.StatusBadRequest, TypeValidation, "Invalid query", "unknown parameter")
			if len(k) <= 64 && printable(k) {
				p.Field = k
				p.Detail = "unknown parameter " + k
			}
			return p
		}
	}
	return nil
}

// queryTime parses a time parameter: RFC 3339, or a date (midnight UTC).
func queryTime(q url.Values, name string) (time.Time, error) {
	v := q.Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	if len(v) <= 64 {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return t, nil
		}
		if t, err := time.Parse(time.DateOnly, v); err == nil {
			return t, nil
		}
	}
	p := privguard.NewProblem(http.StatusBadRequest, TypeValidation, "Invalid query", name+": want an RFC 3339 time or a date such as 2026-03-01")
	p.Field = name
	return time.Time{}, p
}

// getDisclosures serves the disclosure log: GET /v1/disclosures?from=&to=&recipient=
// &abroad=true&after=SEQ&limit=N&format=json|csv. JSON is paged (next is the cursor);
// CSV is every entry selected. A broken chain is a 500 that says where.
func (s *Server) getDisclosures(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := knownQuery(q, "from", "to", "recipient", "abroad", "after", "limit", "format"); err != nil {
		return err
	}
	var f disclosure.Filter
	var err error
	if f.From, err = queryTime(q, "from"); err != nil {
		return err
	}
	if f.To, err = queryTime(q, "to"); err != nil {
		return err
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return privguard.NewProblem(http.StatusBadRequest, TypeValidation, "Invalid query", "from must be before to")
	}
	if f.Recipient = q.Get("recipient"); len(f.Recipient) > 64 {
		return privguard.NewProblem(http.StatusBadRequest, TypeValidation, "Invalid query", "recipient is too long")
	}
	switch q.Get("abroad") {
	case "", "false":
	case "true":
		f.Abroad = true
	default:
		return privguard.NewProblem(http.StatusBadRequest, TypeValidation, "Invalid query", "abroad: want true or false")
	}
	if a := q.Get("after"); a != "" {
		if f.After, err = strconv.ParseUint(a, 10, 63); err != nil {
			return privguard.NewProblem(http.StatusBadRequest, TypeValidation, "Invalid query", "after: want an entry's seq")
		}
	}
	limit := 100
	if l := q.Get("limit"); l != "" {
		if limit, err = strconv.Atoi(l); err != nil || limit < 1 || limit > 1000 {
			return privguard.NewProblem(http.StatusBadRequest, TypeValidation, "Invalid query", "limit: want 1 to 1000")
		}
	}
	store := s.disclosures.Journal()
	switch q.Get("format") {
	case "", "json":
	case "csv":
		// Checked before the first byte is sent: a chain that breaks half way through
		// would otherwise end a 200 early.
		if _, err := journal.Verify(r.Context(), store, disclosure.Log); err != nil {
			return chainBroken(err)
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="privguard-disclosures.csv"`)
		w.WriteHeader(http.StatusOK)
		if err := disclosure.WriteCSV(r.Context(), w, store, f); err != nil {
			s.log.Error("privguard: disclosure register cut short", "err", err)
		}
		return nil
	default:
		return privguard.NewProblem(http.StatusBadRequest, TypeValidation, "Invalid query", "format: want json or csv")
	}
	page := make([]disclosure.Stored, 0, min(limit, 100))
	var next uint64
	err = disclosure.Entries(r.Context(), store, f, func(e disclosure.Stored) error {
		if len(page) == limit {
			next = page[len(page)-1].Seq
			return errPageFull
		}
		page = append(page, e)
		return nil
	})
	if err != nil && !errors.Is(err, errPageFull) {
		return chainBroken(err)
	}
	out := map[string]any{"entries": page}
	if next != 0 {
		out["next"] = strconv.FormatUint(next, 10)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

var errPageFull = errors.New("page full")

// chainBroken answers a register whose chain does not verify (a *journal.BreakError: the
// log was altered in the store) with where it breaks; any other error is passed on.
func chainBroken(err error) error {
	var br *journal.BreakError
	if errors.As(err, &br) {
		return privguard.NewProblem(http.StatusInternalServerError, TypeChainBroken, "The register's chain is broken", br.Error())
	}
	return err
}

// getTransfers serves the cross-border register: GET /v1/transfers?regime=pipl|gdpr&year=.
func (s *Server) getTransfers(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := knownQuery(q, "regime", "year"); err != nil {
		return err
	}
	regime := s.regime
	if v := q.Get("regime"); v != "" {
		regime = privguard.Regime(v)
		if !regime.Valid() {
			return privguard.NewProblem(http.StatusBadRequest, TypeValidation, "Invalid query", "regime: want pipl or gdpr")
		}
	}
	year := 0
	if v := q.Get("year"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 2000 || n > 9999 {
			return privguard.NewProblem(http.StatusBadRequest, TypeValidation, "Invalid query", "year: want a year such as 2026")
		}
		year = n
	}
	a, err := s.disclosures.Accounting(r.Context(), regime, year)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}
