#!/usr/bin/env bats
# config/bootstrap.sh on fake Macs (helpers.bash) against a real gomodproxy with a test upstream
# and checksum database, started by tests/integration/test_bootstrap.py. The whole file runs once
# with RUN_SH=dash and once with RUN_SH="bash --posix"; shell A is zsh under dash and bash under
# bash --posix, shell B the other way round, so every case meets both login shells.

load helpers
bats_require_minimum_version 1.5.0

setup_file() {
  check_environment
  make_tools_dir
}

setup() {
  setup_args
}

expect_arch_warning() {
  local warnings
  warnings=$(grep -E '^warning: ' <<<"$output" | grep amd64 | grep arm64 | grep -e --install-go) ||
    true
  if [ "$1" = yes ] && [ -z "$warnings" ]; then
    echo "expected a warning naming amd64, arm64 and --install-go" >&2
    return 1
  fi
  if [ "$1" = no ] && [ -n "$warnings" ]; then
    echo "unexpected architecture warning: $warnings" >&2
    return 1
  fi
}

# The go the user's next login shell finds, and what it reports for GOPROXY and GOSUMDB: the
# setup is only worth anything if that shell sees it.
expect_login_shell_sees() {
  local go_path=$1
  shift
  run mac_env "$LOGIN_SHELL" -l -c 'command -v go && go env GOPROXY GOSUMDB'
  printf '$ %s -l -c ...\n%s\n[exit %s]\n' "$LOGIN_SHELL" "$output" "$status"
  expect_status 0
  [ "${lines[0]}" = "$go_path" ]
  [ "${lines[1]}" = "$1" ]
  [ "${lines[2]}" = "$2" ]
}

# expect_refused_proxies ARGS...: the setup, pointed at a port nobody listens on and at a web
# server that is no GOPROXY server, fails before it touches anything.
expect_refused_proxies() {
  local url
  take_snapshot refused
  for url in "$DEAD_PROXY_URL" "$NOT_A_PROXY_URL"; do
    bootstrap --proxy "$url" --sumdb "$SUMDB_VKEY" --check-module "$CHECK_MODULE" "$@"
    expect_status 1
    expect_line '^error: '
    expect_no_line '^change: '
    expect_unchanged refused
  done
}

# The life of a setup on the current fake Mac, with SETUP_ARGS plus "$@": bad proxies are
# refused and a dry run touches nothing; the real run writes the go env file (EXPECTED_ENV, in
# any order) and its saved state and no other file; a second run changes nothing; uninstall puts
# every byte back; a second uninstall finds nothing. ARCH_WARNING (yes|no) says whether go's
# architecture is the wrong one.
setup_cycle() {
  expect_refused_proxies "$@"
  take_snapshot before

  bootstrap "${SETUP_ARGS[@]}" "$@" --dry-run
  expect_status 0
  expect_fingerprint
  expect_arch_warning "$ARCH_WARNING"
  expect_line "^proxy: $(re_escape "$PROXY_URL") answers \\(first byte in [0-9]+ ms\\)"
  expect_line '^would change: '
  expect_no_line '^change: '
  expect_unchanged before

  bootstrap "${SETUP_ARGS[@]}" "$@"
  expect_status 0
  expect_fingerprint
  expect_arch_warning "$ARCH_WARNING"
  expect_line '^change: '
  expect_line '^verified: .*[0-9]+ ?ms'
  expect_no_line '^(error|would change): '
  expect_go_env "${EXPECTED_ENV[@]}"
  expect_changed_files before "Library/Application Support/go/env"
  take_snapshot configured
  expect_login_shell_sees "$SHIMS/go" "${EXPECTED_ENV[0]#GOPROXY=}" "${EXPECTED_ENV[1]#GOSUMDB=}"
  expect_unchanged configured

  bootstrap "${SETUP_ARGS[@]}" "$@"
  expect_status 0
  expect_line '^already set up: nothing changed$'
  expect_no_line '^change: '
  expect_unchanged configured

  bootstrap --uninstall
  expect_status 0
  expect_unchanged before bytes
  [ ! -e "$(saved_file)" ]

  bootstrap --uninstall
  expect_status 0
  expect_line 'nothing to uninstall'
  expect_unchanged before bytes
}

