#!/usr/bin/env bash
# Measures the sidecar on the path users run: wrk against the real `privguard serve` binary
# (decision log and metrics on) in front of the example upstream, for a profile read that
# is allowed and minimised. With BASELINE (a privguard binary built from another commit),
# both are measured in the same run, rounds alternating, and the medians compared.
#
# usage: bench/sidecar.sh [BASELINE_BINARY]      (needs wrk: apt-get install -y wrk)
# env:   ROUNDS (3), DURATION (10s), CONNECTIONS (32)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-3} duration=${DURATION:-10s} conns=${CONNECTIONS:-32}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

go build -o "$work/privguard" ./cmd/privguard
go build -o "$work/upstream" ./examples/sidecar/upstream
bins=(current "$work/privguard")
[ $# -ge 1 ] && bins+=(baseline "$1")

"$work/upstream" -listen 127.0.0.1:19000 >/dev/null 2>&1 & pids+=($!)

# start NAME BINARY: serve on 127.0.0.1:18080 (admin 18081), consent for c-1 recorded.
start() {
  local name=$1 bin=$2 dir="$work/data-$1"
  mkdir -p "$dir"
  cat > "$dir/privguard.yaml" <<YAML
listen: 127.0.0.1:18080
admin_listen: 127.0.0.1:18081
upstream: http://127.0.0.1:19000
data_dir: $dir
regime: pipl
routes:
  - match: "GET /api/profiles/{id}"
    purpose: personalize.recommendation
    subject: {path: id}
    fields: {email: user.contact.email, phone: user.contact.phone_number, history: user.behavior.browsing_history}
YAML
  "$bin" serve --config "$dir/privguard.yaml" --log-level warn >/dev/null 2>"$dir/serve.log" & server=$!
  for _ in $(seq 200); do curl -sf -o /dev/null http://127.0.0.1:18081/v1/receipts/keys && break; sleep 0.1; done
  local tok; tok=$(cat "$dir/admin.token")
  local auth=(-s -o /dev/null -H "Authorization: Bearer $tok" -H "Content-Type: application/json")
  curl "${auth[@]}" http://127.0.0.1:18081/v1/notices -d '{"id":"n","version":1,"language":"en","text":"t","purposes":["personalize"],"controller":{"name":"E","contact":"p@example.com"},"retention":"1y","rights_channels":["x"]}'
  curl "${auth[@]}" http://127.0.0.1:18081/v1/consents -d '{"subject":"c-1","purpose":"personalize.recommendation","action":"grant","regime":"pipl","notice":{"id":"n","version":1},"channel":"app","method":"explicit"}'
}

# measure: one wrk run; prints "req/s p50_ms p99_ms".
measure() {
  wrk -t2 -c"$conns" -d"$duration" --latency http://127.0.0.1:18080/api/profiles/c-1 | awk '
    /Requests\/sec/ {rps=$2}
    /^ +50%/ {p50=$2} /^ +99%/ {p99=$2}
    function ms(v) { if (v ~ /us$/) return substr(v,1,length(v)-2)/1000; if (v ~ /ms$/) return substr(v,1,length(v)-2)+0; if (v ~ /s$/) return substr(v,1,length(v)-1)*1000; return v }
    END {printf "%s %.2f %.2f\n", rps, ms(p50), ms(p99)}'
}

for r in $(seq "$rounds"); do
  for ((i = 0; i < ${#bins[@]}; i += 2)); do
    name=${bins[i]} bin=${bins[i+1]}
    start "$name" "$bin"
    measure > /dev/null   # warm-up: the decision memo, connections
    echo "$name $(measure)" | tee -a "$work/results"
    kill "$server"; wait "$server" 2>/dev/null || true
    rm -rf "$work/data-$name"
  done
done

echo "== medians over $rounds rounds (req/s, p50 ms, p99 ms)"
for ((i = 0; i < ${#bins[@]}; i += 2)); do
  name=${bins[i]}
  grep "^$name " "$work/results" | awk -v n="$name" '
    {r[NR]=$2; a[NR]=$3; b[NR]=$4}
    function med(x, n,   i,j,t) { for (i=1;i<=n;i++) for (j=i+1;j<=n;j++) if (x[j]<x[i]) {t=x[i];x[i]=x[j];x[j]=t}; return x[int((n+1)/2)] }
    END {printf "%s %.0f %.2f %.2f\n", n, med(r,NR), med(a,NR), med(b,NR)}'
done
