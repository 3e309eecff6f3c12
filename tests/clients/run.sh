#!/usr/bin/env bash
# Vantage's official clients, unmodified, against a running costd: the TypeScript @vantage-sh/vantage-client
# and the Python vantage-python, each at its pinned version, each driving every endpoint costd implements.
#
#   tests/clients/run.sh                 # both backends (PostgreSQL at 127.0.0.1:5432, database test)
#   tests/clients/run.sh sqlite          # one backend
#
# Uses target/debug/costd (built if missing; COSTD_BIN overrides). Installs the clients from the npm registry
# (tests/clients/node/package-lock.json) and PyPI (tests/clients/python/requirements.txt) into target/.
# Outside CI (CI unset) the PostgreSQL run is skipped with a message when the server is unreachable.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${COSTD_BIN:-$root/target/debug/costd}
if [ ! -x "$bin" ]; then
    (cd "$root" && cargo build --locked --bin costd)
fi

echo "clients: installing @vantage-sh/vantage-client (npm) and vantage-python (PyPI)"
node_dir=$root/target/clients-node
mkdir -p "$node_dir"
cp "$here/node/package.json" "$here/node/package-lock.json" "$here/node/scenario.mjs" "$node_dir/"
(cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
venv=$root/target/clients-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/python/requirements.txt"

export COSTD_FOCUS_SAMPLE=${COSTD_FOCUS_SAMPLE:-$root/tests/data/focus/focus_sample_1000_multicloud_focus1.0.csv}
pg_base=${COSTD_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
backends=${*:-sqlite postgres}
server=""
smtp=""
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null || true
    [ -n "$smtp" ] && kill "$smtp" 2>/dev/null || true
}
trap cleanup EXIT

for backend in $backends; do
    data=$(mktemp -d)
    url_args=()
    # An empty COSTD_DATABASE_URL would be read as a URL: unset means the embedded SQLite default.
    unset COSTD_DATABASE_URL
    if [ "$backend" = postgres ]; then
        schema="costd_clients_$$_$RANDOM"
        if ! psql "$pg_base" -qc "CREATE SCHEMA $schema" >/dev/null 2>&1; then
            if [ -n "${CI:-}" ]; then
                echo "clients: CI must run the PostgreSQL half, but $pg_base is unreachable" >&2
                exit 1
            fi
            echo "clients: SKIPPED PostgreSQL: cannot reach $pg_base"
            continue
        fi
        sep='?'
        case "$pg_base" in *\?*) sep='&' ;; esac
        export COSTD_DATABASE_URL="$pg_base${sep}options=-c%20search_path%3D$schema"
        url_args=(--database-url "$COSTD_DATABASE_URL")
    fi
    # A real SMTP server (aiosmtpd, from PyPI) that invoices are sent through, into a Maildir.
    smtp_port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$venv/bin/python" -m aiosmtpd -n -l "127.0.0.1:$smtp_port" -c aiosmtpd.handlers.Mailbox "$data/mail" &
    smtp=$!
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$smtp_port") 2>/dev/null && break
        sleep 0.1
    done
    export COSTD_SMTP_MAILDIR="$data/mail"
    # --allow-endpoint: the scenarios connect an Azure export at an endpoint where nothing listens.
    RUST_LOG=warn "$bin" serve --listen 127.0.0.1:0 --data-dir "$data" --smtp-url "smtp://127.0.0.1:$smtp_port" \
        --allow-endpoint http://127.0.0.1:9 --sync-interval-secs 0 \
        "${url_args[@]}" >"$data/serve.out" 2>"$data/serve.err" &
    server=$!
    for _ in $(seq 1 100); do
        grep -q '^listening on ' "$data/serve.out" 2>/dev/null && break
        sleep 0.1
    done
    COSTD_URL=$(sed -n 's/^listening on //p' "$data/serve.out")
    COSTD_TOKEN=$(sed -n '/^cstd_/{p;q}' "$data/serve.out")
    if [ -z "$COSTD_URL" ] || [ -z "$COSTD_TOKEN" ]; then
        echo "clients: costd serve did not start:" >&2
        cat "$data/serve.out" "$data/serve.err" >&2
        exit 1
    fi
    COSTD_ACCOUNT=$(sed -n 's/^created account \([^ ]*\).*/\1/p' "$data/serve.out")
    export COSTD_URL COSTD_TOKEN COSTD_ACCOUNT COSTD_BIN="$bin" COSTD_DATA_DIR="$data"
    echo "clients: $backend at $COSTD_URL"
    status=0
    (cd "$node_dir" && node scenario.mjs) || status=1
    "$venv/bin/python" "$here/python/scenario.py" || status=1
    kill "$server" && wait "$server" 2>/dev/null || true
    server=""
    kill "$smtp" && wait "$smtp" 2>/dev/null || true
    smtp=""
    if [ "$status" -ne 0 ]; then
        echo "clients: FAILED on $backend; server log:" >&2
        tail -50 "$data/serve.err" >&2
        exit 1
    fi
    rm -rf "$data"
    if [ "$backend" = postgres ]; then
        psql "$pg_base" -qc "DROP SCHEMA $schema CASCADE" >/dev/null 2>&1 || true
    fi
done
