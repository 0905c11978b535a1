# Subscribers started before the publisher receive everything it publishes,
# in order, and exit 0 once it is gone and everything is read.
. "$(dirname "$0")/lib.sh"
R="$P-nums"
mapshare sub "$R" > a.txt &
a=$!
mapshare sub "$R" > b.txt &
b=$!
wait_until "both subscribers to join" attached "$R" 2
seq 1 2000 | mapshare pub "$R"
expect_status 0 wait "$a"
expect_status 0 wait "$b"
seq 1 2000 > want.txt
cmp a.txt want.txt || fail "first subscriber: $(wc -l < a.txt) lines"
cmp b.txt want.txt || fail "second subscriber: $(wc -l < b.txt) lines"
# The other order still works with --wait-subscribers.
seq 1 3 | mapshare pub "$R" --wait-subscribers 1 &
p=$!
[ "$(mapshare sub "$R")" = "$(printf '1\n2\n3')" ] || fail "pub first, sub second"
expect_status 0 wait "$p"
