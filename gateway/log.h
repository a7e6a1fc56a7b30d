/*
 * log: event lines, one JSON object per line on stdout
 * ({"ts","level","event","message", extra fields...}), and the two pieces
 * every JSON line of the gateway shares (the access line too): the RFC 3339
 * timestamp and the whole-buffer write. The level check is a macro so that
 * arguments of a disabled line are never evaluated. Lines are written with
 * one write(2) each so threads never interleave within a line. Never pass a
 * token or a request body here.
 */
#ifndef ENVELOPD_LOG_H
#define ENVELOPD_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "conf.h"

/* Process-wide threshold; set at start and on reload. Default: info. */
void log_set_level(enum conf_log_level level);
bool log_enabled(enum conf_log_level level);
/* Where lines go (default: STDOUT_FILENO); for tests. */
void log_set_fd(int fd);

/*
 * Emit one event line. FIELDS is NULL or a NULL-terminated array of
 * key/value string pairs added to the object ({"upstream","127.0.0.1:9001",NULL}).
 * request_id may be NULL. Strings are escaped; invalid UTF-8 is replaced.
 */
void log_emit(enum conf_log_level level, const char *event, const char *request_id,
              const char *const *fields, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* LVL is evaluated once: callers may compute it with side effects. */
#define LOG_AT(lvl, event, rid, fields, ...)                                   \
    do {                                                                       \
        enum conf_log_level log_lvl_ = (lvl);                                  \
        if (log_enabled(log_lvl_))                                             \
            log_emit(log_lvl_, event, rid, fields, __VA_ARGS__);               \
    } while (0)
#define log_debug(event, ...) LOG_AT(CONF_LOG_DEBUG, event, NULL, NULL, __VA_ARGS__)
#define log_info(event, ...)  LOG_AT(CONF_LOG_INFO, event, NULL, NULL, __VA_ARGS__)
#define log_warn(event, ...)  LOG_AT(CONF_LOG_WARN, event, NULL, NULL, __VA_ARGS__)
#define log_error(event, ...) LOG_AT(CONF_LOG_ERROR, event, NULL, NULL, __VA_ARGS__)

/* Write LEN bytes (a complete line, newline included) to the log fd, retrying on EINTR. */
void log_write_line(const char *line, size_t len);

/* write(2) all of BUF to FD, retrying on EINTR and short writes; a failure
 * is dropped (there is nowhere left to report it). */
void log_write_all(int fd, const char *buf, size_t len);

/* Now, UTC, as "2026-11-21T23:23:41.123Z" into BUF (CAP >= 25, else ""). */
void log_timestamp(char *buf, size_t cap);

#endif
