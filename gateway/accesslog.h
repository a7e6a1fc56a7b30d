/*
 * accesslog: one JSON line per request, to stdout, a file, or nowhere. The
 * fields are the ones docs/operations.md promises operators; a token or a body is
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
    const char *subject;        /* the verified caller: the line gains "subject"; NULL: none */
    const char *tls;            /* "TLSv1.3"...: the line gains tls and tls_resumed; NULL: plain */
    bool tls_resumed;
};

/* Open TARGET ("stdout", "off" or a path, appended). Returns 0 or -1 (errno). */
int accesslog_open(const char *target) __attribute__((warn_unused_result));
/* Reopen the same path (log rotation); a no-op for stdout/off. */
int accesslog_reopen(void);
void accesslog_close(void);
void accesslog_write(const struct access_entry *e);

/*
 * Batching, per thread. Between accesslog_batch_begin and _end, the calling
 * thread's lines are gathered in its own buffer and written with one
 * write(2) by accesslog_batch_flush; ARM(ARG) is called when the buffer
 * turns non-empty, so the caller can schedule that flush (a worker: once its
 * loop turn is done). A full buffer is written at once. Other threads write
 * each line as it comes. Returns 0 or -1 (out of memory: lines go unbatched).
 */
int accesslog_batch_begin(void (*arm)(void *arg), void *arg);
void accesslog_batch_flush(void);
void accesslog_batch_end(void);

#endif
