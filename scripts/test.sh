#!/usr/bin/env bash
# The whole test suite against PostgreSQL and RabbitMQ on 127.0.0.1 (scripts/services.sh makes
# sure they are up). The fixtures give the run its own database and vhost.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
exec .venv/bin/pytest -p no:cacheprovider "$@"
