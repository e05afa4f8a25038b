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
exec .venv/bin/pytest -p no:cacheprovider "$@"
