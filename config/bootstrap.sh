#!/bin/sh
# Sets a developer's machine (macOS or Linux) up to use a gomodproxy instance: fingerprints the
# machine, checks the proxy answers the GOPROXY protocol before touching anything, configures go
# with `go env -w`, optionally installs Go under $HOME/sdk (no sudo) from the golang.org/toolchain
# module served and checksum-verified through the proxy, and checks the result in a fresh shell.
# With --token it also writes the proxy's .netrc entry, which the go command sends over https.
# A second run changes nothing; --uninstall puts back what the first run changed.
#
# POSIX sh on purpose: it must run under macOS's /bin/bash 3.2, dash and zsh-less machines alike.

set -u

default_local_proxy=http://127.0.0.1:8081
# The public verifier key of sum.golang.org, byte for byte the one compiled into the go command
# (the build checks it against config/sum.golang.org.key).
sum_golang_org_key=sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8
block_begin='# >>> gomodproxy bootstrap >>>'
block_end='# <<< gomodproxy bootstrap <<<'
managed_vars='GOPROXY GOSUMDB GOPRIVATE GONOSUMDB'

usage() {
	cat <<'EOF'
Usage: bootstrap.sh --proxy URL | --local [options]

Sets this machine's go up to use a gomodproxy instance, after checking the proxy answers.

  --proxy URL            the gomodproxy to use, e.g. http://goproxy.corp.example.com:8081
  --local                use http://127.0.0.1:8081
  --private GLOBS        comma-separated module globs that never go through any proxy or
                         checksum database (GOPRIVATE, GONOSUMDB)
  --fallback LIST        what go uses when the proxy fails or is down (default: direct);
                         GOPROXY becomes URL|LIST
  --sumdb DB             checksum database to reach through the proxy: a name or a verifier key
                         (default: sum.golang.org)
  --check-module M@V     module the final check resolves (default: golang.org/x/mod@latest)
  --install-go VERSION   install Go VERSION (e.g. 1.22.5) under ~/sdk/goVERSION from the proxy
  --token TOKEN          client token of a proxy that asks for one (https:// only): written
                         to ~/.netrc (or $NETRC) for the proxy's host and host:port, mode 600
  --token-file FILE      read the token from FILE's first line (keeps it out of the process
                         list and the shell history)
  --insecure-skip-verify install Go even when the proxy has no checksum database to verify it
  --dry-run              print every change, make none
  --uninstall            restore the go settings and shell profile saved by the first run
  --yes                  do not ask; answer yes
  --help                 this text

Exit status: 0 done (or nothing to do), 1 failed (nothing changed unless stated), 2 usage error.
EOF
}

say() { printf '%s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*"; }
fail() {
	printf 'error: %s\n' "$*"
	exit 1
}
usage_error() {
	printf 'bootstrap.sh: %s (see --help)\n' "$*" >&2
	exit 2
}
have() { command -v "$1" >/dev/null 2>&1; }

# Milliseconds since the epoch where the platform can tell (GNU date, else perl), for timings.
now_ms() {
	ms=$(date +%s%N 2>/dev/null)
	case $ms in
	*[!0-9]* | '') ms=$(perl -MTime::HiRes=time -e 'printf "%d", time() * 1000' 2>/dev/null) ;;
	*) ms=${ms%??????} ;;
	esac
	case $ms in
	*[!0-9]* | '') ms=$(($(date +%s) * 1000)) ;;
	esac
	printf '%s' "$ms"
}

# Module paths and versions are case-encoded in GOPROXY URLs: "A" becomes "!a".
escape_case() { printf '%s' "$1" | LC_ALL=C sed 's/[A-Z]/!&/g' | LC_ALL=C tr '[:upper:]' '[:lower:]'; }

# --- options ----------------------------------------------------------------------------------

proxy=''
private=''
fallback=direct
sumdb=sum.golang.org
check_module=golang.org/x/mod@latest
install_version=''
token=''
token_file=''
insecure=0
dry_run=0
uninstall=0
assume_yes=0

need_value() { [ "$2" -ge 2 ] || usage_error "$1 needs a value"; }
while [ $# -gt 0 ]; do
	case $1 in
	--proxy) need_value "$1" $# && proxy=$2 && shift ;;
	--proxy=*) proxy=${1#*=} ;;
	--local) proxy=$default_local_proxy ;;
	--private) need_value "$1" $# && private=$2 && shift ;;
	--private=*) private=${1#*=} ;;
	--fallback) need_value "$1" $# && fallback=$2 && shift ;;
	--fallback=*) fallback=${1#*=} ;;
	--sumdb) need_value "$1" $# && sumdb=$2 && shift ;;
	--sumdb=*) sumdb=${1#*=} ;;
	--check-module) need_value "$1" $# && check_module=$2 && shift ;;
	--check-module=*) check_module=${1#*=} ;;
	--install-go) need_value "$1" $# && install_version=$2 && shift ;;
	--install-go=*) install_version=${1#*=} ;;
	--token) need_value "$1" $# && token=$2 && shift ;;
	--token=*) token=${1#*=} ;;
	--token-file) need_value "$1" $# && token_file=$2 && shift ;;
	--token-file=*) token_file=${1#*=} ;;
	--insecure-skip-verify) insecure=1 ;;
	--dry-run) dry_run=1 ;;
	--uninstall) uninstall=1 ;;
	--yes | -y) assume_yes=1 ;;
	--help | -h)
		usage
		exit 0
		;;
	*) usage_error "unknown option: $1" ;;
	esac
	shift
done

