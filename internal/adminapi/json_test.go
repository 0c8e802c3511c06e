package adminapi

import (
	"bytes"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/privguard/privguard/consent"
)

// writeRecord writes what writeJSON would, byte for byte, HTML and line separators
// escaped alike.
func TestWriteRecordIsWriteJSON(t *testing.T) {
	rec := consent.Record{SchemaVersion: 1, ID: "0190-abc", Seq: 7, Subject: "cust-<1>&\u2028", Action: consent.ActionGrant,
		Purpose: "marketing.communications.sms", Notice: &consent.NoticeRef{ID: "n<", Version: 1, Language: "zh-CN"},
		Evidence: consent.Evidence{UserAgent: "Mozilla/5.0 <script>\u2029", IPHash: []byte{1, 2, 3}},
		Time:     time.Date(2026, 12, 2, 0, 0, 0, 123, time.UTC), Actor: "token:app"}
	want, got := httptest.NewRecorder(), httptest.NewRecorder()
	writeJSON(want, 201, rec)
	writeRecord(got, 201, rec)
	if !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) || got.Code != want.Code {
		t.Errorf("writeRecord = %d %s\nwant %d %s", got.Code, got.Body, want.Code, want.Body)
	}
	for _, h := range []string{"Content-Type", "Cache-Control", "X-Content-Type-Options"} {
		if got.Header().Get(h) != want.Header().Get(h) {
			t.Errorf("%s = %q; want %q", h, got.Header().Get(h), want.Header().Get(h))
		}
	}
}
