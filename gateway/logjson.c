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

/* Length of a valid UTF-8 sequence at s (max n bytes), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80)
        return 1;
    size_t len;
    unsigned cp;
    if ((s[0] & 0xe0) == 0xc0) { len = 2; cp = s[0] & 0x1f; }
    else if ((s[0] & 0xf0) == 0xe0) { len = 3; cp = s[0] & 0x0f; }
    else if ((s[0] & 0xf8) == 0xf0) { len = 4; cp = s[0] & 0x07; }
    else return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
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
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             ts.tv_nsec / 1000000);
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
