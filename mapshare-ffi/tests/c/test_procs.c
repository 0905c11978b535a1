/*
 * The C API across processes. Without arguments this program runs every
 * scenario as the parent; the children are this same program exec'd in
 * another role (`test_procs ROLE ARGS...`), or the `mapshare` CLI
 * ($MAPSHARE_BIN):
 *
 *   C <-> C    mailbox ping-pong; two senders into one receiver (order per
 *              sender, DISCONNECTED once both left); a publisher and two
 *              subscriber processes; two processes incrementing a shared
 *              value under its lock; a blackboard writer and reader
 *              (never torn)
 *   killed     a sender killed with SIGKILL: the receiver gets
 *              DISCONNECTED; a lock holder killed with SIGKILL: the next
 *              locker gets OWNER_DIED with the lock held (a mutex and a
 *              shared value)
 *   C <-> CLI  `mapshare send` -> C recv, C send -> `mapshare recv`,
 *              `mapshare pub` -> C subscriber, C publisher -> `mapshare sub`
 *
 * Waits are bounded (30 s) so that a bug fails the test instead of hanging
 * it, and an alarm ends a run that hangs anyway. No upper bound on time is
 * asserted.
 */
#define _GNU_SOURCE
#include "common.h"

#define WAIT (30000 * MS) /* the longest any step may wait */

static const char *g_self;

/* ---- roles (children) ---- */

/* Echoes every message of mailbox IN to mailbox OUT as "echo:MSG", until "quit". */
static int role_mb_echo(const char *in, const char *out) {
    mapshare_mailbox_t *a = NULL, *b = NULL;
    CHECK_OK(mapshare_mailbox_open(in, NULL, &a));
    CHECK_OK(mapshare_mailbox_open(out, NULL, &b));
    for (;;) {
        char buf[256], reply[300];
        size_t len;
        CHECK_OK(mapshare_mailbox_recv(a, buf, sizeof buf - 1, &len, WAIT));
        buf[len] = 0;
        if (strcmp(buf, "quit") == 0) break;
        int n = snprintf(reply, sizeof reply, "echo:%s", buf);
        CHECK_OK(mapshare_mailbox_send(b, reply, (size_t)n, WAIT));
    }
    mapshare_mailbox_close(a);
    mapshare_mailbox_close(b);
    return 0;
}

struct tagged {
    int sender;
    int seq;
};

/* Sends N tagged messages on channel NAME as sender ID (the pid's parity is
 * not enough: the id comes in NAME's role argument "ID:N"). */
static int role_chan_send(const char *name, const char *id_n) {
    int id = 0, n = 0;
    CHECK(sscanf(id_n, "%d:%d", &id, &n) == 2);
    mapshare_sender_t *tx = NULL;
    CHECK_OK(mapshare_sender_open(name, NULL, &tx));
    for (int i = 0; i < n; i++) {
        struct tagged t = {id, i};
        CHECK_OK(mapshare_sender_send(tx, &t, sizeof t, WAIT));
    }
    mapshare_sender_close(tx);
    return 0;
}

/* Sends "alive", then waits to be killed. */
static int role_chan_send_hang(const char *name) {
    mapshare_sender_t *tx = NULL;
    CHECK_OK(mapshare_sender_open(name, NULL, &tx));
    CHECK_OK(mapshare_sender_send(tx, "alive", 5, WAIT));
    for (;;) pause();
}

/* Receives N ints 0..N-1 in order, then DISCONNECTED. */
static int role_sub(const char *name, const char *n_s) {
    int n = atoi(n_s);
    mapshare_subscriber_t *s = NULL;
    CHECK_OK(mapshare_subscriber_open(name, NULL, &s));
    for (int i = 0; i < n; i++) {
        int v = -1;
        size_t len = 0;
        CHECK_OK(mapshare_subscriber_recv(s, &v, sizeof v, &len, NULL, WAIT));
        if (len != sizeof v || v != i) FAIL("subscriber got %d (len %zu), expected %d", v, len, i);
    }
    int v;
    size_t len;
    CHECK_ST(mapshare_subscriber_recv(s, &v, sizeof v, &len, NULL, WAIT), MAPSHARE_DISCONNECTED);
    mapshare_subscriber_close(s);
    return 0;
}