if [ -z "${HOME:-}" ] || [ ! -d "$HOME" ]; then usage_error "HOME is not a directory"; fi
if [ "$uninstall" -eq 0 ]; then
	[ -n "$proxy" ] || usage_error "--proxy URL or --local is required"
	case $proxy in
	http://?* | https://?*) ;;
	*) usage_error "--proxy must be an http:// or https:// URL: $proxy" ;;
	esac
	case $proxy in
	*[\ \	,\|]*) usage_error "--proxy must be a single URL: $proxy" ;;
	esac
	while [ "${proxy%/}" != "$proxy" ]; do proxy=${proxy%/}; done
	[ -n "$fallback" ] || usage_error "--fallback needs a value (e.g. direct or off)"
	case $check_module in
	?*@?*) ;;
	*) usage_error "--check-module must be MODULE@VERSION: $check_module" ;;
	esac
	if [ -n "$install_version" ]; then
		install_version=${install_version#go}
		case $install_version in
		[0-9]*.[0-9]*) ;;
		*) usage_error "--install-go needs a Go version like 1.22.5: $install_version" ;;
		esac
		case $install_version in
		*[!0-9a-z.]*) usage_error "--install-go needs a Go version like 1.22.5: $install_version" ;;
		esac
	fi
	if [ -n "$token_file" ]; then
		[ -z "$token" ] || usage_error "--token and --token-file cannot be used together"
		{ [ -f "$token_file" ] && [ -r "$token_file" ]; } || usage_error "--token-file: cannot read $token_file"
		token=$(sed -n '1{s/^[[:space:]]*//;s/[[:space:]]*$//;p;}' "$token_file")
		[ -n "$token" ] || usage_error "--token-file: the first line of $token_file holds no token"
	fi
	# Messages about the token never show it.
	if [ -n "$token" ] || [ -n "$token_file" ]; then
		case $proxy in
		https://*) ;;
		*) usage_error "--token needs an https:// proxy: the go command sends .netrc credentials over https only" ;;
		esac
		if [ -z "$token" ] || printf '%s' "$token" | LC_ALL=C grep -q '[^!-~]'; then
			usage_error "the token must be printable ASCII without spaces"
		fi
	fi
fi
sumdb_name=${sumdb%%+*}
case $sumdb_name in
'' | *[!A-Za-z0-9._-]*) usage_error "--sumdb must be a database name or verifier key: $sumdb" ;;
esac
# The key that checks signed answers: the one given, or the well-known key for the default name.
sumdb_key=''
case $sumdb in
*+*+*) sumdb_key=$sumdb ;;
sum.golang.org) sumdb_key=$sum_golang_org_key ;;
esac

# The .netrc entry names the proxy's host, and host:port when the URL has a port: go 1.19
# matches a machine against the host name only, go 1.23 against the Host header, port included.
netrc_file=${NETRC:-$HOME/.netrc}
netrc_host='' netrc_host_port=''
if [ -n "$token" ]; then
	authority=${proxy#*://}
	authority=${authority%%/*}
	authority=${authority##*@}
	case $authority in
	\[*)
		netrc_host=${authority#\[}
		netrc_host=${netrc_host%%]*}
		after_host=${authority#*]}
		;;
	*)
		netrc_host=${authority%%:*}
		after_host=${authority#"$netrc_host"}
		;;
	esac
	case $after_host in :?*) netrc_host_port=$authority ;; esac
fi

state_dir=$HOME/.config/gomodproxy
state_file=$state_dir/bootstrap.saved
sdk_dir=$HOME/sdk
work_dir=''
created_sdk_dir=0
verify_dir=''
cleanup() {
	[ -n "$work_dir" ] && rm -rf "$work_dir"
	[ -n "$verify_dir" ] && chmod -R u+w "$verify_dir" 2>/dev/null && rm -rf "$verify_dir"
	# A failed install leaves no empty ~/sdk behind.
	[ "$created_sdk_dir" = 1 ] && rmdir "$sdk_dir" 2>/dev/null
	return 0
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

# --- fingerprint ------------------------------------------------------------------------------

os_kind=$(uname -s 2>/dev/null || echo unknown)
case $os_kind in
Darwin)
	goos=darwin
	os_label="macOS $(sw_vers -productVersion 2>/dev/null || echo '(version unknown)')"
	;;
Linux)
	goos=linux
	os_label="Linux $(uname -r 2>/dev/null)"
	;;
*)
	goos=$(printf '%s' "$os_kind" | LC_ALL=C tr '[:upper:]' '[:lower:]')
	os_label=$os_kind
	;;
esac
machine=$(uname -m 2>/dev/null || echo unknown)
case $machine in
x86_64 | amd64) hardware=amd64 ;;
arm64 | aarch64) hardware=arm64 ;;
*) hardware=$machine ;;
esac
rosetta=no
if [ "$goos" = darwin ] && [ "$(sysctl -n sysctl.proc_translated 2>/dev/null)" = 1 ]; then
	# This shell is an Intel binary translated by Rosetta; the hardware is Apple silicon.
	rosetta=yes
	hardware=arm64
fi
login_shell=${SHELL:-/bin/sh}
shell_name=${login_shell##*/}
case $shell_name in
zsh) profile=$HOME/.zprofile ;;
bash) profile=$HOME/.bash_profile ;;
*) profile=$HOME/.profile ;;
esac

# A go this script installed earlier counts as installed even before the profile is re-read.
find_go() {
	if have go; then
		command -v go
		return
	fi
	for candidate in "$sdk_dir"/go*/bin/go; do
		[ -x "$candidate" ] && found=$candidate
	done
	[ -n "${found:-}" ] && printf '%s' "$found"
}
go_bin=$(find_go)
go_version='' go_os='' go_arch='' go_env_file=''
read_go_facts() {
	facts=$("$go_bin" env GOVERSION GOOS GOARCH GOENV 2>/dev/null) || facts=''
	go_version=$(printf '%s\n' "$facts" | sed -n 1p)
	go_os=$(printf '%s\n' "$facts" | sed -n 2p)
	go_arch=$(printf '%s\n' "$facts" | sed -n 3p)
	go_env_file=$(printf '%s\n' "$facts" | sed -n 4p)
}
[ -n "$go_bin" ] && read_go_facts

