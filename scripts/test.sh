#!/usr/bin/env bash
# The whole test suite against PostgreSQL and RabbitMQ on 127.0.0.1 (scripts/services.sh makes
# sure they are up). The fixtures give the run its own database and vhost.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
# the dashboard's browser tests drive Debian's Chromium (Playwright's own download is not used)
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test: installing chromium for the dashboard's browser tests" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "test: /usr/bin/chromium is missing: install chromium (the dashboard's tests need it)" >&2
  fi
fi
if [ "$#" -gt 0 ]; then
  exec .venv/bin/pytest -p no:cacheprovider "$@"
fi
# The whole suite: the chaos tests (private PostgreSQL clusters and RabbitMQ nodes, outages of
# up to a minute: mostly waiting) run in a second pytest process beside the rest, each with a
# database and a vhost of its own. That takes their ~7 minutes off the run's wall time.
chaos_log=$(mktemp -t baton-chaos.XXXXXX)
.venv/bin/pytest -p no:cacheprovider tests/chaos >"$chaos_log" 2>&1 &
chaos=$!
status=0
.venv/bin/pytest -p no:cacheprovider --ignore=tests/chaos || status=$?
chaos_status=0
wait "$chaos" || chaos_status=$?
echo
echo "=== tests/chaos (run beside the rest) ==="
cat "$chaos_log"
rm -f "$chaos_log"
if [ "$status" -ne 0 ] || [ "$chaos_status" -ne 0 ]; then
  echo "test: failed (the rest: exit $status, tests/chaos: exit $chaos_status)" >&2
  exit 1
fi