@test "--help: usage on stdout, exit 0; usage errors: exit 2; nothing touched" {
  fake_mac shell="$SHELL_A"
  take_snapshot before
  local -a run_sh
  # shellcheck disable=SC2153 # RUN_SH comes from the environment
  read -r -a run_sh <<<"$RUN_SH"
  run --separate-stderr mac_env "${run_sh[@]}" "$SCRIPT" --help
  # shellcheck disable=SC2154 # stderr is set by bats' run --separate-stderr
  printf '$ bootstrap.sh --help\n%s\n[stderr]\n%s\n[exit %s]\n' "$output" "$stderr" "$status"
  expect_status 0
  expect_line '^ *--proxy URL'
  expect_line '^ *--install-go VERSION'
  expect_line '^ *--uninstall'

  bootstrap
  expect_status 2
  bootstrap --proxy
  expect_status 2
  bootstrap --proxy "$PROXY_URL" --no-such-option
  expect_status 2
  bootstrap --proxy "$PROXY_URL" --fallback
  expect_status 2
  expect_unchanged before
}

@test "macOS 12.7 x86_64 (Intel), no command line tools, --fallback off, shell A" {
  fake_mac macos=12.7 machine=x86_64 shell="$SHELL_A" go=amd64 clt=no
  mapfile -t EXPECTED_ENV < <(proxy_env_lines off)
  ARCH_WARNING=no
  setup_cycle --fallback off
}

@test "macOS 13.6 arm64 with --private, shell B" {
  fake_mac macos=13.6 machine=arm64 shell="$SHELL_B" go=arm64
  local private='example.com/privatemod,corp.example/*'
  mapfile -t EXPECTED_ENV < <(proxy_env_lines)
  EXPECTED_ENV+=("GOPRIVATE=$private" "GONOSUMDB=$private")
  ARCH_WARNING=no
  setup_cycle --private "$private"
}

@test "macOS 14.5 arm64 over an existing go env file, shell A" {
  fake_mac macos=14.5 machine=arm64 shell="$SHELL_A" go=arm64
  # Written by go itself, so restoring the old values with go env -w gives the same bytes.
  mac_env go env -w GOPROXY=https://goproxy.example,direct GOSUMDB=sum.golang.org \
    GOPRIVATE=corp.example
  [ -s "$(go_env_file)" ]
  mapfile -t EXPECTED_ENV < <(proxy_env_lines)
  EXPECTED_ENV+=("GOPRIVATE=corp.example")
  ARCH_WARNING=no
  setup_cycle
}

@test "macOS 15.1 arm64 with an existing login profile, shell B" {
  fake_mac macos=15.1 machine=arm64 shell="$SHELL_B" go=arm64
  printf '%s\n' '# my settings' 'export EDITOR=vi' 'umask 022' >>"$PROFILE"
  mapfile -t EXPECTED_ENV < <(proxy_env_lines)
  ARCH_WARNING=no
  setup_cycle
}

@test "Apple silicon with an amd64 go: architecture warning, shell A" {
  fake_mac macos=14.5 machine=arm64 shell="$SHELL_A" go=amd64
  mapfile -t EXPECTED_ENV < <(proxy_env_lines)
  ARCH_WARNING=yes
  setup_cycle
}

@test "Rosetta shell (uname -m x86_64) on Apple silicon with an arm64 go: no warning, shell B" {
  fake_mac macos=14.5 machine=x86_64 rosetta=1 shell="$SHELL_B" go=arm64
  [ "$HARDWARE" = arm64 ] && [ "$ROSETTA" = yes ]
  mapfile -t EXPECTED_ENV < <(proxy_env_lines)
  ARCH_WARNING=no
  setup_cycle
}

# After a run whose result a profile's GOPROXY defeats: it fails naming the value the new shell
# sees, having written only the go env file (the warning is the whole remedy: the user's files
# are theirs to edit), and --uninstall puts every byte back.
expect_defeated_by_profile_then_restored() {
  expect_status 1
  expect_line '^error: .*GOPROXY is https://example.invalid'
  mapfile -t EXPECTED_ENV < <(proxy_env_lines)
  expect_go_env "${EXPECTED_ENV[@]}"
  expect_changed_files before "Library/Application Support/go/env"

  bootstrap --uninstall
  expect_status 0
  expect_unchanged before bytes
}

