#!/usr/bin/env bash
# End-to-end runs of mapshare.exe under Wine, as a user types them (called
# by ci/windows.sh, which sets up WINEPREFIX and the ProcessPrng stub):
#  1. send/recv of a multi-script UTF-8 text, receiver started first;
#  2. the same, sender started first;
#  3. `lock NAME -- CMD` whose holder is killed (`taskkill /F`, i.e.
#     TerminateProcess) while a second locker waits: the holder's command
#     ends with it (a kill-on-close job), the waiter is not blocked and
#     says it recovered the lock; a third locker then takes it cleanly;
#  4. `mapshare demo`.
# Usage: ci/windows/e2e.sh path/to/mapshare.exe
set -euo pipefail
exe=$1
# Arguments reach Windows programs as UTF-16 converted from the locale's
# charset: a UTF-8 locale, so the text arrives intact.
export LC_ALL=C.UTF-8
shm="$WINEPREFIX/drive_c/users/$(id -un)/AppData/Local/mapshare"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
text='Grüße — Привет — 你好，世界 — مرحبا — नमस्ते — 🦀'
P="e2e-$$"

fail() { echo "e2e: FAILED: $*" >&2; exit 1; }
ms() { wine "$exe" "$@"; }
# Waits (up to 30 s) until the named segment's file exists.
wait_for_segment() {
  for _ in $(seq 300); do [ -e "$shm/mapshare.$1" ] && return 0; sleep 0.1; done
  fail "segment $1 never appeared"
}
# Waits (up to 30 s) until `info NAME` lists N attached processes.
wait_attached() {
  for _ in $(seq 300); do
    n=$(ms info "$1" --json 2>/dev/null | grep -c '"pid"' || true)
    [ "$n" = "$2" ] && return 0
    sleep 0.1
  done
  fail "$1 never had $2 attached process(es)"
}

# 1. Receiver first.
ms recv "$P-a" --timeout 30 >"$scratch/a.out" &
r=$!
wait_for_segment "$P-a"
ms send "$P-a" "$text"
wait "$r" || fail "recv (started first) exited $?"
printf '%s\n' "$text" | cmp - "$scratch/a.out" || fail "receiver-first text differs"
ms rm "$P-a" # the send made the mailbox persistent, as on Linux
echo "e2e: send/recv, receiver first: ok"

# 2. Sender first (send creates the mailbox persistent; recv takes the message).
ms send "$P-b" "$text"
ms recv "$P-b" --timeout 30 >"$scratch/b.out" || fail "recv (started second) exited $?"
printf '%s\n' "$text" | cmp - "$scratch/b.out" || fail "sender-first text differs"
ms rm "$P-b"
echo "e2e: send/recv, sender first: ok"

# 3. A lock holder killed while a second locker waits. The holder's command
#    is another mapshare.exe waiting on a mailbox, ended by a send below.
ms lock "$P-l" -- "$exe" recv "$P-sleep" --timeout 60 >/dev/null &
holder=$!
wait_for_segment "$P-sleep"
ms lock "$P-l" --timeout 30 -- cmd /c echo second >"$scratch/w.out" 2>"$scratch/w.err" &
waiter=$!
wait_attached "$P-l" 2
holder_pid=$(ms info "$P-l" --json | tr -d ' \r' | grep '"pid":' | head -1 | sed 's/[^0-9]//g')
[ -n "$holder_pid" ] || fail "no holder pid"
ms info "$P-l" --json | grep -q "\"pid\": $holder_pid" || fail "holder pid $holder_pid not attached"
wait_attached "$P-sleep" 1 # the holder's command waits on its mailbox
wine taskkill /F /PID "$holder_pid" >/dev/null 2>&1 || fail "taskkill /F /PID $holder_pid failed"
# The holder's command ends with it (a kill-on-close job), so it never
# runs beside the waiter's.
wait_attached "$P-sleep" 0
wait "$waiter" || fail "the waiting locker exited $? ($(cat "$scratch/w.err"))"
grep -q "recovered the lock from a dead owner" "$scratch/w.err" \
  || fail "the waiter did not say it recovered: $(cat "$scratch/w.err")"
grep -q second "$scratch/w.out" || fail "the waiter's command did not run"
wait "$holder" 2>/dev/null || true
ms lock "$P-l" --timeout 10 -- cmd /c echo third >"$scratch/t.out" 2>"$scratch/t.err" \
  || fail "a third locker failed: $(cat "$scratch/t.err")"
[ ! -s "$scratch/t.err" ] || fail "the third locker said: $(cat "$scratch/t.err")"
ms send "$P-sleep" done >/dev/null
ms rm "$P-sleep" 2>/dev/null || true
echo "e2e: lock holder killed (taskkill /F): the waiter recovered it: ok"

# 4. The demo.
ms demo >"$scratch/demo.out" || { cat "$scratch/demo.out"; fail "demo exited $?"; }
grep -q "ok: the text round-tripped byte for byte" "$scratch/demo.out" \
  || { cat "$scratch/demo.out"; fail "demo output"; }
echo "e2e: demo: ok"

for f in "$shm"/mapshare."$P"*; do
  [ -e "$f" ] && fail "left behind: $f"
done
echo "e2e: 4 passed, 0 failed"
