#!/usr/bin/env bash
# `make bench`: every benchmark, one after another (they measure a shared 2-core machine, so they
# never run in parallel). Each starts its own server, database and vhost and prints its figures.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
for script in bench/amqp_ceiling.py bench/tracker.py bench/events.py bench/sdk_overhead.py bench/sdk_server.py bench/worker.py bench/scheduler.py bench/dashboard.py; do
  echo "=== $script"
  .venv/bin/python "$script"
  echo
done
