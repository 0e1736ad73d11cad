#!/usr/bin/env bash
# Makes this machine ready for the live tests: a Docker engine that answers, the local base images
# (there is no registry to pull from), and the project's server images. Idempotent; a second run only
# checks and re-tags from the build cache.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[prepare-machine] %s\n' "$*" >&2; }

ensure_engine() {
  if docker info >/dev/null 2>&1; then return; fi
  if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || { log "no Docker engine and not root: install docker.io and debootstrap"; exit 1; }
    log "installing docker.io and debootstrap from Debian"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >/dev/null
  fi
  if ! docker info >/dev/null 2>&1; then
    log "starting dockerd"
    mkdir -p /var/log
    nohup dockerd --storage-driver=overlay2 >/var/log/hadb-dockerd.log 2>&1 &
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || { log "dockerd did not answer within 60 s"; tail -20 /var/log/hadb-dockerd.log >&2; exit 1; }
  fi
}

# A minimal Debian root filesystem imported as an image: the only way to get a base image here.
ensure_base() {
  local suite=$1 name=hadb-base:$1
  docker image inspect "$name" >/dev/null 2>&1 && return
  command -v debootstrap >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  log "building $name with debootstrap"
  local dir; dir=$(mktemp -d)
  # debootstrap's own default mirror unless DEBIAN_MIRROR names another.
  debootstrap --variant=minbase "$suite" "$dir" ${DEBIAN_MIRROR:+"$DEBIAN_MIRROR"} >/tmp/hadb-debootstrap-"$suite".log 2>&1 \
    || { tail -20 /tmp/hadb-debootstrap-"$suite".log >&2; exit 1; }
  # debootstrap's root is the mktemp directory (0700): an image root that storage drivers other than overlay2 (vfs)
  # apply as is, and then nothing running as a non-root user can read it.
  chmod 755 "$dir"
  tar -C "$dir" -c . | docker import - "$name" >/dev/null
  rm -rf "$dir"
}

# The same tag and build argument the stack harness uses, so its own build is answered from the cache.
build_image() {
  local name=$1 base=$2 out
  log "building hadb/$name:local (base $base)"
  out=$(DOCKER_BUILDKIT=0 docker build --build-arg BASE_IMAGE="$base" -t "hadb/$name:local" "images/$name" 2>&1) \
    || { printf '%s\n' "$out" | tail -30 >&2; exit 1; }
}

# The stand-in EC2 host (test/aws/standin): systemd, cloud-init and Docker in a container, for the AWS live test.
build_host_image() {
  local out
  log "building hadb/aws-host:local (base hadb-base:trixie)"
  out=$(DOCKER_BUILDKIT=0 docker build --build-arg BASE_IMAGE=hadb-base:trixie -t hadb/aws-host:local test/aws/standin/image 2>&1) \
    || { printf '%s\n' "$out" | tail -30 >&2; exit 1; }
}

ensure_engine
# Each image and its Debian suite, from the catalogue every target reads too.
node -e 'for (const [name, spec] of Object.entries(require("./images/catalogue.json"))) console.log(name, spec.suite)' |
  while read -r name suite; do
    ensure_base "$suite"
    build_image "$name" "hadb-base:$suite"
  done
ensure_base trixie
build_host_image
log "ready"
