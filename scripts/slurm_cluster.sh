#!/usr/bin/env bash
# A real Slurm cluster on this machine for MLTrain Desktop's tests and for trying the Slurm
# target, from Debian 12's slurm-wlm and munge packages:
#
#   scripts/slurm_cluster.sh start [--shared DIR] [--nodes N]   start it (or say it already runs)
#   scripts/slurm_cluster.sh stop                               stop what `start` started
#   scripts/slurm_cluster.sh status                             exit 0 when it runs, 3 when not
#
# The choice: Docker containers, not network namespaces. Each host of the cluster is a container
# of one image, mltrain-slurm:22.05, built once FROM mltrain-tf:2.21 when that image exists (the
# nodes can then run TensorFlow jobs) or else FROM mltrain-base:bookworm-py311 (Python 3.11 only),
# by installing Debian's slurmctld, slurmd, slurm-client, slurmdbd, munge, mariadb-server and
# openssh-server with apt inside a build container (scripts/slurm/install.sh; the base image's
# apt sources name the host's Debian mirror, and the host's CA bundle and apt proxy are passed in).
# Namespaces would need a root file system per host and our own process supervision; containers
# give each host its own name, process tree and /etc for free, Docker's DNS resolves the names on
# a user-defined bridge network, and a cached start takes a few seconds. The hosts:
#
#   mltrain-slurmctld   host name slurmctld: slurmctld, slurmdbd + MariaDB (so sacct works),
#                       and sshd: the login host, published on 127.0.0.1 only
#   mltrain-slurm-nodeK host name nodeK (K = 1..N, N = 2 by default): slurmd, 2 CPUs declared each
#
# Partitions: debug (all nodes, default, 60 min) and single (node1 only, MaxNodes=1, 10 min). No
# GPUs are declared (GresTypes=gpu, no gres): a --gres=gpu job is refused as on a CPU cluster.
#
# The shared file system: DIR (default $MLTRAIN_SLURM_HOME/shared) is bind-mounted at the same
# path into every container, so a run folder under it has one path on the host and the nodes.
# The cluster's own scratch: a Docker volume of the cluster (mltrain-slurm-scratch-<id>) mounted
# at /scratch on the login host and every node and nowhere on this machine, as a cluster's
# file system that the desktop does not mount: runs whose workspace is elsewhere are staged
# there (rsync over the login host's ssh; rsync is in the image).
# Each start makes a new cluster: a new MUNGE key, ssh host key and login key; MUNGE keys never
# leave $MLTRAIN_SLURM_HOME (default /var/tmp/mltrain-slurm, mode 700), which also holds
# state.env (what this script started: container and network ids, the ssh port), ssh/config and
# the generated slurm.conf. Containers and the network carry the labels mltrain.role=slurm-cluster
# and mltrain.slurm.cluster=<id>; stop removes only those whose ids state.env records and whose
# labels match. The image stays (remove it with `docker rmi mltrain-slurm:22.05`).
#
# How to reach it once started:
#   docker exec mltrain-slurmctld sinfo
#   ssh -F $MLTRAIN_SLURM_HOME/ssh/config mltrain-slurm-login sinfo
# Needs: a running Docker engine (scripts/ensure_dockerd.sh), openssh-client and util-linux
# (flock) on the host; the base image is built with scripts/docker_base_image.sh when missing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
recipe_dir="$here/scripts/slurm"

HOME_DIR="${MLTRAIN_SLURM_HOME:-/var/tmp/mltrain-slurm}"
STATE="$HOME_DIR/state.env"
IMAGE="${MLTRAIN_SLURM_IMAGE:-mltrain-slurm:22.05}"
TF_IMAGE="${MLTRAIN_TF_IMAGE:-mltrain-tf:2.21}"
BASE_IMAGE="${MLTRAIN_BASE_IMAGE:-mltrain-base:bookworm-py311}"
CTLD=mltrain-slurmctld
NODE_PREFIX=mltrain-slurm-node
CPUS=2
MEMORY_MB=1024
READY_TIMEOUT_S="${MLTRAIN_SLURM_READY_TIMEOUT:-90}"
ROLE_LABEL=mltrain.role=slurm-cluster
SCRATCH=/scratch

