#!/usr/bin/env bash
# Measures the sidecar on the path users run: wrk against the real `privguard serve` binary
# (decision log and metrics on) in front of the example upstream, for a profile read that
# is allowed and minimised, side by side in one run with the baselines, rounds alternating:
#
#   bare       a bare httputil.ReverseProxy hop (bench/hop), with the same connection pool
#   opa        the same hop asking an OPA server over HTTP for every request (needs OPA_BIN)
#   current    privguard serve built from this tree
#   cold       the same with the decision memo off (policy.memo_size: -1): every request evaluated
#   baseline   privguard serve built from another commit (the first argument)
#
# usage: bench/sidecar.sh [BASELINE_BINARY]      (needs wrk: apt-get install -y wrk)
# prints per run and as medians: req/s, p50 and p99 (ms), non-2xx answers, heap allocations
# per request of the serving process.
#
# env:   ROUNDS (3), DURATION (10s), CONNECTIONS (32), SETUPS ("bare opa current cold"),
#        OPA_BIN (an opa binary, for the opa setup; see BENCHMARKS.md for how to build one)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-3} duration=${DURATION:-10s} conns=${CONNECTIONS:-32}
setups=(${SETUPS:-bare opa current cold})
if [ $# -ge 1 ]; then
  [ -x "$1" ] || { echo "baseline $1 is not an executable privguard binary" >&2; exit 2; }
  setups+=(baseline)
fi
for port in 18080 18081 18181 19000; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is in use; the benchmark needs 18080, 18081, 18181 and 19000 free" >&2
    exit 2
  fi
done
work=$(mktemp -d)
pids=()
server=
cleanup() { for p in "${pids[@]}" $server; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

go build -o "$work/privguard" ./cmd/privguard
go build -o "$work/upstream" ./examples/sidecar/upstream
go build -o "$work/hop" ./bench/hop

"$work/upstream" -listen 127.0.0.1:19000 >/dev/null 2>&1 & pids+=($!)

if [[ " ${setups[*]} " == *" opa "* ]]; then
  if [ -z "${OPA_BIN:-}" ]; then
    echo "OPA_BIN is not set: leaving out the opa setup" >&2
    setups=("${setups[@]/opa}")
  else
    "$OPA_BIN" run --server --addr 127.0.0.1:18181 --log-level error policy/bundle >/dev/null 2>&1 & pids+=($!)
    for _ in $(seq 100); do curl -sf -o /dev/null http://127.0.0.1:18181/health && break; sleep 0.1; done
  fi
fi

wait_for() { for _ in $(seq 200); do curl -s -o /dev/null "$1" && return; sleep 0.05; done; echo "$1 did not come up" >&2; exit 1; }

# start SETUP: the setup listening on 127.0.0.1:18080; sets $server.
start() {
  local name=$1 bin=$work/privguard memo=0 dir="$work/data-$1"
  case $name in
    bare) "$work/hop" -listen 127.0.0.1:18080 2>/dev/null & server=$!; wait_for http://127.0.0.1:18080/; return ;;
    opa) "$work/hop" -listen 127.0.0.1:18080 -opa http://127.0.0.1:18181/v1/data/privguard/decision 2>/dev/null & server=$!; wait_for http://127.0.0.1:18080/; return ;;
    cold) memo=-1 ;;
    baseline) bin=$BASELINE ;;
  esac
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
  # memo_size is left out for the baseline binary, which may not know it.
  [ "$memo" != 0 ] && printf 'policy: {memo_size: %s}\n' "$memo" >> "$dir/privguard.yaml"
  "$bin" serve --config "$dir/privguard.yaml" --log-level warn >/dev/null 2>"$dir/serve.log" & server=$!
  for _ in $(seq 200); do curl -sf -o /dev/null http://127.0.0.1:18081/v1/receipts/keys && break; sleep 0.1; done
  local tok; tok=$(cat "$dir/admin.token")
  local auth=(-s -o /dev/null -H "Authorization: Bearer $tok" -H "Content-Type: application/json")
  curl "${auth[@]}" http://127.0.0.1:18081/v1/notices -d '{"id":"n","version":1,"language":"en","text":"t","purposes":["personalize"],"controller":{"name":"E","contact":"p@example.com"},"retention":"1y","rights_channels":["x"]}'
  curl "${auth[@]}" http://127.0.0.1:18081/v1/consents -d '{"subject":"c-1","purpose":"personalize.recommendation","action":"grant","regime":"pipl","notice":{"id":"n","version":1},"channel":"app","method":"explicit"}'
  # The read must be allowed, or the run measures refusals.
  local code; code=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:18080/api/profiles/c-1)
  [ "$code" = 200 ] || { echo "$name: profile read answered $code, not 200" >&2; cat "$dir/serve.log" >&2; exit 1; }
}

