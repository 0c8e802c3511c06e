package adminapi

import (
	"bytes"
	"net/http"
	"slices"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/internal/ropa"
)

// getRopa serves the record of processing of the configuration the server enforces:
// ?format=json (the default), csv or html, and ?lang=en (the default) or zh for the CSV's
// values and the HTML page. It is rendered whole before anything is sent, so a failure is
// a problem, never half a record.
func (s *Server) getRopa(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := onceQuery(q); err != nil {
		return err
	}
	format, lang := q.Get("format"), q.Get("lang")
	if format == "" {
		format = ropa.FormatJSON
	}
	if lang == "" {
		lang = "en"
	}
	if !slices.Contains(ropa.Formats(), format) {
		p := privguard.NewProblem(http.StatusBadRequest, TypeValidation, "Invalid query", "format: want json, csv or html")
		p.Field = "format"
		return p
	}
	if !slices.Contains(ropa.Languages(), lang) {
		p := privguard.NewProblem(http.StatusBadRequest, TypeValidation, "Invalid query", "lang: want en or zh")
		p.Field = "lang"
		return p
	}
	rec, err := s.ropa()
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := rec.Write(&buf, format, lang); err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", ropa.ContentType(format))
	h.Set("Cache-Control", "no-store")
	if format == ropa.FormatCSV {
		h.Set("Content-Disposition", `attachment; filename="privguard-ropa.csv"`)
	}
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(buf.Bytes())
	return err
}
