#!/usr/bin/env bash
# Runs every fuzz target in the module for a short time each (default 10s).
#
#   scripts/fuzz.sh [FUZZTIME] [PACKAGE-PATTERN...]
#
# Packages are found by their `func Fuzz` declarations (no test binary is built
# for packages without one). A package whose tests do not build counts as a
# failure instead of being skipped silently. Each target runs alone (^name$, so
# FuzzParse does not also select FuzzParseLine). A summary with the execution
# count of every target is printed at the end; the exit status is 1 if any
# target failed or could not be listed.
#
# FUZZMINIMIZETIME (default 2s) bounds each minimization. Go minimizes every
# new interesting input, not only failures, and at its default of 60s a
# target with kilobyte seeds (jobs/jobmaker FuzzParseTemplate) spent whole
# 10s runs minimizing, at "0 execs/s". A failing input is still written out;
# it may just be less minimal.
set -uo pipefail
fuzztime=${1:-10s}
minimizetime=${FUZZMINIMIZETIME:-2s}
shift || true
cd "$(dirname "$0")/.."
export GOFLAGS=${GOFLAGS:--buildvcs=false}

patterns=("$@")
[ ${#patterns[@]} -eq 0 ] && patterns=(./...)

# Directories (of this module's packages) holding a fuzz target.
mapfile -t dirs < <(go list -f '{{.Dir}}' "${patterns[@]}")
pkgs=()
for d in "${dirs[@]}"; do
  if grep -qs '^func Fuzz[A-Z0-9_a-z]*(' "$d"/*_test.go; then
    pkgs+=("$d")
  fi
done

status=0
summary=()
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for dir in "${pkgs[@]}"; do
  pkg=$(go list "$dir")
  if ! targets=$(go test -list '^Fuzz' "$pkg" 2>"$log"); then
    cat "$log" >&2
    summary+=("FAIL  $pkg: tests do not build")
    status=1
    continue
  fi
  for target in $(printf '%s\n' "$targets" | grep '^Fuzz' || true); do
    echo "== $pkg $target ($fuzztime)"
    if go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimizetime" "$pkg" 2>&1 | tee "$log"; then
      result=ok
    else
      result=FAIL
      status=1
    fi
    execs=$(grep -o 'execs: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    summary+=("$(printf '%-4s  %-50s %-28s %s execs' "$result" "$pkg" "$target" "${execs:-?}")")
  done
done
echo
echo "== fuzz summary ($fuzztime each)"
printf '%s\n' "${summary[@]}"
exit $status