/* Locks MUTEX, says so on EVENT, then waits to be killed holding it. */
static int role_hold_lock(const char *mutex, const char *event) {
    mapshare_mutex_t *m = NULL;
    mapshare_event_t *e = NULL;
    CHECK_OK(mapshare_mutex_open(mutex, NULL, &m));
    CHECK_OK(mapshare_event_open(event, NULL, &e));
    CHECK_OK(mapshare_mutex_lock(m, WAIT));
    CHECK_OK(mapshare_event_notify(e));
    for (;;) pause();
}

static const mapshare_layout_t COUNTER = {"Counter", 16, 8}; /* { uint64_t n, check; } */

/* N times: lock the shared counter, check it is whole, add one, unlock. */
static int role_shared_incr(const char *name, const char *n_s) {
    int n = atoi(n_s);
    mapshare_shared_t *s = NULL;
    CHECK_OK(mapshare_shared_open(name, &COUNTER, NULL, &s));
    for (int i = 0; i < n; i++) {
        uint64_t c[2];
        size_t len;
        CHECK_OK(mapshare_shared_lock(s, WAIT));
        CHECK_OK(mapshare_shared_read(s, c, sizeof c, &len));
        if (c[1] != ~c[0]) FAIL("torn counter %llu / %llu", (unsigned long long)c[0], (unsigned long long)c[1]);
        c[0]++;
        c[1] = ~c[0];
        CHECK_OK(mapshare_shared_write(s, c, sizeof c));
        CHECK_OK(mapshare_shared_unlock(s));
    }
    mapshare_shared_close(s);
    return 0;
}

/* Locks the shared counter, writes half an update, says so, waits to be killed. */
static int role_shared_hold(const char *name) {
    mapshare_shared_t *s = NULL;
    CHECK_OK(mapshare_shared_open(name, &COUNTER, NULL, &s));
    CHECK_OK(mapshare_shared_lock(s, WAIT));
    uint64_t c[2] = {1000, 0}; /* check word not yet updated */
    CHECK_OK(mapshare_shared_write(s, c, sizeof c));
    CHECK_OK(mapshare_shared_notify(s));
    for (;;) pause();
}

/* Writes versions 1..N of {i, 2i} to the blackboard, then leaves. */
static int role_bb_write(const char *name, const char *n_s) {
    int n = atoi(n_s);
    mapshare_blackboard_writer_t *w = NULL;
    CHECK_OK(mapshare_blackboard_writer_open(name, &COUNTER, NULL, &w));
    for (uint64_t i = 1; i <= (uint64_t)n; i++) {
        uint64_t v[2] = {i, 2 * i};
        CHECK_OK(mapshare_blackboard_writer_write(w, v, sizeof v));
    }
    mapshare_blackboard_writer_close(w);
    return 0;
}

/* ---- scenarios (parent) ---- */

static void c_c_mailbox(void) {
    const char *in = unique_name("mb-in"), *out = unique_name("mb-out");
    mapshare_mailbox_t *a = NULL, *b = NULL;
    CHECK_OK(mapshare_mailbox_create(in, NULL, &a));
    CHECK_OK(mapshare_mailbox_create(out, NULL, &b));
    pid_t pid = spawn_role(g_self, "mb-echo", in, out);
    uint64_t t0 = 0;
    for (int i = 0; i < 2000; i++) {
        if (i == 100) t0 = now_ns(); /* the child is up and warm */
        char msg[32], want[40], got[64];
        size_t len;
        int n = snprintf(msg, sizeof msg, "ping %d", i);
        CHECK_OK(mapshare_mailbox_send(a, msg, (size_t)n, WAIT));
        CHECK_OK(mapshare_mailbox_recv(b, got, sizeof got - 1, &len, WAIT));
        got[len] = 0;
        snprintf(want, sizeof want, "echo:%s", msg);
        if (strcmp(got, want) != 0) FAIL("got \"%s\", expected \"%s\"", got, want);
    }
    uint64_t dt = now_ns() - t0;
    CHECK_OK(mapshare_mailbox_send(a, "quit", 4, WAIT));
    CHECK(wait_child(pid) == 0);
    mapshare_mailbox_close(a);
    mapshare_mailbox_close(b);
    CHECK(!segment_exists(in) && !segment_exists(out));
    /* Informational only: no bound on time is asserted. */
    printf("  C <-> C mailbox: 2000 round trips (%.1f us each, after warm-up)\n", (double)dt / 1900 / 1000);
}

