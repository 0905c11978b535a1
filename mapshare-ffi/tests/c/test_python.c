/*
 * The C API against the Python binding, across processes. Every child is
 * `$MAPSHARE_PYTHON -I -c SCRIPT ARGS...` (a Python with the `mapshare`
 * package and numpy importable; ci/c.sh sets it to target/py-venv/bin/python),
 * spawned as test_procs spawns the `mapshare` CLI; the scripts are the
 * PY_* strings below, the segment names their arguments:
 *
 *   C mailbox send -> Python Mailbox.recv   text, UTF-8, binary with NULs and
 *                                            a max_message-long message; the
 *                                            child prints each as hex
 *   Python Mailbox.send -> C recv            bytes, UTF-8, all 256 byte values,
 *                                            a numpy array (its bytes)
 *   C publisher -> Python Subscriber         1000 UTF-8 messages; the child
 *                                            iterates until the publisher
 *                                            leaves and checks every one in
 *                                            order
 *   Python Publisher -> C subscriber         1000 messages in order, then
 *                                            DISCONNECTED
 *   C Sender -> Python Receiver              Unicode payloads (combining
 *                                            marks, an embedded NUL, 4-byte
 *                                            characters, 2000 bytes), checked
 *                                            byte for byte on both sides
 *   Python Mutex holder SIGKILLed -> C       OWNER_DIED with the lock held
 *   Python Shared (numpy structured dtype,   read in C as struct record with
 *     align=True, type_name="Record")        layout {"Record", 48, 8}; other
 *                                            names, sizes and alignments get
 *                                            LAYOUT_MISMATCH; C writes back,
 *                                            Python reads it
 *
 * Every segment has a `c-PID-` name made here and removed at exit, also
 * after a failed check (children still running are killed first). Waits
 * are bounded (30 s), an alarm ends a run that hangs anyway; no upper bound
 * on time is asserted.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <stddef.h>

#include "common.h"

#define WAIT (30000 * MS) /* the longest any step may wait */
#define WAIT_MS 30000

static const char *g_py;

/* ---- children ---- */

/* Python children not yet reaped: killed at exit, so that a failed check
 * does not leave one sleeping (or holding a lock) behind. */
static pid_t g_kids[16];
static int g_nkids;

static void kill_kids(void) {
    for (int i = 0; i < g_nkids; i++) {
        if (g_kids[i] > 0) {
            kill(g_kids[i], SIGKILL);
            (void)waitpid(g_kids[i], NULL, 0);
        }
    }
    g_nkids = 0;
}

/* $MAPSHARE_PYTHON, which must be set: never skipped. */
static const char *py_path(void) {
    const char *p = getenv("MAPSHARE_PYTHON");
    if (!p || !*p) FAIL("MAPSHARE_PYTHON is not set (a Python with the mapshare package; ci/c.sh sets it)");
    if (access(p, X_OK) != 0) FAIL("MAPSHARE_PYTHON=%s is not executable", p);
    return p;
}

/* Starts `python -I -c SCRIPT A1 A2` (-I: the working directory, which holds
 * the Rust crate's mapshare/ folder, is not on sys.path). */
static pid_t spawn_py(const char *script, const char *a1, const char *a2, int *to_child, int *from_child) {
    char *argv[] = {(char *)g_py, "-I", "-c", (char *)script, (char *)a1, (char *)a2, NULL};
    if (g_nkids == (int)(sizeof g_kids / sizeof g_kids[0])) FAIL("too many children");
    pid_t pid = spawn(argv, to_child, from_child);
    g_kids[g_nkids++] = pid;
    return pid;
}

static int wait_py(pid_t pid) {
    int st = wait_child(pid);
    for (int i = 0; i < g_nkids; i++)
        if (g_kids[i] == pid) g_kids[i] = 0;
    return st;
}

/* Reads one line (without its '\n') from `fd`, waiting at most 30 s. */
static void read_line(int fd, char *buf, size_t cap) {
    size_t n = 0;
    uint64_t until = now_ns() + WAIT;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, WAIT_MS);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) FAIL("poll: %s", strerror(errno));
        if (r == 0 || now_ns() > until) FAIL("no line from the Python child within 30 s (got \"%.*s\")", (int)n, buf);
        char c;
        ssize_t k = read(fd, &c, 1);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) FAIL("read: %s", strerror(errno));
        if (k == 0) FAIL("the Python child closed its stdout (got \"%.*s\")", (int)n, buf);
        if (c == '\n') break;
        if (n + 1 >= cap) FAIL("line too long");
        buf[n++] = c;
    }
    buf[n] = 0;
}

