/*
 * The C API in one process: every kind's round trip, the timeout rules
 * (0 tries, MAPSHARE_FOREVER, a finite wait: lower bounds only),
 * MAPSHARE_TOO_SMALL losing nothing, the open errors (not found, already
 * exists, kind mismatch, layout mismatch, invalid name, NULL), options,
 * last error; Shared and the blackboard with a layout given at run time.
 */
#define _GNU_SOURCE
#include "common.h"

static void test_mailbox(void) {
    const char *n = unique_name("mailbox");
    mapshare_options_t o;
    mapshare_options_init(&o);
    o.max_message = 64;
    mapshare_mailbox_t *a = NULL, *b = NULL;
    CHECK_OK(mapshare_mailbox_create(n, &o, &a));
    CHECK(a != NULL);
    CHECK(mapshare_mailbox_max_message(a) == 64);
    CHECK_OK(mapshare_mailbox_open(n, NULL, &b));
    CHECK(mapshare_mailbox_max_message(b) == 64); /* the segment's own size */

    const char msg[] = "gr\xc3\xbc\xc3\x9f dich"; /* UTF-8, sent as bytes */
    CHECK_OK(mapshare_mailbox_send(a, msg, sizeof msg - 1, MAPSHARE_FOREVER));
    CHECK_ST(mapshare_mailbox_send(a, "x", 1, 0), MAPSHARE_FULL);
    uint64_t t0 = now_ns();
    CHECK_ST(mapshare_mailbox_send(a, "x", 1, 30 * MS), MAPSHARE_TIMEOUT);
    CHECK(now_ns() - t0 >= 30 * MS);

    char buf[64];
    size_t len = 0;
    /* Too small: the length comes back, the message stays. */
    CHECK_ST(mapshare_mailbox_recv(b, buf, 3, &len, 0), MAPSHARE_TOO_SMALL);
    CHECK(len == sizeof msg - 1);
    CHECK(strstr(mapshare_last_error_message(), "kept for the next receive") != NULL);
    CHECK_ST(mapshare_mailbox_recv(b, NULL, 0, &len, 0), MAPSHARE_TOO_SMALL);
    CHECK(len == sizeof msg - 1);
    CHECK_OK(mapshare_mailbox_recv(b, buf, sizeof buf, &len, MAPSHARE_FOREVER));
    CHECK(len == sizeof msg - 1 && memcmp(buf, msg, len) == 0);

    CHECK_ST(mapshare_mailbox_recv(b, buf, sizeof buf, &len, 0), MAPSHARE_EMPTY);
    t0 = now_ns();
    CHECK_ST(mapshare_mailbox_recv(b, buf, sizeof buf, &len, 20 * MS), MAPSHARE_TIMEOUT);
    CHECK(now_ns() - t0 >= 20 * MS);

    char big[65] = {0};
    CHECK_ST(mapshare_mailbox_send(a, big, sizeof big, 0), MAPSHARE_TOO_LARGE);
    CHECK(strstr(mapshare_last_error_message(), "larger than the maximum") != NULL);

    mapshare_mailbox_close(b);
    mapshare_mailbox_close(a);
    CHECK(!segment_exists(n)); /* not persistent: gone with its last handle */
}