static void c_c_channel(void) {
    const char *n = unique_name("chan");
    mapshare_options_t o;
    mapshare_options_init(&o);
    o.capacity = 8; /* small: the senders wait for room */
    o.senders = 2;
    mapshare_receiver_t *rx = NULL;
    CHECK_OK(mapshare_receiver_create(n, &o, &rx));
    const int per = 100000;
    char arg0[16], arg1[16];
    snprintf(arg0, sizeof arg0, "0:%d", per);
    snprintf(arg1, sizeof arg1, "1:%d", per);
    pid_t p0 = spawn_role(g_self, "chan-send", n, arg0);
    pid_t p1 = spawn_role(g_self, "chan-send", n, arg1);
    int next[2] = {0, 0};
    uint64_t t0 = now_ns(), until = t0 + WAIT;
    for (;;) {
        struct tagged t;
        size_t len;
        mapshare_status st = mapshare_receiver_recv(rx, &t, sizeof t, &len, WAIT);
        if (st == MAPSHARE_DISCONNECTED) {
            if (next[0] == per && next[1] == per) break;
            /* One sender done before the other attached: every sender
             * attached so far has gone, so the channel says so; receiving
             * again is allowed, and the next one comes. */
            if (now_ns() > until) FAIL("senders did not finish");
            sleep_ms(1);
            continue;
        }
        CHECK_ST(st, MAPSHARE_OK);
        CHECK(len == sizeof t && (t.sender == 0 || t.sender == 1));
        if (t.seq != next[t.sender]) FAIL("sender %d: got %d, expected %d", t.sender, t.seq, next[t.sender]);
        next[t.sender]++;
    }
    uint64_t dt = now_ns() - t0;
    CHECK(wait_child(p0) == 0 && wait_child(p1) == 0);
    mapshare_receiver_close(rx);
    CHECK(!segment_exists(n));
    printf("  C <-> C channel: 2 sender processes x %d messages, in order, then DISCONNECTED (%.2f M msg/s, spawns included)\n",
           per, 2.0 * per / ((double)dt / 1e9) / 1e6);
}

static void killed_sender(void) {
    const char *n = unique_name("chan-kill");
    mapshare_receiver_t *rx = NULL;
    CHECK_OK(mapshare_receiver_create(n, NULL, &rx));
    pid_t pid = spawn_role(g_self, "chan-send-hang", n, NULL);
    char buf[16];
    size_t len;
    CHECK_OK(mapshare_receiver_recv(rx, buf, sizeof buf, &len, WAIT));
    CHECK(len == 5 && memcmp(buf, "alive", 5) == 0);
    CHECK(kill(pid, SIGKILL) == 0);
    CHECK(wait_child(pid) == 128 + SIGKILL);
    CHECK_ST(mapshare_receiver_recv(rx, buf, sizeof buf, &len, WAIT), MAPSHARE_DISCONNECTED);
    mapshare_receiver_close(rx);
    CHECK(!segment_exists(n));
    printf("  killed sender (SIGKILL): receiver got DISCONNECTED\n");
}

static void c_c_pubsub(void) {
    const char *n = unique_name("ps");
    mapshare_options_t o;
    mapshare_options_init(&o);
    o.capacity = 16; /* lossless and small: the slowest subscriber paces us */
    mapshare_publisher_t *p = NULL;
    CHECK_OK(mapshare_publisher_create(n, &o, &p));
    const int count = 1000;
    char count_s[16];
    snprintf(count_s, sizeof count_s, "%d", count);
    pid_t s0 = spawn_role(g_self, "sub", n, count_s);
    pid_t s1 = spawn_role(g_self, "sub", n, count_s);
    uint64_t until = now_ns() + WAIT;
    while (mapshare_publisher_subscriber_count(p) < 2) {
        if (now_ns() > until) FAIL("subscribers did not join");
        sleep_ms(2);
    }
    for (int i = 0; i < count; i++) CHECK_OK(mapshare_publisher_publish(p, &i, sizeof i, WAIT));
    mapshare_publisher_close(p);
    CHECK(wait_child(s0) == 0 && wait_child(s1) == 0);
    CHECK(!segment_exists(n));
    printf("  C <-> C pub/sub: 2 subscriber processes x %d messages, in order, then DISCONNECTED\n", count);
}

