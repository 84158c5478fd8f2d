#!/usr/bin/env bash
# Latchkey benchmark: server pinned to CPU 0 (one worker thread), load generator on CPU 1.
# Endpoints measured at c=$CONC and c=1 with each load tool in $LOAD: discovery, JWKS,
# client_credentials (ES256 and RS256 JWTs), introspection of a JWT access token. Refresh rotation
# (which a load tool cannot chain) is measured by tests/bench_refresh.rs at c=$CONC on SQLite, and on
# PostgreSQL when BENCH_POSTGRES_URL is set.
#
# Two load tools, because one core of load generator is not always enough: oha (one worker thread)
# once topped out at 85-93k requests/s against a bare actix-web server returning the JWKS bytes, about
# what Latchkey serves there; wrk (C, epoll) costs less per request and keeps the server's core busy.
#
#   cargo build --release && cargo install oha --locked && apt-get install wrk && bench/run.sh
# Env: DUR=15 WARM=5 CONC=32 LOAD="wrk oha" OHA=oha BENCH_POSTGRES_URL=postgres://app@127.0.0.1:55432/postgres
set -euo pipefail
cd "$(dirname "$0")/.."

DUR=${DUR:-15}; WARM=${WARM:-5}; CONC=${CONC:-32}; LOAD=${LOAD:-wrk oha}
OHA=${OHA:-$(command -v oha || echo "$HOME/.cargo/bin/oha")}
BIN=target/release/latchkey
[ -x "$BIN" ] || { echo "build first: cargo build --release" >&2; exit 1; }
PORT=${PORT:-3200}
WORK=$(mktemp -d /tmp/latchkey-bench.XXXXXX)
export LATCHKEY_LISTEN=127.0.0.1:$PORT LATCHKEY_PUBLIC_URL=http://localhost:$PORT LATCHKEY_DATA_DIR=$WORK/data \
  LATCHKEY_WORKERS=1 LATCHKEY_LOG=warn LATCHKEY_RATE_TOKEN_PER_CLIENT_PER_SECOND=1000000
unset DATABASE_URL
. bench/measure.sh
BASE=http://127.0.0.1:$PORT/t/default
CT=application/x-www-form-urlencoded

taskset -c 0 "$BIN" serve >"$WORK/server.log" 2>&1 &
SRV=$!
trap 'kill $SRV 2>/dev/null; wait $SRV 2>/dev/null; rm -rf "$WORK"' EXIT
wait_for "http://127.0.0.1:$PORT/healthz"

mkclient() { "$BIN" client create --json --name "bench $1" --confidential --grant-type client_credentials \
  --scope api:read --access-token-alg "$1" --introspect-all | python3 -c 'import sys,json;d=json.load(sys.stdin);print(d["client_id"]+":"+d["client_secret"])'; }
ES=$(mkclient ES256); RS=$(mkclient RS256)
basic() { printf '%s' "$1" | base64 -w0; }
TOKEN=$(curl -fsS -X POST "$BASE/token" -H "Authorization: Basic $(basic "$ES")" -d grant_type=client_credentials \
  | python3 -c 'import sys,json;print(json.load(sys.stdin)["access_token"])')
sleep 1
RSS_IDLE=$(rss)

spec() {
  case "$1" in
    disco) echo "GET|$BASE/.well-known/openid-configuration||" ;;
    jwks) echo "GET|$BASE/jwks||" ;;
    cc_es256) echo "POST|$BASE/token|grant_type=client_credentials&scope=api%3Aread|$(basic "$ES")" ;;
    cc_rs256) echo "POST|$BASE/token|grant_type=client_credentials&scope=api%3Aread|$(basic "$RS")" ;;
    introspect) echo "POST|$BASE/introspect|token=$TOKEN|$(basic "$ES")" ;;
  esac
}
oha_run() { # test conc seconds out
  local method url body auth; IFS='|' read -r method url body auth <<<"$(spec "$1")"
  local args=(--no-tui --output-format json -w --worker-threads 1 -z "$3s" -c "$2" -m "$method")
  [ "$method" = POST ] && args+=(-H "Authorization: Basic $auth" -T "$CT" -d "$body")
  taskset -c 1 "$OHA" "${args[@]}" "$url" >"$4"
}

rows_header
for tool in $LOAD; do
  for t in ${TESTS:-disco jwks cc_es256 cc_rs256 introspect}; do measure "$tool" "$t"; done
done
sleep 2
{
  machine_line
  echo "latchkey: release build, 1 worker, SQLite, pinned to CPU 0; load pinned to CPU 1: oha $("$OHA" --version | cut -d' ' -f2), $(wrk --version 2>&1 | head -n 1 | cut -d' ' -f1-2)"
  echo "RSS: idle ${RSS_IDLE} kB, after load $(rss) kB"
  echo
  column -t -s $'\t' "$WORK/rows.tsv"
} | tee bench/last-run.txt

echo
[ -n "${SKIP_REFRESH:-}" ] && exit 0
echo "refresh rotation (tests/bench_refresh.rs):"
export LATCHKEY_TEST_SERVER_CPU=0 BENCH_CONC=$CONC BENCH_SECONDS=$DUR
unset LATCHKEY_LISTEN LATCHKEY_PUBLIC_URL LATCHKEY_DATA_DIR LATCHKEY_WORKERS
for alg in RS256 ES256; do
  BENCH_ID_TOKEN_ALG=$alg LATCHKEY_TEST_POSTGRES_URL= taskset -c 1 cargo test --release --quiet --test bench_refresh -- --ignored --nocapture 2>&1 | grep BENCH | tee -a bench/last-run.txt
  if [ -n "${BENCH_POSTGRES_URL:-}" ]; then
    BENCH_ID_TOKEN_ALG=$alg LATCHKEY_TEST_POSTGRES_URL=$BENCH_POSTGRES_URL taskset -c 1 cargo test --release --quiet --test bench_refresh -- --ignored --nocapture 2>&1 | grep BENCH | tee -a bench/last-run.txt
  fi
done
