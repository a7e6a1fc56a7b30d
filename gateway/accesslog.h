/*
 * accesslog: one JSON line per request, to stdout, a file, or nowhere. The
 * fields are the ones PRODUCT.md promises operators; a token or a body is
 * never among them.
 */
#ifndef ENVELOPD_ACCESSLOG_H
#define ENVELOPD_ACCESSLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct access_entry {
    const char *request_id;
    const char *client;
    const char *method;
    const char *path;           /* may hold anything the client sent */
    size_t path_len;
    const char *route;          /* NULL: no route */
    int status;
    int upstream_status;        /* 0: none */
    const char *upstream;       /* server address, NULL: none */
    double duration_ms;
    double upstream_ms;         /* < 0: none */
    uint64_t bytes_in;
    uint64_t bytes_out;
    long ratelimit_remaining;   /* < 0: no limit applied */
    const char *error_code;     /* NULL on success */
};

/* Open TARGET ("stdout", "off" or a path, appended). Returns 0 or -1 (errno). */
int accesslog_open(const char *target) __attribute__((warn_unused_result));
/* Reopen the same path (log rotation); a no-op for stdout/off. */
int accesslog_reopen(void);
void accesslog_close(void);
void accesslog_write(const struct access_entry *e);

#endif
