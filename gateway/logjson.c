/*
 * logjson: shared JSON-line helpers for log.c and accesslog.c. Strings from
 * the network (paths, IDs, header values) may hold anything: bytes that are
 * not UTF-8 become U+FFFD so every line stays valid JSON.
 */
#include "logjson.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "utf8.h"

/* One generator per thread, freed by the key's destructor when the thread
 * ends (a plain _Thread_local pointer would leak it at every thread exit). */
static pthread_key_t gen_key;
static pthread_once_t gen_once = PTHREAD_ONCE_INIT;
static bool gen_key_ok;

static void gen_destroy(void *g)
{
    yajl_gen_free(g);
}

static void gen_key_init(void)
{
    gen_key_ok = pthread_key_create(&gen_key, gen_destroy) == 0;
}

yajl_gen logjson_gen(void)
{
    if (pthread_once(&gen_once, gen_key_init) != 0 || !gen_key_ok)
        return NULL;
    yajl_gen g = pthread_getspecific(gen_key);
    if (!g) {
        g = yajl_gen_alloc(NULL);
        if (!g)
            return NULL;
        if (pthread_setspecific(gen_key, g) != 0) {
            yajl_gen_free(g);
            return NULL;
        }
    }
    yajl_gen_reset(g, NULL);
    yajl_gen_clear(g);
    return g;
}


void logjson_kvn(yajl_gen g, const char *key, const char *value, size_t len)
{
    yajl_gen_string(g, (const unsigned char *)key, strlen(key));
    const unsigned char *v = (const unsigned char *)value;
    size_t i = 0;
    while (i < len && utf8_seq(v + i, len - i))
        i += utf8_seq(v + i, len - i);
    if (i == len) {
        yajl_gen_string(g, v, len);
        return;
    }
    /* Rare path: repair into a bounded copy. */
    unsigned char buf[2048];
    size_t o = 0;
    for (i = 0; i < len && o + 4 < sizeof buf;) {
        size_t s = utf8_seq(v + i, len - i);
        if (s) {
            memcpy(buf + o, v + i, s);
            o += s;
            i += s;
        } else {
            memcpy(buf + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    yajl_gen_string(g, buf, o);
}

void logjson_kv(yajl_gen g, const char *key, const char *value)
{
    logjson_kvn(g, key, value, strlen(value));
}

void logjson_kint(yajl_gen g, const char *key, long long value)
{
    yajl_gen_string(g, (const unsigned char *)key, strlen(key));
    yajl_gen_integer(g, value);
}

void logjson_knull(yajl_gen g, const char *key)
{
    yajl_gen_string(g, (const unsigned char *)key, strlen(key));
    yajl_gen_null(g);
}

void logjson_timestamp(char *buf, size_t cap)
{
    /* The date and time change once a second: format them once per second. */
    static _Thread_local time_t cached_sec = (time_t)-1;
    static _Thread_local char prefix[64];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != cached_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        snprintf(prefix, sizeof prefix, "%04d-%02d-%02dT%02d:%02d:%02d.", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        cached_sec = ts.tv_sec;
    }
    long ms = ts.tv_nsec / 1000000;
    size_t n = strlen(prefix);
    if (n + 5 > cap) {
        if (cap)
            buf[0] = '\0';
        return;
    }
    memcpy(buf, prefix, n);
    buf[n] = (char)('0' + ms / 100);
    buf[n + 1] = (char)('0' + ms / 10 % 10);
    buf[n + 2] = (char)('0' + ms % 10);
    buf[n + 3] = 'Z';
    buf[n + 4] = '\0';
}

void logjson_flush(yajl_gen g, int fd)
{
    const unsigned char *out;
    size_t len;
    if (yajl_gen_get_buf(g, &out, &len) != yajl_gen_status_ok)
        return;
    char line[8192];
    if (len + 1 <= sizeof line) {
        memcpy(line, out, len);
        line[len] = '\n';
        if (fd < 0)
            log_write_line(line, len + 1);
        else
            logjson_write(fd, line, len + 1);
    } else {
        /* Oversized lines cannot come from our own fields; write as two calls. */
        if (fd < 0) {
            log_write_line((const char *)out, len);
            log_write_line("\n", 1);
        } else {
            logjson_write(fd, (const char *)out, len);
            logjson_write(fd, "\n", 1);
        }
    }
    yajl_gen_clear(g);
}

void logjson_write(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return;  /* nowhere left to report a logging failure */
        }
        buf += n;
        len -= (size_t)n;
    }
}
