# SIGINT, SIGTERM and SIGHUP end a waiting verb with 128 + the signal and
# leave nothing behind that its lifetime rule says should go.
. "$(dirname "$0")/lib.sh"
i=0
for sig in INT TERM HUP; do
  case $sig in INT) code=130 ;; TERM) code=143 ;; HUP) code=129 ;; esac
  for verb in recv sub lock pub; do
    i=$((i + 1))
    N="$P-$verb-$i"
    case $verb in
      recv) mapshare recv "$N" & ;;
      sub) mapshare sub "$N" & ;;
      lock)
        # Waiting for a lock someone else holds.
        mapshare lock "$N" -- sleep 600 &
        holder=$!
        wait_until "the holder" exists "$N"
        mapshare lock "$N" -- true &
        ;;
      pub)
        # Its stdin a FIFO we hold open: it waits for input.
        mkfifo "in$i"
        mapshare pub "$N" < "in$i" &
        exec 3> "in$i"
        ;;
    esac
    pid=$!
    if [ "$verb" = lock ]; then
      wait_until "the waiter to attach" attached "$N" 2
    else
      wait_until "$verb to create $N" exists "$N"
    fi
    kill -s "$sig" "$pid"
    expect_status "$code" wait "$pid"
    if [ "$verb" = lock ]; then
      exists "$N" || fail "the holder's mutex went with the waiter"
      kill -TERM "$holder"   # forwarded to its sleep; then it unlocks
      expect_status 143 wait "$holder"
    fi
    if [ "$verb" = pub ]; then exec 3>&-; fi
    gone "$N" || fail "$verb left $N behind after SIG$sig"
  done
done