/* Appends the lowercase hex of `len` bytes (as Python's bytes.hex()). */
static void hex_append(char *out, size_t cap, const void *data, size_t len) {
    size_t n = strlen(out);
    if (n + 2 * len + 1 > cap) FAIL("hex buffer too small");
    const unsigned char *d = data;
    for (size_t i = 0; i < len; i++) {
        snprintf(out + n, 3, "%02x", d[i]);
        n += 2;
    }
}

struct bytes {
    const char *p;
    size_t len;
};
#define B(lit) {lit, sizeof(lit) - 1} /* a literal with its length, NULs included */

/* ---- Python scripts (sys.argv[1:] are the arguments) ---- */

/* Receives N messages on mailbox NAME, prints "LEN HEX" for each. */
static const char PY_MB_RECV[] =
    "import sys, mapshare\n"
    "name, n = sys.argv[1], int(sys.argv[2])\n"
    "with mapshare.Mailbox.open(name) as mb:\n"
    "    for _ in range(n):\n"
    "        m = mb.recv(timeout=30)\n"
    "        print(len(m), m.hex())\n";

/* Sends these messages on mailbox NAME. */
static const char PY_MB_SEND[] =
    "import sys, numpy as np, mapshare\n"
    "with mapshare.Mailbox.open(sys.argv[1]) as mb:\n"
    "    mb.send(b'hello from Python', timeout=30)\n"
    "    mb.send('h\\u00e9llo \\u2713 \\U0001f40d'.encode(), timeout=30)\n"
    "    mb.send(bytes(range(256)), timeout=30)\n"
    "    mb.send(np.arange(5, dtype='<u4') * 3, timeout=30)\n";

/* Iterates over ring NAME until the publisher leaves; every message must
 * be "message I \u2192 \u00fc" in order. */
static const char PY_SUB[] =
    "import sys, mapshare\n"
    "n = 0\n"
    "with mapshare.Subscriber.open(sys.argv[1]) as s:\n"
    "    for m in s:\n"
    "        want = f'message {n} \\u2192 \\u00fc'.encode()\n"
    "        if m != want:\n"
    "            sys.exit(f'message {n}: got {m!r}, expected {want!r}')\n"
    "        n += 1\n"
    "print('in order:', n)\n";

/* Publishes N messages "py I \u00e9" on ring NAME once a subscriber is there. */
static const char PY_PUB[] =
    "import sys, mapshare\n"
    "with mapshare.Publisher.open(sys.argv[1]) as p:\n"
    "    p.wait_subscribers(1, timeout=30)\n"
    "    for i in range(int(sys.argv[2])):\n"
    "        p.publish(f'py {i} \\u00e9'.encode(), timeout=30)\n";

/* Receives on channel NAME until every sender has gone; checks each
 * message decodes to the same string as written here, prints its hex. */
static const char PY_CHAN_RECV[] =
    "import sys, mapshare\n"
    "want = ['gr\\u00fc\\u00df dich \\U0001f44b',\n"
    "        '\\u65e5\\u672c\\u8a9e\\u306e\\u30c6\\u30ad\\u30b9\\u30c8',\n"
    "        'e\\u0301 \\u2260 \\u00e9',\n"
    "        '\\u0000nul inside',\n"
    "        '\\U0001f980 \\u03a9\\u2248\\u00e7\\u221a\\u222b',\n"
    "        '\\U0001f980' * 500]\n"
    "with mapshare.Receiver.open(sys.argv[1]) as rx:\n"
    "    print('ready', flush=True)\n"
    "    got = list(rx)\n"
    "for g in got:\n"
    "    print(g.hex())\n"
    "if len(got) != len(want):\n"
    "    sys.exit(f'{len(got)} messages, expected {len(want)}')\n"
    "for i, (g, w) in enumerate(zip(got, want)):\n"
    "    if g != w.encode() or g.decode('utf-8') != w:\n"
    "        sys.exit(f'message {i}: got {g!r}, expected {w!r}')\n"
    "print('decoded', len(got))\n";

