#!/usr/bin/env bash
# Make sure PostgreSQL (127.0.0.1:5432, user postgres trusted) and RabbitMQ (127.0.0.1:5672,
# guest/guest) answer. Sourced by dev.sh, test.sh and bench.sh; `bash scripts/services.sh` alone
# works too. In order, for each service that does not answer:
#   1. installed here (Debian's packages): start it;
#   2. a Docker engine answers: start it from deploy/compose.yaml (project `baton-dev`, with the
#      settings above: trust, guest, ports published on 127.0.0.1);
#   3. Debian or Ubuntu, as root: install it with apt-get and start it;
#   4. otherwise: stop with one line saying what to install.
# The SERVICES_* variables below exist for this script's own tests (tests/e2e/ops).
set -euo pipefail

_services_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SERVICES_PG_PORT="${SERVICES_PG_PORT:-5432}"
SERVICES_AMQP_PORT="${SERVICES_AMQP_PORT:-5672}"
SERVICES_WAIT_SECONDS="${SERVICES_WAIT_SECONDS:-120}"
SERVICES_OS_RELEASE="${SERVICES_OS_RELEASE:-/etc/os-release}"
SERVICES_PG_CONF_ROOT="${SERVICES_PG_CONF_ROOT:-/etc/postgresql}"
SERVICES_BIN="${SERVICES_BIN:-${BATON_HOME:-$_services_root/.baton}/bin}"
SERVICES_RABBITMQ_DATA="${SERVICES_RABBITMQ_DATA:-/var/lib/rabbitmq/mnesia}"

_say() { echo "services: $*" >&2; }

_port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

_postgres_up() { _port_open "$SERVICES_PG_PORT"; }
_rabbitmq_up() { _port_open "$SERVICES_AMQP_PORT"; }

_await() {  # _await NAME PROBE: wait for PROBE to succeed, up to SERVICES_WAIT_SECONDS
  local name=$1 probe=$2 waited=0
  until "$probe"; do
    if ((waited >= SERVICES_WAIT_SECONDS * 2)); then
      _say "$name did not come up within ${SERVICES_WAIT_SECONDS}s"
      return 1
    fi
    sleep 0.5
    waited=$((waited + 1))
  done
}

# --- 1. installed here ------------------------------------------------------------------------

_start_local_postgres() {
  command -v pg_lsclusters >/dev/null && command -v pg_ctlcluster >/dev/null || return 1
  local version cluster
  read -r version cluster _ < <(pg_lsclusters -h | head -n1) || true
  if [ -z "${version:-}" ]; then
    _say "PostgreSQL is installed but has no cluster: creating one"
    version=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -n | tail -n1)
    [ -n "$version" ] || return 1
    cluster=main
    pg_createcluster "$version" "$cluster" >/dev/null
  fi
  _say "starting PostgreSQL $version/$cluster"
  pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start || _postgres_up || return 1
  _await PostgreSQL _postgres_up
}

_rabbitmq_data_in_use() {  # a running node holds files in the installed node's data directory
  local pid
  for pid in $(pgrep -x beam.smp 2>/dev/null); do
    ls -l "/proc/$pid/fd" 2>/dev/null | grep -qF -- "$SERVICES_RABBITMQ_DATA/" && return 0
  done
  return 1
}

_start_local_rabbitmq() {
  command -v rabbitmq-server >/dev/null || return 1
  if _rabbitmq_data_in_use; then
    # e.g. from another network namespace: a second node on the same data would corrupt it
    _say "a RabbitMQ node runs on $SERVICES_RABBITMQ_DATA but does not answer on" \
      "127.0.0.1:$SERVICES_AMQP_PORT: not starting another over its data"
    return 1
  fi
  _say "starting RabbitMQ"
  rabbitmq-server -detached >/dev/null 2>&1 || true
  if command -v rabbitmqctl >/dev/null; then
    # a stopped app on a running node (e.g. after an interrupted test) needs start_app
    rabbitmqctl -q await_startup --timeout "$SERVICES_WAIT_SECONDS" >/dev/null 2>&1 \
      || rabbitmqctl -q start_app >/dev/null 2>&1 || true
  fi
  _await RabbitMQ _rabbitmq_up
}

# --- 2. a Docker engine -----------------------------------------------------------------------

_compose_command() {  # docker compose (v2) or docker-compose (v1)
  if docker compose version >/dev/null 2>&1; then
    echo "docker compose"
  elif command -v docker-compose >/dev/null; then
    echo docker-compose
  else
    return 1
  fi
}

_compose() {
  local command
  command=$(_compose_command)
  $command -p baton-dev -f "$_services_root/deploy/compose.yaml" "$@"
}

_docker_usable() {
  command -v docker >/dev/null && docker info >/dev/null 2>&1 && _compose_command >/dev/null
}

_docker_pair_runs() {  # the compose project's RabbitMQ is up (started by an earlier run)
  _docker_usable && [ -n "$(_compose ps -q rabbitmq 2>/dev/null)" ]
}

