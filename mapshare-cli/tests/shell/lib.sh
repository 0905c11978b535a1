# Sourced by every script here. The runner (tests/shell.rs) puts the
# freshly built `mapshare` first on PATH, runs each script in a scratch
# directory with bash, and gives it a unique name prefix in $P, so the
# scripts type exactly what a user types and never collide when run in
# parallel. Afterwards it checks nothing named "$P*" is left in /dev/shm.
set -euo pipefail

fail() { echo "FAIL: $*" >&2; exit 1; }

# wait_until WHAT CMD...: polls CMD every 10 ms (a hang guard of 60 s, not
# a speed assertion: it only ends a test that would otherwise hang).
wait_until() {
  local what=$1; shift
  local i
  for i in $(seq 1 6000); do
    if "$@"; then return 0; fi
    sleep 0.01
  done
  fail "still waiting for: $what"
}

# status CMD...: runs CMD and prints its exit status (never fails).
status() { local s=0; "$@" || s=$?; echo "$s"; }

# expect_status N CMD...: CMD must exit with status N.
expect_status() {
  local want=$1; shift
  local got=0
  "$@" || got=$?
  [ "$got" = "$want" ] || fail "'$*' exited $got, expected $want"
}

# one_line FILE: FILE holds exactly one line, starting with "mapshare: ".
one_line() {
  [ "$(wc -l < "$1")" = 1 ] || fail "$1 is not one line: $(cat "$1")"
  grep -q '^mapshare: ' "$1" || fail "$1 does not start with 'mapshare: ': $(cat "$1")"
}

exists() { [ -e "/dev/shm/mapshare.$1" ]; }
gone() { [ ! -e "/dev/shm/mapshare.$1" ]; }
attached() { mapshare info "$1" 2>/dev/null | grep -Eq "^attached +$2 live"; }