/* Locks mutex NAME, notifies event READY, sleeps until killed. */
static const char PY_HOLD_LOCK[] =
    "import sys, time, mapshare\n"
    "m = mapshare.Mutex.open(sys.argv[1])\n"
    "g = m.lock(timeout=30)\n"
    "assert g.locked\n"
    "mapshare.Event.open(sys.argv[2]).notify()\n"
    "time.sleep(600)\n";

/* Creates the shared Record NAME from a numpy dtype and writes it, prints
 * its layout; after a line on stdin, checks a packed dtype is refused and
 * prints the value C wrote back. */
static const char PY_SHARED[] =
    "import sys, numpy as np, mapshare\n"
    "REC = np.dtype([('id', '<u8'), ('x', '<f8'), ('counts', '<i4', (3,)),\n"
    "                ('flag', 'u1'), ('label', 'S19')], align=True)\n"
    "with mapshare.Shared.create(sys.argv[1], REC, type_name='Record') as s:\n"
    "    s.set((0x0123456789abcdef, -2.5, (7, -8, 9), 1, 'Gr\\u00fc\\u00dfe \\U0001f980'.encode()))\n"
    "    print(*s.layout, flush=True)\n"
    "    sys.stdin.readline()\n"
    "    try:\n"
    "        mapshare.Shared.open(sys.argv[1], np.dtype(REC.descr), type_name='Record')\n"
    "        sys.exit('a packed dtype was accepted')\n"
    "    except mapshare.LayoutMismatch:\n"
    "        pass\n"
    "    v = s.get(timeout=30)\n"
    "    print(int(v['id']), float(v['x']), v['counts'].tolist(), int(v['flag']), v['label'].decode())\n";

/* ---- scenarios ---- */

static void python_imports(void) {
    int out;
    pid_t pid = spawn_py("import mapshare, numpy; print('ok', mapshare.__name__)", NULL, NULL, NULL, &out);
    char got[256];
    read_all(out, got, sizeof got);
    int st = wait_py(pid);
    if (st != 0 || strcmp(got, "ok mapshare\n") != 0)
        FAIL("%s cannot import mapshare and numpy (status %d, printed \"%s\")", g_py, st, got);
    printf("  %s imports mapshare and numpy\n", g_py);
}

static void c_mailbox_to_python(void) {
    const char *n = unique_name("py-mb-recv");
    mapshare_mailbox_t *mb = NULL;
    CHECK_OK(mapshare_mailbox_create(n, NULL, &mb));
    static char big[4096];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (char)(i * 7 + 1);
    CHECK(mapshare_mailbox_max_message(mb) == sizeof big);
    struct bytes msgs[] = {
        B("hello from C"),
        B("gr\xc3\xbc\xc3\x9f" " dich \xf0\x9f\x91\x8b"),
        B("\x00\x01\xff\x00" "end"),
        {big, sizeof big},
    };
    int count = (int)(sizeof msgs / sizeof msgs[0]);
    char count_s[8];
    snprintf(count_s, sizeof count_s, "%d", count);
    int out;
    pid_t pid = spawn_py(PY_MB_RECV, n, count_s, NULL, &out);
    for (int i = 0; i < count; i++) CHECK_OK(mapshare_mailbox_send(mb, msgs[i].p, msgs[i].len, WAIT));
    static char got[16384], want[16384];
    read_all(out, got, sizeof got);
    CHECK(wait_py(pid) == 0);
    want[0] = 0;
    for (int i = 0; i < count; i++) {
        snprintf(want + strlen(want), sizeof want - strlen(want), "%zu ", msgs[i].len);
        hex_append(want, sizeof want, msgs[i].p, msgs[i].len);
        snprintf(want + strlen(want), sizeof want - strlen(want), "\n");
    }
    if (strcmp(got, want) != 0) FAIL("Python printed\n%s\nexpected\n%s", got, want);
    mapshare_mailbox_close(mb);
    CHECK(!segment_exists(n));
    printf("  C mailbox send -> Python Mailbox.recv: %d messages (UTF-8, NULs, %zu bytes), byte for byte\n", count, sizeof big);
}