static void test_channel(void) {
    const char *n = unique_name("chan");
    mapshare_options_t o;
    mapshare_options_init(&o);
    o.capacity = 4;
    o.max_message = 32;
    o.senders = 2;
    mapshare_receiver_t *rx = NULL;
    mapshare_sender_t *tx1 = NULL, *tx2 = NULL, *tx3 = NULL;
    CHECK_OK(mapshare_receiver_create(n, &o, &rx));
    CHECK_OK(mapshare_sender_open(n, NULL, &tx1));
    CHECK_OK(mapshare_sender_open(n, NULL, &tx2));
    CHECK_ST(mapshare_sender_open(n, NULL, &tx3), MAPSHARE_TOO_MANY_ATTACHED);
    CHECK(tx3 == NULL);
    CHECK(mapshare_sender_capacity(tx1) == 4);
    CHECK(mapshare_sender_max_message(tx1) == 32);
    CHECK(mapshare_receiver_max_message(rx) == 32);

    for (int i = 0; i < 4; i++) CHECK_OK(mapshare_sender_send(tx1, &i, sizeof i, 0));
    CHECK_ST(mapshare_sender_send(tx1, "x", 1, 0), MAPSHARE_FULL);
    uint64_t t0 = now_ns();
    CHECK_ST(mapshare_sender_send(tx1, "x", 1, 20 * MS), MAPSHARE_TIMEOUT);
    CHECK(now_ns() - t0 >= 20 * MS);
    char big[33] = {0};
    CHECK_ST(mapshare_sender_send(tx2, big, sizeof big, 0), MAPSHARE_TOO_LARGE);
    CHECK(mapshare_receiver_len(rx) == 4);

    int v = -1;
    size_t len = 0;
    CHECK_ST(mapshare_receiver_recv(rx, &v, 2, &len, 0), MAPSHARE_TOO_SMALL);
    CHECK(len == sizeof v);
    CHECK(mapshare_receiver_len(rx) == 4); /* still queued */
    for (int i = 0; i < 4; i++) {
        CHECK_OK(mapshare_receiver_recv(rx, &v, sizeof v, &len, MAPSHARE_FOREVER));
        CHECK(len == sizeof v && v == i);
    }
    CHECK_ST(mapshare_receiver_recv(rx, &v, sizeof v, &len, 0), MAPSHARE_EMPTY);
    mapshare_sender_close(tx1);
    mapshare_sender_close(tx2);
    CHECK_ST(mapshare_receiver_recv(rx, &v, sizeof v, &len, MAPSHARE_FOREVER), MAPSHARE_DISCONNECTED);
    mapshare_receiver_close(rx);
    CHECK(!segment_exists(n));
}

static void test_pubsub(void) {
    const char *n = unique_name("ps");
    mapshare_options_t o;
    mapshare_options_init(&o);
    o.capacity = 4;
    o.max_message = 16;
    o.policy = MAPSHARE_POLICY_OVERWRITE_OLDEST;
    mapshare_publisher_t *p = NULL, *p2 = NULL;
    mapshare_subscriber_t *s = NULL;
    CHECK_OK(mapshare_publisher_create(n, &o, &p));
    CHECK_OK(mapshare_subscriber_open(n, NULL, &s));
    CHECK_ST(mapshare_publisher_open(n, NULL, &p2), MAPSHARE_TOO_MANY_ATTACHED);
    CHECK(mapshare_publisher_subscriber_count(p) == 1);
    CHECK(mapshare_publisher_max_message(p) == 16);

    /* Overwrite-oldest: ten messages into a ring of four laps us. */
    for (int i = 0; i < 10; i++) CHECK_OK(mapshare_publisher_publish(p, &i, sizeof i, 0));
    CHECK(mapshare_subscriber_behind(s) == 10);
    int v;
    size_t len;
    uint64_t missed = 0;
    CHECK_ST(mapshare_subscriber_recv(s, &v, sizeof v, &len, &missed, 0), MAPSHARE_LAGGED);
    CHECK(missed == 6);
    for (int i = 6; i < 10; i++) {
        CHECK_OK(mapshare_subscriber_recv(s, &v, sizeof v, &len, &missed, MAPSHARE_FOREVER));
        CHECK(len == sizeof v && v == i);
    }
    CHECK_ST(mapshare_subscriber_recv(s, &v, sizeof v, &len, NULL, 0), MAPSHARE_EMPTY);
    uint64_t t0 = now_ns();
    CHECK_ST(mapshare_subscriber_recv(s, &v, sizeof v, &len, NULL, 20 * MS), MAPSHARE_TIMEOUT);
    CHECK(now_ns() - t0 >= 20 * MS);
    char big[17] = {0};
    CHECK_ST(mapshare_publisher_publish(p, big, sizeof big, 0), MAPSHARE_TOO_LARGE);
    mapshare_publisher_close(p);
    CHECK_ST(mapshare_subscriber_recv(s, &v, sizeof v, &len, NULL, MAPSHARE_FOREVER), MAPSHARE_DISCONNECTED);
    mapshare_subscriber_close(s);

    /* Lossless: a full ring makes a try FULL and a wait TIMEOUT. */
    const char *n2 = unique_name("ps-lossless");
    o.policy = MAPSHARE_POLICY_LOSSLESS;
    o.capacity = 2;
    CHECK_OK(mapshare_subscriber_create(n2, &o, &s));
    CHECK_OK(mapshare_publisher_open(n2, NULL, &p));
    CHECK_OK(mapshare_publisher_publish(p, "a", 1, 0));
    CHECK_OK(mapshare_publisher_publish(p, "b", 1, 0));
    CHECK_ST(mapshare_publisher_publish(p, "c", 1, 0), MAPSHARE_FULL);
    t0 = now_ns();
    CHECK_ST(mapshare_publisher_publish(p, "c", 1, 20 * MS), MAPSHARE_TIMEOUT);
    CHECK(now_ns() - t0 >= 20 * MS);
    char c;
    CHECK_OK(mapshare_subscriber_recv(s, &c, 1, &len, NULL, 0));
    CHECK(c == 'a');
    CHECK_OK(mapshare_publisher_publish(p, "c", 1, MAPSHARE_FOREVER));
    /* A late joiner with history: up to capacity - 1 (here 1) earlier ones. */
    mapshare_subscriber_t *late = NULL;
    mapshare_options_t h;
    mapshare_options_init(&h);
    h.history = 5;
    CHECK_OK(mapshare_subscriber_open(n2, &h, &late));
    CHECK_OK(mapshare_subscriber_recv(late, &c, 1, &len, NULL, 0));
    CHECK(c == 'c');
    CHECK_ST(mapshare_subscriber_recv(late, &c, 1, &len, NULL, 0), MAPSHARE_EMPTY);
    mapshare_subscriber_close(late);
    /* A publisher has no use for history: refused. */
    mapshare_publisher_t *p3 = NULL;
    CHECK_ST(mapshare_publisher_open(n2, &h, &p3), MAPSHARE_INVALID_ARGUMENT);
    mapshare_publisher_close(p);
    mapshare_subscriber_close(s);
    CHECK(!segment_exists(n) && !segment_exists(n2));
}

