package approval_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/internal/approval"
	"github.com/privguard/privguard/journal"
)

var ctx = context.Background()

func openStore(t *testing.T) journal.Store {
	t.Helper()
	db, err := boltstore.Open(filepath.Join(t.TempDir(), "p.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db.Journal()
}

func open(t *testing.T, store journal.Store, now func() time.Time) *approval.Register {
	t.Helper()
	g, err := approval.Open(store, bytes.Repeat([]byte{9}, 32), now)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestAskApproveUse(t *testing.T) {
	g := open(t, openStore(t), nil)
	d := g.Digest("GET /v1/requests", []byte("limit=1000"))
	a, created, err := g.Ask(ctx, "GET /v1/requests", d, 1000, "alice", []string{"auditor"})
	if err != nil || !created || a.State != approval.Pending {
		t.Fatalf("Ask = %+v, %v, %v; want a new pending approval", a, created, err)
	}
	if again, created, err := g.Ask(ctx, "GET /v1/requests", d, 1000, "alice", nil); err != nil || created || again.ID != a.ID {
		t.Errorf("asking again = %+v, %v, %v; want the same approval", again, created, err)
	}
	if _, err := g.Use(ctx, a.ID, "GET /v1/requests", d, "alice"); !errors.Is(err, approval.ErrNotApproved) {
		t.Errorf("Use before approval = %v; want ErrNotApproved", err)
	}
	if _, err := g.Approve(ctx, a.ID, "alice", nil); !errors.Is(err, approval.ErrSamePrincipal) {
		t.Errorf("self-approval = %v; want ErrSamePrincipal", err)
	}
	if _, err := g.Approve(ctx, "ap_nope", "bob", nil); !errors.Is(err, approval.ErrNotFound) {
		t.Errorf("approving an unknown id = %v; want ErrNotFound", err)
	}
	ok, err := g.Approve(ctx, a.ID, "bob", []string{"dpo"})
	if err != nil || ok.State != approval.Approved || ok.ApprovedBy != "bob" {
		t.Fatalf("Approve = %+v, %v", ok, err)
	}
	if _, err := g.Approve(ctx, a.ID, "carol", nil); !errors.Is(err, approval.ErrNotPending) {
		t.Errorf("a second approval = %v; want ErrNotPending", err)
	}
	for _, tc := range []struct{ name, act, digest, by string }{
		{"other_principal", "GET /v1/requests", d, "bob"},
		{"other_act", "POST /v1/requests/bulk", d, "alice"},
		{"other_parameters", "GET /v1/requests", g.Digest("GET /v1/requests", []byte("limit=999")), "alice"},
	} {
		if _, err := g.Use(ctx, a.ID, tc.act, tc.digest, tc.by); !errors.Is(err, approval.ErrNotApproved) {
			t.Errorf("%s: Use = %v; want ErrNotApproved", tc.name, err)
		}
	}
	if used, err := g.Use(ctx, a.ID, "GET /v1/requests", d, "alice"); err != nil || used.State != approval.Used {
		t.Fatalf("Use = %+v, %v", used, err)
	}
	if _, err := g.Use(ctx, a.ID, "GET /v1/requests", d, "alice"); !errors.Is(err, approval.ErrNotApproved) {
		t.Errorf("a second use = %v; want ErrNotApproved", err)
	}
	if _, created, _ := g.Ask(ctx, "GET /v1/requests", d, 1000, "alice", nil); !created {
		t.Error("asking after the approval was used did not open a new one")
	}
	list, err := g.List(ctx, approval.Used)
	if err != nil || len(list) != 1 || list[0].ID != a.ID {
		t.Errorf("List(used) = %+v, %v", list, err)
	}
	if _, err := journal.Verify(ctx, g.Store(), approval.Log); err != nil {
		t.Errorf("the log does not verify: %v", err)
	}
}

func TestApprovalsExpire(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	g := open(t, openStore(t), func() time.Time { return now })
	a, _, _ := g.Ask(ctx, "act", "d", 5, "alice", nil)
	if _, err := g.Approve(ctx, a.ID, "bob", nil); err != nil {
		t.Fatal(err)
	}
	now = now.Add(approval.DefaultTTL)
	if _, err := g.Use(ctx, a.ID, "act", "d", "alice"); !errors.Is(err, approval.ErrNotApproved) {
		t.Errorf("Use after the TTL = %v; want ErrNotApproved", err)
	}
	if got, _ := g.Get(ctx, a.ID); got.State != approval.Expired {
		t.Errorf("state after the TTL = %s; want expired", got.State)
	}
}

// Two registers on one store (two replicas) approving, then using, one approval at once:
// exactly one of each succeeds (AppendAfter's head check).
func TestConcurrentChangesAreDecidedOnce(t *testing.T) {
	store := openStore(t)
	regs := []*approval.Register{open(t, store, nil), open(t, store, nil)}
	for round := range 5 {
		a, _, err := regs[0].Ask(ctx, "act", fmt.Sprint(round), 5, "alice", nil)
		if err != nil {
			t.Fatal(err)
		}
		count := func(f func(i int) error) (ok int) {
			var wg sync.WaitGroup
			var mu sync.Mutex
			for i := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if f(i) == nil {
						mu.Lock()
						ok++
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			return ok
		}
		if n := count(func(i int) error {
			_, err := regs[i%2].Approve(ctx, a.ID, fmt.Sprint("approver-", i), nil)
			return err
		}); n != 1 {
			t.Fatalf("round %d: %d approvals succeeded; want 1", round, n)
		}
		if n := count(func(i int) error {
			_, err := regs[i%2].Use(ctx, a.ID, "act", fmt.Sprint(round), "alice")
			return err
		}); n != 1 {
			t.Fatalf("round %d: %d uses succeeded; want 1", round, n)
		}
	}
}
