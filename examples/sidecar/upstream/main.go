// Command upstream is the marketing service the sidecar example protects: it knows nothing
// of consent. It serves profiles with personal data and sends campaigns to whoever it is
// given. It reads one obligation from the sidecar: X-Privguard-Non-Personalised: 1 (set by
// privguard only; a client's own X-Privguard-* headers never reach it) asks for the
// non-personalised recommendations (PIPL Art. 24(2)).
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/privguard/privguard/middleware"
)

// Handler is the service's API.
func Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/profiles/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		recommendations := []string{"sku-9"} // from the subject's history
		if r.Header.Get("X-Privguard-Non-Personalised") == "1" {
			recommendations = []string{"bestseller-1", "bestseller-2"} // the same for everyone
		}
		json.NewEncoder(w).Encode(map[string]any{"id": r.PathValue("id"), "email": "li.lei@example.com",
			"phone": "13812345678", "history": []string{"sku-1", "sku-7"}, "recommendations": recommendations})
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ok"}`))
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

// Signed refuses (401) requests that do not carry a valid privguard signature under key
// (the sidecar's upstream_secret_file): only requests privguard passed on are served.
func Signed(key []byte, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := middleware.VerifySignature(r, key, time.Now(), 0); err != nil {
			http.Error(w, "not through privguard", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func main() {
	addr := flag.String("listen", "127.0.0.1:9000", "address")
	secretFile := flag.String("secret-file", "", "serve only requests signed with the key in this `file` (the sidecar's upstream_secret_file)")
	flag.Parse()
	h := Handler()
	if *secretFile != "" {
		key, err := os.ReadFile(*secretFile)
		if err != nil {
			log.Fatal(err)
		}
		h = Signed(bytes.TrimSpace(key), h)
	}
	srv := &http.Server{Addr: *addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	log.Printf("upstream on http://%s", *addr)
	log.Fatal(srv.ListenAndServe())
}
