/*
 * test_log: the JSON lines operators read (docs/operations.md "Log lines"). Event lines
 * and access lines are captured through a pipe or a temp file, parsed back
 * with yajl_tree and checked key by key: valid JSON even for hostile paths
 * (invalid UTF-8 becomes U+FFFD, quotes and controls escaped), bounded for
 * huge ones, one line per write even from several threads, and the level
 * macros never evaluate arguments of a disabled line. Both kinds of line
 * escape a string byte for byte as jsonw (the envelope's writer) does.
 */
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <yajl/yajl_tree.h>

#include "accesslog.h"
#include "jsonw.h"
#include "log.h"

void test_register(void);

static int pipe_fds[2] = {-1, -1};

static int log_suite_init(void)
{
    if (pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0)
        return -1;
    log_set_fd(pipe_fds[1]);
    log_set_level(CONF_LOG_DEBUG);
    return 0;
}

static int log_suite_clean(void)
{
    log_set_fd(STDOUT_FILENO);
    log_set_level(CONF_LOG_INFO);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    return 0;
}

/* Everything written to the pipe so far, NUL-terminated (caller frees). */
static char *drain(size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf)
        return NULL;
    for (;;) {
        if (n == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb)
                break;
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(pipe_fds[0], buf + n, cap - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static size_t count_lines(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += s[i] == '\n';
    return n;
}

/* Parse one line as a JSON object; NULL (and a message) when it is not. */
static yajl_val parse_line(const char *line)
{
    char err[256];
    yajl_val v = yajl_tree_parse(line, err, sizeof err);
    if (!v)
        fprintf(stderr, "\n  not JSON (%s): %.200s\n", err, line);
    else if (!YAJL_IS_OBJECT(v)) {
        yajl_tree_free(v);
        v = NULL;
    }
    return v;
}

static const char *str_at(yajl_val obj, const char *key)
{
    const char *path[] = {key, NULL};
    yajl_val v = yajl_tree_get(obj, path, yajl_t_string);
    return v ? YAJL_GET_STRING(v) : NULL;
}

static yajl_val val_at(yajl_val obj, const char *key)
{
    const char *path[] = {key, NULL};
    return yajl_tree_get(obj, path, yajl_t_any);
}

/* Capture exactly one line emitted by the caller, parsed. */
static yajl_val one_line(void)
{
    size_t len;
    char *s = drain(&len);
    if (!s)
        return NULL;
    yajl_val v = NULL;
    if (len > 0 && s[len - 1] == '\n' && count_lines(s, len) == 1) {
        s[len - 1] = '\0';
        v = parse_line(s);
    } else {
        fprintf(stderr, "\n  expected one line, got %zu bytes: %.200s\n", len, s);
    }
    free(s);
    return v;
}

static bool is_rfc3339_ms(const char *ts)
{
    /* 2026-11-21T23:23:41.123Z */
    if (!ts || strlen(ts) != 24)
        return false;
    const char *shape = "dddd-dd-ddTdd:dd:dd.dddZ";
    for (int i = 0; i < 24; i++) {
        if (shape[i] == 'd' ? (ts[i] < '0' || ts[i] > '9') : ts[i] != shape[i])
            return false;
    }
    return true;
}

static void test_event_line(void)
{
    const char *fields[] = {"upstream", "127.0.0.1:9001", "attempt", "2", NULL};
    log_emit(CONF_LOG_WARN, "upstream_down", "req-1", fields, "server %s refused: %d",
             "127.0.0.1:9001", 111);
    yajl_val v = one_line();
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_TRUE(is_rfc3339_ms(str_at(v, "ts")));
    CU_ASSERT_STRING_EQUAL(str_at(v, "level"), "warn");
    CU_ASSERT_STRING_EQUAL(str_at(v, "event"), "upstream_down");
    CU_ASSERT_STRING_EQUAL(str_at(v, "request_id"), "req-1");
    CU_ASSERT_STRING_EQUAL(str_at(v, "message"), "server 127.0.0.1:9001 refused: 111");
    CU_ASSERT_STRING_EQUAL(str_at(v, "upstream"), "127.0.0.1:9001");
    CU_ASSERT_STRING_EQUAL(str_at(v, "attempt"), "2");
    /* the documented keys come first, in order */
    CU_ASSERT_EQUAL(v->u.object.len, 7);
    CU_ASSERT_STRING_EQUAL(v->u.object.keys[0], "ts");
    CU_ASSERT_STRING_EQUAL(v->u.object.keys[1], "level");
    CU_ASSERT_STRING_EQUAL(v->u.object.keys[2], "event");
    yajl_tree_free(v);

    /* no request id, no fields */
    log_emit(CONF_LOG_INFO, "start", NULL, NULL, "envelopd %s", "0.1.0");
    v = one_line();
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_PTR_NULL(val_at(v, "request_id"));
    CU_ASSERT_STRING_EQUAL(str_at(v, "level"), "info");
    CU_ASSERT_EQUAL(v->u.object.len, 4);
    yajl_tree_free(v);

    /* an odd field array: the dangling key is dropped, not read past */
    const char *odd[] = {"a", "1", "b", NULL};
    log_emit(CONF_LOG_ERROR, "conf_error", NULL, odd, "x");
    v = one_line();
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_STRING_EQUAL(str_at(v, "level"), "error");
    CU_ASSERT_STRING_EQUAL(str_at(v, "a"), "1");
    CU_ASSERT_PTR_NULL(val_at(v, "b"));
    yajl_tree_free(v);
}

static void test_event_escaping(void)
{
    log_emit(CONF_LOG_INFO, "t", "id\"x", NULL, "quote \" backslash \\ nl \n tab \t ctl \x01 end");
    yajl_val v = one_line();
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_STRING_EQUAL(str_at(v, "message"),
                           "quote \" backslash \\ nl \n tab \t ctl \x01 end");
    CU_ASSERT_STRING_EQUAL(str_at(v, "request_id"), "id\"x");
    yajl_tree_free(v);

    /* invalid UTF-8 anywhere becomes U+FFFD; valid UTF-8 is kept */
    const char *fields[] = {"path", "/caf\xc3\xa9/\xff\xfe/\xc3", NULL};
    log_emit(CONF_LOG_INFO, "t", NULL, fields, "bad \x80 utf8 \xed\xa0\x80 surrogate");
    v = one_line();
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_STRING_EQUAL(str_at(v, "path"),
                           "/caf\xc3\xa9/\xef\xbf\xbd\xef\xbf\xbd/\xef\xbf\xbd");
    const char *msg = str_at(v, "message");
    CU_ASSERT_PTR_NOT_NULL_FATAL(msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "bad \xef\xbf\xbd utf8"));
    CU_ASSERT_PTR_NULL(strstr(msg, "\xed\xa0\x80"));
    yajl_tree_free(v);

    /* a message longer than the formatting buffer is cut, still one valid line */
    char big[5000];
    memset(big, 'm', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    log_emit(CONF_LOG_INFO, "t", NULL, NULL, "%s", big);
    v = one_line();
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_TRUE(strlen(str_at(v, "message")) < sizeof big - 1);
    yajl_tree_free(v);
}

/* A field longer than the line buffer on the stack (never one of ours):
 * still one whole line, in one write, nothing cut. */
static void test_event_long_field(void)
{
    static char big[20001];
    memset(big, 'f', sizeof big - 1);
    big[sizeof big / 2] = '\n';   /* escaped: two bytes in the line */
    const char *fields[] = {"big", big, NULL};
    log_emit(CONF_LOG_INFO, "t", NULL, fields, "long");
    yajl_val v = one_line();
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    const char *got = str_at(v, "big");
    CU_ASSERT_TRUE(got && strcmp(got, big) == 0);
    yajl_tree_free(v);
}

static int evaluated;

static const char *side_effect(void)
{
    evaluated++;
    return "x";
}

static void test_levels(void)
{
    size_t len = 0;
    char *s;
    log_set_level(CONF_LOG_WARN);
    CU_ASSERT_FALSE(log_enabled(CONF_LOG_DEBUG));
    CU_ASSERT_FALSE(log_enabled(CONF_LOG_INFO));
    CU_ASSERT_TRUE(log_enabled(CONF_LOG_WARN));
    CU_ASSERT_TRUE(log_enabled(CONF_LOG_ERROR));
    evaluated = 0;
    log_debug("d", "%s", side_effect());
    log_info("i", "%s", side_effect());
    CU_ASSERT_EQUAL(evaluated, 0);            /* arguments of a disabled line never run */
    s = drain(&len);
    CU_ASSERT_EQUAL(len, 0);
    free(s);
    log_warn("w", "%s", side_effect());
    log_error("e", "%s", side_effect());
    CU_ASSERT_EQUAL(evaluated, 2);
    s = drain(&len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(count_lines(s, len), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"level\":\"warn\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "\"level\":\"error\""));
    free(s);
    log_set_level(CONF_LOG_DEBUG);
    log_debug("d", "now on");
    s = drain(&len);
    CU_ASSERT_EQUAL(count_lines(s, len), 1);
    free(s);
}

/* ---- several threads, one file ------------------------------------------ */

#define THREADS 4
#define LINES 300

static void *writer(void *arg)
{
    long t = (long)(intptr_t)arg;
    char pad[600];
    memset(pad, 'a' + (int)t, sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    for (int i = 0; i < LINES; i++) {
        char n[16];
        snprintf(n, sizeof n, "%d", i);
        const char *fields[] = {"n", n, "pad", pad, NULL};
        log_emit(CONF_LOG_INFO, "thread", NULL, fields, "thread %ld", t);
    }
    return NULL;
}

/*
 * Lines from several threads never interleave. Under LeakSanitizer this is
 * also the regression test for each thread's generator being freed when
 * the thread ends (it once leaked ~2.6 KB per thread).
 */
static void test_threads(void)
{
    char path[] = "/tmp/envelopd-test-log-XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_TRUE_FATAL(fd >= 0);
    unlink(path);
    /* O_APPEND so each write lands whole at the end, as with a redirected stdout */
    int flags = fcntl(fd, F_GETFL);
    CU_ASSERT_EQUAL(fcntl(fd, F_SETFL, flags | O_APPEND), 0);
    log_set_fd(fd);
    pthread_t th[THREADS];
    for (long t = 0; t < THREADS; t++)
        CU_ASSERT_EQUAL(pthread_create(&th[t], NULL, writer, (void *)(intptr_t)t), 0);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    log_set_fd(pipe_fds[1]);
    off_t size = lseek(fd, 0, SEEK_END);
    CU_ASSERT_TRUE_FATAL(size > 0);
    char *buf = malloc((size_t)size + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    CU_ASSERT_EQUAL(pread(fd, buf, (size_t)size, 0), size);
    buf[size] = '\0';
    close(fd);
    int lines = 0, bad = 0;
    int seen[THREADS] = {0};
    for (char *line = buf, *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
        *nl = '\0';
        yajl_val v = parse_line(line);
        lines++;
        if (!v) {
            bad++;
            continue;
        }
        const char *pad = str_at(v, "pad");
        if (pad && strlen(pad) == 599 && pad[0] >= 'a' && pad[0] < 'a' + THREADS &&
            strspn(pad, (char[]){pad[0], 0}) == 599)
            seen[pad[0] - 'a']++;
        else
            bad++;
        yajl_tree_free(v);
    }
    CU_ASSERT_EQUAL(lines, THREADS * LINES);
    CU_ASSERT_EQUAL(bad, 0);
    for (int t = 0; t < THREADS; t++)
        CU_ASSERT_EQUAL(seen[t], LINES);
    free(buf);
}

/* ---- access log ------------------------------------------------------ */

static char al_path[64];

static int access_suite_init(void)
{
    snprintf(al_path, sizeof al_path, "/tmp/envelopd-test-access-%d.log", (int)getpid());
    unlink(al_path);
    return accesslog_open(al_path) == 0 ? 0 : -1;
}

static int access_suite_clean(void)
{
    accesslog_close();
    unlink(al_path);
    return 0;
}

/* Read the access log, truncate it, and return its single line parsed. */
static yajl_val access_line(size_t *line_len)
{
    FILE *f = fopen(al_path, "r");
    if (!f)
        return NULL;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, f);
    char *extra = NULL;
    size_t ecap = 0;
    bool more = getline(&extra, &ecap, f) > 0;
    fclose(f);
    free(extra);
    if (truncate(al_path, 0) != 0 || n <= 0 || more || line[n - 1] != '\n') {
        fprintf(stderr, "\n  access log: %zd bytes, more lines %d\n", n, more);
        free(line);
        return NULL;
    }
    line[n - 1] = '\0';
    if (line_len)
        *line_len = (size_t)n;
    yajl_val v = parse_line(line);
    free(line);
    return v;
}

static const char *const access_keys[] = {
    "ts", "request_id", "client", "method", "path", "route", "status", "upstream_status",
    "upstream", "duration_ms", "upstream_ms", "bytes_in", "bytes_out", "ratelimit_remaining",
    "error_code",
};

static void test_access_full(void)
{
    struct access_entry e = {
        .request_id = "550e8400-e29b-41d4-a716-446655440000",
        .client = "192.0.2.7",
        .method = "GET",
        .path = "/api/v1/tasks/7",
        .path_len = 15,
        .route = "tasks",
        .status = 404,
        .upstream_status = 404,
        .upstream = "127.0.0.1:9001",
        .duration_ms = 12.3456,
        .upstream_ms = 10.5,
        .bytes_in = 120,
        .bytes_out = 345,
        .ratelimit_remaining = 99,
        .error_code = "NOT_FOUND",
    };
    accesslog_write(&e);
    yajl_val v = access_line(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    /* exactly the promised keys, in the promised order */
    size_t nk = sizeof access_keys / sizeof access_keys[0];
    CU_ASSERT_EQUAL_FATAL(v->u.object.len, nk);
    for (size_t i = 0; i < nk; i++)
        CU_ASSERT_STRING_EQUAL(v->u.object.keys[i], access_keys[i]);
    CU_ASSERT_TRUE(is_rfc3339_ms(str_at(v, "ts")));
    CU_ASSERT_STRING_EQUAL(str_at(v, "request_id"), e.request_id);
    CU_ASSERT_STRING_EQUAL(str_at(v, "client"), "192.0.2.7");
    CU_ASSERT_STRING_EQUAL(str_at(v, "method"), "GET");
    CU_ASSERT_STRING_EQUAL(str_at(v, "path"), "/api/v1/tasks/7");
    CU_ASSERT_STRING_EQUAL(str_at(v, "route"), "tasks");
    CU_ASSERT_STRING_EQUAL(str_at(v, "upstream"), "127.0.0.1:9001");
    CU_ASSERT_STRING_EQUAL(str_at(v, "error_code"), "NOT_FOUND");
    yajl_val st = val_at(v, "status");
    CU_ASSERT_TRUE(YAJL_IS_INTEGER(st) && YAJL_GET_INTEGER(st) == 404);
    st = val_at(v, "upstream_status");
    CU_ASSERT_TRUE(YAJL_IS_INTEGER(st) && YAJL_GET_INTEGER(st) == 404);
    yajl_val d = val_at(v, "duration_ms");
    CU_ASSERT_TRUE(YAJL_IS_NUMBER(d));
    CU_ASSERT_DOUBLE_EQUAL(YAJL_GET_DOUBLE(d), 12.346, 0.0011);
    d = val_at(v, "upstream_ms");
    CU_ASSERT_DOUBLE_EQUAL(YAJL_GET_DOUBLE(d), 10.5, 0.0011);
    CU_ASSERT_EQUAL(YAJL_GET_INTEGER(val_at(v, "bytes_in")), 120);
    CU_ASSERT_EQUAL(YAJL_GET_INTEGER(val_at(v, "bytes_out")), 345);
    CU_ASSERT_EQUAL(YAJL_GET_INTEGER(val_at(v, "ratelimit_remaining")), 99);
    yajl_tree_free(v);
}

static void test_access_nulls(void)
{
    /* a 404 from the gateway itself: no route, no upstream, no limit */
    struct access_entry e = {
        .request_id = "r1", .client = "::1", .method = "DELETE", .path = "/nowhere",
        .path_len = 8, .status = 404, .duration_ms = 0.1, .upstream_ms = -1,
        .ratelimit_remaining = -1, .error_code = NULL,
    };
    accesslog_write(&e);
    yajl_val v = access_line(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    const char *nulls[] = {"route", "upstream_status", "upstream", "upstream_ms",
                           "ratelimit_remaining", "error_code"};
    for (size_t i = 0; i < sizeof nulls / sizeof nulls[0]; i++) {
        yajl_val n = val_at(v, nulls[i]);
        CU_ASSERT_TRUE(n != NULL && YAJL_IS_NULL(n));
    }
    CU_ASSERT_EQUAL(v->u.object.len, sizeof access_keys / sizeof access_keys[0]);
    yajl_tree_free(v);
}

static void test_access_hostile_path(void)
{
    /* bytes straight off the wire: invalid UTF-8, quotes, controls */
    static const char path[] = "/a\"b\\c\x01\x1f/\xff\xc3(/caf\xc3\xa9/\xf0\x9f\x98\x80/\xed\xb2\x80";
    struct access_entry e = {
        .request_id = "r2", .client = "198.51.100.1", .method = "GET", .path = path,
        .path_len = sizeof path - 1, .status = 400, .upstream_ms = -1,
        .ratelimit_remaining = -1, .error_code = "BAD_REQUEST",
    };
    accesslog_write(&e);
    yajl_val v = access_line(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_STRING_EQUAL(str_at(v, "path"),
                           "/a\"b\\c\x01\x1f/\xef\xbf\xbd\xef\xbf\xbd(/caf\xc3\xa9/\xf0\x9f\x98\x80/"
                           "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    yajl_tree_free(v);

    /* a path with a NUL in it: the length counts */
    static const char nul[] = "/x\0y";
    e.path = nul;
    e.path_len = 4;
    accesslog_write(&e);
    v = access_line(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    const char *p = str_at(v, "path");
    CU_ASSERT_PTR_NOT_NULL(p);
    yajl_tree_free(v);
}

static void test_access_long_path(void)
{
    /* 100 KB of path: the line stays bounded and valid */
    size_t n = 100 * 1024;
    char *path = malloc(n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(path);
    path[0] = '/';
    memset(path + 1, 'p', n - 1);
    struct access_entry e = {
        .request_id = "r3", .client = "203.0.113.9", .method = "GET", .path = path,
        .path_len = n, .status = 414, .upstream_ms = -1, .ratelimit_remaining = -1,
        .error_code = "URI_TOO_LONG",
    };
    size_t line_len = 0;
    accesslog_write(&e);
    yajl_val v = access_line(&line_len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    const char *p = str_at(v, "path");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_TRUE(strlen(p) > 0 && strlen(p) <= 4096);
    CU_ASSERT_EQUAL(strncmp(p, "/ppp", 4), 0);
    CU_ASSERT_TRUE(line_len < 8192);
    yajl_tree_free(v);

    /* the same, all invalid bytes (each grows to 3 on repair) */
    memset(path, 0xff, n);
    accesslog_write(&e);
    v = access_line(&line_len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    p = str_at(v, "path");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_TRUE(strlen(p) <= 4096);
    CU_ASSERT_EQUAL(strlen(p) % 3, 0);
    CU_ASSERT_TRUE(line_len < 8192);
    yajl_tree_free(v);

    /* a long path of 4-byte characters is cut on a character, not inside one */
    for (size_t i = 0; i + 4 <= n; i += 4)
        memcpy(path + i, "\xf0\x9f\x98\x80", 4);
    path[0] = '/';
    accesslog_write(&e);
    v = access_line(&line_len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    yajl_tree_free(v);
    free(path);
}

static void test_access_off_and_reopen(void)
{
    struct access_entry e = {
        .request_id = "r4", .client = "c", .method = "GET", .path = "/", .path_len = 1,
        .status = 200, .upstream_ms = -1, .ratelimit_remaining = -1,
    };
    /* rotation: the old file moved away, reopen starts a new one at the path */
    char moved[80];
    snprintf(moved, sizeof moved, "%s.1", al_path);
    CU_ASSERT_EQUAL_FATAL(rename(al_path, moved), 0);
    CU_ASSERT_EQUAL(accesslog_reopen(), 0);
    accesslog_write(&e);
    yajl_val v = access_line(NULL);
    CU_ASSERT_PTR_NOT_NULL(v);
    yajl_tree_free(v);
    unlink(moved);
    /* off: nothing written */
    CU_ASSERT_EQUAL(accesslog_open("off"), 0);
    accesslog_write(&e);
    FILE *f = fopen(al_path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fgetc(f), EOF);
    fclose(f);
    CU_ASSERT_EQUAL(accesslog_open(al_path), 0);
    /* a path that cannot be opened is an error */
    CU_ASSERT_NOT_EQUAL(accesslog_open("/nonexistent-dir/x/access.log"), 0);
}

/* ---- access log batching -------------------------------------------- */

static int arm_calls;

static void count_arm(void *arg)
{
    (void)arg;
    arm_calls++;
}

static long file_size(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

/* Lines of a batch stay in memory until the flush, arm once per batch, and
 * land whole and in order. */
static void test_access_batch(void)
{
    struct access_entry e = {
        .request_id = "b1", .client = "c", .method = "GET", .path = "/", .path_len = 1,
        .status = 200, .upstream_ms = -1, .ratelimit_remaining = -1,
    };
    arm_calls = 0;
    CU_ASSERT_EQUAL_FATAL(accesslog_batch_begin(count_arm, NULL), 0);
    accesslog_write(&e);
    e.request_id = "b2";
    accesslog_write(&e);
    CU_ASSERT_EQUAL(arm_calls, 1);
    CU_ASSERT_EQUAL(file_size(al_path), 0);
    accesslog_batch_flush();
    long one_batch = file_size(al_path);
    CU_ASSERT(one_batch > 0);
    /* a flush with nothing queued writes nothing; the next line arms again */
    accesslog_batch_flush();
    CU_ASSERT_EQUAL(file_size(al_path), one_batch);
    e.request_id = "b3";
    accesslog_write(&e);
    CU_ASSERT_EQUAL(arm_calls, 2);
    accesslog_batch_end();  /* flushes */
    FILE *f = fopen(al_path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    char *line = NULL;
    size_t cap = 0;
    const char *want[] = {"b1", "b2", "b3"};
    for (size_t i = 0; i < 3; i++) {
        ssize_t n = getline(&line, &cap, f);
        CU_ASSERT_FATAL(n > 0 && line[n - 1] == '\n');
        line[n - 1] = '\0';
        yajl_val v = parse_line(line);
        CU_ASSERT_PTR_NOT_NULL_FATAL(v);
        const char *id_path[] = {"request_id", NULL};
        yajl_val id = yajl_tree_get(v, id_path, yajl_t_string);
        CU_ASSERT_PTR_NOT_NULL(id);
        if (id)
            CU_ASSERT_STRING_EQUAL(YAJL_GET_STRING(id), want[i]);
        yajl_tree_free(v);
    }
    CU_ASSERT_EQUAL(getline(&line, &cap, f), -1);
    free(line);
    fclose(f);
    CU_ASSERT_EQUAL(truncate(al_path, 0), 0);
    /* after the end, lines are written at once again */
    accesslog_write(&e);
    CU_ASSERT(file_size(al_path) > 0);
    CU_ASSERT_EQUAL(arm_calls, 2);
    CU_ASSERT_EQUAL(truncate(al_path, 0), 0);
}

/* A batch that would pass its bound is written first: memory stays bounded
 * and no line is split or lost. */
static void test_access_batch_bounded(void)
{
    char *path = malloc(1024);
    CU_ASSERT_PTR_NOT_NULL_FATAL(path);
    memset(path, 'p', 1024);
    path[0] = '/';
    struct access_entry e = {
        .request_id = "big", .client = "c", .method = "GET", .path = path, .path_len = 1024,
        .status = 200, .upstream_ms = -1, .ratelimit_remaining = -1,
    };
    arm_calls = 0;
    CU_ASSERT_EQUAL_FATAL(accesslog_batch_begin(count_arm, NULL), 0);
    const int lines = 200;  /* about 250 KiB: several times the batch */
    for (int i = 0; i < lines; i++)
        accesslog_write(&e);
    long before_flush = file_size(al_path);
    CU_ASSERT(before_flush > 0);             /* full batches went out on their own */
    CU_ASSERT(arm_calls > 1);                /* and each new batch armed again */
    accesslog_batch_end();
    FILE *f = fopen(al_path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    char *line = NULL;
    size_t cap = 0;
    int n_lines = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        CU_ASSERT_EQUAL(line[n - 1], '\n');
        line[n - 1] = '\0';
        yajl_val v = parse_line(line);
        CU_ASSERT_PTR_NOT_NULL(v);
        yajl_tree_free(v);
        n_lines++;
    }
    CU_ASSERT_EQUAL(n_lines, lines);
    free(line);
    fclose(f);
    free(path);
    CU_ASSERT_EQUAL(truncate(al_path, 0), 0);
}

/* To a pipe or socket (stdout under systemd), a batch goes out in writes of
 * at most PIPE_BUF bytes of whole lines, so another writer's line never
 * lands inside one of ours. A SEQPACKET socket shows each write as one
 * message. */
static void test_access_batch_pipe_pieces(void)
{
    int sv[2];
    CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    int saved = dup(STDOUT_FILENO);
    CU_ASSERT_FATAL(saved >= 0);
    CU_ASSERT_FATAL(dup2(sv[0], STDOUT_FILENO) >= 0);
    CU_ASSERT_EQUAL_FATAL(accesslog_open("stdout"), 0);
    struct access_entry e = {
        .request_id = "pipe", .client = "c", .method = "GET", .path = "/", .path_len = 1,
        .status = 200, .upstream_ms = -1, .ratelimit_remaining = -1,
    };
    CU_ASSERT_EQUAL_FATAL(accesslog_batch_begin(count_arm, NULL), 0);
    const int lines = 60;  /* about 16 KiB: four or five pieces */
    for (int i = 0; i < lines; i++)
        accesslog_write(&e);
    accesslog_batch_end();
    CU_ASSERT_FATAL(dup2(saved, STDOUT_FILENO) >= 0);
    close(saved);
    close(sv[0]);
    int pieces = 0, got_lines = 0;
    char msg[65536];
    ssize_t n;
    while ((n = recv(sv[1], msg, sizeof msg, MSG_DONTWAIT)) > 0) {
        pieces++;
        CU_ASSERT(n <= PIPE_BUF);
        CU_ASSERT_EQUAL(msg[n - 1], '\n');
        for (ssize_t i = 0; i < n; i++)
            got_lines += msg[i] == '\n';
    }
    close(sv[1]);
    CU_ASSERT_EQUAL(got_lines, lines);
    CU_ASSERT(pieces > 1 && pieces < lines);  /* batched, and cut */
    CU_ASSERT_EQUAL(accesslog_open(al_path), 0);
}

/* ---- one escaper for every line ------------------------------------------- */

/* Values as an event field and as an access line's path, one row per case:
 * both lines must hold exactly the bytes jsonw writes for the string (the
 * envelope's writer), so the three outputs cannot escape differently. */
static const char *const same_escape_cases[] = {
    "plain",
    "tab\there",
    "nl\ncr\rff\fbs\b",
    "ctl\x01\x0b\x1b\x1f",
    "quote\"back\\slash/",
    "bad\xff\xc3(",
    "caf\xc3\xa9 \xf0\x9f\x98\x80",
    "del\x7f",
    "surrogate\xed\xa0\x80",
};

/* The JSON string jsonw writes for S, NUL-terminated, into BUF. */
static void jsonw_text(const char *s, char *buf, size_t size)
{
    struct jsonw w;
    jsonw_init_fixed(&w, buf, size - 1);
    jsonw_put_string(&w, s, strlen(s));
    CU_ASSERT_FATAL(!w.failed);
    buf[w.len] = '\0';
}

/* Does LINE hold "KEY": followed by exactly WANT? */
static bool member_is(const char *line, const char *key, const char *want)
{
    char k[64];
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *p = line ? strstr(line, k) : NULL;
    return p && strncmp(p + strlen(k), want, strlen(want)) == 0;
}

static void test_event_same_escaper(void)
{
    for (size_t i = 0; i < sizeof same_escape_cases / sizeof same_escape_cases[0]; i++) {
        char want[256];
        jsonw_text(same_escape_cases[i], want, sizeof want);
        const char *fields[] = {"v", same_escape_cases[i], NULL};
        log_emit(CONF_LOG_INFO, "t", NULL, fields, "x");
        size_t len;
        char *s = drain(&len);
        bool ok = member_is(s, "v", want);
        if (!ok)
            fprintf(stderr, "\n  row %zu: %s, want %s", i, s ? s : "(nothing)", want);
        CU_ASSERT_TRUE(ok);
        free(s);
    }
}

static void test_access_same_escaper(void)
{
    for (size_t i = 0; i < sizeof same_escape_cases / sizeof same_escape_cases[0]; i++) {
        char want[256];
        jsonw_text(same_escape_cases[i], want, sizeof want);
        struct access_entry e = {
            .request_id = "r5", .client = "c", .method = "GET", .path = same_escape_cases[i],
            .path_len = strlen(same_escape_cases[i]), .status = 400, .upstream_ms = -1,
            .ratelimit_remaining = -1,
        };
        accesslog_write(&e);
        FILE *f = fopen(al_path, "r");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        char line[1024] = "";
        bool got = fgets(line, sizeof line, f) != NULL;
        fclose(f);
        CU_ASSERT_EQUAL(truncate(al_path, 0), 0);
        bool ok = got && member_is(line, "path", want);
        if (!ok)
            fprintf(stderr, "\n  row %zu: %s, want %s", i, line, want);
        CU_ASSERT_TRUE(ok);
    }
}

/* One row per test: its suite (0: log, 1: accesslog), name and function. */
static const struct {
    int suite;
    const char *name;
    CU_TestFunc fn;
} log_tests[] = {
    {0, "event line keys", test_event_line},
    {0, "escaping and UTF-8 repair", test_event_escaping},
    {0, "escaped as jsonw escapes", test_event_same_escaper},
    {0, "a line longer than the stack buffer", test_event_long_field},
    {0, "levels", test_levels},
    {0, "threads: whole lines", test_threads},
    {1, "all fields", test_access_full},
    {1, "nulls", test_access_nulls},
    {1, "hostile path", test_access_hostile_path},
    {1, "escaped as jsonw escapes", test_access_same_escaper},
    {1, "long path bounded", test_access_long_path},
    {1, "off and reopen", test_access_off_and_reopen},
    {1, "batch: one write per flush", test_access_batch},
    {1, "batch: bounded, lines whole", test_access_batch_bounded},
    {1, "batch: PIPE_BUF pieces to a pipe", test_access_batch_pipe_pieces},
};

void test_register(void)
{
    CU_pSuite suites[2] = {
        CU_add_suite("log", log_suite_init, log_suite_clean),
        CU_add_suite("accesslog", access_suite_init, access_suite_clean),
    };
    for (size_t i = 0; i < sizeof log_tests / sizeof log_tests[0]; i++)
        if (suites[log_tests[i].suite])
            CU_add_test(suites[log_tests[i].suite], log_tests[i].name, log_tests[i].fn);
}
