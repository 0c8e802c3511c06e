package outreach_test

// The send gate against the raw filter, over the same list in the same run (issue 15):
//
//	go test -run '^$' -bench '1M' -benchmem -count 5 -timeout 30m ./outreach/
//
// PRIVGUARD_BENCH_SUBJECTS sets a smaller (or larger) list than 1,000,000.

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/consent/consenttest"
	"github.com/privguard/privguard/outreach"
)

// bigList is a ledger in which half of a list of n subjects granted SMS marketing (the
// others are unknown to it), and the list, shuffled.
var bigList struct {
	once sync.Once
	l    *consent.Ledger
	list []privguard.SubjectID
	err  error
}

func benchFixture(b *testing.B) (*consent.Ledger, []privguard.SubjectID) {
	b.Helper()
	if testing.Short() {
		b.Skip("builds a 1,000,000-subject list")
	}
	bigList.once.Do(func() {
		n := 1_000_000
		if s, err := strconv.Atoi(os.Getenv("PRIVGUARD_BENCH_SUBJECTS")); err == nil && s > 0 {
			n = s
		}
		dir, err := os.MkdirTemp("", "privguard-outreach-bench-")
		if err != nil {
			bigList.err = err
			return
		}
		// The ledger outlives the benchmark that built it (the process ends soon after).
		l := consenttest.Open(&keepTB{TB: b}, dir, consent.Config{})
		if _, _, err := l.RegisterNotice(ctx, consenttest.MarketingNotice(1, "zh-CN")); err != nil {
			bigList.err = err
			return
		}
		list := make([]privguard.SubjectID, n)
		for i := range list {
			list[i] = privguard.SubjectID(fmt.Sprintf("cust-%07d", i))
		}
		work := make(chan int, 4096)
		errs := make(chan error, 128)
		for range 128 {
			go func() {
				var err error
				for i := range work {
					_, _, e := l.Append(ctx, consent.Request{Subject: list[i], Purpose: sms, Action: consent.ActionGrant, Regime: privguard.RegimePIPL,
						LegalBasis: privguard.BasisConsent, Notice: &consent.NoticeRef{ID: "marketing", Version: 1}, Channel: consent.ChannelApp, Method: consent.MethodExplicit})
					if e != nil {
						err = e
					}
				}
				errs <- err
			}()
		}
		for i := 0; i < n; i += 2 {
			work <- i
		}
		close(work)
		for range 128 {
			if err := <-errs; err != nil && bigList.err == nil {
				bigList.err = err
			}
		}
		rand.New(rand.NewPCG(1, 2)).Shuffle(len(list), func(i, j int) { list[i], list[j] = list[j], list[i] })
		bigList.l, bigList.list = l, list
	})
	if bigList.err != nil {
		b.Fatal(bigList.err)
	}
	return bigList.l, bigList.list
}

// keepTB is a testing.TB whose cleanups never run: the fixture is shared by benchmarks.
type keepTB struct{ testing.TB }

func (keepTB) Cleanup(func()) {}

// BenchmarkAudience1M is the raw filter: Ledger.Audience over the list.
func BenchmarkAudience1M(b *testing.B) {
	l, list := benchFixture(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		kept, err := l.Audience(ctx, sms, list)
		if err != nil || len(kept) != len(list)/2 {
			b.Fatalf("kept %d, %v", len(kept), err)
		}
	}
}

// BenchmarkGate1M is the send gate over the same list: the template check, the facts of
// every recipient, the reasons of the denied and a sealed unsubscribe link for each of the
// half allowed.
func BenchmarkGate1M(b *testing.B) {
	l, list := benchFixture(b)
	g := &outreach.Gate{Ledger: l, PublicURL: "https://privacy.example.com", Key: testKey}
	req := outreach.Request{Channel: "sms", Template: smsTemplate, Recipients: list}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res, err := g.Check(ctx, req)
		if err != nil || len(res.Allowed) != len(list)/2 {
			b.Fatalf("allowed %d, %v", len(res.Allowed), err)
		}
	}
}

// BenchmarkGateService1M is the gate over the same list for a service template: the same
// lookups and split, no links (what the links cost is Gate1M less this).
func BenchmarkGateService1M(b *testing.B) {
	l, list := benchFixture(b)
	g := &outreach.Gate{Ledger: l, PublicURL: "https://privacy.example.com", Key: testKey}
	req := outreach.Request{Channel: "sms", Recipients: list,
		Template: outreach.Template{Kind: outreach.KindService, Sender: "示例商城", Text: "【示例商城】您的订单已发货", ID: "ship"}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res, err := g.Check(ctx, req)
		if err != nil || len(res.Allowed) != len(list) {
			b.Fatalf("allowed %d, %v", len(res.Allowed), err)
		}
	}
}
