#!/usr/bin/env bash
# Build a local stand-in for python:3.11-slim from Debian 12's own packages, for machines that
# reach Debian's archive and PyPI but not Docker Hub. It has Python 3.11 at /usr/bin/python3
# (the official image has it at /usr/local/bin); the Dockerfile runs everything through the
# virtual environment it builds, so it works on both. Run as root; takes about a minute.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
tag="${1:-python:3.11-slim}"
command -v debootstrap >/dev/null || apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
rootfs="$(mktemp -d /tmp/standin-rootfs.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,python-is-python3,ca-certificates \
    bookworm "$rootfs" http://deb.debian.org/debian >/dev/null
# The registries are reached through a proxy whose certificate only this host's bundle
# trusts: pip inside the image needs the same bundle.
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
# Like the official slim images: no downloaded packages or package lists in the base.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' - "$tag" >/dev/null
echo "built the stand-in $tag from Debian bookworm"
