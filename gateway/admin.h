/*
 * admin: the optional operator listener ([admin] listen): GET /healthz
 * (200 ready, 503 draining) and GET /metrics (Prometheus text). It runs on
 * the main thread's loop, away from the workers' request path, and closes
 * each connection after one answer.
 */
#ifndef ENVELOPD_ADMIN_H
#define ENVELOPD_ADMIN_H

#include <stdbool.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "conf.h"

struct admin_source {
    void *arg;
    bool (*ready)(void *arg);                                 /* false while draining */
    int (*metrics)(void *arg, struct evbuffer *out);
};

struct admin;

/* Bind every [admin] listen address. NULL with err filled on failure. */
struct admin *admin_new(struct event_base *base, const struct conf *conf,
                        const struct admin_source *src, char *err, size_t errlen);
void admin_free(struct admin *a);

#endif
