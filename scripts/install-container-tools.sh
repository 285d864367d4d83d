#!/usr/bin/env bash
# Installs and configures what `make container-test` and the docker/ stack need on a Debian 12
# machine with no image registry: podman (with runc, since crun fails on this kernel's hybrid
# cgroups), mmdebstrap to make base images from the machine's own archive, docker-compose, and
# podman-compose 1.0.6 from bookworm-backports (1.0.3 cannot do network_mode: host).
# Idempotent: installs only what is missing and rewrites containers.conf only when it differs.
set -euo pipefail

packages=(
  podman runc mmdebstrap docker-compose uidmap slirp4netns fuse-overlayfs
  netavark aardvark-dns containernetworking-plugins golang-github-containernetworking-plugin-dnsname
  python3 python3-yaml
)
backports_packages=(podman-compose)

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# shellcheck source=scripts/debian-archive.sh
. "$(dirname "$0")/debian-archive.sh"

missing=()
for p in "${packages[@]}"; do installed "$p" || missing+=("$p"); done
compose_version=$(dpkg-query -W -f='${Version}' podman-compose 2>/dev/null || true)
need_backports=0
case "$compose_version" in
  1.0.6*) ;;
  *) need_backports=1 ;;
esac

if [ ${#missing[@]} -gt 0 ] || [ $need_backports -eq 1 ]; then
  export DEBIAN_FRONTEND=noninteractive
  enable_bookworm_backports install-container-tools
  $sudo apt-get update -q
  [ ${#missing[@]} -eq 0 ] ||
    $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
  [ $need_backports -eq 0 ] ||
    $sudo apt-get install -y -q --no-install-recommends -t bookworm-backports "${backports_packages[@]}"
fi

# Root without CAP_SYS_RESOURCE cannot raise limits above its own hard limit, and podman's
# defaults ask for more, so every container would fail to start.
nofile=$(ulimit -Hn)
[ "$nofile" = unlimited ] && nofile=1048576
nproc=$(ulimit -Hu)
if [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; then nproc=32768; fi

conf=$(cat <<CONF
# Written by gomodproxy's scripts/install-container-tools.sh.
[containers]
default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=${nproc}:${nproc}"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
)
target=/etc/containers/containers.conf
if [ ! -f "$target" ] || [ "$(cat "$target")" != "$conf" ]; then
  $sudo mkdir -p /etc/containers
  printf '%s\n' "$conf" | $sudo tee "$target" >/dev/null
fi
