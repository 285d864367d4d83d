# Helpers for bootstrap.bats. Each test builds a fake Mac: a temporary HOME, PATH shims for the
# macOS commands the script asks (uname, sw_vers, sysctl, xcode-select) and, optionally, a macOS
# go; then it runs config/bootstrap.sh there with $RUN_SH and compares HOME before and after.
# tests/integration/test_bootstrap.py sets the environment: PROXY_URL, SUMDB_VKEY, CHECK_MODULE,
# DEAD_PROXY_URL, NOT_A_PROXY_URL, NOT_FOUND_PROXY_URL, TAMPERED_PROXY_URL, INSTALL_GO_VERSION,
# SCRIPT, RUN_SH and REAL_GO.

BOOTSTRAP_TESTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# Upper bound on one run of the script; it talks to 127.0.0.1 only, so this is generous.
SCRIPT_TIMEOUT=120

# Every matrix case runs under both $RUN_SH values; the login shell alternates with it, so each
# case meets zsh under one and bash under the other.
# shellcheck disable=SC2034 # used by bootstrap.bats
if [ "${RUN_SH:-}" = dash ]; then
  SHELL_A=zsh SHELL_B=bash
else
  SHELL_A=bash SHELL_B=zsh
fi

check_environment() {
  local name missing=
  for name in PROXY_URL SUMDB_VKEY CHECK_MODULE DEAD_PROXY_URL NOT_A_PROXY_URL \
    NOT_FOUND_PROXY_URL TAMPERED_PROXY_URL INSTALL_GO_VERSION SCRIPT RUN_SH REAL_GO; do
    [ -n "${!name:-}" ] || missing="$missing $name"
  done
  if [ -n "$missing" ]; then
    echo "not set:$missing (run through tests/integration/test_bootstrap.py)" >&2
    return 1
  fi
  [ -r "$SCRIPT" ] || { echo "SCRIPT=$SCRIPT is not readable" >&2; return 1; }
}

# Links to this machine's tools minus go and gofmt: /usr/bin/go exists here, and a Mac "without
# go" must have none on PATH. /bin is a link to /usr/bin on this Debian, but may not be elsewhere.
make_tools_dir() {
  TOOLS="$BATS_FILE_TMPDIR/tools"
  mkdir -p "$TOOLS"
  local tool name
  for tool in /usr/bin/* /bin/*; do
    name=${tool##*/}
    case "$name" in go | gofmt) continue ;; esac
    [ -e "$TOOLS/$name" ] || ln -s "$tool" "$TOOLS/$name"
  done
  REAL_GO_VERSION=$(HOME="$BATS_FILE_TMPDIR" "$REAL_GO" env GOVERSION)
  SUMDB_NAME=${SUMDB_VKEY%%+*}
  USER_NAME=$(id -un)
  export TOOLS REAL_GO_VERSION SUMDB_NAME USER_NAME
}

# --- the fake Mac -----------------------------------------------------------------------------

# fake_mac [macos=14.5] [machine=arm64] [rosetta=0] [shell=zsh] [go=arm64|amd64|none] [clt=yes|no]
# `machine` is what `uname -m` says in the shell; rosetta=1 means that shell is translated, so the
# hardware is arm64 whatever uname says. Sets MAC_HOME, SHIMS, LOGIN_SHELL, PROFILE and the facts
# the fingerprint is checked against.
fake_mac() {
  local macos=14.5 machine=arm64 rosetta=0 shell=zsh go=arm64 clt=yes arg
  for arg in "$@"; do
    case "$arg" in
      macos=*) macos=${arg#*=} ;;
      machine=*) machine=${arg#*=} ;;
      rosetta=*) rosetta=${arg#*=} ;;
      shell=*) shell=${arg#*=} ;;
      go=*) go=${arg#*=} ;;
      clt=*) clt=${arg#*=} ;;
      *) echo "fake_mac: unknown setting $arg" >&2; return 1 ;;
    esac
  done
  local release build
  case "$macos" in
    12.7) release=21.6.0 build=21G816 ;;
    13.6) release=22.6.0 build=22G120 ;;
    14.5) release=23.5.0 build=23F79 ;;
    15.1) release=24.1.0 build=24B83 ;;
    *) echo "fake_mac: no Darwin release known for macOS $macos" >&2; return 1 ;;
  esac
  MAC_HOME="$BATS_TEST_TMPDIR/home"
  SHIMS="$BATS_TEST_TMPDIR/shims"
  # Every Mac has these two.
  mkdir -p "$MAC_HOME/Library/Application Support" "$MAC_HOME/Library/Caches" "$SHIMS"
  MAC_VERSION=$macos
  HARDWARE=amd64
  if [ "$machine" = arm64 ] || [ "$rosetta" = 1 ]; then HARDWARE=arm64; fi
  ROSETTA=no
  [ "$rosetta" = 1 ] && ROSETTA=yes
  CLT=$clt
  GO_ARCH=$go
  case "$shell" in
    zsh) LOGIN_SHELL=/usr/bin/zsh PROFILE="$MAC_HOME/.zprofile" ;;
    bash) LOGIN_SHELL=/bin/bash PROFILE="$MAC_HOME/.bash_profile" ;;
    *) echo "fake_mac: unknown shell $shell" >&2; return 1 ;;
  esac
  MAC_ENV=()

  local kernel_arch=X86_64 processor=i386
  if [ "$HARDWARE" = arm64 ]; then kernel_arch=ARM64_T6000; fi
  if [ "$machine" = arm64 ]; then processor=arm; fi
  local kernel="Darwin Kernel Version $release: Tue Oct  1 00:00:00 PDT 2024;"
  kernel="$kernel root:xnu-0.0.0~1/RELEASE_$kernel_arch"

  cat >"$SHIMS/uname" <<EOF
