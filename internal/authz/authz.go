// Package authz decides which admin API callers may call which routes: role-based access
// control with casbin, on the route patterns the API registers. It is the only package
// that imports casbin.
package authz

import (
	_ "embed"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	stringadapter "github.com/casbin/casbin/v2/persist/string-adapter"
)

//go:embed model.conf
var modelText string

// DefaultPolicy is the shipped policy (roles app, auditor, dpo, importer, operator, admin).
//
//go:embed policy.csv
var DefaultPolicy string

// Attest is the permission, beyond routes, to say a requester's identity was verified out
// of band or to start the controller's own erasure: Allow(roles, Attest, "use").
const Attest = "request:attest"

// RecordFacts is the permission, beyond the POST /v1/consents route, to record the
// controller's own facts in the ledger: erase, expire and lift_restriction
// (consent.Action.ControllerFact). An app records the subjects' choices; these records
// undo or close them, so they are the request engine's and the dpo's:
// Allow(roles, RecordFacts, "use").
const RecordFacts = "consent:controller-facts"

// DefaultRole is the role of a principal configured without roles.
const DefaultRole = "app"

// Authorizer answers whether a set of roles may call a route. Safe for concurrent use.
type Authorizer struct {
	e *casbin.SyncedEnforcer
	// memo holds every answer Allow gave (key: allowKey). The policy never changes after
	// New, so an answer never goes stale; the keys are the roles of configured tokens and
	// the routes and permissions the API registers, a small fixed set.
	memo sync.Map
}

// New returns an authorizer for policy (casbin CSV lines; "" means DefaultPolicy).
func New(policy string) (*Authorizer, error) {
	if strings.TrimSpace(policy) == "" {
		policy = DefaultPolicy
	}
	m, err := model.NewModelFromString(modelText)
	if err != nil {
		return nil, fmt.Errorf("authz: model: %w", err)
	}
	e, err := casbin.NewSyncedEnforcer(m, stringadapter.NewAdapter(policy))
	if err != nil {
		return nil, fmt.Errorf("authz: policy: %w", err)
	}
	if rules, err := e.GetPolicy(); err != nil || len(rules) == 0 {
		return nil, fmt.Errorf("authz: the policy grants nothing")
	}
	return &Authorizer{e: e}, nil
}

// Allow reports whether any of roles may do act on obj: a method on a route pattern path
// ("POST", "/v1/requests/{id}/approve") or "use" of a permission such as Attest. No roles
// means DefaultRole. An evaluation error denies.
func (a *Authorizer) Allow(roles []string, obj, act string) bool {
	if len(roles) == 0 {
		roles = []string{DefaultRole}
	}
	key := allowKey(roles, obj, act)
	memoable := len(key) <= maxMemoKey && strings.Count(key, "\x00") == len(roles)+1 // no NUL inside a name
	if v, ok := a.memo.Load(key); ok && memoable {
		return v.(bool)
	}
	allowed := false
	for _, r := range roles {
		if ok, err := a.e.Enforce(r, obj, act); err == nil && ok {
			allowed = true
			break
		}
	}
	if memoable {
		a.memo.Store(key, allowed)
	}
	return allowed
}

// maxMemoKey bounds the keys Allow remembers: longer ones (many roles) are evaluated every
// time rather than held.
const maxMemoKey = 512

// allowKey identifies an Allow question. NUL separates the parts: it is in no role, route
// or permission name.
func allowKey(roles []string, obj, act string) string {
	n := len(obj) + len(act) + 2
	for _, r := range roles {
		n += len(r) + 1
	}
	b := make([]byte, 0, n)
	b = append(append(append(b, obj...), 0), act...)
	for _, r := range roles {
		b = append(append(b, 0), r...)
	}
	return string(b)
}

// Roles returns, sorted, every role the policy knows (DefaultRole among them).
func (a *Authorizer) Roles() []string {
	known := map[string]bool{DefaultRole: true}
	subjects, _ := a.e.GetAllSubjects()
	for _, s := range subjects {
		known[s] = true
	}
	groups, _ := a.e.GetGroupingPolicy()
	for _, g := range groups {
		for _, r := range g {
			known[r] = true
		}
	}
	out := make([]string, 0, len(known))
	for r := range known {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

// RolesFor returns, sorted, the roles of the policy that may do act on obj (DefaultRole
// among them when a token without roles may): what a refused caller needs to hear. It asks
// the policy itself, so a replaced policy answers for its own roles.
func (a *Authorizer) RolesFor(obj, act string) []string {
	var out []string
	for _, r := range a.Roles() {
		if ok, err := a.e.Enforce(r, obj, act); err == nil && ok {
			out = append(out, r)
		}
	}
	return out
}
