#!/usr/bin/env bash
# clang-tidy over the production C++ (proxy/ monitor/ config/) with the repository's .clang-tidy,
# two files at a time. `tidy.sh` checks only the sources changed since the commit in
# .ci/tidy-base (a changed header selects every .cpp that includes it, directly or through other
# headers); `tidy.sh --all` checks the whole tree and is what is run before moving that base.
# Needs $BUILD_DIR/compile_commands.json (the Makefile configures it). Exits non-zero on any finding.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build}
TIDY_JOBS=${TIDY_JOBS:-2}
CLANG_TIDY=${CLANG_TIDY:-clang-tidy}
base_file=.ci/tidy-base
dirs=(proxy monitor config)

all_sources() { git ls-files -co --exclude-standard -- "${dirs[@]}" | grep '\.cpp$' || true; }

select_all=0
[ "${1:-}" = "--all" ] && select_all=1

if [ $select_all -eq 0 ]; then
  base=$({ grep -v '^#' "$base_file" 2>/dev/null || true; } | head -n 1 | tr -d '[:space:]')
  if ! git cat-file -e "${base}^{commit}" 2>/dev/null; then
    echo "tidy: base ${base:-<none>} from $base_file is not in this clone; checking the whole tree" >&2
    select_all=1
  fi
fi

if [ $select_all -eq 1 ]; then
  mapfile -t sources < <(all_sources)
else
  # Committed and uncommitted changes since the base, and files git does not track yet.
  mapfile -t changed < <({
    git diff --name-only "$base" -- "${dirs[@]}" .clang-tidy scripts/tidy.sh
    git ls-files -o --exclude-standard -- "${dirs[@]}"
  } | sort -u)
  # A new check or a new way of selecting files may find things anywhere.
  if printf '%s\n' "${changed[@]}" | grep -qxE '\.clang-tidy|scripts/tidy\.sh'; then
    echo "tidy: .clang-tidy or scripts/tidy.sh changed since $base; checking the whole tree" >&2
    mapfile -t sources < <(all_sources)
  else
    declare -A selected=()
    headers=()
    for f in "${changed[@]}"; do
      [ -f "$f" ] || continue
      case "$f" in
        *.cpp) selected[$f]=1 ;;
        *.hpp) headers+=("$f") ;;
      esac
    done
    # Closes the changed headers over the headers that include them, then takes every .cpp
    # including one. Includes are matched by file name, which may select a few files too many.
    declare -A seen_header=()
    while [ ${#headers[@]} -gt 0 ]; do
      h=${headers[0]}
      headers=("${headers[@]:1}")
      [ -n "${seen_header[$h]:-}" ] && continue
      seen_header[$h]=1
      name=$(basename "$h")
      while IFS= read -r includer; do
        case "$includer" in
          *.cpp) selected[$includer]=1 ;;
          *.hpp) headers+=("$includer") ;;
        esac
      done < <(git grep -lE "^#include \"([^\"]*/)?${name//./\\.}\"" -- "${dirs[@]}" || true)
    done
    mapfile -t sources < <(printf '%s\n' "${!selected[@]}" | grep . | sort || true)
  fi
fi

if [ ${#sources[@]} -eq 0 ]; then
  echo "tidy: no C++ sources changed since $base"
  exit 0
fi
echo "tidy: ${#sources[@]} file(s), $TIDY_JOBS at a time"

# GCC-only warning flags in the compile commands (-Wno-restrict) are unknown to clang.
status=0
# shellcheck disable=SC2016 # the per-file script expands its own arguments
printf '%s\0' "${sources[@]}" |
  xargs -0 -n 1 -P "$TIDY_JOBS" bash -c '
    start=$(date +%s)
    if out=$("$0" -p "$1" --quiet --extra-arg=-Wno-unknown-warning-option "$2" 2>&1); then
      echo "tidy: ok   $2 ($(( $(date +%s) - start ))s)"
    else
      printf "%s\n" "$out" | grep -vE "^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$" >&2
      echo "tidy: FAIL $2 ($(( $(date +%s) - start ))s)"
      exit 1
    fi' "$CLANG_TIDY" "$BUILD_DIR" || status=$?
[ $status -eq 0 ] || { echo "tidy: findings above (.clang-tidy, docs/code-health.md)" >&2; exit 1; }

# A whole-tree pass on a checkout without local changes makes HEAD the new base.
if [ $select_all -eq 1 ] && [ "${1:-}" = "--all" ]; then
  if [ -z "$(git status --porcelain -- "${dirs[@]}" .clang-tidy scripts/tidy.sh)" ]; then
    head=$(git rev-parse HEAD)
    printf '%s\n%s\n' "# make tidy checks the C++ changed since this commit, at which make tidy-all passed." \
      "$head" > "$base_file"
    echo "tidy: whole tree clean; $base_file now names $head (commit it)"
  else
    echo "tidy: whole tree clean, but with local changes; $base_file left as it was"
  fi
fi
