#!/usr/bin/env bash
# `make dev`: migrate, start the server (API + tracker) in the background, run the hello flow
# against it, and show what the server recorded. `make stop` stops the server.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh

export BATON_HOME="${BATON_HOME:-$PWD/.baton}"
export BATON_DATABASE_URL="${BATON_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/baton}"
export BATON_API_PORT="${BATON_API_PORT:-4200}"
export BATON_API_URL="${BATON_API_URL:-http://127.0.0.1:${BATON_API_PORT}/api}"
mkdir -p "$BATON_HOME"
BIN=.venv/bin

$BIN/baton server db upgrade
if ! grep -qs '^BATON_API_KEY=' "$BATON_HOME/profile.env"; then
  $BIN/baton api-key create --name dev --scope admin --save >/dev/null
fi
set -a; source "$BATON_HOME/profile.env"; set +a

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

echo "--- running examples/hello.py against $BATON_API_URL"
# the flow reports over HTTP: no broker URL in its environment
env -u BATON_BROKER_URL $BIN/python examples/hello.py
echo "--- recorded by the server"
env -u BATON_BROKER_URL $BIN/baton flow-run ls --limit 5
echo
echo "API: $BATON_API_URL (docs at http://127.0.0.1:${BATON_API_PORT}/api/docs); key in $BATON_HOME/profile.env"
echo "stop the server with: make stop"