say "machine:"
say "  os: $os_label"
say "  hardware: $hardware"
[ "$goos" = darwin ] && say "  rosetta: $rosetta"
say "  login shell: $shell_name ($login_shell)"
if [ -n "$go_bin" ]; then
	say "  go: $go_bin $go_version $go_os/$go_arch"
else
	say "  go: none"
fi
if [ "$goos" = darwin ]; then
	if clt=$(xcode-select -p 2>/dev/null) && [ -n "$clt" ]; then
		say "  xcode command line tools: $clt"
	else
		say "  xcode command line tools: missing (cgo needs them: xcode-select --install)"
	fi
fi
if [ -n "$go_bin" ] && [ -n "$go_arch" ] && [ "$go_arch" != "$hardware" ]; then
	warn "$go_bin is built for $go_arch but this machine is $hardware: it runs translated" \
		"(slower) and builds for $go_arch by default; fix: rerun with" \
		"--install-go ${go_version#go} to get the $hardware build"
fi

# --- saved state (what the first run changed) ---------------------------------------------------

# The state file holds one key=value per line, appended as changes are made.
state_get() { [ -f "$state_file" ] && sed -n "s/^$1=//p" "$state_file" | head -n 1; }
state_has() { [ -f "$state_file" ] && grep -q "^$1=" "$state_file"; }
state_put() { printf '%s\n' "$@" >>"$state_file" || fail "cannot write $state_file"; }
env_file_value() { [ -f "$go_env_file" ] && sed -n "s/^$1=//p" "$go_env_file" | head -n 1; }
env_file_has() { [ -f "$go_env_file" ] && grep -q "^$1=" "$go_env_file"; }

# Rewrites a file atomically (temp file in the same directory, then mv) from stdin.
replace_file() {
	tmp=$(mktemp "$1.gomodproxy.XXXXXX") || fail "cannot write next to $1"
	if ! { cat >"$tmp" && mv -f "$tmp" "$1"; }; then
		rm -f "$tmp"
		fail "cannot write $1"
	fi
}

# Creates the state directory, noting when ~/.config itself is new so uninstall removes it too.
ensure_state_dir() {
	[ -d "$state_dir" ] && return 0
	config_dir_is_new=0
	[ -d "${state_dir%/*}" ] || config_dir_is_new=1
	mkdir -p "$state_dir" || fail "cannot create $state_dir"
	[ "$config_dir_is_new" = 0 ] || state_put config_dir_created=1
}

# The lines of a profile outside the gomodproxy block (`outside`), or the block itself (`inside`).
profile_lines() {
	awk -v b="$block_begin" -v e="$block_end" -v want="$1" \
		'$0==b{s=1} (s ? "inside" : "outside")==want{print} $0==e{s=0}' "$2"
}

# Takes the gomodproxy block back out of FILE ($1), which was saved as BACKUP ($2) if it existed
# before ($3 = 1). Untouched since the first run ($4 = 1): the saved bytes and mode come back, or
# the file goes if it was new. Edited since: only the block goes (the file too, if nothing else
# is left in it).
undo_block() {
	if [ "$4" = 1 ] && [ "$3" = 1 ]; then
		say "$prefix: restore $1 from $2"
		[ "$dry_run" -eq 1 ] || mv -f "$2" "$1" || fail "cannot restore $1"
	elif [ "$4" = 1 ] || { [ "$3" = 0 ] && [ -z "$(profile_lines outside "$1")" ]; }; then
		say "$prefix: remove $1 (it did not exist before)"
		[ "$dry_run" -eq 1 ] || rm -f "$1"
	else
		say "$prefix: remove the gomodproxy block from $1"
		[ "$dry_run" -eq 1 ] || profile_lines outside "$1" | replace_file "$1"
	fi
	[ "$dry_run" -eq 1 ] || rm -f "$2"
}

if [ "$uninstall" -eq 1 ]; then
	if [ ! -f "$state_file" ]; then
		say "nothing to uninstall: no saved state at $state_file"
		exit 0
	fi
	prefix=change
	[ "$dry_run" -eq 1 ] && prefix='would change'
	installed=$(state_get installed_go)
	saved_env_file=$(state_get goenv_file)
	# Untouched since the first run: the original bytes come back (or the file goes, if it was
	# not there). Edited since: only the settings this script changed are put back.
	if [ -n "$saved_env_file" ] && [ -f "$saved_env_file" ] &&
		cmp -s "$state_dir/goenv.ours" "$saved_env_file"; then
		if [ "$(state_get goenv_existed)" = 1 ]; then
			say "$prefix: restore $saved_env_file as it was before"
			[ "$dry_run" -eq 1 ] || replace_file "$saved_env_file" <"$state_dir/goenv.orig"
		else
			say "$prefix: remove $saved_env_file (it did not exist before)"
			if [ "$dry_run" -eq 0 ]; then
				rm -f "$saved_env_file"
				[ "$(state_get goenv_dir_created)" = 1 ] && rmdir "${saved_env_file%/*}" 2>/dev/null
			fi
		fi
	elif [ -n "$saved_env_file" ]; then
		[ -n "$go_bin" ] || fail "no go on PATH to restore the go settings with"
		for var in $managed_vars; do
			state_has "changed_$var" || continue
			if state_has "had_$var"; then
				old=$(state_get "had_$var")
				say "$prefix: go env -w $var=$old"
				[ "$dry_run" -eq 1 ] || "$go_bin" env -w "$var=$old" || fail "go env -w $var failed"
			else
				say "$prefix: go env -u $var"
				[ "$dry_run" -eq 1 ] || "$go_bin" env -u "$var" || fail "go env -u $var failed"
			fi
		done
	fi
	saved_profile=$(state_get profile)
	if [ -n "$saved_profile" ] && [ -f "$saved_profile" ]; then
		backup=$saved_profile.gomodproxy-backup
		profile_existed=$(state_get profile_existed)
		profile_untouched=0
		cmp -s "$state_dir/profile.ours" "$saved_profile" && profile_untouched=1
		undo_block "$saved_profile" "$backup" "$profile_existed" "$profile_untouched"
	fi
	saved_netrc=$(state_get netrc)
	if [ -n "$saved_netrc" ] && [ -f "$saved_netrc" ]; then
		netrc_backup=$saved_netrc.gomodproxy-backup
		netrc_existed=$(state_get netrc_existed)
		netrc_untouched=0
		[ "$(cksum <"$saved_netrc")" = "$(cat "$state_dir/netrc.sum" 2>/dev/null)" ] && netrc_untouched=1
		undo_block "$saved_netrc" "$netrc_backup" "$netrc_existed" "$netrc_untouched"
	fi
	if [ -n "$installed" ] && [ -d "$installed" ]; then
		say "$prefix: remove $installed (installed by this script)"
		if [ "$dry_run" -eq 0 ]; then
			rm -rf "$installed"
			[ "$(state_get sdk_dir_created)" = 1 ] && rmdir "$sdk_dir" 2>/dev/null
		fi
	fi
	say "$prefix: remove $state_file"
	if [ "$dry_run" -eq 0 ]; then
		config_dir_created=$(state_get config_dir_created)
		rm -f "$state_file" "$state_dir/goenv.orig" "$state_dir/goenv.ours" "$state_dir/profile.ours" \
			"$state_dir/netrc.sum"
		rmdir "$state_dir" 2>/dev/null
		[ "$config_dir_created" = 1 ] && rmdir "${state_dir%/*}" 2>/dev/null
	fi
	exit 0