say() { echo "slurm_cluster: $*"; }
die() { echo "slurm_cluster: $*" >&2; exit 1; }
now_ms() { date +%s%3N; }

state_get() {  # state_get KEY: a value from state.env ("" when absent)
  [ -f "$STATE" ] || return 0
  local k v
  while IFS='=' read -r k v; do [ "$k" = "$1" ] && { printf '%s\n' "$v"; return 0; }; done < "$STATE"
}
state_set() {  # state_set KEY VALUE: replaces or appends one line
  local tmp="$STATE.tmp"
  { [ -f "$STATE" ] && grep -v "^$1=" "$STATE" || true; printf '%s=%s\n' "$1" "$2"; } > "$tmp"
  mv "$tmp" "$STATE"
}

recipe_hash() {  # what the image is made of: the recipe files and the base image's id
  { cat "$recipe_dir/install.sh" "$recipe_dir/entrypoint.sh" "$recipe_dir/mariadb.cnf" "$recipe_dir/slurmdbd.conf.in"
    docker image inspect -f '{{.Id}}' "$1"; } | sha256sum | cut -c1-16
}

node_base() {
  if docker image inspect "$TF_IMAGE" >/dev/null 2>&1; then echo "$TF_IMAGE"; return; fi
  if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    say "$BASE_IMAGE is missing; building it with scripts/docker_base_image.sh --base-only" >&2
    "$here/scripts/docker_base_image.sh" --base-only >&2 || die "could not build $BASE_IMAGE (see above)"
  fi
  echo "$BASE_IMAGE"
}

apt_proxy_args() {  # the host's apt proxy, if any, for the build container
  local p
  p="$(apt-config dump 2>/dev/null | sed -n 's/^Acquire::http::Proxy "\(.*\)";$/\1/p' | head -n1)"
  [ -n "$p" ] && printf '%s\n' -e "http_proxy=$p"
  return 0
}

