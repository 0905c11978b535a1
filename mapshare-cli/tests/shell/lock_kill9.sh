# `mapshare lock` is flock(1) under kill -9: the guarded command stays
# protected until it exits, and the next locker is told it recovered a
# dead owner's lock, persistent or not.
. "$(dirname "$0")/lib.sh"
for persist in "" "--persistent"; do
  L="$P-lock$persist"
  rm -f inside done
  mapshare lock $persist "$L" -- sh -c 'touch inside; sleep 1; rm inside; touch done' &
  holder=$!
  wait_until "the first command to run" test -e inside
  kill -9 "$holder"
  wait "$holder" 2>/dev/null || true
  # Runs only once the first command has finished: never both at once.
  mapshare lock $persist "$L" -- sh -c 'test ! -e inside && test -e done && echo alone' \
    >out 2>err
  [ "$(cat out)" = alone ] || fail "the second command ran beside the first: $(cat out err)"
  grep -q "recovered the lock from a dead owner" err || fail "no dead-owner report: $(cat err)"
  [ "$persist" = "" ] || mapshare rm "$L"
done
# A lock held normally is not reported as recovered.
mapshare lock "$P-plain" -- true 2>err
[ ! -s err ] || fail "unexpected stderr: $(cat err)"