static void python_mailbox_to_c(void) {
    const char *n = unique_name("py-mb-send");
    mapshare_mailbox_t *mb = NULL;
    CHECK_OK(mapshare_mailbox_create(n, NULL, &mb));
    pid_t pid = spawn_py(PY_MB_SEND, n, NULL, NULL, NULL);
    char buf[512];
    size_t len;
    CHECK_OK(mapshare_mailbox_recv(mb, buf, sizeof buf, &len, WAIT));
    CHECK(len == 17 && memcmp(buf, "hello from Python", 17) == 0);
    CHECK_OK(mapshare_mailbox_recv(mb, buf, sizeof buf, &len, WAIT));
    static const char snake[] = "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x90\x8d";
    CHECK(len == sizeof snake - 1 && memcmp(buf, snake, len) == 0);
    CHECK_OK(mapshare_mailbox_recv(mb, buf, sizeof buf, &len, WAIT));
    CHECK(len == 256);
    for (int i = 0; i < 256; i++)
        if ((unsigned char)buf[i] != i) FAIL("byte %d is %u", i, (unsigned char)buf[i]);
    CHECK_OK(mapshare_mailbox_recv(mb, buf, sizeof buf, &len, WAIT));
    uint32_t arr[5];
    CHECK(len == sizeof arr);
    memcpy(arr, buf, sizeof arr);
    for (uint32_t i = 0; i < 5; i++)
        if (arr[i] != 3 * i) FAIL("array[%u] is %u", i, arr[i]);
    CHECK(wait_py(pid) == 0);
    CHECK_ST(mapshare_mailbox_recv(mb, buf, sizeof buf, &len, 0), MAPSHARE_EMPTY);
    mapshare_mailbox_close(mb);
    CHECK(!segment_exists(n));
    printf("  Python Mailbox.send -> C recv: bytes, UTF-8, 256 byte values, a numpy uint32 array\n");
}

static void c_pub_python_sub(void) {
    const char *n = unique_name("py-sub");
    mapshare_options_t o;
    mapshare_options_init(&o);
    o.capacity = 16; /* lossless and small: the Python subscriber paces us */
    mapshare_publisher_t *p = NULL;
    CHECK_OK(mapshare_publisher_create(n, &o, &p));
    int out;
    pid_t pid = spawn_py(PY_SUB, n, NULL, NULL, &out);
    uint64_t until = now_ns() + WAIT;
    while (mapshare_publisher_subscriber_count(p) < 1) {
        if (now_ns() > until) FAIL("the Python subscriber did not join");
        sleep_ms(2);
    }
    const int count = 1000;
    for (int i = 0; i < count; i++) {
        char msg[64];
        int len = snprintf(msg, sizeof msg, "message %d \xe2\x86\x92 \xc3\xbc", i);
        CHECK_OK(mapshare_publisher_publish(p, msg, (size_t)len, WAIT));
    }
    mapshare_publisher_close(p); /* the Python iteration ends here */
    char got[128];
    read_all(out, got, sizeof got);
    CHECK(wait_py(pid) == 0);
    if (strcmp(got, "in order: 1000\n") != 0) FAIL("the Python subscriber printed \"%s\"", got);
    CHECK(!segment_exists(n));
    printf("  C publisher -> Python Subscriber: %d messages, in order, iteration ended when the publisher left\n", count);
}

static void python_pub_c_sub(void) {
    const char *n = unique_name("py-pub");
    /* Joined first: we receive everything it publishes. */
    mapshare_subscriber_t *s = NULL;
    CHECK_OK(mapshare_subscriber_create(n, NULL, &s));
    const int count = 1000;
    char count_s[16];
    snprintf(count_s, sizeof count_s, "%d", count);
    pid_t pid = spawn_py(PY_PUB, n, count_s, NULL, NULL);
    for (int i = 0; i < count; i++) {
        char buf[64], want[64];
        size_t len;
        int wl = snprintf(want, sizeof want, "py %d \xc3\xa9", i);
        CHECK_OK(mapshare_subscriber_recv(s, buf, sizeof buf, &len, NULL, WAIT));
        if (len != (size_t)wl || memcmp(buf, want, len) != 0)
            FAIL("message %d: got \"%.*s\", expected \"%s\"", i, (int)len, buf, want);
    }
    char buf[8];
    size_t len;
    CHECK_ST(mapshare_subscriber_recv(s, buf, sizeof buf, &len, NULL, WAIT), MAPSHARE_DISCONNECTED);
    CHECK(wait_py(pid) == 0);
    mapshare_subscriber_close(s);
    CHECK(!segment_exists(n));
    printf("  Python Publisher -> C subscriber: %d messages, in order, then DISCONNECTED\n", count);
}

