#!/usr/bin/env bash
# What this measuring set-up can show at all: Latchkey's JWKS and discovery endpoints under wrk, then
# bench/floor.c (an epoll loop that parses nothing and sends fixed bytes) serving the very same responses,
# captured from Latchkey, pinned the same way (server on CPU 0, wrk on CPU 1). The floor's figures bound
# any HTTP server on this machine; when the floor's core is not fully busy, wrk's core is the limit.
#
#   cargo build --release && apt-get install wrk && bench/floor.sh
# Env: DUR=15 WARM=5 CONC=32 TESTS="jwks disco"
set -euo pipefail
cd "$(dirname "$0")/.."

DUR=${DUR:-15}; WARM=${WARM:-5}; CONC=${CONC:-32}
BIN=target/release/latchkey
[ -x "$BIN" ] || { echo "build first: cargo build --release" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
PORT=${PORT:-3220}; FLOOR_PORT=$((PORT + 1))
WORK=$(mktemp -d /tmp/latchkey-floor.XXXXXX)
export LATCHKEY_LISTEN=127.0.0.1:$PORT LATCHKEY_PUBLIC_URL=http://localhost:$PORT LATCHKEY_DATA_DIR=$WORK/data \
  LATCHKEY_WORKERS=1 LATCHKEY_LOG=warn
unset DATABASE_URL
cc -O2 -o "$WORK/floor" bench/floor.c
. bench/measure.sh

taskset -c 0 "$BIN" serve >"$WORK/server.log" 2>&1 &
SRV=$!
trap 'kill $SRV 2>/dev/null; wait $SRV 2>/dev/null; rm -rf "$WORK"' EXIT
wait_for "http://127.0.0.1:$PORT/healthz"

path() { case "$1" in jwks) echo /t/default/jwks ;; disco) echo /t/default/.well-known/openid-configuration ;; esac; }
TESTS=${TESTS:-jwks disco}
for t in $TESTS; do  # the bytes the floor will send: Latchkey's own response, headers and body
  curl -fsS -D "$WORK/$t.head" -o "$WORK/$t.body" "http://127.0.0.1:$PORT$(path "$t")"
  cat "$WORK/$t.head" "$WORK/$t.body" >"$WORK/$t.response"
done

HOST=$PORT
spec() { echo "GET|http://127.0.0.1:$HOST$(path "${1#floor_}")||"; }
rows_header
for t in $TESTS; do measure wrk "$t"; done
kill $SRV; wait $SRV 2>/dev/null || true

HOST=$FLOOR_PORT
for t in $TESTS; do
  taskset -c 0 "$WORK/floor" "$WORK/$t.response" "$FLOOR_PORT" &
  SRV=$!
  wait_for "http://127.0.0.1:$FLOOR_PORT/"
  measure wrk "floor_$t"
  kill $SRV; wait $SRV 2>/dev/null || true
done
{
  machine_line
  echo "latchkey (1 worker) and bench/floor.c, each pinned to CPU 0; $(wrk --version 2>&1 | head -n 1 | cut -d' ' -f1-2) pinned to CPU 1"
  echo
  column -t -s $'\t' "$WORK/rows.tsv"
}
