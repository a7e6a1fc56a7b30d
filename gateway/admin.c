/*
 * admin: a deliberately small HTTP/1.x server for two GET endpoints. It
 * reuses the gateway's head parser, so the same strict rules apply, and
 * answers everything else with 404/405 as plain text. It stays on plain
 * libevent bufferevents on the main thread's loop rather than conns: a few
 * requests a minute need no write-first flush, and a bufferevent's read
 * and write timeouts are what bound a stalled admin client here.
 */
#include "admin.h"

#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "httpreq.h"
#include "listener.h"
#include "log.h"

#define ADMIN_MAX_HEAD 8192
#define ADMIN_TIMEOUT_S 5

struct admin {
    struct admin_source src;
    struct evconnlistener *ls[CONF_MAX_LISTEN];
    size_t n;
};

struct admin_conn {
    struct admin *a;
    size_t pos;
    unsigned state;
    bool answered;
};

static void admin_conn_close(struct bufferevent *bev, struct admin_conn *ac)
{
    bufferevent_free(bev);
    free(ac);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    struct admin_conn *ac = arg;
    if (ac->answered && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        admin_conn_close(bev, ac);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)what;
    admin_conn_close(bev, arg);
}

static void answer(struct bufferevent *bev, struct admin_conn *ac, int status,
                   const char *ctype, struct evbuffer *body, bool head)
{
    struct evbuffer *out = bufferevent_get_output(bev);
    static const char *const reasons[] = {[200] = "OK", [400] = "Bad Request",
                                          [404] = "Not Found", [405] = "Method Not Allowed",
                                          [503] = "Service Unavailable"};
    const char *reason = status < (int)(sizeof reasons / sizeof reasons[0]) && reasons[status]
                             ? reasons[status] : "Error";
    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                        "Cache-Control: no-store\r\nConnection: close\r\n%s\r\n",
                        status, reason, ctype, evbuffer_get_length(body),
                        status == 405 ? "Allow: GET, HEAD\r\n" : "");
    if (!head)
        evbuffer_add_buffer(out, body);
    ac->answered = true;
    bufferevent_disable(bev, EV_READ);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    struct admin_conn *ac = arg;
    if (ac->answered)
        return;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t avail = evbuffer_get_length(in);
    size_t want = avail < ADMIN_MAX_HEAD ? avail : ADMIN_MAX_HEAD;
    const char *data = (const char *)evbuffer_pullup(in, (ssize_t)want);
    long end = data ? httpreq_head_end(data, want, ADMIN_MAX_HEAD, &ac->pos, &ac->state) : -400;
    if (end == 0)
        return;
    struct evbuffer *body = evbuffer_new();
    if (!body) {
        admin_conn_close(bev, ac);
        return;
    }
    struct httpreq req;
    const char *why = NULL;
    if (end < 0 || httpreq_parse(&req, data, (size_t)end, &why) != 0) {
        evbuffer_add_printf(body, "bad request\n");
        answer(bev, ac, 400, "text/plain; charset=utf-8", body, false);
    } else if (req.method != HTTP_GET && req.method != HTTP_HEAD) {
        evbuffer_add_printf(body, "method not allowed\n");
        answer(bev, ac, 405, "text/plain; charset=utf-8", body, false);
    } else if (req.path_len == 8 && memcmp(req.path, "/healthz", 8) == 0) {
        bool ok = ac->a->src.ready(ac->a->src.arg);
        evbuffer_add_printf(body, "{\"status\":\"%s\"}\n", ok ? "ok" : "draining");
        answer(bev, ac, ok ? 200 : 503, "application/json", body, req.method == HTTP_HEAD);
    } else if (req.path_len == 8 && memcmp(req.path, "/metrics", 8) == 0) {
        if (ac->a->src.metrics(ac->a->src.arg, body) != 0) {
            evbuffer_drain(body, evbuffer_get_length(body));
            evbuffer_add_printf(body, "out of memory\n");
            answer(bev, ac, 503, "text/plain; charset=utf-8", body, false);
        } else {
            answer(bev, ac, 200, "text/plain; version=0.0.4; charset=utf-8", body,
                   req.method == HTTP_HEAD);
        }
    } else {
        evbuffer_add_printf(body, "not found\n");
        answer(bev, ac, 404, "text/plain; charset=utf-8", body, false);
    }
    evbuffer_free(body);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    (void)sa;
    (void)salen;
    struct admin_conn *ac = calloc(1, sizeof *ac);
    struct bufferevent *bev =
        bufferevent_socket_new(evconnlistener_get_base(l), fd, BEV_OPT_CLOSE_ON_FREE);
    if (!ac || !bev) {
        free(ac);
        if (bev)
            bufferevent_free(bev);
        else
            evutil_closesocket(fd);
        return;
    }
    ac->a = arg;
    struct timeval tv = {ADMIN_TIMEOUT_S, 0};
    bufferevent_set_timeouts(bev, &tv, &tv);
    bufferevent_setwatermark(bev, EV_READ, 0, ADMIN_MAX_HEAD + 1);
    bufferevent_setcb(bev, read_cb, write_cb, event_cb, ac);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

struct admin *admin_new(struct event_base *base, const struct conf *conf,
                        const struct admin_source *src, char *err, size_t errlen)
{
    struct admin *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "admin: out of memory");
        return NULL;
    }
    a->src = *src;
    for (size_t i = 0; i < conf->n_admin_listen; i++) {
        evutil_socket_t fd = listener_bind(&conf->admin_listen[i], err, errlen);
        if (fd < 0)
            goto fail;
        a->ls[a->n] = evconnlistener_new(base, accept_cb, a, LEV_OPT_CLOSE_ON_FREE, -1, fd);
        if (!a->ls[a->n]) {
            evutil_closesocket(fd);
            snprintf(err, errlen, "admin: out of memory");
            goto fail;
        }
        a->n++;
    }
    return a;
fail:
    admin_free(a);
    return NULL;
}

void admin_free(struct admin *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n; i++)
        evconnlistener_free(a->ls[i]);
    free(a);
}