static void c_sender_python_receiver(void) {
    const char *n = unique_name("py-chan");
    mapshare_sender_t *tx = NULL;
    CHECK_OK(mapshare_sender_create(n, NULL, &tx));
    static char crabs[2000];
    for (size_t i = 0; i < sizeof crabs; i += 4) memcpy(crabs + i, "\xf0\x9f\xa6\x80", 4);
    struct bytes msgs[] = {
        B("gr\xc3\xbc\xc3\x9f" " dich \xf0\x9f\x91\x8b"),
        B("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe3\x83\x86\xe3\x82\xad\xe3\x82\xb9\xe3\x83\x88"),
        B("e\xcc\x81 \xe2\x89\xa0 \xc3\xa9"),
        B("\x00" "nul inside"),
        B("\xf0\x9f\xa6\x80 \xce\xa9\xe2\x89\x88\xc3\xa7\xe2\x88\x9a\xe2\x88\xab"),
        {crabs, sizeof crabs},
    };
    int count = (int)(sizeof msgs / sizeof msgs[0]);
    int out;
    pid_t pid = spawn_py(PY_CHAN_RECV, n, NULL, NULL, &out);
    char line[64];
    read_line(out, line, sizeof line); /* the receiver is attached: our close will not remove the channel under it */
    CHECK(strcmp(line, "ready") == 0);
    for (int i = 0; i < count; i++) CHECK_OK(mapshare_sender_send(tx, msgs[i].p, msgs[i].len, WAIT));
    mapshare_sender_close(tx); /* every sender gone: the Python iteration ends */
    static char got[16384], want[16384];
    read_all(out, got, sizeof got);
    CHECK(wait_py(pid) == 0);
    want[0] = 0;
    for (int i = 0; i < count; i++) {
        hex_append(want, sizeof want, msgs[i].p, msgs[i].len);
        snprintf(want + strlen(want), sizeof want - strlen(want), "\n");
    }
    snprintf(want + strlen(want), sizeof want - strlen(want), "decoded %d\n", count);
    if (strcmp(got, want) != 0) FAIL("Python printed\n%s\nexpected\n%s", got, want);
    CHECK(!segment_exists(n));
    printf("  C Sender -> Python Receiver: %d Unicode payloads, byte for byte and decoded\n", count);
}

static void python_lock_holder_killed(void) {
    const char *mn = unique_name("py-lock"), *en = unique_name("py-locked");
    mapshare_mutex_t *m = NULL, *m2 = NULL;
    mapshare_event_t *e = NULL;
    CHECK_OK(mapshare_mutex_create(mn, NULL, &m));
    CHECK_OK(mapshare_mutex_open(mn, NULL, &m2));
    CHECK_OK(mapshare_event_create(en, NULL, &e));
    pid_t pid = spawn_py(PY_HOLD_LOCK, mn, en, NULL, NULL);
    CHECK_OK(mapshare_event_wait(e, WAIT)); /* the Python child holds the lock now */
    CHECK_ST(mapshare_mutex_lock(m, 0), MAPSHARE_WOULD_BLOCK);
    CHECK(kill(pid, SIGKILL) == 0);
    CHECK(wait_py(pid) == 128 + SIGKILL);
    CHECK_ST(mapshare_mutex_lock(m, WAIT), MAPSHARE_OWNER_DIED);
    CHECK(strstr(mapshare_last_error_message(), "died") != NULL);
    /* OWNER_DIED: the lock IS held, by us. */
    CHECK_ST(mapshare_mutex_lock(m2, 0), MAPSHARE_WOULD_BLOCK);
    CHECK_OK(mapshare_mutex_unlock(m));
    CHECK_OK(mapshare_mutex_lock(m2, 0)); /* clean again */
    CHECK_OK(mapshare_mutex_unlock(m2));
    mapshare_mutex_close(m2);
    mapshare_mutex_close(m);
    mapshare_event_close(e);
    CHECK(!segment_exists(mn) && !segment_exists(en));
    printf("  Python Mutex holder killed (SIGKILL): C locker got OWNER_DIED, lock held\n");
}