fi

# Checked before anything changes: replacing a linked .netrc would cut the link (--uninstall then
# puts back a file, not the link), and a token written to a second file is one --uninstall,
# which knows only the first, would leave behind.
if [ -n "$token" ]; then
	if [ -L "$netrc_file" ]; then
		fail "$netrc_file is a symbolic link: rerun with NETRC set to the file it points to, to keep the token there (nothing was changed)"
	fi
	saved_netrc=$(state_get netrc)
	if [ -n "$saved_netrc" ] && [ "$saved_netrc" != "$netrc_file" ]; then
		fail "an earlier run wrote the token to $saved_netrc: rerun with NETRC=$saved_netrc, or --uninstall first (nothing was changed)"
	fi
fi

# --- reach the proxy --------------------------------------------------------------------------

have curl || fail "curl is needed to reach the proxy"
# curl, with the token (when there is one) as Basic auth read from stdin, so that it never
# appears on a command line.
curl_proxy() {
	if [ -n "$token" ]; then
		printf 'user = "gomodproxy:%s"\n' "$(printf '%s' "$token" | sed 's/[\\"]/\\&/g')" |
			curl -K - "$@"
	else
		curl "$@"
	fi
}
curl_get() { curl_proxy -sS --connect-timeout 5 --max-time 20 "$1"; }
# The HTTP status of a GET of $1 (the body goes to $3, default nowhere), or curl's complaint.
http_status() {
	curl_proxy -sS -o "${3:-/dev/null}" -w '%{http_code}' --connect-timeout 5 --max-time "$2" "$1" 2>&1
}

health=$(http_status "$proxy/healthz" 10)
case $health in
200) ;;
000* | *curl:*) fail "cannot reach $proxy: $(printf '%s' "$health" | sed -n 's/^curl: ([0-9]*) //p' | head -n 1) (nothing was changed)" ;;
*) fail "$proxy/healthz answered $health, not 200: is it a gomodproxy? (nothing was changed)" ;;
esac

check_path=${check_module%@*}
check_version=${check_module##*@}
if [ "$check_version" = latest ]; then
	probe_url=$proxy/$(escape_case "$check_path")/@latest
else
	probe_url=$proxy/$(escape_case "$check_path")/@v/$(escape_case "$check_version").info
fi
# Sets probe_code, probe_body and probe_seconds (time to first byte) for a GET of $1.
probe() {
	probe_out=$(curl_proxy -sS --connect-timeout 5 --max-time 30 -w '\n%{http_code} %{time_starttransfer}' \
		"$1" 2>&1) || fail "cannot reach $1 (nothing was changed)"
	probe_status=$(printf '%s\n' "$probe_out" | tail -n 1)
	probe_body=$(printf '%s\n' "$probe_out" | sed '$d')
	probe_code=${probe_status%% *}
	probe_seconds=${probe_status#* }
}
# The version go would take from an @v/list on stdin when a proxy has no @latest: the highest
# tagged release, else the highest tagged pre-release (pseudo-versions are not tags). Pre-releases
# of one release are ordered by plain text, which is enough to pick a version to check.
newest_listed_version() {
	awk '
	function newer(a, b,   x, y, i) {
		split(a, x, "."); split(b, y, ".")
		for (i = 1; i <= 3; i++) if (x[i] + 0 != y[i] + 0) return x[i] + 0 > y[i] + 0
		return 0
	}
	{
		v = $1
		if (v !~ /^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?(\+incompatible)?$/) next
		core = substr(v, 2); sub(/[-+].*/, "", core)
		pre = v; sub(/\+incompatible$/, "", pre)
		if (index(pre, "-") == 0) {
			if (release == "" || newer(core, release_core)) { release = v; release_core = core }
			next
		}
		pre = substr(pre, index(pre, "-") + 1)
		n = split(pre, part, "-"); stamp = part[n - 1]; sub(/.*\./, "", stamp)
		if (n >= 2 && length(part[n]) == 12 && part[n] ~ /^[0-9a-f]+$/ &&
			length(stamp) == 14 && stamp ~ /^[0-9]+$/) next
		if (prerelease == "" || newer(core, pre_core) ||
			(!newer(pre_core, core) && pre > pre_text)) { prerelease = v; pre_core = core; pre_text = pre }
	}
	END { if (release != "") print release; else if (prerelease != "") print prerelease }'
}

probe "$probe_url"
if [ "$check_version" = latest ] && { [ "$probe_code" = 404 ] || [ "$probe_code" = 410 ]; }; then
	# As go does with such a proxy: its list, then the .info of the newest version listed.
	newest=$(curl_get "$proxy/$(escape_case "$check_path")/@v/list" 2>/dev/null | newest_listed_version)
	if [ -n "$newest" ]; then
		probe_url=$proxy/$(escape_case "$check_path")/@v/$(escape_case "$newest").info
		probe "$probe_url"
	fi
fi
case $probe_code in
200) ;;
401)
	if [ -n "$token" ]; then
		fail "$probe_url answered 401: the proxy does not accept this token (nothing was changed)"
	fi
	fail "$probe_url answered 401: the proxy needs a client token; rerun with --token or --token-file (nothing was changed)"
	;;