static void test_mutex_event(void) {
    const char *n = unique_name("mutex");
    mapshare_mutex_t *a = NULL, *b = NULL;
    CHECK_OK(mapshare_mutex_open_or_create(n, NULL, &a));
    CHECK_OK(mapshare_mutex_open_or_create(n, NULL, &b));
    CHECK_OK(mapshare_mutex_lock(a, MAPSHARE_FOREVER));
    CHECK_ST(mapshare_mutex_lock(b, 0), MAPSHARE_WOULD_BLOCK);
    uint64_t t0 = now_ns();
    CHECK_ST(mapshare_mutex_lock(b, 25 * MS), MAPSHARE_TIMEOUT);
    CHECK(now_ns() - t0 >= 25 * MS);
    CHECK_ST(mapshare_mutex_lock(a, 0), MAPSHARE_INVALID_ARGUMENT); /* not recursive */
    CHECK_OK(mapshare_mutex_unlock(a));
    CHECK_ST(mapshare_mutex_unlock(a), MAPSHARE_INVALID_ARGUMENT);
    CHECK_OK(mapshare_mutex_lock(b, 0));
    CHECK_OK(mapshare_mutex_unlock(b));
    mapshare_mutex_close(a);
    mapshare_mutex_close(b);

    const char *e = unique_name("event");
    mapshare_options_t o;
    mapshare_options_init(&o);
    o.manual_reset = true;
    mapshare_event_t *ev = NULL, *ev2 = NULL;
    CHECK_OK(mapshare_event_create(e, &o, &ev));
    CHECK_OK(mapshare_event_open(e, NULL, &ev2));
    CHECK(mapshare_event_is_manual_reset(ev2));
    CHECK(!mapshare_event_is_set(ev2));
    CHECK_ST(mapshare_event_wait(ev2, 0), MAPSHARE_EMPTY);
    t0 = now_ns();
    CHECK_ST(mapshare_event_wait(ev2, 20 * MS), MAPSHARE_TIMEOUT);
    CHECK(now_ns() - t0 >= 20 * MS);
    CHECK_OK(mapshare_event_notify(ev));
    CHECK_OK(mapshare_event_wait(ev2, MAPSHARE_FOREVER));
    CHECK_OK(mapshare_event_wait(ev2, 0)); /* manual: stays set */
    CHECK_OK(mapshare_event_reset(ev));
    CHECK_ST(mapshare_event_wait(ev2, 0), MAPSHARE_EMPTY);
    mapshare_event_close(ev2);
    mapshare_event_close(ev);
}