#!/bin/sh
# uname of macOS $macos (Darwin $release) in a $machine shell.
usage() { echo "usage: uname [-amnoprsv]" >&2; exit 1; }
want=
[ "\$#" -eq 0 ] && want=s
for arg in "\$@"; do
  case "\$arg" in
    -*[!amnoprsv]*) echo "uname: illegal option -- \${arg#-}" >&2; usage ;;
    -?*) want="\$want\${arg#-}" ;;
    *) usage ;;
  esac
done
case "\$want" in *a*) want="\${want}snrvm" ;; esac
case "\$want" in *o*) want="\${want}s" ;; esac
out=
# Fields come out in this order whatever the order of the flags.
for field in s n r v m p; do
  case "\$want" in *"\$field"*) ;; *) continue ;; esac
  case "\$field" in
    s) value=Darwin ;;
    n) value=mac.local ;;
    r) value=$release ;;
    v) value='$kernel' ;;
    m) value=$machine ;;
    p) value=$processor ;;
  esac
  out="\${out:+\$out }\$value"
done
printf '%s\n' "\$out"
EOF

  cat >"$SHIMS/sw_vers" <<EOF
#!/bin/sh
# sw_vers of macOS $macos.
case "\$1" in
  -productName | --productName) echo macOS ;;
  -productVersion | --productVersion) echo $macos ;;
  -buildVersion | --buildVersion) echo $build ;;
  '') printf 'ProductName:\t\tmacOS\nProductVersion:\t\t%s\nBuildVersion:\t\t%s\n' $macos $build ;;
  *) echo "usage: sw_vers [-productName|-productVersion|-buildVersion]" >&2; exit 1 ;;
esac
EOF

  local hw_arm64=absent
  [ "$HARDWARE" = arm64 ] && hw_arm64=1
  cat >"$SHIMS/sysctl" <<EOF
#!/bin/sh
# sysctl of a $HARDWARE Mac in a $machine shell (rosetta $rosetta): the keys a setup script asks.
values_only=
if [ "\$1" = -n ]; then values_only=1; shift; fi
[ "\$#" -gt 0 ] || { echo "usage: sysctl [-n] name ..." >&2; exit 1; }
for name in "\$@"; do
  case "\$name" in
    sysctl.proc_translated) value=$rosetta ;;
    hw.optional.arm64) value=$hw_arm64 ;;
    hw.machine) value=$machine ;;
    kern.osproductversion) value=$macos ;;
    kern.osrelease) value=$release ;;
    *) value=absent ;;
  esac
  # Intel Macs have no hw.optional.arm64 at all.
  if [ "\$value" = absent ]; then
    echo "sysctl: unknown oid '\$name'" >&2
    exit 1
  fi
  if [ -n "\$values_only" ]; then echo "\$value"; else echo "\$name: \$value"; fi
done
EOF

  if [ "$clt" = yes ]; then
    cat >"$SHIMS/xcode-select" <<'EOF'
#!/bin/sh
# xcode-select with the command line tools installed.
case "$1" in
  -p | --print-path) echo /Library/Developer/CommandLineTools ;;
  -v | --version) echo "xcode-select version 2408." ;;
  --install) echo "xcode-select: error: command line tools are already installed" >&2; exit 1 ;;
  *) echo "usage: xcode-select [-p|-v|--install]" >&2; exit 1 ;;
esac
EOF
  else
    cat >"$SHIMS/xcode-select" <<'EOF'
