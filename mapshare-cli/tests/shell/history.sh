# A subscriber that joins late with --history N starts with the last N
# messages the ring still holds (at most its capacity - 1), then goes on
# live; without --history it gets only what comes after it joined.
. "$(dirname "$0")/lib.sh"
R="$P-hist"
published() { mapshare info "$1" 2>/dev/null | grep -Eq "^pubsub .* $2 published"; }
mkfifo in.fifo
mapshare pub "$R" --capacity 8 < in.fifo &
p=$!
exec 3> in.fifo
seq 1 10 >&3
wait_until "ten messages to be published" published "$R" 10
mapshare sub "$R" --history 3 --count 5 > three.txt &
a=$!
mapshare sub "$R" --history 100 --count 9 > most.txt &
b=$!
mapshare sub "$R" --count 2 > none.txt &
c=$!
wait_until "the late subscribers to join" attached "$R" 4
seq 11 12 >&3
exec 3>&-
expect_status 0 wait "$a"
expect_status 0 wait "$b"
expect_status 0 wait "$c"
expect_status 0 wait "$p"
seq 8 12 | cmp - three.txt || fail "--history 3: $(tr '\n' ' ' < three.txt)"
seq 4 12 | cmp - most.txt || fail "--history 100 (capacity 8): $(tr '\n' ' ' < most.txt)"
seq 11 12 | cmp - none.txt || fail "no --history: $(tr '\n' ' ' < none.txt)"
expect_status 2 mapshare sub "$R" --history -1
