package dsar_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/dsar"
)

// profileStore is a connector with typed tables: a CRM profile and derived tags.
type profileStore struct {
	name  string
	fails int
}

func (p *profileStore) Name() string { return p.name }

func (p *profileStore) Export(_ context.Context, s privguard.SubjectID) (dsar.Export, error) {
	if p.fails > 0 {
		p.fails--
		return dsar.Export{}, &dsar.ConnectorError{Connector: p.name, Op: "export", Err: errors.New("down")}
	}
	if s != "cust-1" {
		return dsar.Export{Store: p.name}, nil
	}
	return dsar.Export{Store: p.name, Tables: []dsar.Table{
		{Name: "customers", Categories: map[string]privguard.DataCategory{"email": "user.contact.email", "city": "user.location.imprecise", "phone": "user.contact.phone_number"},
			Rows: []map[string]any{{"customer_id": "cust-1", "email": "li.lei@example.com", "city": "上海", "phone": nil}}},
		{Name: "user_tags", Categories: map[string]privguard.DataCategory{"tag": "user.derived.tags"},
			Rows: []map[string]any{{"uid": "cust-1", "tag": "=HYPERLINK(\"x\")"}, {"uid": "cust-1", "tag": "高价值"}}},
	}}, nil
}

func (p *profileStore) Erase(context.Context, privguard.SubjectID) (dsar.Erased, error) {
	return dsar.Erased{}, nil
}

type linkBox struct {
	mu     sync.Mutex
	tokens map[string]string
}

func (l *linkBox) SendCode(context.Context, privguard.SubjectID, string, string) error { return nil }
func (l *linkBox) SendLink(_ context.Context, _ privguard.SubjectID, id, token string, _ time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tokens[id] = token
	return nil
}

func disclose(_ context.Context, r dsar.Request) (dsar.Disclosure, error) {
	return dsar.Disclosure{
		Controller: dsar.Party{Name: "Example Retail Ltd", Contact: "privacy@example.com"},
		Purposes:   []dsar.PurposeUse{{Purpose: "marketing.communications.sms", Bases: []privguard.LegalBasis{"consent"}, Consent: "given"}},
		Recipients: []dsar.Recipient{{Name: "SMS vendor", Country: "CN", Purposes: []privguard.Purpose{"marketing.communications.sms"}}},
		Retention:  "until the account is closed, then 3 years",
		Sources:    []string{"collected from you at sign-up"},
		ConsentHistory: []dsar.ConsentEvent{{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Action: "grant",
			Purpose: "marketing.communications.sms", Notice: "n-1@v1", Record: "rec-1"}},
		AutomatedDecisions: "segments are computed from purchases; no decision with legal effect",
		Rights:             "privacy@example.com or the app's privacy centre",
	}, nil
}

type resultEnv struct {
	dir   string
	e     *dsar.Engine
	c     *clock
	links *linkBox
	db    *boltstore.DB
}

