#!/usr/bin/env bash
# Make sure the machine's PostgreSQL and RabbitMQ are up; start them if not. Sourced by the others.
set -euo pipefail

ensure_postgres() {
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then return 0; fi
  echo "starting PostgreSQL..."
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  for _ in $(seq 1 60); do pg_isready -q -h 127.0.0.1 -p 5432 && return 0; sleep 0.5; done
  echo "PostgreSQL did not come up on 127.0.0.1:5432" >&2; return 1
}

ensure_rabbitmq() {
  if rabbitmqctl -q await_startup --timeout 5 >/dev/null 2>&1; then return 0; fi
  echo "starting RabbitMQ..."
  rabbitmq-server -detached >/dev/null 2>&1 || true
  rabbitmqctl -q await_startup --timeout 120 >/dev/null 2>&1 || {
    # a stopped app on a running node (e.g. after an interrupted chaos test)
    rabbitmqctl -q start_app >/dev/null 2>&1 || true
    rabbitmqctl -q await_startup --timeout 60 >/dev/null
  }
}

ensure_postgres
ensure_rabbitmq
