#!/usr/bin/env bash
# `make stop`: the worker first (it drains its runs, bounded by its drain period), then the
# server; each is waited for, and the script says how each one ended.
set -u
BATON_HOME="${BATON_HOME:-$PWD/.baton}"
WORKER_WAIT="${BATON_STOP_WORKER_SECONDS:-60}"   # above the worker's drain (30 s) and cancel grace
SERVER_WAIT="${BATON_STOP_SERVER_SECONDS:-30}"   # above the server's bounded shutdown

alive() {  # running, and not a zombie waiting for its parent to collect it
  kill -0 "$1" 2>/dev/null || return 1
  [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != "Z" ]
}

stop_one() {
  local name="$1" wait="$2" pidfile="$BATON_HOME/$1.pid"
  if [ ! -f "$pidfile" ]; then
    echo "$name: not running (no $pidfile)"
    return
  fi
  local pid
  pid="$(cat "$pidfile")"
  if ! alive "$pid"; then
    echo "$name: not running (pid $pid had already exited)"
    rm -f "$pidfile"
    return
  fi
  if [ "$name" = worker ]; then
    local running
    running="$(grep -c 'started (pid' "$BATON_HOME/worker.log" 2>/dev/null || true)"
    echo "$name: stopping pid $pid (it drains the flow runs it has; $running started in its log)"
  else
    echo "$name: stopping pid $pid"
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + wait))
  while alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
  if alive "$pid"; then
    kill -KILL "$pid" 2>/dev/null || true
    echo "$name: did not stop within ${wait}s: killed (SIGKILL)"
  else
    echo "$name: exited after SIGTERM"
  fi
  rm -f "$pidfile"
}

stop_one worker "$WORKER_WAIT"
stop_one server "$SERVER_WAIT"
