package privguard

import (
	"encoding/json"
	"net/http"
)

// ProblemContentType is the media type of [Problem] bodies (RFC 9457).
const ProblemContentType = "application/problem+json"

// ProblemTypePrefix starts every problem type URI; the rest is a stable slug such as
// "validation" or "consent.denied". Clients switch on Type, never on Title or Detail.
const ProblemTypePrefix = "urn:privguard:problem:"

// Problem is an RFC 9457 problem details body. It is the only error shape privguard's HTTP
// surfaces send, and it never carries internal error text or personal data.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Field is the JSON path of the failing input field, if one is to blame.
	Field string `json:"field,omitempty"`
	// Reasons are the stable reason codes of a denied decision.
	Reasons []Reason `json:"reasons,omitempty"`
	// Errors lists every failing field when there are several.
	Errors []FieldError `json:"errors,omitempty"`
}

// FieldError names one failing input field and the rule it broke.
type FieldError struct {
	Field  string `json:"field"`
	Rule   string `json:"rule"`
	Detail string `json:"detail,omitempty"`
}

// NewProblem returns a Problem of type ProblemTypePrefix+slug.
func NewProblem(status int, slug, title, detail string) *Problem {
	return &Problem{Type: ProblemTypePrefix + slug, Title: title, Status: status, Detail: detail}
}

// Error makes a *Problem usable as an error carrying its HTTP answer.
func (p *Problem) Error() string { return p.Title + ": " + p.Detail }

// Write sends p as the response.
func (p *Problem) Write(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", ProblemContentType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}
