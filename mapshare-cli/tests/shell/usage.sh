# Errors are one line on stderr; usage errors exit 2; names starting with
# '-' work after '--'.
. "$(dirname "$0")/lib.sh"
for args in "recv bad/name" "send .hidden x" "lock 'sp ace' -- true" "bogus" "recv" \
            "send x y --timeout -1" "send x y --timeout=-1" "sub x --count many"; do
  eval "expect_status 2 mapshare $args" 2>err
  one_line err
done
mapshare send x y --timeout -1 2>a || true
mapshare send x y --timeout=-1 2>b || true
cmp a b || fail "--timeout -1 and --timeout=-1 differ: $(cat a b)"
grep -q "seconds must be a finite number >= 0" a || fail "$(cat a)"
# A name starting with '-' after '--'.
D="-$P-dash"
expect_status 3 mapshare recv --timeout 0.1 -- "$D" 2>err
one_line err
grep -q -- "$D: timed out" err || fail "$(cat err)"
mapshare send -- "$D" 'dash ok'
[ "$(mapshare recv -- "$D")" = 'dash ok' ] || fail "recv -- $D"
mapshare rm -- "$D"
# Timeouts: exit 3, one line.
expect_status 3 mapshare recv "$P-t" --timeout 0.05 2>err
one_line err
gone "$P-t" || fail "recv's mailbox left after a timeout"
