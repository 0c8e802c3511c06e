package dsar_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/dsar"
)

func TestCloseRelativesOfADeceasedSubject(t *testing.T) {
	// proves DSR-15: a close relative may ask for access, a copy, correction or deletion
	// only; the request waits for an operator who checked the proof (never the subject's
	// code or token), records who asked and as what, and loses the proof when the subject
	// is erased.
	c := &clock{time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	crm := &memStore{name: "crm", data: map[privguard.SubjectID]int{"cust-9": 2}}
	e, closeDB := openWith(t, t.TempDir(), c, []dsar.Connector{crm}, func(*dsar.Config) {})
	defer closeDB()
	spouse := func() *dsar.Requester {
		return &dsar.Requester{Role: dsar.RequesterCloseRelative, Name: "Wang Fang", Relation: "spouse",
			Proof: "death certificate 京-2026-0042, marriage certificate J110105-2001-003"}
	}
	for _, typ := range []dsar.Type{dsar.TypeRestriction, dsar.TypeObjection, dsar.TypeCategories, dsar.TypeExplanation} {
		if _, err := e.Submit(ctx, dsar.Request{Type: typ, Subject: "cust-9", Requester: spouse()}); !errors.Is(err, privguard.ErrInvalid) {
			t.Errorf("a close relative's %s: %v; want ErrInvalid (PIPL Art. 49)", typ, err)
		}
	}
	if _, err := e.Submit(ctx, dsar.Request{Type: dsar.TypeAccess, Subject: "cust-9", Requester: spouse(),
		Identity: &dsar.Identity{Method: "token"}}); !errors.Is(err, privguard.ErrInvalid) {
		t.Errorf("a close relative's request verified by the subject's token: %v; want ErrInvalid", err)
	}
	bad := spouse()
	bad.Relation = "cousin"
	if _, err := e.Submit(ctx, dsar.Request{Type: dsar.TypeAccess, Subject: "cust-9", Requester: bad}); !errors.Is(err, privguard.ErrInvalid) {
		t.Errorf("relation cousin: %v; want ErrInvalid", err)
	}

	del, err := e.Submit(ctx, dsar.Request{Type: dsar.TypeDeletion, Subject: "cust-9", Requester: spouse()})
	if err != nil {
		t.Fatal(err)
	}
	if del.State != dsar.StateAwaitingVerify {
		t.Fatalf("state %s; want awaiting_verification", del.State)
	}
	if err := e.SendCode(ctx, del.ID, &captureNotifier{codes: map[string]string{}}); !errors.Is(err, dsar.ErrOperatorOnly) {
		t.Errorf("a code for a close relative's request: %v; want ErrOperatorOnly", err)
	}
	if _, err := e.VerifyCode(ctx, del.ID, "123456"); !errors.Is(err, dsar.ErrOperatorOnly) {
		t.Errorf("a code tried: %v; want ErrOperatorOnly", err)
	}
	if _, err := e.Verify(ctx, del.ID, dsar.Identity{Method: "operator", Operator: "dpo"}); !errors.Is(err, privguard.ErrInvalid) {
		t.Errorf("verified without saying which proof was checked: %v; want ErrInvalid", err)
	}
	if _, err := e.Verify(ctx, del.ID, dsar.Identity{Method: "operator", Operator: "dpo", Note: "certificates seen at the branch"}); err != nil {
		t.Fatal(err)
	}
	e.Step(ctx)
	got, _ := e.Get(ctx, del.ID)
	if got.State != dsar.StateCompleted || got.Requester == nil || got.Requester.Relation != "spouse" || got.Requester.Name != "Wang Fang" {
		t.Fatalf("after the erasure: %s %+v", got.State, got.Requester)
	}
	if got.Requester.Proof != dsar.MaskValue {
		t.Errorf("proof after the subject's erasure: %q; want %q", got.Requester.Proof, dsar.MaskValue)
	}
	if x := dsar.RegisterEntries([]dsar.Request{got}, c.t); x[0].RequesterRole != dsar.RequesterCloseRelative {
		t.Errorf("register: %+v; want the requester's role", x[0])
	}
}

func TestCloseRelativesPackageSaysWhoAsked(t *testing.T) {
	// proves DSR-15: the access package of a close relative's request names the relative
	// and the relation (disclosure.json and README.txt), never the proof.
	env := newResultEnv(t, t.TempDir(), &profileStore{name: "crm"})
	r, err := env.e.Submit(ctx, dsar.Request{Type: dsar.TypeAccess, Subject: "cust-1", Regime: privguard.RegimePIPL,
		Requester: &dsar.Requester{Role: dsar.RequesterCloseRelative, Name: "Wang Fang", Relation: "child", Proof: "death certificate 京-2026-0042"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.e.Verify(ctx, r.ID, dsar.Identity{Method: "operator", Operator: "dpo", Note: "certificates seen"}); err != nil {
		t.Fatal(err)
	}
	env.e.Step(ctx)
	zb, _, err := fetch(env.e, r.ID, env.links.tokens[r.ID])
	if err != nil {
		t.Fatal(err)
	}
	files := unzip(t, zb)
	validate(t, compileSchema(t, "disclosure.schema.json"), "disclosure.json", files["disclosure.json"])
	var doc dsar.PackageDoc
	if err := json.Unmarshal(files["disclosure.json"], &doc); err != nil {
		t.Fatal(err)
	}
	if q := doc.Requester; q == nil || q.Name != "Wang Fang" || q.Relation != "child" || q.Role != dsar.RequesterCloseRelative || q.Proof != "" {
		t.Errorf("disclosure.json requester: %+v; want the relative and the relation, no proof", q)
	}
	readme := string(files["README.txt"])
	for _, want := range []string{"提出请求者：Wang Fang（已故个人信息主体的近亲属：子女", "Requested by: Wang Fang, close relative (child)"} {
		if !strings.Contains(readme, want) {
			t.Errorf("README.txt lacks %q:\n%s", want, readme)
		}
	}
	if strings.Contains(readme+string(files["disclosure.json"]), "京-2026-0042") {
		t.Error("the package carries the proof")
	}
}
