#!/usr/bin/env bash
# Installs what gomodproxy needs to build, test and benchmark, from Debian's archive only.
# Idempotent: does nothing when every package is already present. Go 1.23 comes from
# bookworm-backports, whose archive URI is taken from the machine's own apt sources.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev zlib1g-dev librocksdb-dev prometheus-cpp-dev libspdlog-dev libfmt-dev
  libtomlplusplus-dev libgtest-dev libc-ares-dev
  golang-go golang-golang-x-mod-dev python3 python3-pytest python3-yaml ca-certificates curl
  wrk nginx-light prometheus chromium
  shellcheck bats dash zsh unzip iproute2 haproxy systemd
  clang libclang-rt-14-dev llvm clang-format clang-tidy
)
optional_packages=(golang-1.23-go)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
have_go123=0
[ -x /usr/lib/go-1.23/bin/go ] && have_go123=1

if [ ${#missing[@]} -eq 0 ] && [ $have_go123 -eq 1 ]; then
  exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

# shellcheck source=scripts/debian-archive.sh
. "$(dirname "$0")/debian-archive.sh"

export DEBIAN_FRONTEND=noninteractive
enable_bookworm_backports install-deps || true
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}" 
if [ $have_go123 -eq 0 ]; then
  $sudo apt-get install -y -q --no-install-recommends "${optional_packages[@]}" ||
    echo "install-deps: golang-1.23-go unavailable; Go 1.23 tests will be skipped" >&2
fi
