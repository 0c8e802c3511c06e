package adminapi

import (
	"encoding/csv"
	"net/http"
	"strconv"

	"github.com/privguard/privguard/outreach"
)

// getSuppressions answers GET /v1/outreach/suppressions?channel=sms|email: one page of the
// channel's suppression export (outreach.Suppressions.Export), the SHA-256 hashes of the
// normalised phones or emails of the subjects who must not be contacted, for vendors that
// cannot take webhooks (ad platforms' exclusion lists). ?since=<next of a previous page>
// makes it incremental, ?limit= bounds the subjects a page examines, ?phone=digits hashes
// phones without their '+' (Meta) instead of in E.164 (Google, the default), ?format=csv
// answers a one-column CSV with the cursor in X-Privguard-Next and X-Privguard-More.
func (s *Server) getSuppressions(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := onceQuery(q); err != nil {
		return err
	}
	for k := range q {
		switch k {
		case "channel", "since", "limit", "format", "phone":
		default:
			return queryProblem(k, "unknown parameter; the export takes channel, since, limit, phone and format")
		}
	}
	channel := q.Get("channel")
	if channel != outreach.ChannelSMS && channel != outreach.ChannelEmail {
		return badQuery("channel", "want sms or email (the channels with a hashable address)")
	}
	since := q.Get("since")
	if since != "" {
		if _, err := strconv.ParseUint(since, 10, 64); err != nil {
			return badQuery("since", "want the next cursor of a previous page")
		}
	}
	limit := 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > outreach.MaxSuppressionLimit {
			return badQuery("limit", "want 1 to "+strconv.Itoa(outreach.MaxSuppressionLimit))
		}
		limit = n
	}
	phone := q.Get("phone")
	if phone != "" && phone != outreach.PhoneE164 && phone != outreach.PhoneDigits {
		return badQuery("phone", "want e164 or digits")
	}
	format := q.Get("format")
	if format != "" && format != "json" && format != "csv" {
		return badQuery("format", "want json or csv")
	}
	sup := outreach.Suppressions{Ledger: s.ledger, Addresses: s.identities}
	page, err := sup.Export(r.Context(), outreach.SuppressionQuery{Channel: channel, Since: since, Limit: limit, PhoneFormat: phone})
	if err != nil {
		return err
	}
	if format != "csv" {
		writeJSON(w, http.StatusOK, page)
		return nil
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="privguard-suppressions-`+channel+`.csv"`)
	w.Header().Set("X-Privguard-Next", page.Next)
	w.Header().Set("X-Privguard-More", strconv.FormatBool(page.More))
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	col := "sha256_email"
	if channel == outreach.ChannelSMS {
		col = "sha256_phone"
	}
	_ = cw.Write([]string{col})
	for _, h := range page.Hashes {
		_ = cw.Write([]string{h.Email + h.Phone}) // hex digits: nothing to defuse
	}
	cw.Flush()
	return cw.Error()
}
