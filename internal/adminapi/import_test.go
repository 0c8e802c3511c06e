package adminapi_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
	"github.com/privguard/privguard/internal/adminapi"
)

// importLine is a valid imported grant of marketing.communications.sms for subject.
func importLine(subject, key string) string {
	k := ""
	if key != "" {
		k = fmt.Sprintf(`,"idempotency_key":%q`, key)
	}
	return fmt.Sprintf(`{"subject":%q,"purpose":"marketing.communications.sms","action":"grant","regime":"pipl",`+
		`"notice":{"id":"marketing","version":1},"channel":"web","method":"imported",`+
		`"evidence":{"collected_by":"third_party","contract_ref":"dpa-14","proof_ref":"partner://export/1"}%s}`, subject, k)
}

type importAnswer struct {
	Index   *int   `json:"index"`
	Outcome string `json:"outcome"`
	ID      string `json:"id"`
	Seq     uint64 `json:"seq"`
	Problem *struct {
		Type   string `json:"type"`
		Status int    `json:"status"`
		Field  string `json:"field"`
		Errors []struct {
			Field, Rule string
		} `json:"errors"`
	} `json:"problem"`
	Summary *struct {
		Items, Created, Replayed, Rejected, Failed int
		Complete                                   bool
		NextIndex                                  int `json:"next_index"`
		Error                                      string
	} `json:"summary"`
}

// postImport sends body to POST /v1/consents/import and returns the status and the answer lines.
func (e *env) postImport(body, tok string) (int, []importAnswer) {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.srv.URL+"/v1/consents/import", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, readAnswers(e.t, resp.Body)
}

func readAnswers(t *testing.T, r io.Reader) []importAnswer {
	t.Helper()
	var out []importAnswer
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var a importAnswer
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Fatalf("answer line %q: %v", sc.Bytes(), err)
		}
		out = append(out, a)
	}
	return out
}

func outcomes(answers []importAnswer) map[int]importAnswer {
	m := map[int]importAnswer{}
	for _, a := range answers {
		if a.Index != nil {
			m[*a.Index] = a
		}
	}
	return m
}

// Each item is answered on its own: good ones are committed, bad ones refused with their
// problem, and nothing of a bad one is written. Proves MKT-11 (imported consent needs its
// provenance).
func TestImportAnswersEachItem(t *testing.T) {
	e := newEnv(t)
	e.registerNotice()
	before := e.ledger.Stats().Records
	items := []struct {
		name, line, outcome, field, rule string
	}{
		{"good", importLine("imp-1", "k1"), "created", "", ""},
		{"malformed_json", `{"subject":"imp-2",`, "rejected", "", ""},
		{"no_proof", strings.Replace(importLine("imp-3", ""), `,"proof_ref":"partner://export/1"`, "", 1), "rejected", "evidence.proof_ref", consent.CodeProvenanceRequired},
		{"no_source", strings.Replace(importLine("imp-4", ""), `"collected_by":"third_party",`, "", 1), "rejected", "evidence.collected_by", consent.CodeProvenanceRequired},
		{"third_party_without_contract", strings.Replace(importLine("imp-5", ""), `"contract_ref":"dpa-14",`, "", 1), "rejected", "evidence.contract_ref", consent.CodeProvenanceRequired},
		{"first_hand_method", strings.Replace(importLine("imp-6", ""), `"imported"`, `"explicit"`, 1), "rejected", "method", consent.CodeInvalid},
		{"controller_fact", `{"subject":"imp-7","action":"erase"}`, "rejected", "action", consent.CodeInvalid},
		{"unknown_notice_version", strings.Replace(importLine("imp-8", ""), `"version":1`, `"version":9`, 1), "rejected", "notice.version", consent.CodeNoticeUnknown},
		{"key_in_another_case", strings.Replace(importLine("imp-9", ""), `"subject"`, `"Subject"`, 1), "rejected", "subject", ""},
		{"oversized", importLine("imp-10", "") + strings.Repeat(" ", adminapi.MaxImportItem), "rejected", "", ""},
		{"same_key_again", importLine("imp-1", "k1"), "replayed", "", ""},
		{"same_key_other_item", importLine("imp-11", "k1"), "rejected", "idempotency_key", consent.CodeIdempotencyReused},
		{"validation", strings.Replace(importLine("imp-12", ""), `"pipl"`, `"ccpa"`, 1), "rejected", "regime", "oneof=pipl gdpr"},
		{"good_after_bad", importLine("imp-13", ""), "created", "", ""},
	}
	var body strings.Builder
	for i, it := range items {
		body.WriteString(it.line + "\n")
		if i == 3 {
			body.WriteString("\n   \n") // blank lines are not items
		}
	}
	status, answers := e.postImport(body.String(), token)
	if status != http.StatusOK {
		t.Fatalf("import = %d; want 200", status)
	}
	got := outcomes(answers)
	for i, it := range items {
		a, ok := got[i]
		switch {
		case !ok:
			t.Errorf("%s: item %d has no answer", it.name, i)
		case a.Outcome != it.outcome:
			t.Errorf("%s: outcome %q (%+v); want %q", it.name, a.Outcome, a.Problem, it.outcome)
		case it.outcome == "rejected" && a.Problem == nil:
			t.Errorf("%s: rejected without a problem", it.name)
		case it.field != "" && a.Problem.Field != it.field:
			t.Errorf("%s: problem field %q; want %q", it.name, a.Problem.Field, it.field)
		case it.rule != "" && (len(a.Problem.Errors) == 0 || a.Problem.Errors[0].Rule != it.rule):
			t.Errorf("%s: problem errors %+v; want rule %q", it.name, a.Problem.Errors, it.rule)
		case it.outcome == "created" && (a.ID == "" || a.Seq == 0):
			t.Errorf("%s: created without id and seq: %+v", it.name, a)
		}
	}
	if got[0].ID != got[10].ID {
		t.Errorf("the replayed item names record %s; want the first one, %s", got[10].ID, got[0].ID)
	}
	if a := got[9]; a.Problem == nil || a.Problem.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized item: %+v; want a 413 problem", a.Problem)
	}
	last := answers[len(answers)-1].Summary
	if last == nil || !last.Complete || last.Items != len(items) || last.Created != 2 || last.Replayed != 1 || last.Rejected != len(items)-3 {
		t.Errorf("summary = %+v; want complete, %d items, 2 created, 1 replayed", last, len(items))
	}
	if n := e.ledger.Stats().Records - before; n != 2 {
		t.Errorf("the import wrote %d records; want 2", n)
	}
}