*) fail "$probe_url answered $probe_code: the proxy cannot serve $check_module (nothing was changed)" ;;
esac
case $probe_body in
*'"Version"'*) ;;
*) fail "$probe_url did not answer like a GOPROXY server (no Version in its JSON; nothing was changed)" ;;
esac
probe_ms=$(awk -v s="$probe_seconds" 'BEGIN { printf "%d", s * 1000 }')
say "proxy: $proxy answers (first byte in $probe_ms ms)"

sumdb_supported=0
if [ "$(http_status "$proxy/sumdb/$sumdb_name/supported" 10)" = 200 ]; then
	sumdb_supported=1
else
	say "note: $proxy does not serve the checksum database $sumdb_name; GOSUMDB is left as it is"
fi

# --- install Go (asked for, or no go at all and the user agrees) --------------------------------

# Asks on the terminal, not stdin: under `curl ... | sh` stdin is the script itself.
ask_yes() {
	[ "$assume_yes" -eq 1 ] && return 0
	[ -t 1 ] && (: </dev/tty) 2>/dev/null || return 1
	printf '%s [y/N] ' "$1"
	read -r answer </dev/tty || return 1
	case $answer in [yY]*) return 0 ;; *) return 1 ;; esac
}

if [ -z "$install_version" ] && [ -z "$go_bin" ]; then
	list=$(curl_get "$proxy/golang.org/toolchain/@v/list" 2>/dev/null)
	newest=$(printf '%s\n' "$list" | sed -n "s/^v0\.0\.1-go\([0-9][0-9.]*\)\.$goos-$hardware\$/\1/p" |
		sort -t. -k1,1n -k2,2n -k3,3n | tail -n 1)
	if [ -n "$newest" ] && ask_yes "No go found. Install Go $newest ($goos/$hardware) under $sdk_dir/go$newest?"; then
		install_version=$newest
	else
		fail "no go found; rerun with --install-go VERSION (nothing was changed)"
	fi
fi


# The h1 hash the go command records for a module zip (dirhash Hash1): a SHA-256 line per file,
# "<hex>  <name>", sorted by name bytewise, hashed again and base64-encoded. Files are hashed
# from the unpacked tree `$2`, which must hold exactly the entries the zip lists in file `$1`.
zip_h1() {
	names=$1 unpacked=$2
	[ "$(LC_ALL=C sort "$names" | uniq -d | wc -l)" -eq 0 ] || return 1
	tab=$(printf '\t')
	{
		(cd "$unpacked" && find . -type f -exec sh -c 'if command -v sha256sum >/dev/null 2>&1; then sha256sum "$@"; else shasum -a 256 "$@"; fi' sh {} +) |
			awk -v t="$tab" '{ print substr($0, 69) t substr($0, 1, 64) }'
		grep '/$' "$names" | awk -v t="$tab" '{ print $0 t "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" }'
	} | LC_ALL=C sort -t "$tab" -k1,1 >"$work_dir/sums"
	# The unpacked tree must be exactly the zip's entries: nothing missing, nothing extra.
	cut -f1 "$work_dir/sums" >"$work_dir/found"
	LC_ALL=C sort "$names" | cmp -s - "$work_dir/found" || return 1
	awk -F "$tab" '{ print $2 "  " $1 }' "$work_dir/sums" | openssl dgst -sha256 -binary | openssl base64 -A |
		sed 's/^/h1:/'
}

