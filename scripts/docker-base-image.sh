#!/usr/bin/env bash
# Make a Debian bookworm base image without a container registry: debootstrap a minimal root
# filesystem from Debian's package mirror and `docker import` it. For machines that reach
# Debian's packages but not Docker Hub (CI here); with registry access the Dockerfile's default
# base (debian:bookworm-slim) is the same distribution.
#
#   scripts/docker-base-image.sh [IMAGE]     (default matrix-drill-base:bookworm; needs root)
#
# Skips the work when IMAGE exists. Takes ~2 min (debootstrap --variant=minbase: ~90 MB).
set -euo pipefail
IMAGE="${1:-matrix-drill-base:bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "base image $IMAGE: present"
  exit 0
fi
if ! command -v debootstrap >/dev/null; then
  echo "base image: installing debootstrap"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
ROOTFS="$(mktemp -d /tmp/drill-rootfs.XXXXXX)"
trap 'rm -rf "$ROOTFS"' EXIT
echo "base image $IMAGE: debootstrap bookworm from $MIRROR (~2 min)"
debootstrap --variant=minbase bookworm "$ROOTFS" "$MIRROR" >"$ROOTFS.log" 2>&1 || { tail -20 "$ROOTFS.log"; exit 1; }
rm -f "$ROOTFS.log"
# What the official slim image also does: no apt caches or package lists in the image.
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
tar -C "$ROOTFS" -c . | docker import -c 'CMD ["bash"]' - "$IMAGE" >/dev/null
echo "base image $IMAGE: made ($(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
