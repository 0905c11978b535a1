# serve/request: a shell script offers a local service and calls it; 8
# concurrent callers each get only their own answer; either start order;
# a server killed with SIGKILL never hangs its callers, and a restarted
# one takes over; exit statuses; nothing left behind.
. "$(dirname "$0")/lib.sh"
S="$P-svc"
# The server runs CMD once per request: request on stdin, stdout back.
mapshare serve "$S" -- sh -c 'tr a-z A-Z; printf " (pid %s)" $$' &
srv=$!
wait_until "the server" attached "$S" 1
out=$(mapshare request "$S" 'grüß dich 🦀')
case "$out" in "GRüß DICH 🦀 (pid "*")") ;; *) fail "got '$out'";; esac
# 8 concurrent callers: each gets the answer to its own request.
for i in 1 2 3 4 5 6 7 8; do
  (r=$(mapshare request "$S" "caller-$i-$(printf 'x%.0s' $(seq 1 $i))") || exit 1
   case "$r" in "CALLER-$i-$(printf 'X%.0s' $(seq 1 $i)) (pid "*")") ;; *) echo "caller $i got '$r'" >&2; exit 1;; esac) &
done
for j in $(jobs -p); do
  [ "$j" = "$srv" ] && continue
  wait "$j" || fail "a caller got another's answer (or none)"
done
# Killed with SIGKILL while a request waits: the caller is told, never hangs.
kill -9 "$srv"; wait "$srv" 2>/dev/null || true
mapshare serve "$S" -- sh -c 'echo $$ > slow.pid; exec sleep 30 2>/dev/null' &
slow=$!
wait_until "the slow server" attached "$S" 1
mapshare request "$S" 'doomed' 2>err &
caller=$!
wait_until "the request to reach the server" test -s slow.pid
kill -9 "$slow"; wait "$slow" 2>/dev/null || true
expect_status 1 wait "$caller"
kill "$(cat slow.pid)" 2>/dev/null || true # its command, orphaned
one_line err
grep -q "the server went away before it answered" err || fail "$(cat err)"
# A restarted server takes the name over.
mapshare serve "$S" --count 1 -- cat &
srv=$!
wait_until "the restarted server" attached "$S" 1
[ "$(mapshare request "$S" again)" = again ] || fail "restarted server"
expect_status 0 wait "$srv"
# The other start order: the caller first, the server later.
mapshare request "$S" early > early.txt &
caller=$!
wait_until "the early caller" attached "$S" 1
mapshare serve "$S" --count 1 -- rev
expect_status 0 wait "$caller"
[ "$(cat early.txt)" = ylrae ] || fail "early caller got '$(cat early.txt)'"
# Nobody serves: a timeout is exit status 3, and the service is removed.
s=$(status mapshare request "$S" lonely --timeout 0.2 2>err)
[ "$s" = 3 ] || fail "timeout: exit $s"
one_line err
gone "$S" || fail "$S left behind"
