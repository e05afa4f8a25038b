#!/usr/bin/env bash
# `make dev`: migrate, start the server (API, tracker, scheduler) and a worker of the `local`
# pool in the background, run the hello flow (directly, then as a deployment through the
# worker), and show what the server recorded. `make stop` stops the server and the worker.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

# the profile (and the pid and log files) live in the user's home, as the CLI finds them
export BATON_HOME="${BATON_HOME:-$HOME/.baton}"
export BATON_DATABASE_URL="${BATON_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/baton}"
export BATON_API_PORT="${BATON_API_PORT:-4200}"
export BATON_API_URL="${BATON_API_URL:-http://127.0.0.1:${BATON_API_PORT}/api}"
mkdir -p "$BATON_HOME"
BIN=.venv/bin

# the database is made here, on purpose: `baton server start` never creates one
$BIN/baton server db upgrade --create
# you get an admin key (in profile.env, read by the CLI); the worker a key that may only claim
# and report runs (worker.env): it cannot change what runs
if ! grep -qs '^BATON_API_KEY=' "$BATON_HOME/profile.env"; then
  $BIN/baton api-key create --name dev --scope admin --save >/dev/null
fi
if ! grep -qs '^BATON_API_KEY=' "$BATON_HOME/worker.env"; then
  echo "BATON_API_KEY=$($BIN/baton api-key create --name dev-worker --scope worker)" >"$BATON_HOME/worker.env"
fi
# the profile holds the API's URL and the admin key: a new shell needs nothing exported
$BIN/baton config set "BATON_API_URL=$BATON_API_URL" >/dev/null
set -a; source "$BATON_HOME/profile.env"; set +a
WORKER_KEY="$(sed -n 's/^BATON_API_KEY=//p' "$BATON_HOME/worker.env")"

if [ -f "$BATON_HOME/server.pid" ] && kill -0 "$(cat "$BATON_HOME/server.pid")" 2>/dev/null; then
  echo "server already running (pid $(cat "$BATON_HOME/server.pid"))"
else
  nohup $BIN/baton server start \
    >"$BATON_HOME/server.log" 2>&1 &
  echo $! >"$BATON_HOME/server.pid"
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:${BATON_API_PORT}/ready" >/dev/null 2>&1 && break
    kill -0 "$(cat "$BATON_HOME/server.pid")" 2>/dev/null || { cat "$BATON_HOME/server.log"; exit 1; }
    sleep 0.2
  done
  echo "server running (pid $(cat "$BATON_HOME/server.pid")), log in $BATON_HOME/server.log"
fi

# flows and the CLI talk to the API over HTTP: no broker URL in their environment
CLIENT="env -u BATON_BROKER_URL"
$CLIENT $BIN/baton work-pool create local --type process >/dev/null 2>&1 || true

if [ -f "$BATON_HOME/worker.pid" ] && kill -0 "$(cat "$BATON_HOME/worker.pid")" 2>/dev/null; then
  echo "worker already running (pid $(cat "$BATON_HOME/worker.pid"))"
else
  # the worker takes runs from RabbitMQ: it needs the broker (default: the local one)
  BATON_BROKER_URL="${BATON_BROKER_URL:-amqp://guest:guest@127.0.0.1:5672/}" BATON_API_KEY="$WORKER_KEY" \
    nohup $BIN/baton worker start --pool local --name dev-worker >"$BATON_HOME/worker.log" 2>&1 &
  echo $! >"$BATON_HOME/worker.pid"
  echo "worker running (pid $(cat "$BATON_HOME/worker.pid")), log in $BATON_HOME/worker.log"
fi

echo "--- python examples/hello.py (runs here, reports to $BATON_API_URL)"
$CLIENT $BIN/python examples/hello.py
echo "--- baton deploy, then a run of it through the worker"
(cd examples && $CLIENT ../$BIN/baton deploy)
$CLIENT $BIN/baton deployment run say-hello/dev --watch
echo "--- recorded by the server"
$CLIENT $BIN/baton flow-run ls --limit 5
echo
echo "API: $BATON_API_URL (docs at http://127.0.0.1:${BATON_API_PORT}/api/docs); key in $BATON_HOME/profile.env"
echo "stop the server with: make stop"