_start_with_docker() {  # _start_with_docker SERVICE...
  _say "starting $* from deploy/compose.yaml (docker compose project baton-dev)"
  # compose.yaml's own settings are a deployment's; make dev and make test expect these
  POSTGRES_USER=postgres POSTGRES_HOST_AUTH_METHOD=trust \
    BATON_RABBITMQ_CONF=./rabbitmq/dev.conf \
    _compose up -d "$@"
  _await PostgreSQL _postgres_up && _await RabbitMQ _rabbitmq_up || return 1
  _use_docker_pair
  _await_container_rabbitmq
}

_await_container_rabbitmq() {
  # Docker's proxy answers on the published port before the node runs, and await_startup
  # fails at once while the node is not yet known to epmd: ask again until it has booted.
  local deadline=$((SECONDS + SERVICES_WAIT_SECONDS))
  until rabbitmqctl -q await_startup --timeout 5 >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      _say "RabbitMQ in its container did not boot within ${SERVICES_WAIT_SECONDS}s"
      return 1
    fi
    sleep 1
  done
}

_use_docker_pair() {
  # tests give each run a vhost of its own with rabbitmqctl: the container's
  mkdir -p "$SERVICES_BIN"
  cat >"$SERVICES_BIN/rabbitmqctl" <<EOF
#!/usr/bin/env bash
exec $(_compose_command) -p baton-dev -f "$_services_root/deploy/compose.yaml" exec -T rabbitmq rabbitmqctl "\$@"
EOF
  chmod +x "$SERVICES_BIN/rabbitmqctl"
  export PATH="$SERVICES_BIN:$PATH"
  export BATON_TEST_USE_CONTAINERS=no  # the services are up: no testcontainers of their own
}

# --- 3. apt on Debian or Ubuntu as root -------------------------------------------------------

_debian_root() {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && [ -r "$SERVICES_OS_RELEASE" ] \
    && grep -Eqi '^(ID|ID_LIKE)=.*(debian|ubuntu)' "$SERVICES_OS_RELEASE"
}

_trust_local_postgres() {
  # a PostgreSQL this script installed is a development one: trust local connections, as the
  # default BATON_DATABASE_URL (postgresql://postgres@127.0.0.1:5432/baton) expects
  local hba
  for hba in "$SERVICES_PG_CONF_ROOT"/*/main/pg_hba.conf; do
    [ -f "$hba" ] || continue
    if ! grep -q '^# baton: trust local' "$hba"; then
      _say "trusting connections from 127.0.0.1 in $hba"
      printf '%s\n' '# baton: trust local connections (development)' \
        'host all all 127.0.0.1/32 trust' 'host all all ::1/128 trust' | cat - "$hba" >"$hba.baton"
      cat "$hba.baton" >"$hba" && rm -f "$hba.baton"
    fi
  done
}

_install_with_apt() {  # _install_with_apt PACKAGE...
  _say "installing $* with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "$@" >/dev/null
}

# --- all of it --------------------------------------------------------------------------------

ensure_services() {
  local down=() packages=() service
  if _postgres_up && _rabbitmq_up && _docker_pair_runs; then
    _use_docker_pair  # up from an earlier run of this script
    return 0
  fi
  _postgres_up || _start_local_postgres || down+=(postgres)
  _rabbitmq_up || _start_local_rabbitmq || down+=(rabbitmq)
  ((${#down[@]})) || return 0

  if _docker_usable; then
    _start_with_docker "${down[@]}"
    return
  fi
  if _debian_root; then
    for service in "${down[@]}"; do
      case $service in
        postgres) packages+=(postgresql) ;;
        rabbitmq) packages+=(rabbitmq-server) ;;
      esac
    done
    _install_with_apt "${packages[@]}"
    for service in "${down[@]}"; do
      case $service in
        postgres)
          _trust_local_postgres
          if _postgres_up; then  # the package's own scripts started it: read the new rules
            pg_ctlcluster --skip-systemctl-redirect "$(pg_lsclusters -h | awk 'NR==1 {print $1}')" main reload
          else
            _start_local_postgres
          fi
          ;;
        rabbitmq) _start_local_rabbitmq ;;
      esac
    done
    return
  fi

  local wanted=()
  for service in "${down[@]}"; do
    case $service in
      postgres) wanted+=("PostgreSQL 15+ on 127.0.0.1:$SERVICES_PG_PORT (user postgres, trust)") ;;
      rabbitmq) wanted+=("RabbitMQ 3.10+ on 127.0.0.1:$SERVICES_AMQP_PORT (guest/guest)") ;;
    esac
  done
  local joined
  joined=$(printf '%s and ' "${wanted[@]}")
  echo "baton: install and start ${joined% and }, or install Docker (then this starts them from deploy/compose.yaml)" >&2
  return 1
}

ensure_services
