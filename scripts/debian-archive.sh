# shellcheck shell=bash
# Sourced by the install and image scripts: the machine's own Debian archive, read from its apt
# sources, so that no script spells a host name.

# Prints the URI the machine's apt sources use for bookworm; returns 1 when there is none.
bookworm_archive_uri() {
  local uri=""
  if compgen -G '/etc/apt/sources.list.d/*.sources' >/dev/null; then
    uri=$(awk '/^URIs:/{u=$2} /^Suites:/{ for (i=2;i<=NF;i++) if ($i=="bookworm") {print u; exit} }' \
      /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
  fi
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' /etc/apt/sources.list)
  fi
  [ -n "$uri" ] || return 1
  printf '%s\n' "$uri"
}

# Adds bookworm-backports from that same archive unless some apt source names it already.
# $1: the calling script's name, for the message when no bookworm source exists.
enable_bookworm_backports() {
  if grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    return 0
  fi
  local uri
  uri=$(bookworm_archive_uri) || { echo "$1: no bookworm apt source found" >&2; return 1; }
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "deb $uri bookworm-backports main" |
    $sudo tee /etc/apt/sources.list.d/gomodproxy-backports.list >/dev/null
}