static void killed_lock_holder(void) {
    const char *mn = unique_name("lock"), *en = unique_name("locked");
    mapshare_mutex_t *m = NULL, *m2 = NULL;
    mapshare_event_t *e = NULL;
    CHECK_OK(mapshare_mutex_create(mn, NULL, &m));
    CHECK_OK(mapshare_mutex_open(mn, NULL, &m2));
    CHECK_OK(mapshare_event_create(en, NULL, &e));
    pid_t pid = spawn_role(g_self, "hold-lock", mn, en);
    CHECK_OK(mapshare_event_wait(e, WAIT)); /* the child holds the lock now */
    CHECK_ST(mapshare_mutex_lock(m, 0), MAPSHARE_WOULD_BLOCK);
    CHECK(kill(pid, SIGKILL) == 0);
    CHECK(wait_child(pid) == 128 + SIGKILL);
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
    printf("  lock holder killed (SIGKILL): next locker got OWNER_DIED, lock held\n");
}

static void c_c_shared(void) {
    const char *n = unique_name("shared");
    mapshare_shared_t *s = NULL;
    CHECK_OK(mapshare_shared_create(n, &COUNTER, NULL, &s));
    uint64_t c[2] = {0, ~0ull};
    size_t len;
    CHECK_OK(mapshare_shared_lock(s, WAIT));
    CHECK_OK(mapshare_shared_write(s, c, sizeof c));
    CHECK_OK(mapshare_shared_unlock(s));
    pid_t a = spawn_role(g_self, "shared-incr", n, "2000");
    pid_t b = spawn_role(g_self, "shared-incr", n, "2000");
    CHECK(wait_child(a) == 0 && wait_child(b) == 0);
    CHECK_OK(mapshare_shared_lock(s, WAIT));
    CHECK_OK(mapshare_shared_read(s, c, sizeof c, &len));
    CHECK_OK(mapshare_shared_unlock(s));
    if (c[0] != 4000) FAIL("counter is %llu, expected 4000", (unsigned long long)c[0]);

    /* A holder killed mid-update: OWNER_DIED, lock held, data half-written. */
    pid_t h = spawn_role(g_self, "shared-hold", n, NULL);
    CHECK_OK(mapshare_shared_wait(s, WAIT));
    CHECK(kill(h, SIGKILL) == 0);
    CHECK(wait_child(h) == 128 + SIGKILL);
    CHECK_ST(mapshare_shared_lock(s, WAIT), MAPSHARE_OWNER_DIED);
    CHECK_OK(mapshare_shared_read(s, c, sizeof c, &len));
    CHECK(c[0] == 1000 && c[1] != ~c[0]); /* what the dead holder left: repair it */
    c[1] = ~c[0];
    CHECK_OK(mapshare_shared_write(s, c, sizeof c));
    CHECK_OK(mapshare_shared_unlock(s));
    CHECK_OK(mapshare_shared_lock(s, 0));
    CHECK_OK(mapshare_shared_unlock(s));
    mapshare_shared_close(s);
    CHECK(!segment_exists(n));
    printf("  C <-> C shared value: 2 processes x 2000 locked increments; holder killed: OWNER_DIED\n");
}