/* The numpy dtype of PY_SHARED, as a C struct (align=True: C's padding). */
struct record {
    uint64_t id;
    double x;
    int32_t counts[3];
    uint8_t flag;
    char label[19];
};
_Static_assert(sizeof(struct record) == 48 && _Alignof(struct record) == 8, "struct record is 48 bytes, align 8");
_Static_assert(offsetof(struct record, flag) == 28 && offsetof(struct record, label) == 29, "numpy's offsets");

static void python_shared_c_reads(void) {
    const char *n = unique_name("py-shared");
    const mapshare_layout_t layout = {"Record", sizeof(struct record), _Alignof(struct record)};
    int to, out;
    pid_t pid = spawn_py(PY_SHARED, n, NULL, &to, &out);
    char line[256];
    read_line(out, line, sizeof line); /* created and written */
    char want_layout[64];
    snprintf(want_layout, sizeof want_layout, "Record %zu %zu", layout.size, layout.align);
    if (strcmp(line, want_layout) != 0) FAIL("Python's layout is \"%s\", C's \"%s\"", line, want_layout);

    /* Other layouts: refused, both sides named. */
    mapshare_shared_t *s = NULL;
    const mapshare_layout_t wrong[] = {
        {"Other", sizeof(struct record), _Alignof(struct record)},
        {"Record", sizeof(struct record) - 8, _Alignof(struct record)},
        {"Record", sizeof(struct record), 4},
    };
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        CHECK_ST(mapshare_shared_open(n, &wrong[i], NULL, &s), MAPSHARE_LAYOUT_MISMATCH);
        CHECK(s == NULL);
        const char *msg = mapshare_last_error_message();
        char mine[64];
        snprintf(mine, sizeof mine, "%s (size %zu, align %zu)", wrong[i].type_name, wrong[i].size, wrong[i].align);
        if (!strstr(msg, "Record (size 48, align 8)") || !strstr(msg, mine))
            FAIL("LAYOUT_MISMATCH message does not name both layouts (%s): %s", mine, msg);
    }

    CHECK_OK(mapshare_shared_open(n, &layout, NULL, &s));
    CHECK(mapshare_shared_size(s) == sizeof(struct record));
    struct record r;
    size_t len;
    CHECK_OK(mapshare_shared_lock(s, WAIT));
    CHECK_OK(mapshare_shared_read(s, &r, sizeof r, &len));
    CHECK(len == sizeof r);
    CHECK(r.id == 0x0123456789abcdefull);
    CHECK(r.x == -2.5);
    CHECK(r.counts[0] == 7 && r.counts[1] == -8 && r.counts[2] == 9);
    CHECK(r.flag == 1);
    static const char label[19] = "Gr\xc3\xbc\xc3\x9f" "e \xf0\x9f\xa6\x80"; /* NUL-padded, as numpy's S19 */
    CHECK(memcmp(r.label, label, sizeof label) == 0);

    /* And back: C writes, Python reads. */
    r.id++;
    r.x = 0.125;
    r.counts[2] = -9;
    r.flag = 0;
    memset(r.label, 0, sizeof r.label);
    memcpy(r.label, "from C \xe2\x9c\x93", 10);
    CHECK_OK(mapshare_shared_write(s, &r, sizeof r));
    CHECK_OK(mapshare_shared_unlock(s));
    write_all(to, "go\n");
    close(to);
    char got[256];
    read_all(out, got, sizeof got);
    CHECK(wait_py(pid) == 0);
    const char *want = "81985529216486896 0.125 [7, -8, -9] 0 from C \xe2\x9c\x93\n";
    if (strcmp(got, want) != 0) FAIL("Python read back \"%s\", expected \"%s\"", got, want);
    mapshare_shared_close(s);
    CHECK(!segment_exists(n));
    printf("  Python Shared (numpy dtype) -> C struct record {\"Record\", 48, 8}; 3 other layouts LAYOUT_MISMATCH; C -> Python back\n");
}

int main(void) {
    test_init("test_python");
    atexit(kill_kids); /* runs before unlink_all (registered first) */
    setvbuf(stdout, NULL, _IOLBF, 0);
    alarm(600); /* a hang ends the run (SIGALRM) instead of blocking CI */
    g_py = py_path();
    python_imports();
    c_mailbox_to_python();
    python_mailbox_to_c();
    c_pub_python_sub();
    python_pub_c_sub();
    c_sender_python_receiver();
    python_lock_holder_killed();
    python_shared_c_reads();
    unlink_all();
    check_shm_clean();
    printf("test_python: all passed\n");
    return 0;
}
