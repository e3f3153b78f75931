#!/usr/bin/env bash
# CI: follow the README's "Running on PostgreSQL" steps as written, on a throwaway cluster whose
# superuser `postgres` logs in without a password (the one .ci/run starts), then check that the
# server is ready and that an article written through the API reads back. Stops the server and
# the worker it started, by PID, and drops the role and database the steps created.
#
#   .ci/postgres-readme.sh HOST PORT
#
# The steps run in this shell, line by line, with two stand-ins: `sudo -u postgres psql` is psql
# as the cluster's superuser, and the README's 127.0.0.1:5432 is HOST:PORT. The server listens on
# a free port of 127.0.0.1 (NEWSDESK_BIND). What the steps, the server and the worker print is
# shown only when something fails.
set -euo pipefail
cd "$(dirname "$0")/.."
PG_HOST=$1
PG_PORT=$2

free_port() {
    # Free when it can be bound. Nothing answering is not enough: the port may be the local end
    # of a client's connection (the kernel hands out ports of this range to those), and a
    # server cannot bind it then (a CI run failed so, the README's server on 58400).
    local port=$1
    until python3 -c 'import socket, sys; socket.socket().bind(("127.0.0.1", int(sys.argv[1])))' \
        "$port" 2>/dev/null; do
        port=$((port + 1))
    done
    echo "$port"
}

# The first sh block of the section, without its last line (serve), which runs in the background.
steps=$(awk '/^## Running on PostgreSQL$/ {inside = 1; next}
             inside && /^## / {exit}
             inside && /^```sh$/ {block = 1; next}
             block && /^```$/ {exit}
             block' README.md)
serve=$(tail -n 1 <<<"$steps")
setup=$(sed '$d' <<<"$steps")
if [[ "$serve" != ".venv/bin/newsdesk serve"* || "$setup" != *"newsdesk worker &"* ]]; then
    echo "ci: README's PostgreSQL steps no longer end with the worker and .venv/bin/newsdesk serve" >&2
    exit 1
fi
setup=${setup//127.0.0.1:5432/$PG_HOST:$PG_PORT}

sudo() {
    if [[ "$*" != "-u postgres psql "* ]]; then
        echo "ci: the README runs sudo $*; only sudo -u postgres psql stands in here" >&2
        return 1
    fi
    shift 3
    psql -X -q -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" -U postgres "$@"
}

started=()
LOG=$(mktemp /tmp/newsdesk-readme.XXXXXX)
cleanup() {
    local status=$? pid
    for pid in "${started[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    psql -X -q -h "$PG_HOST" -p "$PG_PORT" -U postgres \
        -c "DROP DATABASE IF EXISTS newsdesk WITH (FORCE)" -c "DROP ROLE IF EXISTS newsdesk" || true
    if [ "$status" != 0 ]; then
        echo "ci: what the README's steps, the server and the worker printed:" >&2
        cat "$LOG" >&2
    fi
    rm -f "$LOG"
}
trap cleanup EXIT

BIND=127.0.0.1:$(free_port "${NEWSDESK_CI_README_PORT:-58400}")
export NEWSDESK_BIND=$BIND
echo "ci: following README's PostgreSQL steps on $PG_HOST:$PG_PORT, serving on $BIND"
# shellcheck source=/dev/null
source <(printf '%s\n' "$setup") >>"$LOG" 2>&1
read -ra started <<<"$(jobs -p | tr '\n' ' ')"
[ ${#started[@]} -eq 1 ] || { echo "ci: expected the worker in the background" >&2; exit 1; }
read -ra serve_words <<<"$serve"
(exec "${serve_words[@]}") >>"$LOG" 2>&1 &
started=("$!" "${started[@]}")

# Ready within 30 s, or the log shown on the way out says why not.
deadline=$((SECONDS + 30))
until curl -fsS "http://$BIND/readyz" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ] || ! kill -0 "${started[0]}" 2>/dev/null; then
        echo "ci: the server did not get ready" >&2
        exit 1
    fi
    sleep 0.2
done

api() {  # METHOD PATH STATUS [JSON]: prints the body; fails on another status
    local method=$1 path=$2 expect=$3 out status
    local args=(-sS -X "$method" -H "X-API-Key: $ADMIN_KEY" -w '\n%{http_code}')
    [ $# -lt 4 ] || args+=(-H 'Content-Type: application/json' -d "$4")
    out=$(curl "${args[@]}" "http://$BIND$path")
    status=${out##*$'\n'}
    if [ "$status" != "$expect" ]; then
        echo "ci: $method $path answered $status, not $expect: ${out%$'\n'*}" >&2
        return 1
    fi
    printf '%s\n' "${out%$'\n'*}"
}

curl -fsS "http://$BIND/readyz" | grep -q '"status":"ready"'
api POST /v1/sources 201 '{"slug": "harbour-gazette", "name": "Harbour Gazette"}' >/dev/null
api POST /v1/articles 201 '{"source": "harbour-gazette", "external_id": "hg-1",
    "title": "Ferry returns", "body_text": "The ferry is back."}' >/dev/null
article=$(api GET /v1/articles/ferry-returns 200)
grep -q '"title":"Ferry returns"' <<<"$article"
grep -q '"body_text":"The ferry is back."' <<<"$article"
kill -0 "${started[1]}" || { echo "ci: the worker stopped" >&2; exit 1; }
echo "ci: README's PostgreSQL steps work: ready, an article written and read back"
