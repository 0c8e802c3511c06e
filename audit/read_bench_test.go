package audit_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/valyala/fastjson"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/audit"
	"github.com/privguard/privguard/middleware"
)

// benchLog writes n decisions as serve does (batches of 100 of one route and purpose,
// a tenth denied) and returns the active file's path.
func benchLog(b *testing.B, n int) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "decisions.log")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l, err := audit.Open(audit.Config{Path: path, Key: testKey, Now: func() time.Time { return now }, Buffer: n/100 + 1})
	if err != nil {
		b.Fatal(err)
	}
	allow := &privguard.Decision{ID: "d-allow", Revision: "r1", Effect: privguard.Allow, Reasons: []privguard.Reason{"allow"},
		Obligations: []privguard.Obligation{{Kind: privguard.ObligeContactBudget}}}
	deny := &privguard.Decision{ID: "d-deny", Revision: "r1", Effect: privguard.Deny, Reasons: []privguard.Reason{"consent.missing"}}
	for i := 0; i < n; i += 100 {
		entries := make([]middleware.BatchEntry, 100)
		for j := range entries {
			entries[j] = middleware.BatchEntry{Subject: privguard.SubjectID(fmt.Sprint("cust-", i+j)), Consent: "given", Decision: allow}
			if (i+j)%10 == 0 {
				entries[j].Decision = deny
			}
		}
		in := privguard.Input{Purpose: purposes[i/100%3], Regime: privguard.RegimePIPL, Categories: []privguard.DataCategory{"user.contact.phone_number"}}
		l.RecordBatch(fmt.Sprintf("POST /campaigns/%d/send", i/100%12), &in, entries)
		now = now.Add(time.Minute)
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

// The stats scan: read, check the chain, parse and count 100,000 lines.
func BenchmarkCount(b *testing.B) {
	path := benchLog(b, 100_000)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		st, err := audit.Count(context.Background(), path, audit.Filter{}, 0)
		if err != nil || st.Lines != 100_000 {
			b.Fatal(st, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100_000, "ns/line")
}

// One line parsed the two ways the reader could: fastjson (what Walk uses) and
// encoding/json into a struct of only the fields the stats read.
func BenchmarkParseLine(b *testing.B) {
	path := benchLog(b, 100)
	f, _ := os.Open(path)
	sc := bufio.NewScanner(f)
	sc.Scan()
	line := append([]byte(nil), sc.Bytes()...)
	f.Close()
	b.Run("fastjson", func(b *testing.B) {
		var p fastjson.Parser
		b.ReportAllocs()
		for b.Loop() {
			v, err := p.ParseBytes(line)
			if err != nil || len(v.GetStringBytes("purpose")) == 0 || len(v.GetArray("reasons")) == 0 {
				b.Fatal(err)
			}
			_ = v.GetStringBytes("effect")
			_ = v.GetStringBytes("route")
			_ = v.GetStringBytes("time")
			_ = v.GetStringBytes("prev")
		}
	})
	b.Run("encoding_json_narrow", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var e struct {
				Time    string   `json:"time"`
				Route   string   `json:"route"`
				Purpose string   `json:"purpose"`
				Effect  string   `json:"effect"`
				Reasons []string `json:"reasons"`
				Prev    string   `json:"prev"`
			}
			if err := json.Unmarshal(line, &e); err != nil || e.Purpose == "" {
				b.Fatal(err)
			}
		}
	})
	b.Run("sha256", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = sha256.Sum256(line)
		}
	})
}