build_image() {
  local base want have cid t0 ca_args=()
  base="$(node_base)"
  want="$(recipe_hash "$base")"
  have="$(docker image inspect -f '{{index .Config.Labels "mltrain.slurm.recipe"}}' "$IMAGE" 2>/dev/null || true)"
  if [ "$have" = "$want" ]; then return 0; fi
  t0=$(date +%s)
  say "building $IMAGE FROM $base with Debian's slurm-wlm, munge, mariadb and openssh (about a minute)"
  [ -f /etc/ssl/certs/ca-certificates.crt ] && ca_args=(-v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
  cid="$(docker create --label mltrain.role=image-build -v "$recipe_dir:/opt/mltrain-slurm-src:ro" \
    "${ca_args[@]}" $(apt_proxy_args) "$base" sh /opt/mltrain-slurm-src/install.sh)"
  if ! docker start -a "$cid" > "$HOME_DIR/image-build.log" 2>&1 \
     || [ "$(docker inspect -f '{{.State.ExitCode}}' "$cid")" != 0 ]; then
    docker rm -f "$cid" >/dev/null 2>&1 || true
    tail -n 30 "$HOME_DIR/image-build.log" >&2
    die "building $IMAGE failed (log: $HOME_DIR/image-build.log); check that apt inside a container reaches the Debian mirror"
  fi
  docker commit --change 'ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/sbin/mltrain-slurm-entrypoint"]' \
    --change 'CMD ["node"]' --change "LABEL mltrain.slurm.recipe=$want mltrain.slurm.base=$base" \
    "$cid" "$IMAGE" >/dev/null
  docker rm "$cid" >/dev/null
  say "built $IMAGE in $(( $(date +%s) - t0 ))s"
}

render() {  # render TEMPLATE OUT KEY=VALUE...
  local tmpl="$1" out="$2" sed_args=() kv
  shift 2
  for kv in "$@"; do sed_args+=(-e "s|@${kv%%=*}@|${kv#*=}|g"); done
  sed "${sed_args[@]}" "$tmpl" > "$out"
}

make_cluster_files() {  # new keys and configs for cluster $1 with $2 nodes
  local id="$1" n="$2" etc="$HOME_DIR/etc" ssh="$HOME_DIR/ssh"
  rm -rf "$etc" "$ssh"
  mkdir -p "$etc" "$ssh"
  chmod 700 "$etc" "$ssh"
  head -c 1024 /dev/urandom > "$etc/munge.key"
  ssh-keygen -q -t ed25519 -N '' -C "mltrain-slurm-$id" -f "$ssh/id_ed25519"
  ssh-keygen -q -t ed25519 -N '' -C "slurmctld-$id" -f "$etc/ssh_host_ed25519_key"
  cp "$ssh/id_ed25519.pub" "$etc/authorized_keys"
  render "$recipe_dir/slurm.conf.in" "$etc/slurm.conf" "NODE_LIST=node[1-$n]" "CPUS=$CPUS" \
    "MEMORY_MB=$MEMORY_MB" "FIRST_NODE=node1" "SLURMD_TIMEOUT=${MLTRAIN_SLURMD_TIMEOUT:-20}"
  cp "$recipe_dir/slurmdbd.conf.in" "$etc/slurmdbd.conf"
  chmod 600 "$etc"/*
}

ours() {  # ours ID: true when the container or network ID carries this cluster's labels
  local labels
  # (asked separately: a failed `docker inspect` of a network still prints an empty line)
  labels="$(docker container inspect -f '{{index .Config.Labels "mltrain.slurm.cluster"}}' "$1" 2>/dev/null)" \
    || labels="$(docker network inspect -f '{{index .Labels "mltrain.slurm.cluster"}}' "$1" 2>/dev/null)" \
    || labels="$(docker volume inspect -f '{{index .Labels "mltrain.slurm.cluster"}}' "$1" 2>/dev/null)" \
    || labels=""
  [ -n "$labels" ] && [ "$labels" = "$(state_get CLUSTER_ID)" ]
}

run_host() {  # run_host NAME HOSTNAME ROLE [docker run args...]
  local name="$1" host="$2" role="$3" id net shared vol
  shift 3
  id="$(state_get CLUSTER_ID)"; net="$(state_get NETWORK)"; shared="$(state_get SHARED)"; vol="$(state_get VOLUME)"
  docker run -d --name "$name" --hostname "$host" --network "$net" --network-alias "$host" \
    --label "$ROLE_LABEL" --label "mltrain.slurm.cluster=$id" \
    -v "$HOME_DIR/etc:/etc/mltrain-slurm:ro" -v "$shared:$shared" -v "$vol:$SCRATCH" "$@" "$IMAGE" "$role"
}

running() {  # true when every container state.env records runs and is ours
  local c any=0
  [ -f "$STATE" ] || return 1
  [ "$(state_get SCRATCH)" = "$SCRATCH" ] || return 1  # started by an older version of this script
  for c in $(state_get CONTAINERS); do
    any=1
    ours "$c" || return 1
    [ "$(docker inspect -f '{{.State.Running}}' "$c" 2>/dev/null)" = true ] || return 1
  done
  [ "$any" = 1 ]
}

nodes_ready() {  # every node idle (or mixed/allocated) in sinfo, and the login host answers ssh
  local states
  states="$(docker exec "$CTLD" sinfo -h -N -p debug -o '%T' 2>/dev/null)" || return 1
  [ "$(grep -c -E '^(idle|mixed|allocated)$' <<< "$states")" -eq "$(state_get NODES)" ] || return 1
  ssh -F "$HOME_DIR/ssh/config" -o ConnectTimeout=2 mltrain-slurm-login true 2>/dev/null
}

write_ssh_config() {
  local port="$1" ssh="$HOME_DIR/ssh"
  printf '[127.0.0.1]:%s %s\n' "$port" "$(cut -d' ' -f1,2 "$HOME_DIR/etc/ssh_host_ed25519_key.pub")" > "$ssh/known_hosts"
  cat > "$ssh/config" <<EOF
# The login host of the MLTrain Desktop test Slurm cluster (written by scripts/slurm_cluster.sh)
Host mltrain-slurm-login
  HostName 127.0.0.1
  Port $port
  User root
  IdentityFile $ssh/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $ssh/known_hosts
  StrictHostKeyChecking yes
  BatchMode yes
EOF
}

show_failure() {
  local c
  for c in $(state_get CONTAINERS); do
    echo "--- $c (docker logs, then /var/log/slurm) ---" >&2
    docker logs --tail 15 "$c" 2>&1 | sed 's/^/  /' >&2 || true
    docker exec "$c" sh -c 'tail -n 8 /var/log/slurm/*.log' 2>&1 | sed 's/^/  /' >&2 || true
  done
}

fail_start() {  # the logs, then stop what was started (unless MLTRAIN_SLURM_KEEP_FAILED=1), then die
  show_failure
  [ "${MLTRAIN_SLURM_KEEP_FAILED:-0}" = 1 ] || stop_cluster >&2
  die "$1 (container logs above)"
}

print_access() {
  say "cluster $(state_get CLUSTER_ID): $(state_get NODES) nodes, shared folder $(state_get SHARED), cluster-only scratch $(state_get SCRATCH)"
  echo "  docker exec $CTLD sinfo"
  echo "  ssh -F $HOME_DIR/ssh/config mltrain-slurm-login sinfo"
  echo "  state: $STATE"
}

stop_cluster() {
  local c net vol removed=0
  [ -f "$STATE" ] || { say "not running (no $STATE)"; return 0; }
  for c in $(state_get CONTAINERS); do
    if ours "$c"; then docker rm -f "$c" >/dev/null 2>&1 && removed=$((removed + 1)); fi
  done
  net="$(state_get NETWORK)"
  if [ -n "$net" ] && ours "$net"; then docker network rm "$net" >/dev/null 2>&1 || true; fi
  vol="$(state_get VOLUME)"
  if [ -n "$vol" ] && ours "$vol"; then docker volume rm "$vol" >/dev/null 2>&1 || true; fi
  rm -rf "$STATE" "$HOME_DIR/etc" "$HOME_DIR/ssh"
  say "stopped cluster: removed $removed container(s) and network ${net:-none}"
}

check_names_free() {  # a stopped container of an earlier cluster whose state.env was lost is removed
  local n="$1" k name
  for name in "$CTLD" $(for k in $(seq "$n"); do echo "$NODE_PREFIX$k"; done); do
    if [ "$(docker inspect -f '{{index .Config.Labels "mltrain.role"}} {{.State.Running}}' "$name" 2>/dev/null)" \
         = "slurm-cluster false" ]; then
      say "removing $name: a stopped host of an earlier cluster whose state was lost"
      docker rm "$name" >/dev/null
    fi
    if docker inspect "$name" >/dev/null 2>&1; then
      die "a container named $name exists and $STATE does not record it; it was not started by this script (or its state was lost): remove it with 'docker rm -f $name' and start again"
    fi
  done
}

prune_lost_networks() {  # networks of earlier clusters (our label) unused for an hour: their state was lost
  local net info created
  for net in $(docker network ls -q --filter "label=$ROLE_LABEL"); do
    info="$(docker network inspect -f '{{len .Containers}} {{.Created.Unix}}' "$net" 2>/dev/null)" || continue
    created="${info#* }"
    [ "${info%% *}" = 0 ] && [ $(( $(date +%s) - created )) -gt 3600 ] && docker network rm "$net" >/dev/null 2>&1
  done
  return 0
}

start_cluster() {
  local shared="$1" n="$2" t0 id net k port
  t0=$(now_ms)
  if running; then
    [ "$(state_get SHARED)" = "$shared" ] || die "the running cluster shares $(state_get SHARED), not $shared; stop it first (scripts/slurm_cluster.sh stop)"
    say "already running"
    print_access
    return 0
  fi
  [ -f "$STATE" ] && { say "cleaning up a cluster that is not fully running"; stop_cluster; }
  docker info >/dev/null 2>&1 || die "no Docker engine answers; start one first (scripts/ensure_dockerd.sh)"
  command -v ssh-keygen >/dev/null || die "ssh-keygen is missing: apt-get install openssh-client"
  check_names_free "$n"
  prune_lost_networks
  build_image
  id="$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  net="mltrain-slurm-$id"
  : > "$STATE"
  state_set CLUSTER_ID "$id"; state_set NODES "$n"; state_set SHARED "$shared"; state_set IMAGE "$IMAGE"
  make_cluster_files "$id" "$n"
  docker network create --label "$ROLE_LABEL" --label "mltrain.slurm.cluster=$id" "$net" >/dev/null
  state_set NETWORK "$net"
  docker volume create --label "$ROLE_LABEL" --label "mltrain.slurm.cluster=$id" "mltrain-slurm-scratch-$id" >/dev/null
  state_set VOLUME "mltrain-slurm-scratch-$id"; state_set SCRATCH "$SCRATCH"
  # All hosts start at once (the nodes wait for the controller themselves); each writes its id.
  local ids="$HOME_DIR/ids" rc=0
  rm -rf "$ids"; mkdir -p "$ids"
  run_host "$CTLD" slurmctld ctld -p 127.0.0.1::22 > "$ids/0" &
  for k in $(seq "$n"); do run_host "$NODE_PREFIX$k" "node$k" node > "$ids/$k" & done
  wait || rc=$?
  state_set CONTAINERS "$(cat "$ids"/* | tr '\n' ' ')"
  rm -rf "$ids"
  [ "$rc" = 0 ] || fail_start "docker run failed for a host of the cluster (see above)"
  port="$(docker port "$CTLD" 22/tcp 2>/dev/null | head -n1 | sed 's/.*://')" || true
  [ -n "$port" ] || fail_start "the login host $CTLD did not publish its ssh port"
  state_set SSH_PORT "$port"; state_set SSH_CONFIG "$HOME_DIR/ssh/config"; state_set LOGIN_HOST mltrain-slurm-login
  write_ssh_config "$port"
  local deadline=$(( $(date +%s) + READY_TIMEOUT_S ))
  until nodes_ready; do
    running || fail_start "a container of the cluster stopped while it started"
    [ "$(date +%s)" -lt "$deadline" ] || fail_start "the cluster did not become ready within ${READY_TIMEOUT_S}s"
    sleep 0.2
  done
  state_set STARTED_MS "$(now_ms)"
  say "started in $(( $(now_ms) - t0 )) ms"
  print_access
}

status_cluster() {
  if ! running; then
    say "not running${STATE:+ ($( [ -f "$STATE" ] && echo "state in $STATE is stale: run stop" || echo "no $STATE"))}"
    return 3
  fi
  print_access
  docker exec "$CTLD" sinfo -N -o '%N %P %T %c %G' | sed 's/^/  /'
}

main() {
  local cmd="${1:-}" shared="" n="${MLTRAIN_SLURM_NODES:-2}"
  [ $# -gt 0 ] && shift
  while [ $# -gt 0 ]; do
    case "$1" in
      --shared) shared="${2:?--shared needs a folder}"; shift 2 ;;
      --nodes) n="${2:?--nodes needs a number}"; shift 2 ;;
      *) die "unknown argument $1 (start [--shared DIR] [--nodes N] | stop | status)" ;;
    esac
  done
  [[ "$n" =~ ^[1-9][0-9]?$ ]] || die "--nodes must be a number from 1 to 99, got $n"
  mkdir -p "$HOME_DIR"; chmod 700 "$HOME_DIR"
  shared="${shared:-$HOME_DIR/shared}"
  mkdir -p "$shared"; shared="$(cd "$shared" && pwd -P)"
  exec 9> "$HOME_DIR/lock"
  flock -w 300 9 || die "another slurm_cluster.sh holds $HOME_DIR/lock"
  case "$cmd" in
    start) start_cluster "$shared" "$n" ;;
    stop) stop_cluster ;;
    status) status_cluster ;;
    -h|--help|help) sed -n '2,43p' "$0" ;;
    *) die "usage: scripts/slurm_cluster.sh start [--shared DIR] [--nodes N] | stop | status" ;;
  esac
}

main "$@"
