package pgstore_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/privguard/privguard/dsar"
	"github.com/privguard/privguard/dsar/dsartest"
	"github.com/privguard/privguard/pgstore"
	"github.com/privguard/privguard/vault"
)

// leases reads and changes a schema's leases directly, for dsartest.TestLeaser.
type leases struct {
	t      testing.TB
	conn   *pgx.Conn
	schema string
}

var _ dsartest.LeaseInspector = (*leases)(nil)

func newLeases(t testing.TB, schema string) *leases {
	t.Helper()
	conn, err := pgx.Connect(ctx, testDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	return &leases{t: t, conn: conn, schema: schema}
}

func (l *leases) table() string { return pgx.Identifier{l.schema, "dsar_requests"}.Sanitize() }

func (l *leases) Due(id string) (due time.Time, holder string, leaseUntil time.Time) {
	var d, u pgtype.Timestamptz
	var h pgtype.Text
	err := l.conn.QueryRow(ctx, "SELECT due, lease_holder, lease_until FROM "+l.table()+" WHERE id = $1", id).Scan(&d, &h, &u)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, "", time.Time{}
	}
	if err != nil {
		l.t.Fatalf("read the lease of %s: %v", id, err)
	}
	return d.Time, h.String, u.Time
}

func (l *leases) Lapse(id string) {
	if _, err := l.conn.Exec(ctx, "UPDATE "+l.table()+" SET lease_until = NULL WHERE id = $1", id); err != nil {
		l.t.Fatalf("lapse the lease of %s: %v", id, err)
	}
}

// replicas opens a fresh schema three times, as three replicas, with one vault (one
// master key) over the first.
func replicas(t *testing.T) dsartest.Replicas {
	t.Helper()
	schema := newSchema(t)
	var stores []dsar.Store
	var dbs []*pgstore.DB
	for range 3 {
		db := openSchema(t, schema)
		dbs, stores = append(dbs, db), append(stores, db.DSAR())
	}
	kekPath := filepath.Join(t.TempDir(), "kek.json")
	if err := vault.InitLocalKEK(kekPath); err != nil {
		t.Fatal(err)
	}
	kek, err := vault.LoadLocalKEK(kekPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.New(vault.Config{Store: dbs[0].Vault(), KEK: kek, TombstoneKey: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	return dsartest.Replicas{Stores: stores, Leases: newLeases(t, schema), Sealer: v}
}

// The engine's tests on replicas sharing a store, on PostgreSQL: three connection pools
// to one schema.
func TestLeaser(t *testing.T) {
	testDSN(t)
	t.Parallel()
	dsartest.TestLeaser(t, replicas)
}
