package pgstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/dsar"
	"github.com/privguard/privguard/pgstore"
	"github.com/privguard/privguard/vault"
)

// dsarStore is what both stores implement.
type dsarStore interface {
	dsar.Store
	dsar.ResultStore
	dsar.RangeStore
	dsar.BatchStore
	dsar.Prober
}

// body is a stored request's encoding: the stores keep a request's subject and version
// beside it, taken from it.
func body(id, note string) []byte {
	return fmt.Appendf(nil, `{"id":%q,"version":1,"subject":"s-1","note":%q}`, id, note)
}

// note returns the note of a body.
func note(b []byte) string {
	var r struct{ Note string }
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Sprintf("not a body: %q", b)
	}
	return r.Note
}

// The request store behaves as boltstore's does.
func TestDSARStoreConformance(t *testing.T) {
	stores := map[string]func(t *testing.T) dsarStore{
		"boltstore": func(t *testing.T) dsarStore { return openBolt(t).DSAR() },
		"pgstore":   func(t *testing.T) dsarStore { return openDB(t).DSAR() },
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			if _, err := s.Request(ctx, "r-1"); !errors.Is(err, privguard.ErrNotFound) {
				t.Errorf("Request of none = %v; want ErrNotFound", err)
			}
			if _, err := s.Request(ctx, "\x00probe"); !errors.Is(err, privguard.ErrNotFound) {
				t.Errorf("Request(a NUL id) = %v; want ErrNotFound", err)
			}
			if err := s.PutRequest(ctx, "r-1", body("r-1", "one")); err != nil {
				t.Fatal(err)
			}
			if err := s.PutRequest(ctx, "r-1", body("r-1", "one'")); err != nil {
				t.Fatal(err)
			}
			var ids []string
			var bodies [][]byte
			for i := 600; i > 1; i-- { // more than a page, out of order, one twice
				ids, bodies = append(ids, fmt.Sprintf("r-%04d", i)), append(bodies, body(fmt.Sprintf("r-%04d", i), fmt.Sprintf("body %d", i)))
			}
			ids, bodies = append(ids, "r-0002"), append(bodies, body("r-0002", "body 2, last"))
			if err := s.PutRequests(ctx, ids, bodies); err != nil {
				t.Fatal(err)
			}
			if err := s.PutRequests(ctx, []string{"a"}, nil); err == nil {
				t.Error("PutRequests with more ids than bodies returned nil")
			}
			if b, err := s.Request(ctx, "r-1"); err != nil || note(b) != "one'" {
				t.Errorf("Request(r-1) = %q, %v; want the replacement", b, err)
			}
			if b, _ := s.Request(ctx, "r-0002"); note(b) != "body 2, last" {
				t.Errorf("Request(r-0002) = %q; want the last body given", b)
			}
			var all []string
			if err := s.EachRequest(ctx, func(b []byte) error { all = append(all, note(b)); return nil }); err != nil {
				t.Fatal(err)
			}
			if len(all) != 600 || all[0] != "body 2, last" || all[598] != "body 600" || all[599] != "one'" {
				t.Errorf("EachRequest: %d requests, first %q, last %q; want 600 in id order", len(all), all[0], all[len(all)-1])
			}
			var after []string
			if err := s.EachRequestAfter(ctx, "r-0597", func(b []byte) error {
				if after = append(after, note(b)); len(after) == 3 {
					return dsar.ErrStop
				}
				return nil
			}); !errors.Is(err, dsar.ErrStop) && err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(after, []string{"body 598", "body 599", "body 600"}) {
				t.Errorf("EachRequestAfter(r-0597) = %q", after)
			}
			if _, err := s.Result(ctx, "r-1/package"); !errors.Is(err, privguard.ErrNotFound) {
				t.Errorf("Result of none = %v; want ErrNotFound", err)
			}
			if err := s.PutResult(ctx, "r-1/package", []byte("zip")); err != nil {
				t.Fatal(err)
			}
			if b, err := s.Result(ctx, "r-1/package"); err != nil || string(b) != "zip" {
				t.Errorf("Result = %q, %v", b, err)
			}
			for range 2 { // deleting a missing key is not an error
				if err := s.DeleteResult(ctx, "r-1/package"); err != nil {
					t.Errorf("DeleteResult: %v", err)
				}
			}
			if _, err := s.Result(ctx, "r-1/package"); !errors.Is(err, privguard.ErrNotFound) {
				t.Errorf("Result after delete = %v; want ErrNotFound", err)
			}
			if err := s.Probe(ctx); err != nil {
				t.Errorf("Probe: %v", err)
			}
		})
	}
}