func newResultEnv(t *testing.T, dir string, conns ...dsar.Connector) *resultEnv {
	t.Helper()
	db, err := boltstore.Open(filepath.Join(dir, "privguard.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	env := &resultEnv{dir: dir, c: &clock{time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}, links: &linkBox{tokens: map[string]string{}}, db: db}
	env.e, err = dsar.New(dsar.Config{Store: db.DSAR(), Connectors: conns, Now: env.c.Now, Sealer: newVault(t, dir, db),
		Disclose: disclose, Notifier: env.links, BaseBackoff: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func (env *resultEnv) finished(t *testing.T, typ dsar.Type) (dsar.Request, string) {
	t.Helper()
	r, err := env.e.Submit(ctx, dsar.Request{Type: typ, Subject: "cust-1", Regime: privguard.RegimePIPL, Identity: &dsar.Identity{Method: "token"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.e.Step(ctx); err != nil {
		t.Fatal(err)
	}
	r, _ = env.e.Get(ctx, r.ID)
	if r.State != dsar.StateCompleted || r.Result == nil {
		t.Fatalf("%s request: %s, result %v; want completed with a result", typ, r.State, r.Result)
	}
	return r, env.links.tokens[r.ID]
}

// unzip returns the package's files after checking the manifest's checksums.
func unzip(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		files[f.Name], _ = io.ReadAll(rc)
		rc.Close()
	}
	var m dsar.Manifest
	if err := json.Unmarshal(files["manifest.json"], &m); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	if len(m.Files) != len(files)-1 {
		t.Errorf("manifest lists %d files; the zip has %d besides it", len(m.Files), len(files)-1)
	}
	for _, mf := range m.Files {
		sum := sha256.Sum256(files[mf.Path])
		if hex.EncodeToString(sum[:]) != mf.SHA256 || len(files[mf.Path]) != mf.Bytes {
			t.Errorf("%s: checksum or size does not match the manifest", mf.Path)
		}
	}
	return files
}

func compileSchema(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	b, err := dsar.Schemas.ReadFile("schema/" + name)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(name, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func validate(t *testing.T, s *jsonschema.Schema, name string, b []byte) {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if err := s.Validate(v); err != nil {
		t.Errorf("%s does not follow its schema: %v", name, err)
	}
}

func TestAccessPackage(t *testing.T) {
	// proves DSR-06: the access answer holds the data and every metadata section, with the
	// consent history and the derived tags. proves PUR-05: tags are exported.
	env := newResultEnv(t, t.TempDir(), &profileStore{name: "crm"})
	r, token := env.finished(t, dsar.TypeAccess)
	if token == "" {
		t.Fatal("no download link was sent")
	}
	if _, _, err := fetch(env.e, r.ID, strings.Repeat("0", 64)); !errors.Is(err, dsar.ErrBadDownloadToken) {
		t.Errorf("wrong token: %v", err)
	}
	zb, res, err := fetch(env.e, r.ID, token)
	if err != nil {
		t.Fatal(err)
	}
	if res.DownloadedAt.IsZero() || res.Bytes != len(zb) {
		t.Errorf("result after download: %+v", res)
	}
	files := unzip(t, zb)
	for _, want := range []string{"README.txt", "disclosure.json", "manifest.json", "data/crm.json", "data/crm/customers.csv", "data/crm/user_tags.csv"} {
		if files[want] == nil {
			t.Errorf("package lacks %s", want)
		}
	}
	validate(t, compileSchema(t, "disclosure.schema.json"), "disclosure.json", files["disclosure.json"])
	validate(t, compileSchema(t, "manifest.schema.json"), "manifest.json", files["manifest.json"])
	validate(t, compileSchema(t, "store-export.schema.json"), "data/crm.json", files["data/crm.json"])

	var doc dsar.PackageDoc
	if err := json.Unmarshal(files["disclosure.json"], &doc); err != nil {
		t.Fatal(err)
	}
	d := doc.Disclosure
	cats := map[privguard.DataCategory]dsar.CategoryHeld{}
	for _, c := range d.Categories {
		cats[c.Category] = c
	}
	if c := cats["user.derived.tags"]; !c.Derived || c.Items != 2 {
		t.Errorf("derived tags: %+v", c)
	}
	if _, ok := cats["user.contact.phone_number"]; ok {
		t.Error("a category with no value (phone is NULL) is reported as held")
	}
	if len(d.ConsentHistory) != 1 || len(d.Recipients) != 1 || d.Complaint == "" || d.Retention == "" {
		t.Errorf("disclosure sections: %+v", d)
	}
	readme := string(files["README.txt"])
	for _, want := range []string{"【中文】", "[English]", "user.contact.email", "user.derived.tags", "SMS vendor [CN]", "个人信息处理者", "Controller: Example Retail Ltd"} {
		if !strings.Contains(readme, want) {
			t.Errorf("README.txt lacks %q", want)
		}
	}
	rows, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(files["data/crm/user_tags.csv"], []byte("\uFEFF")))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[0][0] != "tag" || rows[1][0] != `'=HYPERLINK("x")` || rows[2][0] != "高价值" {
		t.Errorf("user_tags.csv = %q; want a header, the formula defused, the Chinese tag intact", rows)
	}
	if !strings.Contains(string(files["data/crm.json"]), `"=HYPERLINK(\"x\")"`) {
		t.Error("the JSON copy must keep the exact value")
	}

	// Once: a second download is refused and the package is gone from the store.
	if _, _, err := fetch(env.e, r.ID, token); !errors.Is(err, dsar.ErrResultGone) {
		t.Errorf("second download: %v; want ErrResultGone", err)
	}
	if _, err := env.db.DSAR().Result(ctx, r.ID+"/package"); !errors.Is(err, privguard.ErrNotFound) {
		t.Errorf("package still stored after download: %v", err)
	}
	if r, _ := env.e.Get(ctx, r.ID); !r.Result.Purged {
		t.Errorf("result after download: %+v", r.Result)
	}
}

func TestPortabilityPackageIsMachineReadable(t *testing.T) {
	// proves DSR-07: the portable copy validates against the published JSON Schema.
	env := newResultEnv(t, t.TempDir(), &profileStore{name: "crm"}, &profileStore{name: "tags"})
	r, token := env.finished(t, dsar.TypePortability)
	zb, _, err := fetch(env.e, r.ID, token)
	if err != nil {
		t.Fatal(err)
	}
	files := unzip(t, zb)
	s := compileSchema(t, "store-export.schema.json")
	for _, name := range []string{"data/crm.json", "data/tags.json"} {
		validate(t, s, name, files[name])
		var x dsar.Export
		if err := json.Unmarshal(files[name], &x); err != nil || x.Rows() != 3 {
			t.Errorf("%s: %d rows, %v; want 3", name, x.Rows(), err)
		}
	}
}

func TestCategoriesPackageHasNoData(t *testing.T) {
	env := newResultEnv(t, t.TempDir(), &profileStore{name: "crm"})
	r, token := env.finished(t, dsar.TypeCategories)
	zb, _, err := fetch(env.e, r.ID, token)
	if err != nil {
		t.Fatal(err)
	}
	files := unzip(t, zb)
	for name := range files {
		if strings.HasPrefix(name, "data/") {
			t.Errorf("a categories-only answer holds %s", name)
		}
	}
	if bytes.Contains(zb, []byte("li.lei")) || bytes.Contains(files["disclosure.json"], []byte("li.lei")) {
		t.Error("a categories-only answer holds the data itself")
	}
	validate(t, compileSchema(t, "disclosure.schema.json"), "disclosure.json", files["disclosure.json"])
	if !bytes.Contains(files["disclosure.json"], []byte("user.contact.email")) {
		t.Error("categories-only answer lacks the categories")
	}
}

func TestResultExpiresAndLinksRotate(t *testing.T) {
	env := newResultEnv(t, t.TempDir(), &profileStore{name: "crm"})
	r, first := env.finished(t, dsar.TypeAccess)
	second, expires, err := env.e.IssueLink(ctx, r.ID)
	if err != nil || !expires.Equal(r.Result.ExpiresAt) {
		t.Fatalf("IssueLink: %v, expires %v", err, expires)
	}
	if _, _, err := fetch(env.e, r.ID, first); !errors.Is(err, dsar.ErrBadDownloadToken) {
		t.Errorf("the replaced token still works: %v", err)
	}
	env.c.t = r.Result.ExpiresAt.Add(time.Second)
	if _, err := env.e.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := fetch(env.e, r.ID, second); !errors.Is(err, dsar.ErrResultGone) {
		t.Errorf("download after expiry: %v", err)
	}
	if _, _, err := env.e.IssueLink(ctx, r.ID); !errors.Is(err, dsar.ErrResultGone) {
		t.Errorf("link after expiry: %v", err)
	}
	if _, err := env.db.DSAR().Result(ctx, r.ID+"/package"); !errors.Is(err, privguard.ErrNotFound) {
		t.Errorf("expired package still stored: %v", err)
	}
	if got, _ := env.e.Get(ctx, r.ID); !got.Result.Purged || !got.ClosedAt.Equal(r.Result.CreatedAt) {
		t.Errorf("expired result: purged %v, closed at %v; want destroyed, and closed when it was completed (%v), not when destroyed",
			got.Result.Purged, got.ClosedAt, r.Result.CreatedAt)
	}
}

func TestResultPartsSurviveRestartAndStayEncrypted(t *testing.T) {
	dir := t.TempDir()
	tags := &profileStore{name: "tags", fails: 1}
	env := newResultEnv(t, dir, &profileStore{name: "crm"}, tags)
	r, err := env.e.Submit(ctx, dsar.Request{Type: dsar.TypeAccess, Subject: "cust-1", Regime: privguard.RegimeGDPR, Identity: &dsar.Identity{Method: "operator"}})
	if err != nil {
		t.Fatal(err)
	}
	env.e.Step(ctx)
	if r, _ = env.e.Get(ctx, r.ID); r.State != dsar.StatePartiallyFailed || r.Result != nil {
		t.Fatalf("with tags down: %s", r.State)
	}
	part, err := env.db.DSAR().Result(ctx, r.ID+"/part/crm")
	if err != nil {
		t.Fatalf("crm's export is not kept: %v", err)
	}
	if bytes.Contains(part, []byte("li.lei")) || bytes.Contains(part, []byte("customers")) {
		t.Error("a stored export part is not encrypted")
	}
	env.db.Close()

	env = newResultEnv(t, dir, &profileStore{name: "crm"}, &profileStore{name: "tags"})
	env.c.t = env.c.t.Add(time.Hour)
	env.e.Step(ctx)
	if r, _ = env.e.Get(ctx, r.ID); r.State != dsar.StateCompleted || r.Result == nil || r.Result.Files != 9 {
		t.Fatalf("after restart: %s, %+v", r.State, r.Result)
	}
	if _, err := env.db.DSAR().Result(ctx, r.ID+"/part/crm"); !errors.Is(err, privguard.ErrNotFound) {
		t.Errorf("parts kept after the package was built: %v", err)
	}
}

func TestCancelledAccessDestroysParts(t *testing.T) {
	env := newResultEnv(t, t.TempDir(), &profileStore{name: "crm"}, &profileStore{name: "tags", fails: 100})
	r, _ := env.e.Submit(ctx, dsar.Request{Type: dsar.TypeAccess, Subject: "cust-1", Regime: privguard.RegimeGDPR, Identity: &dsar.Identity{Method: "operator"}})
	env.e.Step(ctx)
	if _, err := env.db.DSAR().Result(ctx, r.ID+"/part/crm"); err != nil {
		t.Fatal(err)
	}
	if _, err := env.e.Cancel(ctx, r.ID, "subject withdrew the request"); err != nil {
		t.Fatal(err)
	}
	env.e.Step(ctx)
	if _, err := env.db.DSAR().Result(ctx, r.ID+"/part/crm"); !errors.Is(err, privguard.ErrNotFound) {
		t.Errorf("a cancelled request's export part is kept: %v", err)
	}
}

func TestAccessRefusedWithoutSealer(t *testing.T) {
	db := openDB(t, t.TempDir())
	e, _ := dsar.New(dsar.Config{Store: db.DSAR()})
	if _, err := e.Submit(ctx, dsar.Request{Type: dsar.TypeAccess, Subject: "cust-1", Regime: privguard.RegimeGDPR}); !errors.Is(err, privguard.ErrUnavailable) {
		t.Errorf("access without a sealer: %v; want ErrUnavailable (results are never stored in clear)", err)
	}
}

// flakyPuts fails the next n request writes (a batch of them is one).
type flakyPuts struct {
	*boltstore.DSARStore
	mu sync.Mutex
	n  int
}

func (f *flakyPuts) PutRequest(ctx context.Context, id string, body []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n > 0 {
		f.n--
		return errors.New("disk full")
	}
	return f.DSARStore.PutRequest(ctx, id, body)
}

// PutRequests is one write: it fails as a whole.
func (f *flakyPuts) PutRequests(ctx context.Context, ids []string, bodies [][]byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n > 0 {
		f.n--
		return errors.New("disk full")
	}
	return f.DSARStore.PutRequests(ctx, ids, bodies)
}

func TestPackageSurvivesAFailedWrite(t *testing.T) {
	// The package is built, then the request cannot be stored: the next round builds it
	// again from the parts, which are only dropped once the request holding it is stored.
	dir := t.TempDir()
	db := openDB(t, dir)
	store := &flakyPuts{DSARStore: db.DSAR()}
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	e, err := dsar.New(dsar.Config{Store: store, Connectors: []dsar.Connector{&profileStore{name: "crm"}, &profileStore{name: "tags", fails: 1}},
		Sealer: newVault(t, dir, db), Now: func() time.Time { return now }, BaseBackoff: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.Submit(ctx, dsar.Request{Type: dsar.TypeAccess, Subject: "cust-1", Regime: privguard.RegimeGDPR, Identity: &dsar.Identity{Method: "operator"}})
	if err != nil {
		t.Fatal(err)
	}
	e.Step(ctx) // crm answers (stored done), tags fails
	now = now.Add(time.Hour)
	store.mu.Lock()
	store.n = 1
	store.mu.Unlock()
	if _, err := e.Step(ctx); err == nil { // tags answers, the package is built, the write fails
		t.Fatal("Step hid the failed write")
	}
	if _, err := e.Step(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := e.Get(ctx, r.ID)
	if got.State != dsar.StateCompleted || got.Result == nil {
		t.Fatalf("after a failed write and another round: %s %+v", got.State, got.Result)
	}
	tok, _, err := e.IssueLink(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := fetch(e, r.ID, tok); err != nil {
		t.Errorf("download: %v", err)
	}
}

// fetch downloads a package.
func fetch(e *dsar.Engine, id, token string) ([]byte, dsar.Result, error) {
	var zip []byte
	res, err := e.Download(ctx, id, token, func(b []byte, _ dsar.Result) error { zip = b; return nil })
	return zip, res, err
}

func TestInterruptedDownloadStaysAvailable(t *testing.T) {
	env := newResultEnv(t, t.TempDir(), &profileStore{name: "crm"})
	r, token := env.finished(t, dsar.TypeAccess)
	// While one download is being handed over, another gets "gone"; the first fails
	// (the client went away) and the package is still there.
	_, err := env.e.Download(ctx, r.ID, token, func([]byte, dsar.Result) error {
		if _, _, err := fetch(env.e, r.ID, token); !errors.Is(err, dsar.ErrResultGone) {
			t.Errorf("a second download during the first: %v; want ErrResultGone", err)
		}
		env.e.Step(ctx) // the sweep must not destroy a package being handed over
		return errors.New("connection reset")
	})
	if err == nil || err.Error() != "connection reset" {
		t.Fatalf("interrupted download: %v", err)
	}
	if got, _ := env.e.Get(ctx, r.ID); !got.Result.DownloadedAt.IsZero() || got.Result.Purged {
		t.Fatalf("after an interrupted download: %+v; want it available", got.Result)
	}
	if zb, _, err := fetch(env.e, r.ID, token); err != nil || len(zb) == 0 {
		t.Errorf("download after the interruption: %v", err)
	}
	if _, _, err := fetch(env.e, "no-such-request", token); !errors.Is(err, dsar.ErrBadDownloadToken) {
		t.Errorf("unknown request: %v; want the same answer as a wrong token", err)
	}
}

// newController is the controller a subject moves to: it receives portability packages.
type newController struct {
	recipient
	fail     bool
	received map[string][]byte
}

func (n *newController) ReceivePackage(_ context.Context, id string, zip []byte, sha string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fail {
		return errors.New("the new controller is down")
	}
	sum := sha256.Sum256(zip)
	if hex.EncodeToString(sum[:]) != sha {
		return errors.New("checksum")
	}
	n.received[id] = zip
	return nil
}

func TestPortabilityTransferToTheNamedController(t *testing.T) {
	// proves DSR-07: the portable copy goes straight to the controller the subject named,
	// as the package's one download; if it cannot be delivered the subject gets the link.
	dir := t.TempDir()
	db := openDB(t, dir)
	next := &newController{recipient: recipient{name: "next-shop"}, received: map[string][]byte{}}
	plain := &recipient{name: "sms"}
	links := &linkBox{tokens: map[string]string{}}
	e, err := dsar.New(dsar.Config{Store: db.DSAR(), Connectors: []dsar.Connector{&profileStore{name: "crm"}}, Sealer: newVault(t, dir, db),
		Recipients: []dsar.RecipientNotifier{next, plain}, Notifier: links, BaseBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	op := &dsar.Identity{Method: "operator"}
	for name, r := range map[string]dsar.Request{
		"access with a transfer": {Type: dsar.TypeAccess, TransferTo: "next-shop"},
		"a recipient without it": {Type: dsar.TypePortability, TransferTo: "sms"},
		"an unknown recipient":   {Type: dsar.TypePortability, TransferTo: "elsewhere"},
	} {
		r.Subject, r.Regime, r.Identity = "cust-1", privguard.RegimeGDPR, op
		if _, err := e.Submit(ctx, r); !errors.Is(err, privguard.ErrInvalid) {
			t.Errorf("%s: %v; want ErrInvalid", name, err)
		}
	}
	r, err := e.Submit(ctx, dsar.Request{Type: dsar.TypePortability, Subject: "cust-1", Regime: privguard.RegimeGDPR, Identity: op, TransferTo: "next-shop"})
	if err != nil {
		t.Fatal(err)
	}
	e.Step(ctx)
	got, _ := e.Get(ctx, r.ID)
	if zb := next.received[r.ID]; len(zb) == 0 || got.State != dsar.StateCompleted || !got.Result.Purged || links.tokens[r.ID] != "" {
		t.Fatalf("transfer: received %d bytes, %s, result %+v, link %q; want the package delivered once and destroyed, no link", len(zb), got.State, got.Result, links.tokens[r.ID])
	}
	unzip(t, next.received[r.ID])
	// The next controller is down: the subject gets the link instead.
	next.fail = true
	r2, _ := e.Submit(ctx, dsar.Request{Type: dsar.TypePortability, Subject: "cust-1", Regime: privguard.RegimeGDPR, Identity: op, TransferTo: "next-shop"})
	e.Step(ctx)
	if tok := links.tokens[r2.ID]; tok == "" {
		t.Fatal("a failed transfer left the subject without the link")
	} else if _, _, err := fetch(e, r2.ID, tok); err != nil {
		t.Errorf("download after a failed transfer: %v", err)
	}
}

func TestATransferAndACopyAreNotDuplicates(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir)
	next := &newController{recipient: recipient{name: "next-shop"}, received: map[string][]byte{}}
	e, _ := dsar.New(dsar.Config{Store: db.DSAR(), Sealer: newVault(t, dir, db), Recipients: []dsar.RecipientNotifier{next}})
	move := dsar.Request{Type: dsar.TypePortability, Subject: "cust-1", Regime: privguard.RegimeGDPR, TransferTo: "next-shop"}
	a, _ := e.Submit(ctx, move)
	b, _ := e.Submit(ctx, dsar.Request{Type: dsar.TypePortability, Subject: "cust-1", Regime: privguard.RegimeGDPR})
	c, _ := e.Submit(ctx, move)
	if a.ID == b.ID || a.ID != c.ID || b.TransferTo != "" {
		t.Errorf("transfer %s, copy %s, transfer again %s: a copy for the subject must not fold into a transfer, nor the reverse", a.ID, b.ID, c.ID)
	}
}

func TestDefaultsWhenNothingIsConfigured(t *testing.T) {
	// Without a Disclose hook the answer still names the rights and the complaint route,
	// in both languages, and says where to find the controller.
	dir := t.TempDir()
	db := openDB(t, dir)
	e, _ := dsar.New(dsar.Config{Store: db.DSAR(), Connectors: []dsar.Connector{&profileStore{name: "crm"}}, Sealer: newVault(t, dir, db)})
	r, _ := e.Submit(ctx, dsar.Request{Type: dsar.TypeAccess, Subject: "cust-1", Regime: privguard.RegimePIPL, Identity: &dsar.Identity{Method: "operator"}})
	e.Step(ctx)
	tok, _, err := e.IssueLink(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	zb, _, err := fetch(e, r.ID, tok)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(unzip(t, zb)["README.txt"])
	for _, want := range []string{"第四十四条至第四十八条", "PIPL Arts. 44-48", "第五十条、第六十五条", "PIPL Arts. 50, 65", "见隐私政策", "see the privacy notice"} {
		if !strings.Contains(readme, want) {
			t.Errorf("README.txt lacks %q:\n%s", want, readme)
		}
	}
	for name, f := range unzipFiles(t, zb) {
		if f.Modified.Year() < 2000 {
			t.Errorf("%s is dated %v", name, f.Modified)
		}
	}
}

func unzipFiles(t *testing.T, b []byte) map[string]*zip.File {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*zip.File{}
	for _, f := range zr.File {
		out[f.Name] = f
	}
	return out
}

func TestDownloadCutByACrashFreesThePackageLater(t *testing.T) {
	// privguard dies while handing a package over: after a restart the package is busy for
	// DeliveryWindow, then available again (the copy is not lost), and still only once.
	dir := t.TempDir()
	db := openDB(t, dir)
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	vlt := newVault(t, dir, db)
	cfg := dsar.Config{Store: db.DSAR(), Connectors: []dsar.Connector{&profileStore{name: "crm"}}, Sealer: vlt, Now: clock}
	first, _ := dsar.New(cfg)
	r, _ := first.Submit(ctx, dsar.Request{Type: dsar.TypeAccess, Subject: "cust-1", Regime: privguard.RegimeGDPR, Identity: &dsar.Identity{Method: "operator"}})
	first.Step(ctx)
	tok, _, err := first.IssueLink(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	inDelivery, dead, over := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(over)
		first.Download(ctx, r.ID, tok, func([]byte, dsar.Result) error {
			close(inDelivery)
			<-dead // the process is gone: this delivery never ends while the test looks
			return errors.New("process killed")
		})
	}()
	<-inDelivery
	restarted, _ := dsar.New(cfg) // a new process on the same store
	if _, _, err := fetch(restarted, r.ID, tok); !errors.Is(err, dsar.ErrResultGone) {
		t.Errorf("during the cut delivery's window: %v; want ErrResultGone", err)
	}
	restarted.Step(ctx) // the sweep must not destroy it either
	now = now.Add(dsar.DeliveryWindow + time.Second)
	zb, _, err := fetch(restarted, r.ID, tok)
	if err != nil || len(zb) == 0 {
		t.Fatalf("after the window: %v; want the package", err)
	}
	if _, _, err := fetch(restarted, r.ID, tok); !errors.Is(err, dsar.ErrResultGone) {
		t.Errorf("a second download: %v; want ErrResultGone", err)
	}
	close(dead)
	<-over
}
