/*
 * Helpers shared by the C tests: checks that fail loudly, unique segment
 * names removed at exit (also after a failed check), child processes
 * (fork + exec of this same program in another role, or of the CLI), and
 * the monotonic clock. Header-only: each test program is one .c file.
 */
#ifndef MAPSHARE_TEST_COMMON_H
#define MAPSHARE_TEST_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mapshare.h"

#define MS 1000000ull /* nanoseconds in a millisecond */

static const char *g_prog = "test";

/* Every name this process made, unlinked at exit. */
static char g_names[64][128];
static int g_nnames;

/* A file-backed segment's path, removed at exit too. */
static char g_file[256];

static inline void unlink_all(void) {
    for (int i = 0; i < g_nnames; i++) {
        (void)mapshare_unlink(g_names[i]);
    }
    if (g_file[0]) unlink(g_file);
}

#define FAIL(...)                                                              \
    do {                                                                       \
        fprintf(stderr, "%s: FAILED at %s:%d: ", g_prog, __FILE__, __LINE__);  \
        fprintf(stderr, __VA_ARGS__);                                          \
        fprintf(stderr, "\n");                                                 \
        exit(1);                                                               \
    } while (0)

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) FAIL("%s", #cond);                                        \
    } while (0)

/* Checks a call's status, printing the library's message when it differs. */
#define CHECK_ST(call, want)                                                   \
    do {                                                                       \
        mapshare_status st_ = (call);                                          \
        if (st_ != (want))                                                     \
            FAIL("%s returned %s, expected %s (last error: %s)", #call,        \
                 mapshare_status_name((int)st_), mapshare_status_name((int)(want)), \
                 mapshare_last_error_message());                               \
    } while (0)

#define CHECK_OK(call) CHECK_ST(call, MAPSHARE_OK)

static inline void test_init(const char *prog) {
    g_prog = prog;
    atexit(unlink_all);
}

/* A name unique to this process and test, registered for removal at exit. */
static inline const char *unique_name(const char *test) {
    if (g_nnames >= 64) FAIL("too many names");
    char *n = g_names[g_nnames++];
    snprintf(n, sizeof g_names[0], "c-%ld-%s", (long)getpid(), test);
    (void)mapshare_unlink(n); /* a leftover of a crashed earlier run with our pid */
    return n;
}

static inline uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static inline void sleep_ms(unsigned ms) {
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {
    }
}

/* Whether /dev/shm/mapshare.NAME exists. */
static inline int segment_exists(const char *name) {
    char path[256];
    snprintf(path, sizeof path, "/dev/shm/mapshare.%s", name);
    return access(path, F_OK) == 0;
}

/* Fails if any segment of this process's names is left in /dev/shm. */
static inline void check_shm_clean(void) {
    char prefix[64];
    snprintf(prefix, sizeof prefix, "mapshare.c-%ld-", (long)getpid());
    DIR *d = opendir("/dev/shm");
    CHECK(d != NULL);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
            closedir(d);
            FAIL("left in /dev/shm: %s", e->d_name);
        }
    }
    closedir(d);
}

/* Starts argv[0] of `argv` (a path) as a child; its stdin and stdout are
 * pipes when the pointers are given (the parent's ends are returned). */
static inline pid_t spawn(char *const argv[], int *to_child, int *from_child) {
    int in[2] = {-1, -1}, out[2] = {-1, -1};
    if (to_child && pipe(in) != 0) FAIL("pipe: %s", strerror(errno));
    if (from_child && pipe(out) != 0) FAIL("pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) FAIL("fork: %s", strerror(errno));
    if (pid == 0) {
        if (to_child) {
            dup2(in[0], 0);
            close(in[0]);
            close(in[1]);
        }
        if (from_child) {
            dup2(out[1], 1);
            close(out[0]);
            close(out[1]);
        }
        execv(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127); /* not exit(): the parent's atexit cleanup is not ours */
    }
    if (to_child) {
        close(in[0]);
        *to_child = in[1];
    }
    if (from_child) {
        close(out[1]);
        *from_child = out[0];
    }
    return pid;
}

/* Starts this program in another role: `prog ROLE ARG...`. */
static inline pid_t spawn_role(const char *self, const char *role, const char *a1, const char *a2) {
    char *argv[] = {(char *)self, (char *)role, (char *)a1, (char *)a2, NULL};
    return spawn(argv, NULL, NULL);
}

/* Waits for a child; returns its exit status, or 128 + signal. */
static inline int wait_child(pid_t pid) {
    int st;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) FAIL("waitpid: %s", strerror(errno));
    }
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return -1;
}

/* Reads everything from `fd` into buf (NUL-terminated), then closes it. */
static inline size_t read_all(int fd, char *buf, size_t cap) {
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        n += (size_t)r;
        if (n == cap - 1) break;
    }
    buf[n] = 0;
    close(fd);
    return n;
}

static inline void write_all(int fd, const char *s) {
    size_t len = strlen(s), off = 0;
    while (off < len) {
        ssize_t w = write(fd, s + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) FAIL("write: %s", strerror(errno));
        off += (size_t)w;
    }
}

/* The CLI binary for the cross tests: $MAPSHARE_BIN, which must be set. */
static inline const char *cli_path(void) {
    const char *p = getenv("MAPSHARE_BIN");
    if (!p || !*p) FAIL("MAPSHARE_BIN is not set (the path of the `mapshare` binary; ci/c.sh sets it)");
    if (access(p, X_OK) != 0) FAIL("MAPSHARE_BIN=%s is not executable", p);
    return p;
}

#endif
