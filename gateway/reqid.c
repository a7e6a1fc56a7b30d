/*
 * reqid: correlation ID rules and generation. The random pool is
 * thread-local and refilled 4 KiB at a time from getrandom(2).
 */
#include "reqid.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

bool reqid_valid(const char *s, size_t len)
{
    if (len == 0 || len > REQID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == ':' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

static _Thread_local unsigned char pool[4096];
static _Thread_local size_t pool_left;

bool reqid_random(void *buf, size_t len)
{
    unsigned char *out = buf;
    while (len > 0) {
        if (pool_left == 0) {
            size_t got = 0;
            while (got < sizeof pool) {
                ssize_t n = getrandom(pool + got, sizeof pool - got, 0);
                if (n < 0) {
                    if (errno == EINTR)
                        continue;
                    return false;
                }
                got += (size_t)n;
            }
            pool_left = sizeof pool;
        }
        size_t take = len < pool_left ? len : pool_left;
        memcpy(out, pool + (sizeof pool - pool_left), take);
        /* Never hand the same bytes out twice. */
        memset(pool + (sizeof pool - pool_left), 0, take);
        pool_left -= take;
        out += take;
        len -= take;
    }
    return true;
}

bool reqid_generate(char out[REQID_UUID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    if (!reqid_random(b, sizeof b))
        return false;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);  /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);  /* RFC 4122 variant */
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
    return true;
}