#!/bin/sh
# xcode-select without the command line tools.
case "$1" in
  -p | --print-path)
    printf '%s%s%s\n' "xcode-select: error: unable to get active developer directory, use" \
      " \`sudo xcode-select --switch path/to/Xcode.app\` to set one" \
      " (or see \`man xcode-select\`)" >&2
    exit 2 ;;
  -v | --version) echo "xcode-select version 2408." ;;
  --install) echo "xcode-select: note: install requested for command line developer tools" ;;
  *) echo "usage: xcode-select [-p|-v|--install]" >&2; exit 1 ;;
esac
EOF
  fi

  chmod +x "$SHIMS/uname" "$SHIMS/sw_vers" "$SHIMS/sysctl" "$SHIMS/xcode-select"
  if [ "$go" != none ]; then
    write_go "$SHIMS/go" "$go"
    # A Mac with go has run it before: go 1.23 keeps telemetry counters under
    # ~/Library/Application Support/go from its first run on.
    mac_env go env GOVERSION >/dev/null
    if [ "$shell" = bash ]; then
      # Debian's /etc/profile resets PATH in every bash login shell, so, like a Homebrew user's
      # `brew shellenv` line, the profile is what puts this go on PATH there. zsh keeps PATH.
      # shellcheck disable=SC2016 # $PATH is for the login shell to expand
      printf 'export PATH="%s:$PATH"\n' "$SHIMS" >"$PROFILE"
    fi
  fi
}

# write_go FILE GOARCH: a macOS go for GOARCH (see shims/go.in).
write_go() {
  sed -e "s|@REAL_GO@|$REAL_GO|g" -e "s|@GOARCH@|$2|g" "$BOOTSTRAP_TESTS/shims/go.in" >"$1"
  chmod +x "$1"
}

# --- running things on the fake Mac -----------------------------------------------------------

# mac_env CMD...: CMD with nothing of this process's environment but what a Mac session has;
# MAC_ENV adds variables (e.g. what the user's profile exported). No tty on stdin.
mac_env() {
  timeout "$SCRIPT_TIMEOUT" env -i HOME="$MAC_HOME" PATH="$SHIMS:$TOOLS" SHELL="$LOGIN_SHELL" \
    USER="$USER_NAME" LOGNAME="$USER_NAME" LANG=C.UTF-8 "${MAC_ENV[@]}" "$@" </dev/null
}

# bootstrap ARGS...: runs the script with $RUN_SH via bats' `run`; the transcript goes to the
# test's output, which bats shows when the test fails.
# shellcheck disable=SC2154 # output and status are set by bats' run
bootstrap() {
  local -a run_sh
  read -r -a run_sh <<<"$RUN_SH"
  run mac_env "${run_sh[@]}" "$SCRIPT" "$@"
  printf '$ %s bootstrap.sh %s\n%s\n[exit %s]\n' "$RUN_SH" "$*" "$output" "$status"
}

# The arguments every setup run passes: the test proxy, its checksum database, a module it has.
setup_args() {
  # shellcheck disable=SC2034 # used by bootstrap.bats
  SETUP_ARGS=(--proxy "$PROXY_URL" --sumdb "$SUMDB_VKEY" --check-module "$CHECK_MODULE")
}

# --- looking at the result --------------------------------------------------------------------

re_escape() {
  printf '%s' "$1" | sed -e 's/[][\\.*^$+?(){}|/]/\\&/g'
}

expect_status() {
  [ "$status" -eq "$1" ] || { echo "expected exit status $1, got $status" >&2; return 1; }
}

# expect_line ERE: some line of the output matches.
expect_line() {
  grep -Eq -- "$1" <<<"$output" || { echo "expected a line matching: $1" >&2; return 1; }
}

expect_no_line() {
  if grep -Eq -- "$1" <<<"$output"; then
    echo "expected no line matching: $1" >&2
    return 1
  fi
}

# expect_fingerprint [GO GOARCH]: the fingerprint block says what fake_mac built; GO and GOARCH
# are the go the script should find (default: the shim fake_mac made, or none).
expect_fingerprint() {
  local go_seen=${1:-$SHIMS/go} go_arch=${2:-$GO_ARCH}
  expect_line '^machine:$'
  expect_line "^  os: macOS $(re_escape "$MAC_VERSION")\$"
  expect_line "^  hardware: $HARDWARE\$"
  expect_line "^  rosetta: $ROSETTA\$"
  expect_line "^  login shell: ${LOGIN_SHELL##*/} \\($(re_escape "$LOGIN_SHELL")\\)\$"
  if [ "$go_arch" = none ]; then
    expect_line '^  go: none$'
  else
    expect_line "^  go: $(re_escape "$go_seen") $(re_escape "$REAL_GO_VERSION") darwin/$go_arch\$"
  fi
  if [ "$CLT" = yes ]; then
    expect_line '^  xcode command line tools: /Library/Developer/CommandLineTools$'
  else
    expect_line '^  xcode command line tools: missing \(cgo needs them: xcode-select --install\)$'
  fi
}

