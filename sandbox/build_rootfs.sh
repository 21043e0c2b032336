#!/bin/sh
# Offline base for the sandbox image: a minimal Debian root file system with
# python3 from Debian's own packages, built with debootstrap. Needs no container
# registry, only a Debian mirror (or a local one via MIRROR).
#
#   sandbox/build_rootfs.sh DIR [SUITE] [MIRROR]
#
# selfalign's image builder (selfalign/sandbox/image.py) calls this, caches DIR
# under ~/.cache/selfalign/sandbox/, copies job_runner.py into it and `docker import`s
# it. The bwrap backend uses the same DIR as its read-only root.
set -eu

DIR=${1:?usage: build_rootfs.sh DIR [SUITE] [MIRROR]}
SUITE=${2:-bookworm}
MIRROR=${3:-http://deb.debian.org/debian}
DEBOOTSTRAP=${DEBOOTSTRAP:-$(command -v debootstrap || echo /usr/sbin/debootstrap)}

if [ "$(id -u)" != 0 ]; then
    echo "build_rootfs.sh: debootstrap needs root (run as root, or build on a machine with a registry)" >&2
    exit 2
fi

# python3 (not python3-minimal): programs need the whole standard library
# (json, fractions, statistics, decimal, dataclasses ...).
"$DEBOOTSTRAP" --variant=minbase --include=python3 "$SUITE" "$DIR" "$MIRROR"

# Nothing below is needed to run Python programs; it only makes the image larger.
rm -rf "$DIR"/var/cache/apt/* "$DIR"/var/lib/apt/lists/* \
       "$DIR"/usr/share/doc/* "$DIR"/usr/share/man/* "$DIR"/usr/share/info/* \
       "$DIR"/usr/share/locale/* "$DIR"/usr/share/lintian "$DIR"/var/cache/debconf/*-old \
       "$DIR"/var/log/* "$DIR"/tmp/* "$DIR"/root/.cache 2>/dev/null || true

# Mount points the sandbox uses (tmpfs at run time; the root stays read-only).
mkdir -p "$DIR"/work "$DIR"/opt/selfalign
chmod 1777 "$DIR"/work