# Checks a signed note (the tree head in a lookup answer) against a verifier key
# "name+hash+base64(0x01 || Ed25519 public key)". Returns 1 when the note is not signed by that
# key, 2 when openssl cannot check Ed25519, 3 when the key's hash is not that of its name and
# bytes, 4 when its last part is not an Ed25519 public key.
verify_note() {
	note=$1 key=$2
	key_name=${key%%+*}
	rest=${key#*+}
	key_hash=${rest%%+*}
	key_data=${rest#*+}
	# openssl's base64, not base64(1): macOS 12's spells its decode flag differently.
	printf '%s' "$key_data" | openssl base64 -d -A >"$work_dir/key_all" 2>/dev/null || return 4
	[ "$(od -An -tx1 -N1 "$work_dir/key_all" | tr -d ' \n')" = 01 ] || return 4
	[ "$(wc -c <"$work_dir/key_all" | tr -d ' ')" = 33 ] || return 4
	# As go does, refuse a key whose hash is not that of its name and key bytes: a mistyped key
	# would otherwise only ever look like a database that signs nothing.
	key_hash_of_key=$({
		printf '%s\n' "$key_name"
		cat "$work_dir/key_all"
	} | openssl dgst -sha256 -binary | od -An -tx1 -N4 | tr -d ' \n')
	[ "$key_hash_of_key" = "$key_hash" ] || return 3
	# The signed text ends at the blank line before the signatures, its final newline included.
	awk '/^$/ { exit } { print }' "$note" >"$work_dir/note_text"
	sig=$(awk -v n="$key_name" '
		/^$/ { blank = 1; next }
		blank && $1 == "\342\200\224" && $2 == n { print $3; exit }' "$note")
	[ -n "$sig" ] || return 1
	printf '%s' "$sig" | openssl base64 -d -A >"$work_dir/sig_all" 2>/dev/null || return 1
	[ "$(od -An -tx1 -N4 "$work_dir/sig_all" | tr -d ' \n')" = "$key_hash" ] || return 1
	tail -c +5 "$work_dir/sig_all" >"$work_dir/sig"
	# SubjectPublicKeyInfo for Ed25519: fixed 12-byte DER header, then the 32-byte key.
	{
		printf '\060\052\060\005\006\003\053\145\160\003\041\000'
		tail -c +2 "$work_dir/key_all"
	} >"$work_dir/key.der"
	# LibreSSL (macOS's openssl) has no raw-message Ed25519 verification.
	openssl pkeyutl -help 2>&1 | grep -q -- -rawin || return 2
	openssl pkey -pubin -inform DER -in "$work_dir/key.der" -out "$work_dir/key.pem" 2>/dev/null || return 2
	openssl pkeyutl -verify -pubin -inkey "$work_dir/key.pem" -rawin -in "$work_dir/note_text" \
		-sigfile "$work_dir/sig" >/dev/null 2>&1
}

install_dir=''
if [ -n "$install_version" ]; then
	install_dir=$sdk_dir/go$install_version
	toolchain_version=v0.0.1-go$install_version.$goos-$hardware
	if [ -x "$install_dir/bin/go" ] &&
		[ "$("$install_dir/bin/go" env GOVERSION 2>/dev/null)" = "go$install_version" ]; then
		say "go$install_version is already installed at $install_dir"
	elif [ "$dry_run" -eq 1 ]; then
		say "would change: download golang.org/toolchain@$toolchain_version through $proxy, verify it, unpack it to $install_dir"
	else
		[ -e "$install_dir" ] && fail "$install_dir exists but is not a working go$install_version; move it away first"
		if [ "$sumdb_supported" -eq 0 ] && [ "$insecure" -eq 0 ]; then
			fail "cannot verify Go $install_version: $proxy has no checksum database $sumdb_name; rerun with --insecure-skip-verify to install it unverified (nothing was changed)"
		fi
		for tool in unzip openssl; do
			have "$tool" || fail "--install-go needs $tool"
		done
		if [ ! -d "$sdk_dir" ]; then
			mkdir -p "$sdk_dir" || fail "cannot create $sdk_dir"
			created_sdk_dir=1
		fi
		sdk_dir_was_new=$created_sdk_dir
		work_dir=$(mktemp -d "$sdk_dir/.gomodproxy-install.XXXXXX") || fail "cannot create a work directory in $sdk_dir"
		zip_url=$proxy/golang.org/toolchain/@v/$toolchain_version.zip
		say "downloading $zip_url"
		started=$(now_ms)
		code=$(http_status "$zip_url" 1800 "$work_dir/toolchain.zip")
		[ "$code" = 200 ] || fail "cannot download $zip_url: $code (nothing was changed)"
		say "downloaded $(wc -c <"$work_dir/toolchain.zip" | tr -d ' ') bytes in $(($(now_ms) - started)) ms"
		mkdir "$work_dir/unpacked"
		prefix=golang.org/toolchain@$toolchain_version/
		unzip -Z1 "$work_dir/toolchain.zip" >"$work_dir/names" 2>/dev/null ||
			fail "cannot read the toolchain zip (nothing was changed)"
		if grep -v "^$prefix" "$work_dir/names" | grep -q .; then
			fail "the toolchain zip holds files outside $prefix (nothing was changed)"
		fi
		unzip -q "$work_dir/toolchain.zip" -d "$work_dir/unpacked" 2>/dev/null ||
			fail "cannot unpack the toolchain zip (nothing was changed)"
		if [ "$sumdb_supported" -eq 1 ]; then
			actual=$(zip_h1 "$work_dir/names" "$work_dir/unpacked") ||
				fail "cannot hash the toolchain zip (nothing was changed)"
			lookup_url=$proxy/sumdb/$sumdb_name/lookup/golang.org/toolchain@$toolchain_version
			curl_get "$lookup_url" >"$work_dir/lookup" 2>/dev/null ||
				fail "cannot get $lookup_url (nothing was changed)"
			expected=$(sed -n "s|^golang.org/toolchain $toolchain_version \(h1:[A-Za-z0-9+/=]*\)\$|\1|p" \
				"$work_dir/lookup" | head -n 1)
			[ -n "$expected" ] ||
				fail "$sumdb_name has no record of golang.org/toolchain@$toolchain_version (nothing was changed)"
			if [ -n "$sumdb_key" ]; then
				# The tree head after the record (from the second blank-line-separated part on).
				awk 'found { print } /^$/ && !found { found = 1 }' "$work_dir/lookup" >"$work_dir/note"
				verify_note "$work_dir/note" "$sumdb_key"
				case $? in
				0) say "the $sumdb_name answer is signed by its key" ;;
				2) say "note: this openssl cannot check Ed25519 signatures; relying on $proxy, which checks them" ;;
				3) fail "$sumdb_key is not a valid verifier key: its hash does not match its name and key (nothing was changed)" ;;
				4) fail "$sumdb_key is not a valid verifier key: its last part is not an Ed25519 public key (nothing was changed)" ;;
				*) fail "the $sumdb_name answer is not signed by $sumdb_key (nothing was changed)" ;;
				esac
			fi
			[ "$actual" = "$expected" ] ||
				fail "checksum mismatch for golang.org/toolchain@$toolchain_version: the zip hashes to $actual but $sumdb_name records $expected (nothing was installed)"
			say "verified: golang.org/toolchain@$toolchain_version is $expected, as $sumdb_name records"
		else
			warn "installing Go $install_version unverified (--insecure-skip-verify)"
		fi
		goroot=$work_dir/unpacked/$prefix
		# Zips do not keep the execute bit; the go command sets it the same way on download.
		chmod -R u+w "$goroot" 2>/dev/null
		# Toolchain zips hold nested go.mod files as _go.mod (so they stay one module); the go
		# command renames them back when it unpacks a toolchain, and so does this.
		find "$goroot" -type f -name _go.mod -exec sh -c \
			'for f do [ -e "${f%_go.mod}go.mod" ] || mv "$f" "${f%_go.mod}go.mod"; done' sh {} +
		for exe in "$goroot"bin/* "$goroot"pkg/tool/*/*; do
			[ -f "$exe" ] && chmod +x "$exe"
		done
		"$goroot"bin/go version >/dev/null 2>&1 || fail "the downloaded go does not run on this machine (nothing was changed)"
		mv "$goroot" "$install_dir" || fail "cannot move the toolchain to $install_dir"
		say "change: installed go$install_version at $install_dir"
		# Recorded at once, so --uninstall removes it even if a later step fails.
		created_sdk_dir=0 # it holds the installed go now
		ensure_state_dir
		state_put "installed_go=$install_dir" "sdk_dir_created=$sdk_dir_was_new"
		installed_now=1
	fi
	if [ -x "$install_dir/bin/go" ]; then
		go_bin=$install_dir/bin/go
		read_go_facts
	fi
