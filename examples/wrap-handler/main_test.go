package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSmoke runs the example and walks through consent, minimisation, personalisation off,
// withdrawal and a filtered campaign.
func TestSmoke(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrc := make(chan string, 1)
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, "127.0.0.1:0", t.TempDir(), func(a string) { addrc <- a }) }()
	var base string
	select {
	case a := <-addrc:
		base = "http://" + a
	case err := <-errc:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatal("example did not start")
	}
	call := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := call("GET", "/api/profiles/u-1", ""); code != http.StatusForbidden {
		t.Fatalf("profile without consent = %d; want 403", code)
	}
	call("POST", "/consent", `{"subject":"u-1","purpose":"personalize.recommendation","action":"grant"}`)
	code, body := call("GET", "/api/profiles/u-1", "")
	if code != http.StatusOK || strings.Contains(body, "example.com") || !strings.Contains(body, "sku-7") {
		t.Fatalf("profile with consent = %d %s; want 200 without the email", code, body)
	}
	call("POST", "/consent", `{"subject":"u-1","action":"personalisation_off"}`)
	if _, body := call("GET", "/api/profiles/u-1", ""); !strings.Contains(body, "bestsellers") {
		t.Errorf("personalisation off: %s", body)
	}
	call("POST", "/consent", `{"subject":"u-1","purpose":"marketing.communications.sms","action":"grant"}`)
	call("POST", "/consent", `{"subject":"u-2","purpose":"marketing.communications.sms","action":"grant"}`)
	call("POST", "/consent", `{"subject":"u-2","purpose":"marketing.communications.sms","action":"withdraw"}`)
	code, body = call("POST", "/api/campaigns/1/send", `{"recipients":["u-1","u-2","u-3"]}`)
	var got struct {
		SentTo []string `json:"sent_to"`
	}
	json.Unmarshal([]byte(body), &got)
	if code != http.StatusOK || len(got.SentTo) != 1 || got.SentTo[0] != "u-1" {
		t.Errorf("campaign = %d %s; want sent to u-1 only", code, body)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("run: %v", err)
	}
}