static void c_c_blackboard(void) {
    const char *n = unique_name("board");
    mapshare_blackboard_reader_t *r = NULL;
    CHECK_OK(mapshare_blackboard_reader_create(n, &COUNTER, NULL, &r));
    const int count = 1000000;
    char count_s[16];
    snprintf(count_s, sizeof count_s, "%d", count);
    pid_t w = spawn_role(g_self, "bb-write", n, count_s);
    uint64_t seen = 0, reads = 0;
    for (;;) {
        uint64_t v[2], ver;
        size_t len;
        mapshare_status st = mapshare_blackboard_reader_read_newer(r, seen, v, sizeof v, &len, &ver, WAIT);
        if (st == MAPSHARE_DISCONNECTED && seen == (uint64_t)count) break;
        if (st == MAPSHARE_DISCONNECTED && seen == 0) { sleep_ms(1); continue; } /* not attached yet */
        CHECK_ST(st, MAPSHARE_OK);
        if (v[1] != 2 * v[0] || v[0] != ver) FAIL("torn read: version %llu, {%llu, %llu}", (unsigned long long)ver, (unsigned long long)v[0], (unsigned long long)v[1]);
        CHECK(ver > seen);
        seen = ver;
        reads++;
    }
    CHECK(wait_child(w) == 0);
    mapshare_blackboard_reader_close(r);
    CHECK(!segment_exists(n));
    printf("  C <-> C blackboard: %d versions written, %llu read, never torn, then DISCONNECTED\n", count, (unsigned long long)reads);
}

static void cli_send_c_recv(void) {
    const char *cli = cli_path();
    const char *n = unique_name("cli-send");
    /* We wait first (as `mapshare recv` would): the CLI opens our mailbox. */
    mapshare_mailbox_t *mb = NULL;
    CHECK_OK(mapshare_mailbox_open_or_create(n, NULL, &mb));
    char *argv[] = {(char *)cli, "send", (char *)n, "h\xc3\xa9llo from the CLI", "--timeout", "30", NULL};
    pid_t pid = spawn(argv, NULL, NULL);
    char buf[64];
    size_t len;
    CHECK_OK(mapshare_mailbox_recv(mb, buf, sizeof buf - 1, &len, WAIT));
    buf[len] = 0;
    CHECK(strcmp(buf, "h\xc3\xa9llo from the CLI") == 0);
    CHECK(wait_child(pid) == 0);
    mapshare_mailbox_close(mb);
    /* `mapshare send` made it persistent, as its rule says: remove it. */
    CHECK_OK(mapshare_unlink(n));

    /* And the other order: the CLI's message waits in a persistent mailbox. */
    char *argv2[] = {(char *)cli, "send", (char *)n, "sent before anyone listened", NULL};
    CHECK(wait_child(spawn(argv2, NULL, NULL)) == 0);
    CHECK_OK(mapshare_mailbox_open(n, NULL, &mb));
    CHECK_OK(mapshare_mailbox_recv(mb, buf, sizeof buf - 1, &len, 0));
    buf[len] = 0;
    CHECK(strcmp(buf, "sent before anyone listened") == 0);
    mapshare_mailbox_close(mb);
    CHECK_OK(mapshare_unlink(n));
    printf("  mapshare send -> C recv: both orders\n");
}

static void c_send_cli_recv(void) {
    const char *cli = cli_path();
    const char *n = unique_name("cli-recv");
    int out;
    char *argv[] = {(char *)cli, "recv", (char *)n, "--timeout", "30", NULL};
    pid_t pid = spawn(argv, NULL, &out);
    mapshare_options_t o;
    mapshare_options_init(&o);
    o.persistent = true; /* as `mapshare send`: the message outlives us */
    mapshare_mailbox_t *mb = NULL;
    CHECK_OK(mapshare_mailbox_open_or_create(n, &o, &mb));
    CHECK_OK(mapshare_mailbox_set_persistent(mb, true));
    CHECK_OK(mapshare_mailbox_send(mb, "hello from C", 12, WAIT));
    mapshare_mailbox_close(mb);
    char got[128];
    read_all(out, got, sizeof got);
    CHECK(wait_child(pid) == 0);
    if (strcmp(got, "hello from C\n") != 0) FAIL("mapshare recv printed \"%s\"", got);
    mapshare_status st = mapshare_unlink(n);
    CHECK(st == MAPSHARE_OK || st == MAPSHARE_NOT_FOUND);
    printf("  C send -> mapshare recv\n");
}