fi

[ -n "$go_bin" ] || [ "$dry_run" -eq 1 ] || fail "no go to configure"

# --- configure ----------------------------------------------------------------------------------

want_GOPROXY="$proxy|$fallback"
want_GOSUMDB=''
[ "$sumdb_supported" -eq 1 ] && want_GOSUMDB="$sumdb $proxy/sumdb/$sumdb_name"
# shellcheck disable=SC2034 # read through eval "\$want_$var" below
want_GOPRIVATE=$private want_GONOSUMDB=$private

# Settings the environment overrides never reach go from the env file; say where they come from.
# GOFLAGS is not set here, but flags in it (-mod, -insecure) change what go asks the proxy.
for var in $managed_vars GOFLAGS; do
	is_set='' current=''
	eval "is_set=\${$var+set} current=\${$var-}"
	[ "$is_set" = set ] || continue
	where=''
	for file in .zshenv .zprofile .zshrc .zlogin .bash_profile .bash_login .profile .bashrc; do
		[ -f "$HOME/$file" ] || continue
		lines=$(grep -nE "^[[:space:]]*(export[[:space:]]+)?$var=" "$HOME/$file" | cut -d: -f1)
		for line in $lines; do where="$where $HOME/$file:$line"; done
	done
	if [ -n "$where" ]; then
		warn "$var is set in the environment ($var=$current), which overrides go env -w; it is set at$where — remove that line so the setting below takes effect"
	else
		warn "$var is set in the environment ($var=$current), which overrides go env -w (not found in your shell profiles; unset it where it is set)"
	fi
done

changes=0
# Counts a change about to be made; in a dry run prints it instead and fails, so it is skipped.
planned_change() {
	changes=$((changes + 1))
	if [ "$dry_run" -eq 1 ]; then
		say "would change: $1"
		return 1
	fi
	ensure_state_dir
}
if [ -n "$go_bin" ] && [ -z "$go_env_file" ]; then
	fail "$go_bin does not say where its env file is (go env GOENV); it may be too old"
fi
[ "$go_env_file" = off ] && fail "GOENV=off: go env -w cannot store settings"
# An empty wish leaves the setting alone: GOSUMDB when the proxy has no database, GOPRIVATE and
# GONOSUMDB when --private was not given.
for var in $managed_vars; do
	want=''
	eval "want=\$want_$var"
	[ -n "$want" ] || continue
	env_file_has "$var" && [ "$(env_file_value "$var")" = "$want" ] && continue
	planned_change "go env -w $var=$want" || continue
	if ! state_has goenv_file; then
		state_put "goenv_file=$go_env_file"
		if [ -f "$go_env_file" ]; then
			cp "$go_env_file" "$state_dir/goenv.orig" || fail "cannot write $state_dir/goenv.orig"
			state_put goenv_existed=1
		else
			state_put goenv_existed=0
			[ -d "${go_env_file%/*}" ] || state_put goenv_dir_created=1
		fi
		for saved in $managed_vars; do
			if env_file_has "$saved"; then state_put "had_$saved=$(env_file_value "$saved")"; fi
		done
	fi
	state_has "changed_$var" || state_put "changed_$var=1"
	"$go_bin" env -w "$var=$want" 2>/dev/null || fail "go env -w $var=$want failed"
	say "change: go env -w $var=$want"
done
if [ "$dry_run" -eq 0 ] && [ "$changes" -gt 0 ]; then
	cp "$go_env_file" "$state_dir/goenv.ours" || fail "cannot write $state_dir/goenv.ours"
fi

# Before the first change to FILE ($2), noted in the state as KEY ($1): a copy with its mode
# beside it, or that it did not exist, for --uninstall (undo_block) to go back to.
save_original() {
	state_has "$1" && return 0
	existed=0
	if [ -f "$2" ]; then
		cp -p "$2" "$2.gomodproxy-backup" || fail "cannot back $2 up"
		existed=1
	fi
	state_put "$1=$2" "$1_existed=$existed"
}

