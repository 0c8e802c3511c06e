package adminapi

import (
	"errors"
	"io"
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
	if t, ok := ParseTime(v); ok {
		return t, nil
	}
	p := privguard.NewProblem(http.StatusBadRequest, TypeValidation, "Invalid query", name+": want an RFC 3339 time or a date such as 2026-03-01")
	p.Field = name
	return time.Time{}, p
}

// ParseTime parses a period's bound as the routes and the commands take it: RFC 3339, or
// a date (midnight UTC); at most 64 bytes.
func ParseTime(v string) (time.Time, bool) {
	if len(v) <= 64 {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return t, true
		}
		if t, err := time.Parse(time.DateOnly, v); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// registerQuery is what every register route takes beside its own filters: a period
// (from ≤ time < to), a page (after a seq, at most limit entries) and a format.
type registerQuery struct {
	from, to time.Time
	after    uint64
	limit    int
	csv      bool
}

// parseRegisterQuery parses q for a register route whose own parameters are own; any
// other parameter, or one given twice, is refused.
func parseRegisterQuery(q url.Values, own ...string) (registerQuery, error) {
	rq := registerQuery{limit: 100}
	if err := knownQuery(q, append([]string{"from", "to", "after", "limit", "format"}, own...)...); err != nil {
		return rq, err
	}
	var err error
	if rq.from, err = queryTime(q, "from"); err != nil {
		return rq, err
	}
	if rq.to, err = queryTime(q, "to"); err != nil {
		return rq, err
	}
	if !rq.from.IsZero() && !rq.to.IsZero() && !rq.from.Before(rq.to) {
		return rq, privguard.NewProblem(http.StatusBadRequest, TypeValidation, "Invalid query", "from must be before to")
	}
	if a := q.Get("after"); a != "" {
		if rq.after, err = strconv.ParseUint(a, 10, 63); err != nil {
			return rq, privguard.NewProblem(http.StatusBadRequest, TypeValidation, "Invalid query", "after: want an entry's seq")
		}
	}
	if l := q.Get("limit"); l != "" {
		if rq.limit, err = strconv.Atoi(l); err != nil || rq.limit < 1 || rq.limit > 1000 {
			return rq, privguard.NewProblem(http.StatusBadRequest, TypeValidation, "Invalid query", "limit: want 1 to 1000")
		}
	}
	switch q.Get("format") {
	case "", "json":
	case "csv":
		rq.csv = true
	default:
		return rq, privguard.NewProblem(http.StatusBadRequest, TypeValidation, "Invalid query", "format: want json or csv")
	}
	return rq, nil
}

// serveRegister answers a register read from the journal log of store: CSV (every entry
// selected; the whole chain is verified before the first byte, since a chain that broke
// half way would otherwise end a 200 early) or a JSON page of entries with the next
// page's cursor. scan walks the entries selected; seq tells an entry's place.
func serveRegister[T any](s *Server, w http.ResponseWriter, r *http.Request, rq registerQuery, store journal.Store, log, filename string,
	writeCSV func(io.Writer) error, scan func(fn func(T) error) error, seq func(T) uint64) error {
	if rq.csv {
		if _, err := journal.Verify(r.Context(), store, log); err != nil {
			return chainBroken(err)
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="`+filename+`"`)
		w.WriteHeader(http.StatusOK)
		if err := writeCSV(w); err != nil {
			s.log.Error("privguard: register cut short", "log", log, "err", err)
		}
		return nil
	}
	page := make([]T, 0, min(rq.limit, 100))
	var next uint64
	err := scan(func(e T) error {
		if len(page) == rq.limit {
			next = seq(page[len(page)-1])
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

// getDisclosures serves the disclosure log: GET /v1/disclosures?from=&to=&recipient=
// &abroad=true&after=SEQ&limit=N&format=json|csv.
func (s *Server) getDisclosures(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	rq, err := parseRegisterQuery(q, "recipient", "abroad")
	if err != nil {
		return err
	}
	f := disclosure.Filter{From: rq.from, To: rq.to, After: rq.after}
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
	store := s.disclosures.Journal()
	return serveRegister(s, w, r, rq, store, disclosure.Log, "privguard-disclosures.csv",
		func(out io.Writer) error { return disclosure.WriteCSV(r.Context(), out, store, f) },
		func(fn func(disclosure.Stored) error) error { return disclosure.Entries(r.Context(), store, f, fn) },
		func(e disclosure.Stored) uint64 { return e.Seq })
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