// The answers name exactly the items to send again: once fixed, only they are sent, and
// a whole file sent again with idempotency keys writes nothing twice.
func TestImportRetryExactlyTheFailed(t *testing.T) {
	e := newEnv(t)
	e.registerNotice()
	var lines []string
	for i := range 20 {
		l := importLine(fmt.Sprintf("retry-%d", i), fmt.Sprintf("retry-key-%d", i))
		if i%3 == 0 {
			l = strings.Replace(l, `,"proof_ref":"partner://export/1"`, "", 1) // fixed below
		}
		lines = append(lines, l)
	}
	_, answers := e.postImport(strings.Join(lines, "\n"), token) // no final newline: still an item
	var again []string
	for _, a := range answers {
		if a.Index != nil && a.Outcome != "created" {
			again = append(again, strings.Replace(lines[*a.Index], `"contract_ref":"dpa-14"`, `"contract_ref":"dpa-14","proof_ref":"partner://export/2"`, 1))
		}
	}
	if len(again) != 7 {
		t.Fatalf("%d items to send again; want 7: %+v", len(again), answers)
	}
	_, answers = e.postImport(strings.Join(again, "\n")+"\n", token)
	if s := answers[len(answers)-1].Summary; s == nil || s.Created != 7 || s.Rejected != 0 {
		t.Fatalf("second import summary = %+v; want 7 created", s)
	}
	before := e.ledger.Stats().Records
	_, answers = e.postImport(strings.Join(lines[1:3], "\n"), token)
	if s := answers[len(answers)-1].Summary; s == nil || s.Replayed != 2 || e.ledger.Stats().Records != before {
		t.Errorf("sending committed items again with their keys = %+v, %d new records; want 2 replayed, none new",
			s, e.ledger.Stats().Records-before)
	}
}