// rows is a connector over a map, failing its first fails erasures.
type rows struct {
	mu    sync.Mutex
	data  map[privguard.SubjectID]int
	fails int
}

func (r *rows) Name() string { return "crm" }

func (r *rows) Export(ctx context.Context, s privguard.SubjectID) (dsar.Export, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]map[string]any, r.data[s])
	for i := range out {
		out[i] = map[string]any{"order": i}
	}
	return dsar.Export{Store: "crm", Tables: []dsar.Table{{Name: "orders", Rows: out}}}, nil
}

func (r *rows) Erase(ctx context.Context, s privguard.SubjectID) (dsar.Erased, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fails > 0 {
		r.fails--
		return dsar.Erased{}, &dsar.ConnectorError{Connector: "crm", Op: "erase", Err: errors.New("connection refused")}
	}
	n := r.data[s]
	delete(r.data, s)
	return dsar.Erased{Items: n}, nil
}

// A real request engine on the shared store: a deletion retried after a failure finishes
// in another process; an access package made in one is downloaded, once, through another.
func TestDSAREngineAcrossProcesses(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	kekPath := filepath.Join(t.TempDir(), "kek.json")
	if err := vault.InitLocalKEK(kekPath); err != nil {
		t.Fatal(err)
	}
	kek, err := vault.LoadLocalKEK(kekPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	crm := &rows{data: map[privguard.SubjectID]int{"cust-1": 3, "cust-2": 2}, fails: 1}
	var erased []privguard.SubjectID
	engine := func(db *pgstore.DB) *dsar.Engine {
		v, err := vault.New(vault.Config{Store: db.Vault(), KEK: kek, TombstoneKey: []byte("0123456789abcdef0123456789abcdef")})
		if err != nil {
			t.Fatal(err)
		}
		e, err := dsar.New(dsar.Config{Store: db.DSAR(), Connectors: []dsar.Connector{crm}, Now: func() time.Time { return now },
			Sealer: v, BaseBackoff: time.Minute, MaxBackoff: time.Hour,
			OnErased: func(_ context.Context, s privguard.SubjectID) error { erased = append(erased, s); return nil }})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	e1 := engine(openSchema(t, schema))
	del, err := e1.Submit(ctx, dsar.Request{Type: dsar.TypeDeletion, Subject: "cust-1", Regime: privguard.RegimeGDPR,
		Identity: &dsar.Identity{Method: "operator", Operator: "dpo", Note: "verified by phone"}})
	if err != nil {
		t.Fatal(err)
	}
	e1.Step(ctx) // the store fails
	if err := e1.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
	now = now.Add(2 * time.Hour)
	e2 := engine(openSchema(t, schema))
	if _, err := e2.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if r, err := e2.Get(ctx, del.ID); err != nil || r.State != dsar.StateCompleted || len(erased) != 1 || crm.data["cust-1"] != 0 {
		t.Fatalf("deletion in the second process: %s, %v; erased %v; want completed", r.State, err, erased)
	}
	page, _, err := e2.Page(ctx, dsar.Filter{State: dsar.StateCompleted}, now)
	if err != nil || len(page) != 1 || page[0].ID != del.ID {
		t.Errorf("Page(completed) = %d requests, %v; want the deletion", len(page), err)
	}

	acc, err := e2.Submit(ctx, dsar.Request{Type: dsar.TypeAccess, Subject: "cust-2", Regime: privguard.RegimePIPL, Identity: &dsar.Identity{Method: "token"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e2.Step(ctx); err != nil {
		t.Fatal(err)
	}
	e3 := engine(openSchema(t, schema))
	token, _, err := e3.IssueLink(ctx, acc.ID)
	if err != nil {
		t.Fatalf("IssueLink in a third process: %v", err)
	}
	var got []byte
	if _, err := e3.Download(ctx, acc.ID, token, func(zip []byte, _ dsar.Result) error { got = zip; return nil }); err != nil || len(got) == 0 {
		t.Fatalf("Download = %d bytes, %v", len(got), err)
	}
	if _, err := e1.Download(ctx, acc.ID, token, func([]byte, dsar.Result) error { return nil }); !errors.Is(err, dsar.ErrResultGone) {
		t.Errorf("a second download through another process = %v; want ErrResultGone", err)
	}
}
