# A name held by a leftover of another kind: the error says so and names
# the fix, which works.
. "$(dirname "$0")/lib.sh"
N="$P-mb"
mapshare send "$N" 'left behind'
expect_status 1 mapshare lock "$N" -- true 2>err
one_line err
grep -q "is a mailbox, not a mutex" err || fail "$(cat err)"
grep -q "mapshare rm $N" err || fail "no fix named: $(cat err)"
mapshare rm "$N"
[ "$(mapshare lock "$N" -- echo free)" = free ] || fail "the name is still blocked"
# gc keeps the persistent mailbox `send` makes, gc --all removes it.
mapshare send "$N" kept
mapshare gc >/dev/null
exists "$N" || fail "gc removed a persistent mailbox"
mapshare info "$N" | grep -Eq '^persistent +yes' || fail "send's mailbox is not persistent"
mapshare gc --all >/dev/null
gone "$N" || fail "gc --all kept it"
