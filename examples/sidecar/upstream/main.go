// Command upstream is the marketing service the sidecar example protects: it knows nothing
// of consent. It serves profiles with personal data and sends campaigns to whoever it is
// given. It reads one obligation from the sidecar: X-Privguard-Non-Personalised: 1 (set by
// privguard only; a client's own X-Privguard-* headers never reach it) asks for the
// non-personalised recommendations (PIPL Art. 24(2)).
package main

import (
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"time"
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

func main() {
	addr := flag.String("listen", "127.0.0.1:9000", "address")
	flag.Parse()
	srv := &http.Server{Addr: *addr, Handler: Handler(), ReadHeaderTimeout: 5 * time.Second}
	log.Printf("upstream on http://%s", *addr)
	log.Fatal(srv.ListenAndServe())
}
