#!/usr/bin/env bash
# The reference provider (../shared/bench/oidc-provider: panva/oidc-provider on Node.js) under wrk,
# pinned like bench/run.sh: server on CPU 0, wrk on CPU 1. The reference's own bench.sh drives oha
# only; Latchkey is measured under both (see bench/run.sh), and ratios are taken tool for tool.
# Same requests as the reference's bench.sh (its test_args), same fixtures, same c=$CONC and c=1.
#
#   (cd ../shared/bench/oidc-provider && npm ci) && bench/reference.sh
# Env: REF=../shared/bench/oidc-provider DUR=15 WARM=5 CONC=32 TESTS="disco jwks cc_es256 ..."
set -euo pipefail
cd "$(dirname "$0")/.."

REF=$(cd "${REF:-../shared/bench/oidc-provider}" && pwd)
DUR=${DUR:-15}; WARM=${WARM:-5}; CONC=${CONC:-32}
[ -d "$REF/node_modules" ] || { echo "install the reference first: (cd $REF && npm ci)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
BASE=http://127.0.0.1:3100
BASIC=$(printf '%s' 'bench:bench-secret-0123456789abcdef0123456789abcdef' | base64 -w0)
WORK=$(mktemp -d /tmp/latchkey-reference.XXXXXX)

(cd "$REF" && NODE_ENV=production exec taskset -c 0 node server.mjs) >"$WORK/server.log" 2>&1 &
SRV=$!  # the subshell execs taskset, which execs node: this is node's PID
trap 'kill $SRV 2>/dev/null; wait $SRV 2>/dev/null; rm -rf "$WORK"' EXIT
. bench/measure.sh
wait_for "$BASE/.well-known/openid-configuration"
RSS_IDLE=$(rss)

# Minted right before the test that needs it: the reference's in-memory adapter is a small LRU.
OPAQUE=""; RT=""
prepare() {
  case "$1" in
    introspect) OPAQUE=$(curl -fsS -X POST "$BASE/token" -H "Authorization: Basic $BASIC" -d grant_type=client_credentials \
      | python3 -c 'import sys,json;print(json.load(sys.stdin)["access_token"])') ;;
    refresh) RT=$(cd "$REF" && taskset -c 0 node get_refresh_token.mjs 'openid offline_access' \
      | python3 -c 'import sys,json;print(json.load(sys.stdin)["refresh_token"])') ;;
  esac
}
spec() {
  case "$1" in
    disco) echo "GET|$BASE/.well-known/openid-configuration|" ;;
    jwks) echo "GET|$BASE/jwks|" ;;
    cc_es256) echo "POST|$BASE/token|grant_type=client_credentials&scope=api%3Aread&resource=https%3A%2F%2Fapi.example.test|$BASIC" ;;
    cc_rs256) echo "POST|$BASE/token|grant_type=client_credentials&scope=api%3Aread&resource=https%3A%2F%2Fapi-rs256.example.test|$BASIC" ;;
    introspect) echo "POST|$BASE/token/introspection|token=$OPAQUE|$BASIC" ;;
    refresh) echo "POST|$BASE/token|grant_type=refresh_token&refresh_token=$RT|$BASIC" ;;
  esac
}
rows_header
for t in ${TESTS:-disco jwks cc_es256 cc_rs256 introspect refresh}; do
  prepare "$t"
  measure wrk "$t"
done
{
  machine_line
  echo "reference: node $(node -v), oidc-provider $(cd "$REF" && node -p "require('./node_modules/oidc-provider/package.json').version"), pinned to CPU 0; $(wrk --version 2>&1 | head -n 1 | cut -d' ' -f1-2) pinned to CPU 1"
  echo "RSS: idle ${RSS_IDLE} kB, after load $(rss) kB"
  echo
  column -t -s $'\t' "$WORK/rows.tsv"
} | tee bench/last-reference-run.txt