# The profile block is only needed for a go this script installed.
if [ -n "$install_dir" ]; then
	block=$(printf '%s\n%s\n%s' "$block_begin" "export PATH=\"\$HOME/sdk/go$install_version/bin:\$PATH\"" "$block_end")
	current_block=''
	[ -f "$profile" ] && current_block=$(profile_lines inside "$profile")
	if [ "$current_block" != "$block" ]; then
		if planned_change "add $sdk_dir/go$install_version/bin to PATH in $profile"; then
			save_original profile "$profile"
			{
				if [ -f "$profile" ]; then
					profile_lines outside "$profile"
				fi
				printf '%s\n' "$block"
			} | replace_file "$profile"
			cp "$profile" "$state_dir/profile.ours" || fail "cannot write $state_dir/profile.ours"
			backup_note=''
			[ -f "$profile.gomodproxy-backup" ] && backup_note=" (backup: $profile.gomodproxy-backup)"
			say "change: add $sdk_dir/go$install_version/bin to PATH in $profile$backup_note"
		fi
	fi
fi

# The block goes first: go stops reading at a `default` entry, and takes the first machine that
# matches. Only a checksum of the file is kept (the file holds the token); the user's own file
# is kept whole beside it until --uninstall puts it back.
if [ -n "$token" ]; then
	netrc_block=$(
		printf '%s\n' "$block_begin" "machine $netrc_host login gomodproxy password $token"
		[ -z "$netrc_host_port" ] || printf '%s\n' "machine $netrc_host_port login gomodproxy password $token"
		printf '%s\n' "$block_end"
	)
	current_netrc_block=''
	[ -f "$netrc_file" ] && current_netrc_block=$(profile_lines inside "$netrc_file")
	netrc_entry="machine $netrc_host${netrc_host_port:+ and $netrc_host_port} login gomodproxy password ******** in $netrc_file"
	if [ "$current_netrc_block" != "$netrc_block" ] && planned_change "write $netrc_entry"; then
		save_original netrc "$netrc_file"
		{
			printf '%s\n' "$netrc_block"
			if [ -f "$netrc_file" ]; then
				profile_lines outside "$netrc_file"
			fi
		} | replace_file "$netrc_file"
		chmod 600 "$netrc_file" || fail "cannot make $netrc_file private (chmod 600)"
		cksum <"$netrc_file" >"$state_dir/netrc.sum" || fail "cannot write $state_dir/netrc.sum"
		say "change: write $netrc_entry (mode 600)"
	fi
	[ -z "${NETRC:-}" ] ||
		warn "NETRC is set ($NETRC), so the entry went there; a shell without NETRC set reads ~/.netrc"
fi

if [ "$dry_run" -eq 1 ]; then
	[ "$changes" -eq 0 ] && say "already set up: nothing changed"
	say "dry run: nothing was changed"
	exit 0
fi
[ "$changes" -eq 0 ] && [ "${installed_now:-0}" = 0 ] && say "already set up: nothing changed"

# --- verify in a fresh login shell --------------------------------------------------------------

# A GOPATH and module cache of its own make go ask the proxy even for a module it has seen, and
# leave the user's caches as they were.
verify_dir=$(mktemp -d "${TMPDIR:-/tmp}/gomodproxy-verify.XXXXXX") || fail "cannot create a temporary directory"
# Runs go in a shell like the one a new Terminal window opens (interactive login, so every
# profile and rc file is read); only what follows the marker is go's, whatever the rc files print.
fresh_flags=-l
case $shell_name in zsh | bash) fresh_flags=-il ;; esac
in_fresh_shell() {
	fresh_out=$(env -i HOME="$HOME" USER="${USER:-}" LOGNAME="${LOGNAME:-}" SHELL="$login_shell" \
		PATH="$PATH" TERM="${TERM:-dumb}" TMPDIR="${TMPDIR:-/tmp}" \
		GOPATH="$verify_dir/gopath" GOMODCACHE="$verify_dir/mod" GOFLAGS=-modcacherw \
		"$login_shell" "$fresh_flags" -c 'echo; echo @gomodproxy-bootstrap@; '"$1" sh "$check_module" \
		</dev/null 2>"$verify_dir/stderr")
	fresh_status=$?
	printf '%s\n' "$fresh_out" | sed '1,/^@gomodproxy-bootstrap@$/d'
	[ "$fresh_status" -eq 0 ] || { sed 's/^/  /' "$verify_dir/stderr"; return 1; }
}
settings=$(in_fresh_shell 'go env GOPROXY GOSUMDB') || {
	printf '%s\n' "$settings"
	fail "a fresh $shell_name login shell cannot run go"
}
fresh_proxy=$(printf '%s\n' "$settings" | sed -n 1p)
fresh_sumdb=$(printf '%s\n' "$settings" | sed -n 2p)
[ "$fresh_proxy" = "$want_GOPROXY" ] ||
	fail "in a fresh $shell_name login shell GOPROXY is $fresh_proxy, not $want_GOPROXY: remove the GOPROXY setting from your shell startup files (see any warning above), then run this again"
say "verified: a fresh $shell_name login shell has GOPROXY=$fresh_proxy"
if [ -n "$want_GOSUMDB" ]; then
	[ "$fresh_sumdb" = "$want_GOSUMDB" ] ||
		fail "in a fresh $shell_name login shell GOSUMDB is $fresh_sumdb, not $want_GOSUMDB: remove the GOSUMDB setting from your shell startup files (see any warning above), then run this again"
	say "verified: GOSUMDB=$fresh_sumdb"
fi
started=$(now_ms)
# shellcheck disable=SC2016 # expanded by the fresh shell
listed=$(in_fresh_shell 'go list -m -json "$1"') || {
	printf '%s\n' "$listed" | sed 's/^/  /'
	fail "in a fresh $shell_name login shell, go could not resolve $check_module through $proxy"
}
elapsed=$(($(now_ms) - started))
resolved=$(printf '%s\n' "$listed" | sed -n 's/^[[:space:]]*"Version": "\(.*\)",*$/\1/p' | head -n 1)
say "verified: go list -m -json $check_module resolved ${resolved:-it} through the proxy in $elapsed ms"
