// Command replicas is the Go service of the replicas example: a marketing API wrapped by
// the privguard middleware whose consent ledger is the one the `privguard serve` replicas
// keep in PostgreSQL. It records nothing itself: consent is recorded through any of the
// serve replicas, and this process follows their commits into its own in-memory state, so
// its decisions stay answers from memory. run.sh starts three serve replicas and this
// service on one PostgreSQL database and walks through a grant and a withdrawal.
//
//	go run ./examples/replicas -dsn "postgres://postgres@127.0.0.1:5432/test?sslmode=disable" -schema privguard_demo
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/privguard/privguard"
	"github.com/privguard/privguard/consent"
	"github.com/privguard/privguard/middleware"
	"github.com/privguard/privguard/pgstore"
	"github.com/privguard/privguard/policy"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9191", "address to serve on")
	dsn := flag.String("dsn", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "the PostgreSQL store the serve replicas share")
	schema := flag.String("schema", "privguard", "the schema of privguard's tables (store.postgres.schema of the replicas)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *listen, *dsn, *schema, func(addr string) { log.Printf("marketing API on http://%s", addr) }); err != nil {
		log.Fatal(err)
	}
}

// routes say which purpose each endpoint serves and where its subjects are.
var routes = []middleware.Route{
	{Match: "GET /api/profiles/{id}", Purpose: "personalize.recommendation", Subject: middleware.Locator{Path: "id"},
		Fields: map[string]privguard.DataCategory{"phone": "user.contact.phone_number"}},
	{Match: "POST /api/campaigns/{id}/send", Purpose: "marketing.communications.sms", Channel: "sms",
		Subjects: middleware.Locator{JSON: "recipients"}},
}

// app is the marketing API, unaware of privguard.
func app() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/profiles/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"id": r.PathValue("id"), "phone": "13812345678", "recommendations": []string{"sku-9"}})
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

func run(ctx context.Context, listen, dsn, schema string, ready func(addr string)) error {
	// Migrate: false. The serve replicas own the schema; this service only reads and
	// follows it, and refuses a schema of another version than it knows.
	db, err := pgstore.Open(ctx, dsn, pgstore.Options{Schema: schema})
	if err != nil {
		return err
	}
	defer db.Close()
	ledger, err := consent.Open(ctx, consent.Config{Store: db.Consent()})
	if err != nil {
		return err
	}
	defer ledger.Close()
	engine, err := policy.New(ctx, policy.Config{})
	if err != nil {
		return err
	}
	protect, err := middleware.New(middleware.Config{Routes: routes, Decider: engine, Facts: ledger, Regime: privguard.RegimePIPL})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/api/", protect(app()))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	ready(ln.Addr().String())
	go func() { <-ctx.Done(); srv.Shutdown(context.Background()) }()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
