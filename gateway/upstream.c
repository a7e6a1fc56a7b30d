/*
 * upstream: pools, server selection and health, per worker and per conf
 * generation, so nothing here is shared between threads.
 */
#include "upstream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "clock.h"
#include "conn_tls.h"
#include "log.h"
#include "tls.h"

static void purge_cb(evutil_socket_t fd, short what, void *arg);

/* The host part of "host:port" or "[v6]:port": what TLS names and checks. */
static void host_of(const char *text, char *out, size_t outlen)
{
    const char *end = strrchr(text, ':');
    size_t n = end ? (size_t)(end - text) : strlen(text);
    if (n >= 2 && text[0] == '[' && text[n - 1] == ']') {
        text++;
        n -= 2;
    }
    snprintf(out, outlen, "%.*s", (int)n, text);
}

struct upstream_set *upstream_set_new(struct event_base *base, const struct conf *conf,
                                      const struct tls_set *tls)
{
    struct upstream_set *set = calloc(1, sizeof *set);
    if (!set)
        return NULL;
    set->base = base;
    set->n = conf->n_upstreams;
    set->groups = calloc(set->n ? set->n : 1, sizeof *set->groups);
    if (!set->groups)
        goto fail;
    for (size_t i = 0; i < set->n; i++) {
        struct up_group *g = &set->groups[i];
        g->cu = &conf->upstreams[i];
        g->tls = g->cu->tls ? tls_upstream_ctx(tls, i) : NULL;
        g->n = g->cu->n_servers;
        g->servers = calloc(g->n ? g->n : 1, sizeof *g->servers);
        if (!g->servers)
            goto fail;
        for (size_t k = 0; k < g->n; k++) {
            struct up_server *srv = &g->servers[k];
            srv->addr = &g->cu->servers[k];
            srv->group = g;
            if (g->cu->server_name[0])
                snprintf(srv->host, sizeof srv->host, "%s", g->cu->server_name);
            else
                host_of(srv->addr->text, srv->host, sizeof srv->host);
            TAILQ_INIT(&srv->idle);
            srv->purge = evtimer_new(base, purge_cb, srv);
            if (!srv->purge)
                goto fail;
        }
    }
    return set;
fail:
    upstream_set_free(set);
    return NULL;
}

static void upconn_free(struct upconn *c)
{
    conn_close(&c->conn);
    free(c);
}

/* Take C out of its server's idle list and close it. */
static void idle_close(struct upconn *c)
{
    TAILQ_REMOVE(&c->srv->idle, c, link);
    c->srv->n_idle--;
    upconn_free(c);
}

void upstream_set_free(struct upstream_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; set->groups && i < set->n; i++) {
        struct up_group *g = &set->groups[i];
        for (size_t k = 0; g->servers && k < g->n; k++) {
            struct upconn *c;
            while ((c = TAILQ_FIRST(&g->servers[k].idle)) != NULL)
                idle_close(c);
            if (g->servers[k].purge)
                event_free(g->servers[k].purge);
            if (g->servers[k].tls_session)
                SSL_SESSION_free(g->servers[k].tls_session);
        }
        free(g->servers);
    }
    free(set->groups);
    free(set);
}

size_t upstream_server_index(const struct up_server *s)
{
    return (size_t)(s - s->group->servers);
}

struct up_server *upstream_pick(struct up_group *g, uint64_t now_ms, uint64_t tried)
{
    for (size_t i = 0; i < g->n; i++) {
        size_t k = (g->rr + i) % g->n;
        struct up_server *s = &g->servers[k];
        if (k < 64 && ((tried >> k) & 1))
            continue;
        if (s->down && now_ms < s->down_until_ms)
            continue;
        g->rr = (k + 1) % g->n;
        return s;
    }
    return NULL;
}

static void idle_event(struct conn *cn, short what, void *arg)
{
    struct upconn *c = arg;
    (void)cn;
    (void)what;
    /* EOF, error, or bytes nobody asked for: this connection is done. */
    idle_close(c);
}

static void idle_read(struct conn *cn, void *arg)
{
    idle_event(cn, CONN_EV_READING | CONN_EV_EOF, arg);
}

/*
 * When the least recently used idle connection of S is due to be closed:
 * after keepalive_timeout, or sooner, after UPSTREAM_SURPLUS_IDLE_MS, while
 * S holds more than keepalive. The idle list is most recently used first,
 * so its tail is always the first one due. False when S has none idle.
 */
static bool idle_due(const struct up_server *s, uint64_t *due)
{
    const struct upconn *lru = TAILQ_LAST(&s->idle, upconn_list);
    if (!lru)
        return false;
    const struct conf_upstream *cu = s->group->cu;
    uint64_t after = cu->keepalive_timeout_ms;
    if (s->n_idle > cu->keepalive && after > UPSTREAM_SURPLUS_IDLE_MS)
        after = UPSTREAM_SURPLUS_IDLE_MS;
    *due = lru->idle_since_ms + after;
    return true;
}

