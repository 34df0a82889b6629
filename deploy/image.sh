#!/usr/bin/env bash
# Build both images of the Dockerfile (app and proxy) with what this machine has: docker, buildah or podman.
#
#   deploy/image.sh [TAG]      TAG defaults to signup:local; the proxy is TAG-proxy (as ECR's <tag>-proxy)
#
# IMAGE_BASES=real     the public bases (python:3.11-slim-bookworm, nginx:1.27-bookworm): production builds
# IMAGE_BASES=standin  stand-ins made here from Debian packages (debootstrap + deploy/standin/*.Containerfile)
# IMAGE_BASES=auto     (default) the real ones when they can be pulled, else the stand-ins, said loudly
#
# What is kept between runs on this machine (CI runs on a fresh clone, so outside it): the debootstrapped
# Debian in $IMAGE_CACHE (default /var/cache/signup-image), the stand-in bases and every build layer
# (the pip install too, while requirements.txt is unchanged) in the container storage.
set -euo pipefail
cd "$(dirname "$0")/.."

TAG=${1:-signup:local}
BASES=${IMAGE_BASES:-auto}
CACHE=${IMAGE_CACHE:-/var/cache/signup-image}
SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
REAL_PYTHON=python:3.11-slim-bookworm
REAL_PROXY=nginx:1.27-bookworm
STANDIN_DEBIAN=localhost/signup-standin-debian:$SUITE
STANDIN_PYTHON=localhost/signup-standin-python:3.11-$SUITE
STANDIN_PROXY=localhost/signup-standin-nginx:$SUITE
START=$SECONDS

step() {  # step "what" command...: run it and print how many seconds it took
  local what=$1 t0=$SECONDS
  shift
  echo "==> $what"
  "$@"
  echo "==> $what: $((SECONDS - t0)) s"
}

pick_tool() {
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    echo docker
  elif command -v buildah >/dev/null; then
    echo buildah
  elif command -v podman >/dev/null; then
    echo podman
  else
    echo "image: no docker daemon, buildah or podman on this machine (apt-get install buildah)" >&2
    exit 1
  fi
}
TOOL=$(pick_tool)

build() {  # build TARGET TAG [extra args]: one target of a Dockerfile, cached layer by layer
  local target=$1 tag=$2
  shift 2
  case $TOOL in
    docker) docker build --target "$target" -t "$tag" "$@" . ;;
    # HEALTHCHECK is a Docker-format field (OCI images have none); chroot: no daemon, no user namespaces.
    buildah) buildah bud --isolation=chroot --format docker --layers --force-rm --target "$target" -t "$tag" "$@" . ;;
    podman) podman build --isolation=chroot --format docker --layers --force-rm --target "$target" -t "$tag" "$@" . ;;
  esac
}

pullable() {
  case $TOOL in
    docker) docker pull -q "$1" >/dev/null 2>&1 ;;
    *) timeout 120 "$TOOL" pull -q "$1" >/dev/null 2>&1 ;;
  esac
}

have_image() { "$TOOL" image inspect "$1" >/dev/null 2>&1 || buildah inspect --type image "$1" >/dev/null 2>&1; }

debian_base() {  # a minimal Debian, debootstrapped once and kept as a tarball, imported as an image
  local tarball=$CACHE/debian-$SUITE-minbase.tar
  if [ ! -s "$tarball" ]; then
    command -v debootstrap >/dev/null || { echo "image: stand-ins need debootstrap (apt-get install debootstrap)" >&2; exit 1; }
    local root
    root=$(mktemp -d)
    debootstrap --variant=minbase "$SUITE" "$root" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
      || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
    # As in Debian's own container images: no services start during package installs, no apt caches.
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d" && chmod 755 "$root/usr/sbin/policy-rc.d"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" --numeric-owner -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$root"
  fi
  have_image "$STANDIN_DEBIAN" || podman import --quiet "$tarball" "$STANDIN_DEBIAN" >/dev/null
}

standin() {  # standin NAME TAG: deploy/standin/NAME.Containerfile on the Debian base
  local context
  context=$(mktemp -d)
  cp "deploy/standin/$1.Containerfile" "$context/"
  cp /etc/ssl/certs/ca-certificates.crt "$context/host-ca-certificates.crt"
  buildah bud --isolation=chroot --format docker --layers --pull-never -q -f "$context/$1.Containerfile" \
    -t "$2" "$context" >/dev/null
  rm -rf "$context"
}

mkdir -p "$CACHE"
echo "image: building $TAG and $TAG-proxy with $TOOL"
if [ "$BASES" = auto ]; then
  if pullable "$REAL_PYTHON" && pullable "$REAL_PROXY"; then BASES=real; else BASES=standin; fi
fi
args=()
if [ "$BASES" = standin ]; then
  [ "$TOOL" != docker ] || { echo "image: stand-in bases need buildah or podman" >&2; exit 1; }
  cat <<EOF
################################################################################################
#  STAND-IN BASES: $REAL_PYTHON and $REAL_PROXY cannot be pulled here.
#  Building on $STANDIN_PYTHON and $STANDIN_PROXY, made from Debian packages.
#  These images are for tests on this machine only (label org.signup.standin); never push them.
################################################################################################
EOF
  step "stand-in base: debootstrap $SUITE (cached in $CACHE)" debian_base
  step "stand-in base: $STANDIN_PYTHON" standin python "$STANDIN_PYTHON"
  step "stand-in base: $STANDIN_PROXY" standin nginx "$STANDIN_PROXY"
  args=(--pull-never --build-arg "PYTHON_IMAGE=$STANDIN_PYTHON" --build-arg "PROXY_IMAGE=$STANDIN_PROXY")
fi
step "build app ($TAG)" build app "$TAG" "${args[@]}"
step "build proxy ($TAG-proxy)" build proxy "$TAG-proxy" "${args[@]}"
inspector=$TOOL
[ "$TOOL" != buildah ] || inspector=podman  # the same container storage; buildah has no size field
for tag in "$TAG" "$TAG-proxy"; do
  "$inspector" image inspect --format '{{.Size}} {{len .RootFS.Layers}}' "$tag" \
    | awk -v tag="$tag" '{ printf "image: %s %.0f MiB, %d layers\n", tag, $1 / 1048576, $2 }'
done
echo "image: $TAG and $TAG-proxy built on the $BASES bases in $((SECONDS - START)) s"
