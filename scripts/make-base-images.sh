#!/usr/bin/env bash
# Makes the Debian base images docker/Dockerfile starts from, since no image registry is
# reachable: a minbase bookworm tree built by mmdebstrap from the machine's own Debian archive,
# imported into podman and tagged under the names a Dockerfile or compose file uses. The same
# tree serves as `debian:bookworm` (the build stage installs its own -dev packages) and as
# `debian:bookworm-slim`. Skips the work when the tags exist, unless --force.
set -euo pipefail

force=0
[ "${1:-}" = --force ] && force=1

tags=(
  docker.io/library/debian:bookworm-slim
  docker.io/library/debian:bookworm
)

if [ $force -eq 0 ]; then
  have_all=1
  for t in "${tags[@]}"; do podman image exists "$t" || have_all=0; done
  [ $have_all -eq 0 ] || exit 0
fi

# The archive the machine itself installs from, so the image's apt sees the same packages.
# shellcheck source=scripts/debian-archive.sh
. "$(dirname "$0")/debian-archive.sh"
uri=$(bookworm_archive_uri) || { echo "make-base-images: no bookworm apt source found" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# "$1" in the hook is mmdebstrap's: the root of the tree it builds.
# shellcheck disable=SC2016
mmdebstrap --quiet --variant=minbase --format=tar \
  --aptopt='APT::Install-Recommends "false"' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
  bookworm "$work/rootfs.tar" "deb $uri bookworm main" "deb $uri bookworm-updates main"
podman import --quiet --change 'CMD ["/bin/bash"]' "$work/rootfs.tar" "${tags[0]}" >/dev/null
for t in "${tags[@]:1}"; do podman tag "${tags[0]}" "$t"; done
echo "make-base-images: tagged ${tags[*]}"
