#!/usr/bin/env bash
# Three `privguard serve` replicas and one Go service (main.go) on one PostgreSQL database:
# a notice registered through r1, a grant through r2 and a withdrawal through r3, each
# enforced at once by the Go service, which wrote none of them. Run from the repository
# root: examples/replicas/run.sh. PRIVGUARD_PG_DSN names the database (default: the local
# test database); the demo uses a schema of its own and drops it at the end.
set -euo pipefail
DSN=${PRIVGUARD_PG_DSN:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
SCHEMA=privguard_demo_$$
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql "$DSN" -qc "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

go build -o "$WORK/privguard" ./cmd/privguard
go build -o "$WORK/service" ./examples/replicas
"$WORK/privguard" keys init --out "$WORK/master.keyset.json"
TOKEN=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
SUM=$(printf %s "$TOKEN" | sha256sum | cut -d' ' -f1)

for i in 1 2 3; do
  mkdir -p "$WORK/r$i"
  cat > "$WORK/r$i/privguard.yaml" <<YAML
data: $WORK/r$i
admin_listen: 127.0.0.1:818$i
replica: r$i
store:
  postgres: {dsn: "$DSN", schema: $SCHEMA}
vault:
  master_key_file: $WORK/master.keyset.json
admin:
  tokens: [{name: demo, sha256: $SUM, roles: [admin]}]
YAML
  "$WORK/privguard" serve --config "$WORK/r$i/privguard.yaml" --log-level warn >"$WORK/r$i/out" 2>&1 &
  PIDS+=($!)
done
ready() { for _ in $(seq 100); do curl -sf -H "Authorization: Bearer $TOKEN" "$1/readyz" >/dev/null && return 0; sleep 0.1; done; echo "$1 not ready:" >&2; cat "$WORK"/r*/out >&2; exit 1; }
for i in 1 2 3; do ready "http://127.0.0.1:818$i"; done
"$WORK/service" -listen 127.0.0.1:9191 -dsn "$DSN" -schema "$SCHEMA" 2>"$WORK/service.log" &
PIDS+=($!)
for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:9191/api/profiles/x && break; sleep 0.1; done

api() { curl -s -X "$1" "http://127.0.0.1:818$2$3" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' ${4:+-d "$4"}; echo; }
profile() { curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:9191/api/profiles/cust-42; }

echo "== r1: register the notice"
api POST 1 /v1/notices '{"id":"demo","version":1,"language":"en","text":"We recommend products from what you browse.","purposes":["personalize"],"controller":{"name":"Demo Shop","contact":"privacy@demo.example"},"retention":"13 months","rights_channels":["https://demo.example/privacy"]}'
echo "== the Go service before any consent: $(profile) (403 expected)"
echo "== r2: grant personalisation for cust-42"
api POST 2 /v1/consents '{"subject":"cust-42","purpose":"personalize.recommendation","action":"grant","regime":"pipl","notice":{"id":"demo","version":1,"language":"en"},"channel":"app","method":"explicit"}'
sleep 0.2
got=$(profile); echo "== the Go service after the grant through r2: $got (200 expected)"; [ "$got" = 200 ]
echo "== r3: withdraw it"
api POST 3 /v1/consents '{"subject":"cust-42","purpose":"personalize.recommendation","action":"withdraw","channel":"app","method":"explicit"}'
sleep 0.2
got=$(profile); echo "== the Go service after the withdrawal through r3: $got (403 expected)"; [ "$got" = 403 ]
echo "== every replica and the store agree:"
for i in 1 2 3; do curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:818$i/readyz"; echo; done
"$WORK/privguard" consent verify --store "$DSN" --schema "$SCHEMA"
