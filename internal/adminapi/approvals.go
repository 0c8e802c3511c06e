package adminapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/internal/approval"
	"github.com/privguard/privguard/internal/trail"
)

// DualControl configures the second approver of bulk exports of personal data (SEC-07).
type DualControl struct {
	// ExportRows: an export of more rows or subjects than this runs only with another
	// principal's approval. Zero: no export needs one.
	ExportRows int
	// Approvals is the register of approvals. Required when ExportRows is set.
	Approvals *approval.Register
}

// HeaderApproval names the approval a repeated export call spends.
const HeaderApproval = "X-Privguard-Approval"

// Problem types of dual control. They are part of the API.
const (
	// TypeApprovalRequired: the export is larger than dual_control.export_rows and has no
	// usable approval (403). The problem's instance is the approval asked for
	// (/v1/approvals/{id}); once another principal approved it, the same call with
	// X-Privguard-Approval: {id} runs.
	TypeApprovalRequired = "approval.required"
	// TypeApprovalSamePrincipal: the principal who asked for the export cannot approve it
	// (403).
	TypeApprovalSamePrincipal = "approval.same_principal"
)

// dualControl lets an export of rows rows by the request's principal run (nil) only if
// it is not larger than the configured bound, or if the approval named in
// X-Privguard-Approval is approved for this act, these params and this principal, which
// it spends. Otherwise it asks for an approval (or finds the one asked for already) and
// returns the approval.required problem naming it. act names the route, params its
// parameters in a canonical form.
func (s *Server) dualControl(r *http.Request, act string, params []byte, rows int) error {
	if s.dual.ExportRows == 0 || rows <= s.dual.ExportRows {
		return nil
	}
	id, err := onceHeader(r, HeaderApproval)
	if err != nil {
		return err
	}
	ctx := r.Context()
	p, _ := PrincipalFromContext(ctx)
	digest := s.dual.Approvals.Digest(act, params)
	bound := strconv.Itoa(s.dual.ExportRows)
	if id == "" {
		a, created, err := s.dual.Approvals.Ask(ctx, act, digest, rows, p.Name, p.Roles)
		if err != nil {
			return err
		}
		if created {
			s.trailApproval(ctx, p, "approval ask", a, "ok")
		}
		if a.State == approval.Approved {
			return approvalRequired(a, "approved by "+a.ApprovedBy+": repeat the call with "+HeaderApproval+": "+a.ID)
		}
		return approvalRequired(a, "the export holds "+strconv.Itoa(rows)+" rows, more than dual_control.export_rows ("+bound+
			"): another principal with the role dpo or admin approves it (POST /v1/approvals/"+a.ID+"/approve), then the same call with "+
			HeaderApproval+": "+a.ID+" runs")
	}
	if len(id) > 64 {
		return privguard.NewProblem(http.StatusBadRequest, TypeValidation, "Invalid header", HeaderApproval+" is too long")
	}
	a, err := s.dual.Approvals.Use(ctx, id, act, digest, p.Name)
	switch {
	case errors.Is(err, approval.ErrNotFound):
		return approvalRequired(approval.Approval{}, "no such approval; repeat the call without "+HeaderApproval+" to ask for one")
	case errors.Is(err, approval.ErrNotApproved):
		detail := "the approval is " + string(a.State)
		if a.State == approval.Approved {
			detail = "the approval is for another call (route, parameters or principal)"
		}
		return approvalRequired(a, detail)
	case err != nil:
		return err
	}
	s.trailApproval(ctx, p, "approval use", a, "ok")
	return nil
}

func approvalRequired(a approval.Approval, detail string) *privguard.Problem {
	p := privguard.NewProblem(http.StatusForbidden, TypeApprovalRequired, "A second approver is required", detail)
	if a.ID != "" {
		p.Instance = "/v1/approvals/" + a.ID
	}
	return p
}

// trailApproval writes a step of an approval to the admin trail.
func (s *Server) trailApproval(ctx context.Context, p Principal, act string, a approval.Approval, outcome string) {
	if s.trail == nil {
		return
	}
	_ = s.trail.Record(context.WithoutCancel(ctx), trail.Entry{Principal: p.Name, Roles: p.Roles, Via: "api", Act: act,
		Target: map[string]string{"approval": a.ID, "act": a.Act, "rows": strconv.Itoa(a.Rows), "requested_by": a.RequestedBy}, Outcome: outcome})
}

// getApprovals lists the approvals, in the order asked: GET /v1/approvals?state=.
func (s *Server) getApprovals(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := knownQuery(q, "state"); err != nil {
		return err
	}
	var states []approval.State
	switch st := approval.State(q.Get("state")); st {
	case "":
	case approval.Pending, approval.Approved, approval.Used, approval.Expired:
		states = append(states, st)
	default:
		p := privguard.NewProblem(http.StatusBadRequest, TypeValidation, "Invalid query", "state: want pending, approved, used or expired")
		p.Field = "state"
		return p
	}
	list, err := s.dual.Approvals.List(r.Context(), states...)
	if err != nil {
		return chainBroken(err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"approvals": list})
	return nil
}

func (s *Server) getApproval(w http.ResponseWriter, r *http.Request) error {
	a, err := s.dual.Approvals.Get(r.Context(), r.PathValue("id"))
	if errors.Is(err, approval.ErrNotFound) {
		return privguard.NewProblem(http.StatusNotFound, TypeNotFound, "Not found", "no such approval")
	}
	if err != nil {
		return chainBroken(err)
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}

// approve records the principal's approval: POST /v1/approvals/{id}/approve.
func (s *Server) approve(w http.ResponseWriter, r *http.Request) error {
	p, _ := PrincipalFromContext(r.Context())
	a, err := s.dual.Approvals.Approve(r.Context(), r.PathValue("id"), p.Name, p.Roles)
	switch {
	case errors.Is(err, approval.ErrNotFound):
		return privguard.NewProblem(http.StatusNotFound, TypeNotFound, "Not found", "no such approval")
	case errors.Is(err, approval.ErrSamePrincipal):
		return privguard.NewProblem(http.StatusForbidden, TypeApprovalSamePrincipal, "You asked for this export",
			"a second approver is another principal than the one who asked")
	case errors.Is(err, approval.ErrNotPending):
		return privguard.NewProblem(http.StatusConflict, TypeConflict, "Not pending", "the approval is "+string(a.State))
	case err != nil:
		return chainBroken(err)
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}