static void test_open_errors(void) {
    const char *n = unique_name("errors");
    mapshare_mailbox_t *mb = NULL, *mb2 = NULL;
    mapshare_mutex_t *m = NULL;
    mapshare_subscriber_t *s = NULL;
    CHECK_ST(mapshare_mailbox_open(n, NULL, &mb), MAPSHARE_NOT_FOUND);
    CHECK(mb == NULL);
    CHECK(strstr(mapshare_last_error_message(), "no such segment") != NULL);
    CHECK_OK(mapshare_mailbox_create(n, NULL, &mb));
    CHECK_ST(mapshare_mailbox_create(n, NULL, &mb2), MAPSHARE_ALREADY_EXISTS);
    CHECK_ST(mapshare_mutex_open(n, NULL, &m), MAPSHARE_KIND_MISMATCH);
    CHECK(strstr(mapshare_last_error_message(), "not a mutex") != NULL);
    CHECK_ST(mapshare_subscriber_open(n, NULL, &s), MAPSHARE_KIND_MISMATCH);
    mapshare_mailbox_close(mb);

    CHECK_ST(mapshare_mutex_create(".hidden", NULL, &m), MAPSHARE_INVALID_NAME);
    CHECK_ST(mapshare_mutex_create("with/slash", NULL, &m), MAPSHARE_INVALID_NAME);
    CHECK_ST(mapshare_mutex_create("", NULL, &m), MAPSHARE_INVALID_NAME);
    CHECK(strstr(mapshare_last_error_message(), "invalid segment name") != NULL);
    CHECK_ST(mapshare_mutex_create(NULL, NULL, &m), MAPSHARE_INVALID_ARGUMENT);
    CHECK_ST(mapshare_mutex_create(n, NULL, NULL), MAPSHARE_INVALID_ARGUMENT);
    CHECK_ST(mapshare_mutex_lock(NULL, 0), MAPSHARE_INVALID_ARGUMENT);

    mapshare_options_t o;
    mapshare_options_init(&o);
    o.senders = 3;
    CHECK_ST(mapshare_mutex_create(n, &o, &m), MAPSHARE_INVALID_ARGUMENT);
    CHECK(strstr(mapshare_last_error_message(), "senders does not apply to a mutex") != NULL);

    /* The message can be copied out, cut to the buffer, always terminated. */
    char small[6];
    size_t full = mapshare_last_error(small, sizeof small);
    CHECK(full == strlen(mapshare_last_error_message()));
    CHECK(strlen(small) == sizeof small - 1);
    CHECK(strcmp(mapshare_status_name(MAPSHARE_OWNER_DIED), "MAPSHARE_OWNER_DIED") == 0);
    CHECK(strlen(mapshare_version()) > 0);
}

static void test_persistent_and_file(void) {
    const char *n = unique_name("persist");
    mapshare_options_t o;
    mapshare_options_init(&o);
    o.persistent = true;
    mapshare_mailbox_t *mb = NULL;
    CHECK_OK(mapshare_mailbox_create(n, &o, &mb));
    CHECK_OK(mapshare_mailbox_send(mb, "kept", 4, 0));
    mapshare_mailbox_close(mb);
    CHECK(segment_exists(n)); /* outlives its last handle */
    CHECK_OK(mapshare_mailbox_open(n, NULL, &mb));
    char buf[8];
    size_t len;
    CHECK_OK(mapshare_mailbox_recv(mb, buf, sizeof buf, &len, 0));
    CHECK(len == 4 && memcmp(buf, "kept", 4) == 0);
    mapshare_mailbox_close(mb);
    CHECK_OK(mapshare_unlink(n));
    CHECK_ST(mapshare_unlink(n), MAPSHARE_NOT_FOUND);

    /* File-backed: the name may be NULL. */
    char *path = g_file; /* removed at exit, also after a failed check */
    snprintf(path, sizeof g_file, "/tmp/mapshare-c-test-%ld.seg", (long)getpid());
    unlink(path);
    mapshare_options_init(&o);
    o.file = path;
    mapshare_event_t *ev = NULL, *ev2 = NULL;
    CHECK_OK(mapshare_event_create(NULL, &o, &ev));
    CHECK_OK(mapshare_event_open(NULL, &o, &ev2));
    CHECK_OK(mapshare_event_notify(ev2));
    CHECK_OK(mapshare_event_wait(ev, 0));
    mapshare_event_close(ev2);
    mapshare_event_close(ev);
    unlink(path);
}

