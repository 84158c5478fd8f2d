#!/usr/bin/env bash
# User-space instructions per request, counted by callgrind: a yardstick for small CPU changes that
# does not move with the machine's noise (throughput on a shared VM moves ±15% between runs).
#
#   bench/instructions.sh jwks|disco|cc [REQUESTS]      (needs valgrind; cargo build --release first;
#                                                      BIN=path/to/latchkey measures another build)
#
# The load comes from oha (`cargo install oha --locked`) or, without it, from wrk (Debian's package),
# which runs for WRK_SECONDS (default 10) and reports how many requests it made. Other LATCHKEY_*
# variables in the environment reach the server (LATCHKEY_METRICS_LISTEN=127.0.0.1:3411 turns the
# metrics on).
#
# The server runs under callgrind with one worker; 500 warm-up requests are sent, the counters are
# zeroed, REQUESTS (default 5,000) are sent at c=8, and the counters are dumped. Callgrind counts each
# iteration of a `rep stosb` memset as an instruction, so memset-heavy code looks dearer than it is.
set -euo pipefail
cd "$(dirname "$0")/.."

TEST=${1:?jwks, disco or cc}; N=${2:-5000}
BIN=${BIN:-target/release/latchkey}
[ -x "$BIN" ] || { echo "build first: cargo build --release" >&2; exit 1; }
OHA=${OHA:-$(command -v oha || echo "$HOME/.cargo/bin/oha")}
PORT=${PORT:-3410}
WORK=$(mktemp -d /tmp/latchkey-instructions.XXXXXX)
export LATCHKEY_LISTEN=127.0.0.1:$PORT LATCHKEY_PUBLIC_URL=http://localhost:$PORT LATCHKEY_DATA_DIR=$WORK/data \
  LATCHKEY_WORKERS=1 LATCHKEY_LOG=warn LATCHKEY_RATE_TOKEN_PER_CLIENT_PER_SECOND=1000000
unset DATABASE_URL
valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" "$BIN" serve >"$WORK/server.log" 2>&1 &
SRV=$!
trap 'kill $SRV 2>/dev/null; wait $SRV 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 300); do curl -fsS -o /dev/null "http://127.0.0.1:$PORT/healthz" 2>/dev/null && break; sleep 0.5; done

BASE=http://127.0.0.1:$PORT/t/default
METHOD=GET BODY= AUTH=
case "$TEST" in
  jwks) URL="$BASE/jwks" ;;
  disco) URL="$BASE/.well-known/openid-configuration" ;;
  cc)
    CRED=$("$BIN" client create --json --name instructions --confidential --grant-type client_credentials \
      --scope api:read --access-token-alg ES256 \
      | python3 -c 'import sys,json;d=json.load(sys.stdin);print(d["client_id"]+":"+d["client_secret"])')
    METHOD=POST BODY="grant_type=client_credentials&scope=api%3Aread" AUTH=$(printf '%s' "$CRED" | base64 -w0)
    URL="$BASE/token" ;;
  *) echo "unknown test $TEST" >&2; exit 2 ;;
esac

if [ -x "$OHA" ]; then
  ARGS=(-m "$METHOD")
  [ -n "$AUTH" ] && ARGS+=(-H "Authorization: Basic $AUTH" -T application/x-www-form-urlencoded -d "$BODY")
  "$OHA" --no-tui -n 500 -c 8 "${ARGS[@]}" "$URL" >/dev/null
  callgrind_control -z "$SRV" >/dev/null 2>&1
  # Captured first: `grep -q` quits at its match, and under pipefail oha's broken pipe would fail the run.
  REPORT=$("$OHA" --no-tui -n "$N" -c 8 "${ARGS[@]}" "$URL")
  grep -q "Success rate:.*100.00%" <<<"$REPORT" || { echo "requests failed" >&2; exit 1; }
else
  command -v wrk >/dev/null || { echo "oha or wrk is needed (cargo install oha --locked, or apt-get install wrk)" >&2; exit 1; }
  wrk_load() { WRK_METHOD=$METHOD WRK_BODY=$BODY WRK_AUTH=$AUTH wrk -t1 -c8 -d"$1s" -s bench/wrk.lua "$URL" | tail -n 1; }
  wrk_load 2 >/dev/null
  callgrind_control -z "$SRV" >/dev/null 2>&1
  REPORT=$(wrk_load "${WRK_SECONDS:-10}")
  N=$(python3 -c 'import sys,json;d=json.loads(sys.argv[1]);assert d["non2xx"]==0 and d["socket_errors"]==0,d;print(d["requests"])' "$REPORT") \
    || { echo "requests failed: $REPORT" >&2; exit 1; }
fi
callgrind_control -d "$SRV" >/dev/null 2>&1
sleep 1
TOTAL=$(grep -h '^summary:\|^totals:' "$WORK"/callgrind.out.* | head -n 1 | awk '{print $2}')
echo "$TEST: $((TOTAL / N)) user-space instructions per request ($N requests)"