static void cli_pub_c_sub(void) {
    const char *cli = cli_path();
    const char *n = unique_name("cli-pub");
    /* Joined first, with the CLI's defaults: we receive everything. */
    mapshare_subscriber_t *s = NULL;
    CHECK_OK(mapshare_subscriber_open_or_create(n, NULL, &s));
    int in;
    char *argv[] = {(char *)cli, "pub", (char *)n, NULL};
    pid_t pid = spawn(argv, &in, NULL);
    write_all(in, "one\ntwo\nthree\n");
    close(in);
    const char *want[] = {"one", "two", "three"};
    for (int i = 0; i < 3; i++) {
        char buf[64];
        size_t len;
        CHECK_OK(mapshare_subscriber_recv(s, buf, sizeof buf - 1, &len, NULL, WAIT));
        buf[len] = 0;
        if (strcmp(buf, want[i]) != 0) FAIL("got \"%s\", expected \"%s\"", buf, want[i]);
    }
    char buf[8];
    size_t len;
    CHECK_ST(mapshare_subscriber_recv(s, buf, sizeof buf, &len, NULL, WAIT), MAPSHARE_DISCONNECTED);
    CHECK(wait_child(pid) == 0);
    mapshare_subscriber_close(s);
    CHECK(!segment_exists(n));
    printf("  mapshare pub -> C subscriber\n");
}

static void c_pub_cli_sub(void) {
    const char *cli = cli_path();
    const char *n = unique_name("cli-sub");
    int out;
    char *argv[] = {(char *)cli, "sub", (char *)n, "--count", "3", "--timeout", "30", NULL};
    pid_t pid = spawn(argv, NULL, &out);
    mapshare_publisher_t *p = NULL;
    CHECK_OK(mapshare_publisher_open_or_create(n, NULL, &p));
    uint64_t until = now_ns() + WAIT;
    while (mapshare_publisher_subscriber_count(p) < 1) {
        if (now_ns() > until) FAIL("mapshare sub did not join");
        sleep_ms(2);
    }
    CHECK_OK(mapshare_publisher_publish(p, "alpha", 5, WAIT));
    CHECK_OK(mapshare_publisher_publish(p, "beta", 4, WAIT));
    CHECK_OK(mapshare_publisher_publish(p, "gamma", 5, WAIT));
    char got[128];
    read_all(out, got, sizeof got);
    CHECK(wait_child(pid) == 0);
    if (strcmp(got, "alpha\nbeta\ngamma\n") != 0) FAIL("mapshare sub printed \"%s\"", got);
    mapshare_publisher_close(p);
    CHECK(!segment_exists(n));
    printf("  C publisher -> mapshare sub\n");
}

int main(int argc, char **argv) {
    g_self = argv[0];
    if (argc > 1) {
        /* A child role: names belong to the parent, which removes them. */
        g_prog = argv[1];
        const char *a = argc > 2 ? argv[2] : "", *b = argc > 3 ? argv[3] : "";
        if (strcmp(argv[1], "mb-echo") == 0) return role_mb_echo(a, b);
        if (strcmp(argv[1], "chan-send") == 0) return role_chan_send(a, b);
        if (strcmp(argv[1], "chan-send-hang") == 0) return role_chan_send_hang(a);
        if (strcmp(argv[1], "sub") == 0) return role_sub(a, b);
        if (strcmp(argv[1], "hold-lock") == 0) return role_hold_lock(a, b);
        if (strcmp(argv[1], "shared-incr") == 0) return role_shared_incr(a, b);
        if (strcmp(argv[1], "shared-hold") == 0) return role_shared_hold(a);
        if (strcmp(argv[1], "bb-write") == 0) return role_bb_write(a, b);
        FAIL("unknown role %s", argv[1]);
    }
    test_init("test_procs");
    setvbuf(stdout, NULL, _IOLBF, 0);
    alarm(600); /* a hang ends the run (SIGALRM) instead of blocking CI */
    c_c_mailbox();
    c_c_channel();
    killed_sender();
    c_c_pubsub();
    killed_lock_holder();
    c_c_shared();
    c_c_blackboard();
    cli_send_c_recv();
    c_send_cli_recv();
    cli_pub_c_sub();
    c_pub_cli_sub();
    unlink_all();
    check_shm_clean();
    printf("test_procs: all passed\n");
    return 0;
}
