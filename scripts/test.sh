#!/usr/bin/env bash
# The whole test suite against the machine's PostgreSQL and RabbitMQ (or testcontainers where a
# Docker engine answers). The fixtures give the run its own database and vhost.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
exec .venv/bin/pytest -p no:cacheprovider "$@"
