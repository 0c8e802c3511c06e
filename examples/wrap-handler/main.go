// Command wrap-handler is a small marketing API (profiles, campaign sends) wrapped by the
// privguard middleware, with the consent ledger and the default policy in process.
//
//	go run ./examples/wrap-handler -listen 127.0.0.1:9090 -data /tmp/wrap-handler
//
// Then grant and withdraw consent through the ledger (see the README's API tour for the
// admin API; this example records consent with POST /consent for brevity) and watch the
// profile and campaign endpoints change their answers.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/boltstore"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/middleware"
	"github.com/privguard/privguard/policy"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9090", "address to serve on")
	data := flag.String("data", filepath.Join(os.TempDir(), "privguard-wrap-handler"), "data directory")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *listen, *data, func(addr string) { log.Printf("marketing API on http://%s", addr) }); err != nil {
		log.Fatal(err)
	}
}

// routes says which purpose each endpoint serves, where its subject is and which response
// fields hold which data categories.
var routes = []middleware.Route{
	{Match: "GET /api/profiles/{id}", Purpose: "personalize.recommendation", Subject: middleware.Locator{Path: "id"},
		Fields: map[string]privguard.DataCategory{"email": "user.contact.email", "phone": "user.contact.phone_number",
			"history": "user.behavior.browsing_history"}},
	{Match: "POST /api/campaigns/{id}/send", Purpose: "marketing.communications.sms", Channel: "sms",
		Subjects: middleware.Locator{JSON: "recipients"}},
}

// app is the marketing API, unaware of privguard.
func app() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/profiles/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if middleware.NonPersonalised(r.Context()) {
			json.NewEncoder(w).Encode(map[string]any{"id": r.PathValue("id"), "recommendations": []string{"bestsellers"}})
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"id": r.PathValue("id"), "email": "li.lei@example.com",
			"phone": "13812345678", "history": []string{"sku-1", "sku-7"}, "recommendations": []string{"sku-9"}})
	})
	mux.HandleFunc("POST /api/campaigns/{id}/send", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Recipients []string `json:"recipients"`
		}
		json.NewDecoder(r.Body).Decode(&body)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"sent_to": body.Recipients})
	})
	return mux
}

func run(ctx context.Context, listen, dir string, ready func(addr string)) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	db, err := boltstore.Open(filepath.Join(dir, "privguard.db"), boltstore.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	ledger, err := consent.Open(ctx, consent.Config{Store: db.Consent()})
	if err != nil {
		return err
	}
	defer ledger.Close()
	if err := registerNotice(ctx, ledger); err != nil {
		return err
	}
	engine, err := policy.New(ctx, policy.Config{})
	if err != nil {
		return err
	}

	// The ten lines that matter: wrap the existing handler.
	protect, err := middleware.New(middleware.Config{
		Routes:  routes,
		Decider: engine,
		Facts:   ledger,
		Regime:  privguard.RegimePIPL,
	})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/api/", protect(app()))
	mux.HandleFunc("POST /consent", consentHandler(ledger))

	srv := &http.Server{Addr: listen, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	ready(ln.Addr().String())
	go func() { <-ctx.Done(); srv.Shutdown(context.Background()) }()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// consentHandler records {"subject","purpose","action"} for the demo; a real deployment
// records consent through privguard's admin API.
func consentHandler(l *consent.Ledger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var b struct{ Subject, Purpose, Action string }
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&b); err != nil {
			privguard.NewProblem(http.StatusBadRequest, "malformed-json", "Malformed JSON", "").Write(w)
			return
		}
		req := consent.Request{Subject: privguard.SubjectID(b.Subject), Purpose: privguard.Purpose(b.Purpose), Action: consent.Action(b.Action)}
		if req.Action == consent.ActionGrant {
			req.Regime, req.Channel, req.Method = privguard.RegimePIPL, consent.ChannelApp, consent.MethodExplicit
			req.Notice = &consent.NoticeRef{ID: "demo", Version: 1}
		}
		rec, _, err := l.Append(r.Context(), req)
		if err != nil {
			privguard.NewProblem(http.StatusUnprocessableEntity, "validation", "Rejected", "the consent record was rejected").Write(w)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(rec)
	}
}

func registerNotice(ctx context.Context, l *consent.Ledger) error {
	_, _, err := l.RegisterNotice(ctx, consent.Notice{ID: "demo", Version: 1, Language: "en",
		Text:       "We use your phone number to send offers and your browsing to recommend products.",
		Purposes:   []privguard.Purpose{"marketing", "personalize"},
		Controller: consent.Controller{Name: "Demo Shop", Contact: "privacy@demo.example"},
		Retention:  "13 months", RightsChannels: []string{"https://demo.example/privacy"}})
	if err != nil {
		return fmt.Errorf("register the demo notice: %w", err)
	}
	return nil
}
