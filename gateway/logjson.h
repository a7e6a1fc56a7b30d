/*
 * logjson: the JSON-line plumbing the event log and the access log share:
 * a per-thread yajl generator, string values repaired to valid UTF-8, an
 * RFC 3339 timestamp cached per millisecond, and the single-write flush.
 */
#ifndef ENVELOPD_LOGJSON_H
#define ENVELOPD_LOGJSON_H

#include <stddef.h>

#include <yajl/yajl_gen.h>

/* This thread's generator, cleared and ready for one line; NULL on ENOMEM. */
yajl_gen logjson_gen(void);
void logjson_kv(yajl_gen g, const char *key, const char *value);
void logjson_kvn(yajl_gen g, const char *key, const char *value, size_t len);
void logjson_kint(yajl_gen g, const char *key, long long value);
void logjson_knull(yajl_gen g, const char *key);
void logjson_timestamp(char *buf, size_t cap);
/* Write the generated object plus '\n' in one write to FD (-1: the event log) and reset. */
void logjson_flush(yajl_gen g, int fd);
/* write(2) all of BUF, retrying on EINTR and short writes. */
void logjson_write(int fd, const char *buf, size_t len);

#endif