// A body cut short commits the chunks read whole before the cut, answers them, and says
// where to resume; nothing of the chunk being read is committed.
func TestImportCutBody(t *testing.T) {
	for _, framing := range []string{"chunked", "content-length"} {
		t.Run(framing, func(t *testing.T) {
			e := newEnv(t)
			e.registerNotice()
			before := e.ledger.Stats().Records
			const whole = consent.MaxGroup // the first chunk
			var body strings.Builder
			for i := range whole + 100 {
				body.WriteString(importLine(fmt.Sprintf("cut-%d", i), "") + "\n")
			}
			body.WriteString(`{"subject":"cut-half`) // the connection is lost mid-item
			u, _ := url.Parse(e.srv.URL)
			conn, err := net.Dial("tcp", u.Host)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			head := "POST /v1/consents/import HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token +
				"\r\nContent-Type: application/x-ndjson\r\n"
			w := bufio.NewWriter(conn)
			if framing == "chunked" {
				fmt.Fprintf(w, "%sTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n", head, body.Len(), body.String()) // no last chunk
			} else {
				fmt.Fprintf(w, "%sContent-Length: %d\r\n\r\n%s", head, body.Len()+1000, body.String())
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			conn.(*net.TCPConn).CloseWrite()
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			answers := readAnswers(t, resp.Body)
			s := answers[len(answers)-1].Summary
			if s == nil || s.Complete || s.NextIndex != whole || s.Created != whole || s.Error == "" {
				t.Errorf("summary = %+v; want incomplete, next_index %d, %d created", s, whole, whole)
			}
			if n := e.ledger.Stats().Records - before; n != whole {
				t.Errorf("%d records committed; want %d (the chunk read whole)", n, whole)
			}
		})
	}
}

// The import is an importer's (or an admin's), not an app's or a dpo's; JSON bodies and a
// request-wide Idempotency-Key are refused with a hint.
func TestImportAuthorization(t *testing.T) {
	l := consenttest.Open(t, "", consent.Config{})
	tokens := adminapi.Tokens{}
	for _, role := range []string{"app", "dpo", "importer", "admin"} {
		tokens.Add("pg_token-for-the-"+role+"-role", adminapi.Principal{Name: role, Roles: []string{role}})
	}
	api, err := adminapi.New(adminapi.Config{Ledger: l, Tokens: tokens, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	defer srv.Close()
	e := &env{t: t, srv: srv, ledger: l}
	for role, want := range map[string]int{"app": 403, "dpo": 403, "importer": 200, "admin": 200} {
		if status, _ := e.postImport(importLine("auth-"+role, "")+"\n", "pg_token-for-the-"+role+"-role"); status != want {
			t.Errorf("import as %s = %d; want %d", role, status, want)
		}
	}
	for name, h := range map[string][2]string{
		"json":            {"Content-Type", "application/json"},
		"idempotency_key": {"Idempotency-Key", "whole-file"},
	} {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/consents/import", strings.NewReader(importLine("x", "")))
		req.Header.Set("Authorization", "Bearer pg_token-for-the-admin-role")
		req.Header.Set("Content-Type", "application/x-ndjson")
		req.Header.Set(h[0], h[1])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 415 && resp.StatusCode != 400 {
			t.Errorf("%s: %d; want a 4xx problem", name, resp.StatusCode)
		}
	}
}

// A list bought or received from elsewhere does not undo an objection to direct
// marketing: not one on the suppression list, nor one earlier in the same import. Proves
// DSR-13 for imports.
func TestImportKeepsObjections(t *testing.T) {
	e := newEnv(t)
	e.registerNotice()
	if resp := e.do("POST", "/v1/consents", `{"subject":"objector","action":"object"}`, nil, nil); resp.StatusCode != 201 {
		t.Fatalf("objection = %d", resp.StatusCode)
	}
	body := importLine("objector", "") + "\n" +
		`{"subject":"in-file","action":"object"}` + "\n" +
		importLine("in-file", "") + "\n" +
		importLine("someone-else", "") + "\n"
	_, answers := e.postImport(body, token)
	got := outcomes(answers)
	for i, want := range []string{"rejected", "created", "rejected", "created"} {
		if got[i].Outcome != want {
			t.Errorf("item %d: %s %+v; want %s", i, got[i].Outcome, got[i].Problem, want)
		}
	}
	for _, i := range []int{0, 2} {
		if p := got[i].Problem; p == nil || len(p.Errors) == 0 || p.Errors[0].Rule != consent.CodeSuppressed {
			t.Errorf("item %d: %+v; want rule %s", i, p, consent.CodeSuppressed)
		}
	}
}

// Bodies the API cannot read as plain UTF-8 are refused whole (415), never split into
// lines and misread; a byte order mark before the first line (spreadsheet exports) is not
// part of the item.
func TestImportBodyEncoding(t *testing.T) {
	e := newEnv(t)
	e.registerNotice()
	tok := token // the admin's
	send := func(body string, header map[string]string) int {
		req, _ := http.NewRequest("POST", e.srv.URL+"/v1/consents/import", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/x-ndjson")
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	line := importLine("enc-1", "") + "\n"
	for name, h := range map[string]map[string]string{
		"gzip":   {"Content-Encoding": "gzip"},
		"utf-16": {"Content-Type": "application/x-ndjson; charset=utf-16"},
	} {
		if code := send(line, h); code != http.StatusUnsupportedMediaType {
			t.Errorf("%s: %d; want 415", name, code)
		}
	}
	code, answers := e.postImport("\ufeff"+line+importLine("enc-2", "")+"\n", tok)
	got := outcomes(answers)
	if code != http.StatusOK || got[0].Outcome != "created" || got[1].Outcome != "created" {
		t.Errorf("with a byte order mark: %d %+v; want both created", code, answers)
	}
}
