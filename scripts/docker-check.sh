#!/usr/bin/env bash
# The Docker path of scripts/services.sh, for real, on a machine that has PostgreSQL and RabbitMQ
# of its own (which stay untouched): a Docker engine in a network namespace of its own (so its
# 127.0.0.1:5432 and :5672 are free), `make test`'s services started by scripts/services.sh from
# deploy/compose.yaml, then tests run against them through the published ports and the
# rabbitmqctl it puts on PATH. (nsenter, not `ip netns exec`, which remounts /sys and so hides
# the cgroups from dockerd.)
#
#   sudo bash scripts/docker-check.sh [PYTEST ARGS...]   (default: tests/integration -q)
#
# Not part of CI (it takes minutes: packages, a root filesystem, an engine). Needs root and
# Debian's packages. No image registry is assumed: the images compose.yaml names (postgres:16,
# rabbitmq:3.13-management) are stand-ins imported from a Debian root filesystem (debootstrap)
# with Debian's postgresql and rabbitmq-server and an entrypoint that honours the variables
# compose.yaml and services.sh set (POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB,
# POSTGRES_HOST_AUTH_METHOD, /etc/rabbitmq/conf.d/). They are not the official images: this
# checks services.sh and compose.yaml, not those images.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=${DOCKER_CHECK_HOME:-/var/tmp/baton-docker-check}
NETNS=baton-docker-check
SOCK=$WORK/docker.sock
mkdir -p "$WORK"

log() { echo "docker-check: $*" >&2; }

# --- the tools --------------------------------------------------------------------------------
missing=()
for tool in dockerd:docker.io docker-compose:docker-compose debootstrap:debootstrap; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- stand-in images from a Debian root filesystem ----------------------------------------------
ROOTFS=$WORK/rootfs
if [ ! -f "$ROOTFS/.ready" ]; then
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$mirror" ] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list)
  suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
  log "debootstrap $suite into $ROOTFS"
  rm -rf "$ROOTFS"
  debootstrap --variant=minbase "$suite" "$ROOTFS" "$mirror" >"$WORK/debootstrap.log" 2>&1
  printf '#!/bin/sh\nexit 101\n' >"$ROOTFS/usr/sbin/policy-rc.d"  # install, never start
  chmod +x "$ROOTFS/usr/sbin/policy-rc.d"
  cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
  mount -t proc proc "$ROOTFS/proc"
  trap 'umount "$ROOTFS/proc" 2>/dev/null || true' EXIT
  log "installing postgresql and rabbitmq-server in it"
  chroot "$ROOTFS" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql rabbitmq-server procps >/dev/null'
  umount "$ROOTFS/proc"
  trap - EXIT
  rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/archives/*.deb
  cat >"$ROOTFS/usr/local/bin/stand-in" <<'EOF'
#!/bin/sh
# What the official images' entrypoints do, as far as Baton's compose.yaml relies on it.
set -e
case "$1" in
  postgres)
    bin=$(ls -d /usr/lib/postgresql/*/bin | tail -n1)
    data=/var/lib/postgresql/data
    mkdir -p "$data" /run/postgresql && chown postgres "$data" /run/postgresql && chmod 700 "$data"
    if [ ! -s "$data/PG_VERSION" ]; then
      user=${POSTGRES_USER:-postgres} auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
      printf '%s\n' "${POSTGRES_PASSWORD:-}" >/tmp/pwfile && chown postgres /tmp/pwfile
      su postgres -s /bin/sh -c "$bin/initdb -D $data -U $user --pwfile=/tmp/pwfile --auth-local=trust --auth-host=$auth" >/dev/null
      rm -f /tmp/pwfile
      echo "host all all all $auth" >>"$data/pg_hba.conf"
      db=${POSTGRES_DB:-$user}
      if [ "$db" != postgres ]; then
        echo "CREATE DATABASE \"$db\"" | su postgres -s /bin/sh -c "$bin/postgres --single -D $data postgres" >/dev/null
      fi
    fi
    exec su postgres -s /bin/sh -c "exec $bin/postgres -D $data -c listen_addresses='*'"
    ;;
  rabbitmq)
    chown -R rabbitmq:rabbitmq /var/lib/rabbitmq
    exec rabbitmq-server
    ;;
esac
exec "$@"
EOF
  chmod +x "$ROOTFS/usr/local/bin/stand-in"
  touch "$ROOTFS/.ready"
fi

# --- an engine in a network namespace of its own ----------------------------------------------
cleanup() {
  log "cleaning up"
  if [ -S "$SOCK" ]; then
    (cd "$ROOT" && nsenter --net="/run/netns/$NETNS" env DOCKER_HOST="unix://$SOCK" \
      docker-compose -p baton-dev -f deploy/compose.yaml down -v >/dev/null 2>&1) || true
  fi
  if [ -n "${dockerd_pid:-}" ]; then
    kill "$dockerd_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.2; done
  fi
  ip netns del "$NETNS" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$NETNS"
nsenter --net="/run/netns/$NETNS" ip link set lo up
log "starting dockerd in network namespace $NETNS"
nsenter --net="/run/netns/$NETNS" dockerd --host "unix://$SOCK" --data-root "$WORK/data" --exec-root "$WORK/exec" \
  --pidfile "$WORK/dockerd.pid" --iptables=false --ip-masq=false --bridge=none \
  >"$WORK/dockerd.log" 2>&1 &
dockerd_pid=$!
export DOCKER_HOST="unix://$SOCK"
for _ in $(seq 1 100); do docker info >/dev/null 2>&1 && break; sleep 0.3; done
docker info >/dev/null || { tail -20 "$WORK/dockerd.log"; exit 1; }

for image in postgres:16 rabbitmq:3.13-management; do
  if ! docker image inspect "$image" >/dev/null 2>&1; then
    log "importing the stand-in $image"
    tar -C "$ROOTFS" -c . | docker import \
      --change "ENTRYPOINT [\"/usr/local/bin/stand-in\", \"${image%%:*}\"]" - "$image" >/dev/null
  fi
done

# --- services.sh and the tests, inside the namespace ------------------------------------------
in_netns() { nsenter --net="/run/netns/$NETNS" env DOCKER_HOST="unix://$SOCK" BATON_HOME="$WORK/baton-home" "$@"; }
log "scripts/services.sh, then what the tests need of it"
in_netns bash -c 'source scripts/services.sh
  rabbitmqctl -q await_startup && rabbitmqctl -q list_vhosts
  psql -h 127.0.0.1 -U postgres -Atc "select version()" postgres 2>/dev/null || echo "(no psql here)"'
[ -z "${DOCKER_CHECK_KEEP:-}" ] || { log "kept up (DOCKER_CHECK_KEEP); press enter to clean up"; read -r _; }
log "scripts/test.sh ${*:-tests/integration} (services from deploy/compose.yaml)"
started=$SECONDS
in_netns bash scripts/test.sh "${@:-tests/integration}" -q
log "done in $((SECONDS - started))s"
