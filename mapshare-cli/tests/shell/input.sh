# pub reads bounded records: a line longer than --max-message is refused as
# soon as it passes the limit (an endless one too), with a one-line error.
. "$(dirname "$0")/lib.sh"
R="$P-long"
s=$(status sh -c "tr -d '\n' < /dev/zero | mapshare pub '$R' --max-message 1000 2>err")
[ "$s" = 1 ] || fail "endless line: exit $s, $(cat err)"
one_line err
grep -q "line 1 is longer than the ring's largest message, 1000 bytes" err || fail "$(cat err)"
gone "$R" || fail "$R left behind"
# Exactly the limit is fine; a trailing \r is dropped in line mode.
mapshare sub "$R" --max-message 4 > got.txt &
s1=$!
wait_until "the subscriber" attached "$R" 1
printf 'abcd\r\nxy\n' | mapshare pub "$R"
expect_status 0 wait "$s1"
[ "$(cat got.txt)" = "$(printf 'abcd\nxy')" ] || fail "got $(od -c got.txt)"
# --null: NUL-terminated records, byte for byte (newlines and \r kept).
mapshare sub "$R" --null > got.bin &
s2=$!
wait_until "the subscriber" attached "$R" 1
printf 'a\r\nb\0\0c' | mapshare pub "$R" --null
expect_status 0 wait "$s2"
printf 'a\r\nb\0\0c\0' > want.bin
cmp got.bin want.bin || fail "--null: $(od -c got.bin)"