/* Close the idle connections that are due, oldest first. */
static void purge_due(struct up_server *s, uint64_t now_ms)
{
    uint64_t due;
    while (idle_due(s, &due) && due <= now_ms)
        idle_close(TAILQ_LAST(&s->idle, upconn_list));
}

/*
 * Have S's purge timer fire by the time its next idle connection is due. A
 * timer already set to fire earlier is left alone: it fires early, finds
 * nothing due, and re-arms (so a connection reused meanwhile costs nothing).
 */
static void purge_arm(struct up_server *s, uint64_t now_ms)
{
    uint64_t due;
    if (!idle_due(s, &due))
        return;
    if (evtimer_pending(s->purge, NULL) && s->purge_due_ms <= due)
        return;
    uint64_t wait = due > now_ms ? due - now_ms : 0;
    struct timeval tv = {.tv_sec = (time_t)(wait / 1000),
                         .tv_usec = (suseconds_t)(wait % 1000) * 1000};
    if (evtimer_add(s->purge, &tv) != 0) {
        LOG_AT(CONF_LOG_WARN, "gateway_error", NULL, NULL,
               "cannot arm the upstream pool purge timer; idle connections are closed "
               "at the next release");
        return;
    }
    s->purge_due_ms = due;
}

static void purge_cb(evutil_socket_t fd, short what, void *arg)
{
    struct up_server *s = arg;
    (void)fd;
    (void)what;
    uint64_t now = clock_ms();
    purge_due(s, now);
    purge_arm(s, now);
}

struct upconn *upstream_take_idle(struct up_server *s)
{
    struct upconn *c = TAILQ_FIRST(&s->idle);
    if (!c)
        return NULL;
    TAILQ_REMOVE(&s->idle, c, link);
    s->n_idle--;
    c->idle = false;
    conn_setcb(&c->conn, NULL, NULL, NULL, NULL);
    return c;
}

struct upconn *upstream_connect(struct up_server *s, struct conn_flushq *q)
{
    struct upconn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->srv = s;
    /* TCP_NODELAY is conn's: a request head and its body must not wait for an ACK. */
    if (conn_connect(&c->conn, q, (const struct sockaddr *)&s->addr->sa, (socklen_t)s->addr->salen,
                     &conn_plain) != 0) {
        int err = errno;
        free(c);
        errno = err;
        return NULL;
    }
    SSL_CTX *tls = s->group->tls;
    if (tls && conn_tls_connect(&c->conn, tls, s->host, s->group->cu->verify,
                                &s->tls_session) != 0) {
        upconn_free(c);
        errno = ENOMEM;
        return NULL;
    }
    return c;
}

void upstream_release(struct upconn *c, bool reusable)
{
    struct up_server *s = c->srv;
    const struct conf_upstream *cu = s->group->cu;
    c->uses++;
    if (!reusable || cu->keepalive == 0 ||
        (cu->keepalive_requests > 0 && c->uses >= cu->keepalive_requests) ||
        evbuffer_get_length(conn_input(&c->conn)) != 0) {
        upconn_free(c);
        return;
    }
    c->idle = true;
    conn_setcb(&c->conn, idle_read, NULL, idle_event, c);
    if (conn_read_enable(&c->conn) != 0) {
        upconn_free(c);
        return;
    }
    uint64_t now = clock_ms();
    c->idle_since_ms = now;
    TAILQ_INSERT_HEAD(&s->idle, c, link);
    s->n_idle++;
    /* A timer that failed to arm must not let idle connections pile up. */
    if (!evtimer_pending(s->purge, NULL))
        purge_due(s, now);
    purge_arm(s, now);
}

void upstream_server_failed(struct up_server *s, uint64_t now_ms, const char *why)
{
    const struct conf_upstream *cu = s->group->cu;
    if (!s->down) {
        s->backoff_ms = cu->down_backoff_ms;
        const char *fields[] = {"upstream", cu->name, "server", s->addr->text, "reason", why,
                                NULL};
        LOG_AT(CONF_LOG_WARN, "upstream_down", NULL, fields,
               "upstream server %s marked down for %llu ms: %s", s->addr->text,
               (unsigned long long)s->backoff_ms, why);
    } else {
        s->backoff_ms *= 2;
        if (s->backoff_ms > cu->down_backoff_max_ms)
            s->backoff_ms = cu->down_backoff_max_ms;
    }
    s->down = true;
    s->down_until_ms = now_ms + s->backoff_ms;
    /* Pooled connections to a failing server are suspect too. */
    struct upconn *c;
    while ((c = TAILQ_FIRST(&s->idle)) != NULL)
        idle_close(c);
}

bool upstream_server_timed_out(struct up_server *s, uint64_t now_ms)
{
    if (s->group->n < 2)
        return false;
    upstream_server_failed(s, now_ms, "response timeout");
    return true;
}

void upstream_server_ok(struct up_server *s)
{
    if (!s->down)
        return;
    s->down = false;
    s->backoff_ms = 0;
    const char *fields[] = {"upstream", s->group->cu->name, "server", s->addr->text, NULL};
    LOG_AT(CONF_LOG_INFO, "upstream_up", NULL, fields, "upstream server %s is back",
           s->addr->text);
}