# What a user with GOPROXY in a profile runs into: the variable beats the go env file.
@test "GOPROXY exported by ~/.zshrc: warning names the file and line (zsh)" {
  fake_mac macos=14.5 shell=zsh go=arm64
  printf '%s\n' '# prompt and aliases' "alias ll='ls -l'" \
    'export GOPROXY=https://example.invalid' >"$MAC_HOME/.zshrc"
  # shellcheck disable=SC2034 # read by mac_env
  MAC_ENV=(GOPROXY=https://example.invalid)
  take_snapshot before
  bootstrap "${SETUP_ARGS[@]}"
  expect_line '^warning: GOPROXY is set in the environment'
  expect_line "(~|$(re_escape "$MAC_HOME"))/\\.zshrc:3([^0-9]|\$)"
  # A new Terminal window (an interactive login zsh) reads ~/.zshrc again: not verified.
  expect_defeated_by_profile_then_restored
}

@test "GOPROXY and GOFLAGS exported by ~/.bash_profile: warnings name file and line (bash)" {
  fake_mac macos=13.6 shell=bash go=arm64
  # fake_mac put the PATH line first.
  printf '%s\n' 'export GOFLAGS=-mod=mod' '# the old company mirror' \
    'export GOPROXY=https://example.invalid' >>"$PROFILE"
  # shellcheck disable=SC2034 # read by mac_env
  MAC_ENV=(GOFLAGS=-mod=mod GOPROXY=https://example.invalid)
  take_snapshot before
  bootstrap "${SETUP_ARGS[@]}"
  expect_line '^warning: GOPROXY is set in the environment'
  expect_line '^warning: GOFLAGS is set in the environment'
  expect_line "(~|$(re_escape "$MAC_HOME"))/\\.bash_profile:4([^0-9]|\$)"
  expect_line "(~|$(re_escape "$MAC_HOME"))/\\.bash_profile:2([^0-9]|\$)"
  # A fresh bash login shell reads the line again, so the setup cannot be verified.
  expect_defeated_by_profile_then_restored
}

@test "no go and no --install-go: exit 1, nothing changed, shell A" {
  fake_mac macos=15.1 machine=arm64 shell="$SHELL_A" go=none
  take_snapshot before
  bootstrap "${SETUP_ARGS[@]}"
  expect_status 1
  expect_fingerprint
  expect_line '^error: '
  expect_unchanged before
}

@test "no go, --yes without --install-go: installs the Go the proxy has for this Mac, shell B" {
  fake_mac macos=15.1 machine=arm64 shell="$SHELL_B" go=none
  take_snapshot before
  bootstrap "${SETUP_ARGS[@]}" --yes
  expect_status 0
  [ -x "$MAC_HOME/sdk/go$INSTALL_GO_VERSION/bin/go" ]
  expect_profile_block "$BATS_TEST_TMPDIR/no-original-profile"
  mapfile -t EXPECTED_ENV < <(proxy_env_lines)
  expect_go_env "${EXPECTED_ENV[@]}"

  bootstrap --uninstall
  expect_status 0
  expect_unchanged before bytes
}

# Go installed from the proxy's golang.org/toolchain module (a fake toolchain whose bin/go is
# shims/go.in) with its profile block; the same life as setup_cycle, plus the toolchain and the
# profile.
install_cycle() {
  local goroot="$MAC_HOME/sdk/go$INSTALL_GO_VERSION" original="$BATS_TEST_TMPDIR/profile.original"
  local -a install=(--install-go "$INSTALL_GO_VERSION" --yes)
  [ ! -e "$PROFILE" ] || cp -p "$PROFILE" "$original"
  mapfile -t EXPECTED_ENV < <(proxy_env_lines)
  expect_refused_proxies "${install[@]}"
  [ ! -e "$MAC_HOME/sdk" ]
  take_snapshot before

  bootstrap "${SETUP_ARGS[@]}" "${install[@]}" --dry-run
  expect_status 0
  expect_fingerprint
  expect_line '^would change: '
  expect_no_line '^change: '
  expect_unchanged before
  [ ! -e "$MAC_HOME/sdk" ]

  bootstrap "${SETUP_ARGS[@]}" "${install[@]}"
  expect_status 0
  expect_fingerprint
  expect_line '^change: '
  expect_line '^verified: .*[0-9]+ ?ms'
  [ -x "$goroot/bin/go" ]
  expect_go_env "${EXPECTED_ENV[@]}"
  expect_profile_block "$original"
  take_snapshot configured
  expect_login_shell_sees "$goroot/bin/go" "${EXPECTED_ENV[0]#GOPROXY=}" \
    "${EXPECTED_ENV[1]#GOSUMDB=}"
  expect_unchanged configured

  bootstrap "${SETUP_ARGS[@]}" "${install[@]}"
  expect_status 0
  expect_fingerprint "$goroot/bin/go" "$HARDWARE"
  expect_line '^already set up: nothing changed$'
  expect_unchanged configured

  bootstrap --uninstall
  expect_status 0
  expect_unchanged before bytes
  [ ! -e "$goroot" ]

  bootstrap --uninstall
  expect_status 0
  expect_line 'nothing to uninstall'
  expect_unchanged before bytes
}

# The profile is the original bytes (if any) followed by the block, blank lines aside; the
# original is kept as <profile>.gomodproxy-backup.
expect_profile_block() {
  local original=$1 size=0 block
  # shellcheck disable=SC2016 # the block is text for the login shell, $HOME and $PATH included
  block=$(printf '%s\n' '# >>> gomodproxy bootstrap >>>' \
    'export PATH="$HOME/sdk/go'"$INSTALL_GO_VERSION"'/bin:$PATH"' '# <<< gomodproxy bootstrap <<<')
  [ -f "$PROFILE" ] || { echo "no profile $PROFILE" >&2; return 1; }
  if [ -f "$original" ]; then
    size=$(stat -c %s "$original")
    head -c "$size" "$PROFILE" | cmp - "$original" ||
      { echo "$PROFILE does not start with its original bytes" >&2; return 1; }
    cmp "$PROFILE.gomodproxy-backup" "$original"
  fi
  diff -u <(printf '%s\n' "$block") <(tail -c "+$((size + 1))" "$PROFILE" | grep -v '^$') >&2 ||
    { echo "$PROFILE: the added text is not the block (-expected +actual)" >&2; return 1; }
}

@test "--install-go --yes, macOS 14.5 arm64, existing profile, shell A" {
  fake_mac macos=14.5 machine=arm64 shell="$SHELL_A" go=none
  printf '%s\n' '# my settings' 'export EDITOR=vi' >"$PROFILE"
  install_cycle
}

@test "--install-go --yes, macOS 12.7 Intel, no profile, shell B" {
  fake_mac macos=12.7 machine=x86_64 shell="$SHELL_B" go=none
  [ ! -e "$PROFILE" ]
  install_cycle
}

@test "--install-go: a toolchain zip that does not match the checksum database is refused" {
  fake_mac macos=14.5 machine=arm64 shell="$SHELL_A" go=none
  take_snapshot before
  bootstrap --proxy "$TAMPERED_PROXY_URL" --sumdb "$SUMDB_VKEY" --check-module "$CHECK_MODULE" \
    --install-go "$INSTALL_GO_VERSION" --yes
  expect_status 1
  expect_line '^error: .*checksum mismatch'
  expect_unchanged before
  [ ! -e "$MAC_HOME/sdk" ]
}

@test "--install-go: a checksum database answer not signed by the given key is refused" {
  fake_mac macos=15.1 machine=arm64 shell="$SHELL_B" go=none
  # A well-formed key of the same name (its hash is that of its name and bytes, as go requires)
  # whose public key is another one.
  local name=${SUMDB_VKEY%%+*} key_bytes=$BATS_TEST_TMPDIR/impostor.key impostor_key
  { printf '\001'; printf 'k%.0s' $(seq 32); } >"$key_bytes"
  impostor_key="$name+$({ printf '%s\n' "$name"; cat "$key_bytes"; } | sha256sum | cut -c1-8)"
  impostor_key="$impostor_key+$(base64 -w0 <"$key_bytes")"
  take_snapshot before
  bootstrap --proxy "$PROXY_URL" --sumdb "$impostor_key" --check-module "$CHECK_MODULE" \
    --install-go "$INSTALL_GO_VERSION" --yes
  expect_status 1
  expect_line "^error: the $SUMDB_NAME answer is not signed by ${impostor_key//+/\\+} "
  expect_no_line '^change: '
  expect_unchanged before
  [ ! -e "$MAC_HOME/sdk" ]
}

@test "--install-go: a key whose hash is not that of its name and bytes is refused as a key" {
  fake_mac macos=15.1 machine=arm64 shell="$SHELL_B" go=none
  # The database's name and key hash, another public key: go's note.NewVerifier refuses it.
  local mistyped_key
  mistyped_key="${SUMDB_VKEY%+*}+$( (printf '\001'; printf 'k%.0s' $(seq 32)) | base64 -w0)"
  take_snapshot before
  bootstrap --proxy "$PROXY_URL" --sumdb "$mistyped_key" --check-module "$CHECK_MODULE" \
    --install-go "$INSTALL_GO_VERSION" --yes
  expect_status 1
  expect_line "^error: ${mistyped_key//+/\\+} is not a valid verifier key: "
  expect_no_line '^change: '
  expect_unchanged before
  [ ! -e "$MAC_HOME/sdk" ]
}

@test "not a GOPROXY server (200 to everything, 404 to everything): exit 1, nothing changed" {
  fake_mac macos=13.6 machine=arm64 shell="$SHELL_A" go=arm64
  take_snapshot before
  local url
  for url in "$NOT_A_PROXY_URL" "$NOT_FOUND_PROXY_URL"; do
    bootstrap --proxy "$url" --sumdb "$SUMDB_VKEY" --check-module "$CHECK_MODULE"
    expect_status 1
    expect_line '^error: '
    expect_no_line '^change: '
    expect_unchanged before
  done
}