struct point {
    double x, y;
    uint32_t id, flags;
};

static void test_shared(void) {
    const char *n = unique_name("shared");
    mapshare_layout_t layout = MAPSHARE_LAYOUT(struct point);
    CHECK(strcmp(layout.type_name, "struct point") == 0 && layout.size == sizeof(struct point));
    mapshare_shared_t *a = NULL, *b = NULL, *c = NULL;
    CHECK_OK(mapshare_shared_create(n, &layout, NULL, &a));
    CHECK(mapshare_shared_size(a) == sizeof(struct point));
    CHECK_OK(mapshare_shared_open(n, &layout, NULL, &b));

    struct point p = {1.5, -2.25, 7, 0}, q;
    size_t len = 0;
    CHECK_ST(mapshare_shared_write(a, &p, sizeof p), MAPSHARE_INVALID_ARGUMENT); /* not locked */
    CHECK(strstr(mapshare_last_error_message(), "lock it first") != NULL);
    CHECK_OK(mapshare_shared_lock(a, MAPSHARE_FOREVER));
    CHECK_ST(mapshare_shared_lock(b, 0), MAPSHARE_WOULD_BLOCK);
    CHECK_ST(mapshare_shared_write(a, &p, sizeof p - 1), MAPSHARE_INVALID_ARGUMENT);
    CHECK_OK(mapshare_shared_write(a, &p, sizeof p));
    CHECK_OK(mapshare_shared_unlock(a));
    CHECK_OK(mapshare_shared_notify(a));

    CHECK_OK(mapshare_shared_wait(b, MAPSHARE_FOREVER));
    CHECK_ST(mapshare_shared_wait(b, 0), MAPSHARE_EMPTY); /* consumed */
    uint64_t t0 = now_ns();
    CHECK_ST(mapshare_shared_wait(b, 20 * MS), MAPSHARE_TIMEOUT);
    CHECK(now_ns() - t0 >= 20 * MS);
    CHECK_OK(mapshare_shared_lock(b, 50 * MS));
    CHECK_ST(mapshare_shared_read(b, &q, 4, &len), MAPSHARE_TOO_SMALL);
    CHECK(len == sizeof q);
    CHECK_OK(mapshare_shared_read(b, &q, sizeof q, &len));
    CHECK(len == sizeof q && q.x == 1.5 && q.y == -2.25 && q.id == 7);
    CHECK_OK(mapshare_shared_unlock(b));

    /* Another layout: refused, naming both sides. */
    mapshare_layout_t other = layout;
    other.size = 8;
    CHECK_ST(mapshare_shared_open(n, &other, NULL, &c), MAPSHARE_LAYOUT_MISMATCH);
    CHECK(c == NULL);
    CHECK(strstr(mapshare_last_error_message(), "struct point (size 24, align 8)") != NULL);
    CHECK(strstr(mapshare_last_error_message(), "size 8") != NULL);
    other = layout;
    other.type_name = "struct pixel";
    CHECK_ST(mapshare_shared_open(n, &other, NULL, &c), MAPSHARE_LAYOUT_MISMATCH);
    other = layout;
    other.align = 4;
    CHECK_ST(mapshare_shared_open(n, &other, NULL, &c), MAPSHARE_LAYOUT_MISMATCH);
    other.align = 3;
    CHECK_ST(mapshare_shared_open(n, &other, NULL, &c), MAPSHARE_INVALID_SIZE);
    other = layout;
    other.size = 0;
    CHECK_ST(mapshare_shared_open(n, &other, NULL, &c), MAPSHARE_INVALID_SIZE);
    CHECK_ST(mapshare_shared_open(n, NULL, NULL, &c), MAPSHARE_INVALID_ARGUMENT);
    /* Another kind under the name. */
    mapshare_mailbox_t *mb = NULL;
    CHECK_ST(mapshare_mailbox_open(n, NULL, &mb), MAPSHARE_KIND_MISMATCH);
    const char *m = unique_name("shared-mb");
    CHECK_OK(mapshare_mailbox_create(m, NULL, &mb));
    CHECK_ST(mapshare_shared_open(m, &layout, NULL, &c), MAPSHARE_KIND_MISMATCH);
    mapshare_mailbox_close(mb);

    CHECK_OK(mapshare_shared_lock(a, 0));
    mapshare_shared_close(a); /* releases the lock it holds */
    CHECK_OK(mapshare_shared_lock(b, 0));
    mapshare_shared_close(b);
    CHECK(!segment_exists(n));
}

