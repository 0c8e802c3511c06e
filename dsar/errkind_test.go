package dsar_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/dsar"
)

// failingStore fails every erasure with what fail returns.
type failingStore struct {
	name string
	fail func(ctx context.Context) error
}

func (f *failingStore) Name() string { return f.name }
func (f *failingStore) Export(context.Context, privguard.SubjectID) (dsar.Export, error) {
	return dsar.Export{}, nil
}
func (f *failingStore) Erase(ctx context.Context, _ privguard.SubjectID) (dsar.Erased, error) {
	return dsar.Erased{}, f.fail(ctx)
}

// TestTaskFailuresRecordTheirKind: a failed task names the kind of failure — classified
// from the connector's codes, the network error or the task's deadline, never from the
// error's text — in the request and in the log line, and neither holds the text.
func TestTaskFailuresRecordTheirKind(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close() // nothing listens there now
	const secret = "li.lei@example.com"
	stores := []dsar.Connector{
		&failingStore{"crm", func(context.Context) error {
			return &dsar.ConnectorError{Connector: "crm", Op: "erase customers", Kind: dsar.KindTableMissing,
				Err: errors.New(`relation "customers" does not exist near ` + secret)}
		}},
		&failingStore{"cache", func(ctx context.Context) error {
			_, err := (&net.Dialer{}).DialContext(ctx, "tcp", closed)
			return &dsar.ConnectorError{Connector: "cache", Op: "erase", Err: fmt.Errorf("dial for %s: %w", secret, err)}
		}},
		&failingStore{"slow", func(ctx context.Context) error {
			<-ctx.Done()
			return errors.New("driver: bad connection while deleting " + secret) // what a driver makes of a cut connection
		}},
		&failingStore{"texty", func(context.Context) error { return errors.New("timeout: connection refused for " + secret) }},
	}
	var logs bytes.Buffer
	db, err := boltstore.Open(filepath.Join(t.TempDir(), "p.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	e, err := dsar.New(dsar.Config{Store: db.DSAR(), Connectors: stores, TaskTimeout: 50 * time.Millisecond,
		Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.Submit(ctx, dsar.Request{Type: dsar.TypeDeletion, Subject: "cust-kind", Regime: privguard.RegimeGDPR, Identity: &dsar.Identity{Method: "operator"}})
	if err != nil {
		t.Fatal(err)
	}
	e.Step(ctx)
	r, _ = e.Get(ctx, r.ID)
	want := map[string]struct {
		kind dsar.ErrorKind
		last string
	}{
		"crm":   {dsar.KindTableMissing, "crm: erase customers failed: table_missing"},
		"cache": {dsar.KindConnectionRefused, "cache: erase failed: connection_refused"},
		"slow":  {dsar.KindTimeout, "slow: failed: timeout"},
		"texty": {dsar.KindOther, "texty: failed: other"}, // the text is never read
	}
	for _, tk := range r.Tasks {
		if w := want[tk.Store]; tk.ErrorKind != w.kind || tk.LastError != w.last {
			t.Errorf("task %s: kind %q, last error %q; want %q, %q", tk.Store, tk.ErrorKind, tk.LastError, w.kind, w.last)
		}
	}
	for store, w := range want {
		if !strings.Contains(logs.String(), `"store":"`+store+`","op":"erase","kind":"`+string(w.kind)+`"`) {
			t.Errorf("no log line for %s with kind %s:\n%s", store, w.kind, logs.String())
		}
	}
	if strings.Contains(logs.String(), secret) || strings.Contains(logs.String(), "cust-kind") {
		t.Errorf("the log holds the error text or the subject:\n%s", logs.String())
	}
}

func TestKindOf(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want dsar.ErrorKind
	}{
		{nil, ""},
		{context.DeadlineExceeded, dsar.KindTimeout},
		{fmt.Errorf("x: %w", context.Canceled), dsar.KindCancelled},
		{&dsar.ConnectorError{Kind: dsar.KindPermissionDenied, Err: errors.New("x")}, dsar.KindPermissionDenied},
		{fmt.Errorf("%w: %w", context.DeadlineExceeded, &dsar.ConnectorError{Kind: dsar.KindConnectionLost}), dsar.KindTimeout},
		{&net.DNSError{Err: "no such host", Name: "db.invalid", IsNotFound: true}, dsar.KindHostUnknown},
		{&net.OpError{Op: "read", Err: errors.New("x")}, dsar.KindOther},
		{errors.New("connection refused"), dsar.KindOther},
		{&os.PathError{Op: "open", Path: "outbox.jsonl", Err: os.ErrPermission}, dsar.KindPermissionDenied},
	} {
		if got := dsar.KindOf(tc.err); got != tc.want {
			t.Errorf("KindOf(%v) = %q; want %q", tc.err, got, tc.want)
		}
	}
}

// TestCompletionStepFailureIsLogged: when privguard's own step after the stores fails
// (shredding, the ledger), the log says which step and its kind, not the error's text.
func TestCompletionStepFailureIsLogged(t *testing.T) {
	var logs bytes.Buffer
	db, err := boltstore.Open(filepath.Join(t.TempDir(), "p.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	e, err := dsar.New(dsar.Config{Store: db.DSAR(), Connectors: []dsar.Connector{&memStore{name: "crm", data: map[privguard.SubjectID]int{}}},
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
		OnErased: func(context.Context, privguard.SubjectID) error {
			return &os.PathError{Op: "write", Path: "/data/ledger-of-li.lei", Err: os.ErrPermission}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Submit(ctx, dsar.Request{Type: dsar.TypeDeletion, Subject: "cust-step", Regime: privguard.RegimeGDPR, Identity: &dsar.Identity{Method: "operator"}}); err != nil {
		t.Fatal(err)
	}
	e.Step(ctx)
	if !strings.Contains(logs.String(), `"msg":"dsar completion step failed"`) || !strings.Contains(logs.String(), `"kind":"permission_denied"`) {
		t.Errorf("no log line naming the step and kind:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "li.lei") || strings.Contains(logs.String(), "cust-step") {
		t.Errorf("the log holds the error text or the subject:\n%s", logs.String())
	}
}
