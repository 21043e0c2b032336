#!/usr/bin/env bash
# Make sure a Docker engine answers. On a Debian machine, as root, with none running:
# install docker.io (plus bubblewrap and debootstrap for the sandbox) and start dockerd.
set -euo pipefail

if docker info >/dev/null 2>&1; then
  exit 0
fi

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "Docker is not running and this is not a Debian machine where I am root." >&2
  echo "Start Docker yourself (e.g. 'sudo systemctl start docker'), or use '--backend bwrap'." >&2
  exit 1
fi

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} from Debian's packages"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
  echo "starting dockerd in the background (log: /var/log/selfalign-dockerd.log)"
  setsid dockerd >/var/log/selfalign-dockerd.log 2>&1 < /dev/null &
fi

for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    echo "Docker engine is up"
    exit 0
  fi
  sleep 1
done
echo "dockerd did not answer within 60 s; see /var/log/selfalign-dockerd.log" >&2
exit 1