static void test_blackboard(void) {
    const char *n = unique_name("board");
    mapshare_layout_t layout = {"Pair", 16, 8};
    mapshare_blackboard_writer_t *w = NULL, *w2 = NULL;
    mapshare_blackboard_reader_t *r = NULL, *r2 = NULL;
    CHECK_OK(mapshare_blackboard_writer_create(n, &layout, NULL, &w));
    CHECK_OK(mapshare_blackboard_reader_open(n, &layout, NULL, &r));
    CHECK_ST(mapshare_blackboard_writer_open(n, &layout, NULL, &w2), MAPSHARE_TOO_MANY_ATTACHED);
    CHECK(mapshare_blackboard_reader_size(r) == 16);
    CHECK(mapshare_blackboard_reader_writer_alive(r));

    uint64_t v[2] = {9, 9}, ver = 99;
    size_t len = 0;
    CHECK_OK(mapshare_blackboard_reader_read(r, v, sizeof v, &len, &ver));
    CHECK(len == 16 && ver == 0 && v[0] == 0 && v[1] == 0);
    uint64_t val[2] = {1, 2};
    CHECK_ST(mapshare_blackboard_writer_write(w, val, 8), MAPSHARE_INVALID_ARGUMENT);
    CHECK_OK(mapshare_blackboard_writer_write(w, val, sizeof val));
    CHECK(mapshare_blackboard_writer_version(w) == 1);
    CHECK(mapshare_blackboard_reader_version(r) == 1);
    CHECK_ST(mapshare_blackboard_reader_read(r, v, 15, &len, &ver), MAPSHARE_TOO_SMALL);
    CHECK(len == 16);
    CHECK_OK(mapshare_blackboard_reader_read_newer(r, 0, v, sizeof v, &len, &ver, MAPSHARE_FOREVER));
    CHECK(ver == 1 && v[0] == 1 && v[1] == 2);
    CHECK_ST(mapshare_blackboard_reader_read_newer(r, 1, v, sizeof v, &len, &ver, 0), MAPSHARE_EMPTY);
    uint64_t t0 = now_ns();
    CHECK_ST(mapshare_blackboard_reader_read_newer(r, 1, v, sizeof v, &len, &ver, 20 * MS), MAPSHARE_TIMEOUT);
    CHECK(now_ns() - t0 >= 20 * MS);

    mapshare_layout_t other = {"Pair", 16, 4};
    CHECK_ST(mapshare_blackboard_reader_open(n, &other, NULL, &r2), MAPSHARE_LAYOUT_MISMATCH);
    CHECK(strstr(mapshare_last_error_message(), "layout mismatch") != NULL);

    val[0] = 3;
    val[1] = 4;
    CHECK_OK(mapshare_blackboard_writer_write(w, val, sizeof val));
    mapshare_blackboard_writer_close(w);
    CHECK_OK(mapshare_blackboard_reader_read_newer(r, 1, v, sizeof v, &len, &ver, MAPSHARE_FOREVER));
    CHECK(ver == 2 && v[0] == 3 && v[1] == 4);
    CHECK(!mapshare_blackboard_reader_writer_alive(r));
    CHECK_ST(mapshare_blackboard_reader_read_newer(r, 2, v, sizeof v, &len, &ver, MAPSHARE_FOREVER), MAPSHARE_DISCONNECTED);
    mapshare_blackboard_reader_close(r);
    CHECK(!segment_exists(n));
}

int main(void) {
    test_init("test_api");
    test_mailbox();
    test_channel();
    test_pubsub();
    test_mutex_event();
    test_open_errors();
    test_persistent_and_file();
    test_shared();
    test_blackboard();
    unlink_all();
    check_shm_clean();
    printf("test_api: all passed\n");
    return 0;
}