go_env_file() {
  printf '%s' "$MAC_HOME/Library/Application Support/go/env"
}

saved_file() {
  printf '%s' "$MAC_HOME/.config/gomodproxy/bootstrap.saved"
}

# expect_go_env LINE...: the go env file holds exactly these lines, in any order.
expect_go_env() {
  local file
  file=$(go_env_file)
  [ -f "$file" ] || { echo "no go env file at $file" >&2; return 1; }
  diff -u <(printf '%s\n' "$@" | LC_ALL=C sort) <(LC_ALL=C sort "$file") >&2 ||
    { echo "go env file $file differs from the expected lines (-expected +actual)" >&2; return 1; }
}

# The two lines a setup against the test proxy writes.
proxy_env_lines() {
  local fallback=${1:-direct}
  printf '%s\n' "GOPROXY=$PROXY_URL|$fallback" "GOSUMDB=$SUMDB_VKEY $PROXY_URL/sumdb/$SUMDB_NAME"
}

# snapshot strict|bytes: one line per entry under the fake HOME, `path<TAB>what`. go's caches and
# telemetry counters are left out: go rewrites them on every run, as it does on a Mac.
# strict: directories by mode, files by mode, inode, mtime and content, so even a rewrite with
# the same bytes shows; bytes: files and links by content only.
snapshot() {
  local how=$1 entry path
  (cd "$MAC_HOME" && find . \( -path ./go -o -path ./Library/Caches \
    -o -path './Library/Application Support/go/telemetry' \) -prune -o ! -path . -print0) |
    LC_ALL=C sort -z |
    while IFS= read -r -d '' entry; do
      path="$MAC_HOME/${entry#./}"
      if [ -L "$path" ]; then
        printf '%s\tlink %s\n' "${entry#./}" "$(readlink "$path")"
      elif [ -d "$path" ]; then
        [ "$how" = bytes ] || printf '%s\tdir %s\n' "${entry#./}" "$(stat -c %a "$path")"
      elif [ -f "$path" ]; then
        local sum
        sum=$(sha256sum <"$path")
        if [ "$how" = bytes ]; then
          printf '%s\tfile %s\n' "${entry#./}" "${sum%% *}"
        else
          printf '%s\tfile %s %s\n' "${entry#./}" "$(stat -c '%a %i %.9Y' "$path")" "${sum%% *}"
        fi
      else
        printf '%s\tother\n' "${entry#./}"
      fi
    done
}

# take_snapshot NAME: both kinds of snapshot, kept as $BATS_TEST_TMPDIR/NAME.{strict,bytes}.
take_snapshot() {
  snapshot strict >"$BATS_TEST_TMPDIR/$1.strict"
  snapshot bytes >"$BATS_TEST_TMPDIR/$1.bytes"
}

# expect_unchanged NAME [strict|bytes]: HOME matches snapshot NAME (strict by default).
expect_unchanged() {
  local how=${2:-strict}
  diff -u "$BATS_TEST_TMPDIR/$1.$how" <(snapshot "$how") >&2 ||
    { echo "HOME changed since snapshot '$1' ($how; -then +now)" >&2; return 1; }
}

# changed_files NAME: files and links added, removed or altered since snapshot NAME (strict).
changed_files() {
  diff "$BATS_TEST_TMPDIR/$1.strict" <(snapshot strict) |
    sed -n 's/^[<>] //p' | grep -E $'\t(file|link) ' | cut -f1 | LC_ALL=C sort -u
}

# expect_changed_files NAME PATH...: exactly these files (relative to HOME) changed since NAME,
# besides the script's own state under ~/.config/gomodproxy, which must hold bootstrap.saved.
expect_changed_files() {
  local name=$1
  shift
  diff -u <([ "$#" -eq 0 ] || printf '%s\n' "$@" | LC_ALL=C sort -u) \
    <(changed_files "$name" | grep -v '^\.config/gomodproxy/') >&2 ||
    { echo "files changed since snapshot '$name' differ from the expected (-expected +actual)" >&2
      return 1; }
  [ -f "$(saved_file)" ] || { echo "no saved state at $(saved_file)" >&2; return 1; }
}
