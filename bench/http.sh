#!/usr/bin/env bash
# HTTP benchmark of issue 2's figures, on SQLite and PostgreSQL, with a release build and wrk:
#   - GET /v2/billing_rules/{token}: requests/s and p99 at 64 connections
#   - POST /v2/billing_rules: creates/s at 64 connections, then an exact lost-write check
#   - idle RSS of `costd serve`
# Usage: bench/http.sh [seconds per run, default 15]. Needs PostgreSQL on 127.0.0.1:5432 for its half.
# Request logging is set to warn (RUST_LOG) so the figures measure the service, not the terminal.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-15}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
[ -n "${COSTD_BENCH_NO_BUILD:-}" ] || cargo build --release --quiet
BIN=target/release/costd
PG_BASE=${COSTD_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}

start() { # $1 data dir, $2 database url or "" -> sets PID, URL, TOKEN
  local out="$1/stdout"
  if [ -n "$2" ]; then
    RUST_LOG=warn "$BIN" serve --listen 127.0.0.1:0 --data-dir "$1" --database-url "$2" >"$out" 2>"$1/stderr" &
  else
    RUST_LOG=warn "$BIN" serve --listen 127.0.0.1:0 --data-dir "$1" >"$out" 2>"$1/stderr" &
  fi
  PID=$!
  for _ in $(seq 1 100); do grep -q "listening on" "$out" 2>/dev/null && break; sleep 0.1; done
  URL=$(sed -n 's/^listening on //p' "$out")
  TOKEN=$(cat "$1/bootstrap-token")
}

rules_in_store() {
  curl -s -H "Authorization: Bearer $TOKEN" "$URL/v2/billing_rules?limit=1" |
    python3 -c 'import sys,json,re; l=json.load(sys.stdin)["links"]["last"]; print(re.search(r"page=(\d+)", l).group(1))'
}

run_backend() { # $1 name, $2 database url or ""
  local dir; dir=$(mktemp -d)
  start "$dir" "$2"
  sleep 2
  local rss; rss=$(awk '/VmRSS/ {print $2}' /proc/$PID/status)
  local rule; rule=$(curl -s -H "Authorization: Bearer $TOKEN" -X POST "$URL/v2/billing_rules" \
      -d '{"type":"adjustment","title":"bench","percentage":75}' | python3 -c 'import sys,json; print(json.load(sys.stdin)["token"])')
  wrk -t2 -c64 -d1s -H "Authorization: Bearer $TOKEN" "$URL/v2/billing_rules/$rule" >/dev/null # warm-up
  local get; get=$(wrk -t2 -c64 -d"${SECS}s" --latency -H "Authorization: Bearer $TOKEN" "$URL/v2/billing_rules/$rule")
  local get_rps get_p99 get_p50 get_errors
  get_rps=$(echo "$get" | awk '/Requests\/sec/ {print $2}')
  get_p50=$(echo "$get" | awk '$1=="50%" {print $2}')
  get_p99=$(echo "$get" | awk '$1=="99%" {print $2}')
  get_errors=$(echo "$get" | awk '/Non-2xx/ {print $NF}'); get_errors=${get_errors:-0}

  local before post post_rps created after
  before=$(rules_in_store)
  post=$(COSTD_TOKEN=$TOKEN wrk -t2 -c64 -d"${SECS}s" --latency -s bench/post_rule.lua "$URL/v2/billing_rules")
  post_rps=$(echo "$post" | awk '/Requests\/sec/ {print $2}')
  local post_p99; post_p99=$(echo "$post" | awk '$1=="99%" {print $2}')
  # Exact check: a fixed number of creates, every answer read before wrk exits.
  before=$(rules_in_store)
  post=$(QUOTA=5000 COSTD_TOKEN=$TOKEN wrk -t2 -c64 -d"${SECS}s" -s bench/post_rule.lua "$URL/v2/billing_rules")
  created=$(echo "$post" | awk '/created_201/ {print $2}')
  local other; other=$(echo "$post" | awk '/other_status/ {print $2}')
  after=$(rules_in_store)
  local stored=$((after - before))
  kill "$PID"; wait "$PID" 2>/dev/null || true
  rm -rf "$dir"

  printf '%-10s GET: %9s req/s  p50 %7s  p99 %7s  non-2xx %s | POST: %8s creates/s  p99 %7s | lost-write check: %s answered 201 (%s other), %s stored -> %s | idle RSS %s MB\n' \
    "$1" "$get_rps" "$get_p50" "$get_p99" "$get_errors" "$post_rps" "$post_p99" "$created" "$other" "$stored" \
    "$([ "$created" = "$stored" ] && echo OK || echo MISMATCH)" "$((rss / 1024))"
}

echo "costd HTTP benchmark: $(nproc) cores, wrk -t2 -c64, ${SECS}s per run, release build"
run_backend sqlite ""
if pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  schema="costd_bench_$$"
  psql "$PG_BASE" -qc "SET client_min_messages = warning; DROP SCHEMA IF EXISTS $schema CASCADE; CREATE SCHEMA $schema" >/dev/null
  run_backend postgres "$PG_BASE?options=-c%20search_path%3D$schema"
  psql "$PG_BASE" -qc "SET client_min_messages = warning; DROP SCHEMA $schema CASCADE" >/dev/null
else
  echo "postgres: skipped (no server on 127.0.0.1:5432)"
fi