# mallocs NAME: the heap allocations of the serving process so far (privguard's
# go_memstats_mallocs_total, the hop's /__hop/mallocs).
mallocs() {
  case $1 in
    bare|opa) curl -s http://127.0.0.1:18080/__hop/mallocs ;;
    *) curl -s -H "Authorization: Bearer $(cat "$work/data-$1/admin.token")" http://127.0.0.1:18081/metrics |
         awk '/^go_memstats_mallocs_total/ {printf "%.0f\n", $2}' ;;
  esac
}

# measure NAME: one wrk run; prints "req/s p50_ms p99_ms non2xx mallocs/request" (non2xx:
# answers other than 2xx, such as the 503 of a decision that missed its deadline; they count
# as failures, not speed).
measure() {
  local before; before=$(mallocs "$1")
  wrk -t2 -c"$conns" -d"$duration" --latency http://127.0.0.1:18080/api/profiles/c-1 > "$work/wrk.out"
  local after; after=$(mallocs "$1")
  awk -v m=$((after - before)) '
    /Requests\/sec/ {rps=$2}
    /requests in/ {n=$1}
    /^ +50%/ {p50=$2} /^ +99%/ {p99=$2}
    /Non-2xx/ {bad=$NF}
    function ms(v) { if (v ~ /us$/) return substr(v,1,length(v)-2)/1000; if (v ~ /ms$/) return substr(v,1,length(v)-2)+0; if (v ~ /s$/) return substr(v,1,length(v)-1)*1000; return v }
    END {printf "%s %.2f %.2f %d %.0f\n", rps, ms(p50), ms(p99), bad, m/n}' "$work/wrk.out"
}

BASELINE=${1:-}
for r in $(seq "$rounds"); do
  for name in "${setups[@]}"; do
    [ -n "$name" ] || continue
    start "$name"
    measure "$name" > /dev/null   # warm-up: the decision memo, connections
    echo "$name $(measure "$name")" | tee -a "$work/results"
    kill "$server"; wait "$server" 2>/dev/null || true; server=
    rm -rf "$work/data-$name"
  done
done

echo "== medians over $rounds rounds (req/s, p50 ms, p99 ms, non-2xx answers, allocations per request; ratios against bare and opa)"
for name in "${setups[@]}"; do
  [ -n "$name" ] || continue
  grep "^$name " "$work/results" | awk -v n="$name" '
    {r[NR]=$2; a[NR]=$3; b[NR]=$4; e[NR]=$5; m[NR]=$6}
    function med(x, n,   i,j,t) { for (i=1;i<=n;i++) for (j=i+1;j<=n;j++) if (x[j]<x[i]) {t=x[i];x[i]=x[j];x[j]=t}; return x[int((n+1)/2)] }
    END {printf "%s %.0f %.2f %.2f %d %.0f\n", n, med(r,NR), med(a,NR), med(b,NR), med(e,NR), med(m,NR)}'
done | tee "$work/medians"
awk '$1=="bare"{br=$2; bp=$4} $1=="opa"{orps=$2} {r[$1]=$2; p[$1]=$4}
  END {for (n in r) if (n != "bare" && n != "opa") {
    s = n ":"; if (br) s = s sprintf(" %.2fx bare throughput, %.2fx bare p99;", r[n]/br, p[n]/bp)
    if (orps) s = s sprintf(" %.2fx opa throughput", r[n]/orps); print s }}' "$work/medians" | sort
