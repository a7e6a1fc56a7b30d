/*
 * server: the main thread's event loop: signals, reload, drain, systemd
 * notifications, and the periodic stats line. A reload parses into a fresh
 * conf and swaps it only when the whole file is valid.
 */
#include "server.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "accesslog.h"
#include "admin.h"
#include "auth.h"
#include "client.h"
#include "clock.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "redis.h"
#include "tls.h"
#include "worker.h"

#if HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#else
static int sd_notify(int unset, const char *state)
{
    (void)unset;
    (void)state;
    return 0;
}
static int sd_notifyf(int unset, const char *fmt, ...)
{
    (void)unset;
    (void)fmt;
    return 0;
}
static int sd_watchdog_enabled(int unset, uint64_t *usec)
{
    (void)unset;
    (void)usec;
    return 0;
}
#endif

struct server {
    char conf_path[4096];
    bool tls_bound;              /* a listener was bound with tls: certificates stay required */
    struct confref *cref;
    struct worker *workers;
    unsigned n_workers;
    struct event_base *base;
    struct event *ev_hup, *ev_term, *ev_int, *ev_usr1, *ev_done, *ev_stop, *ev_watchdog,
        *ev_stats;
    struct admin *admin;
    bool draining;
    unsigned exited;        /* touched only on the main thread (ev_done) */
    atomic_uint exited_async;
};

/* A worker's loop ended (its exit callback, on the worker's thread). */
static void worker_exited(void *arg)
{
    struct server *s = arg;
    atomic_fetch_add(&s->exited_async, 1);
    event_active(s->ev_done, EV_READ, 0);
}

static void done_cb(evutil_socket_t fd, short what, void *arg)
{
    struct server *s = arg;
    (void)fd;
    (void)what;
    if (atomic_load(&s->exited_async) >= s->n_workers)
        event_base_loopexit(s->base, NULL);
}

static void note_restart_only(const char *directive, void *arg)
{
    (void)arg;
    const char *fields[] = {"directive", directive, NULL};
    LOG_AT(CONF_LOG_WARN, "reload_ignored", NULL, fields,
           "%s changed; it takes effect at the next restart", directive);
}

/* The running conf stays: say why (ERR, "FILE:LINE: problem"), and that to systemd. */
static void reload_refused(struct conf *conf, const char *err)
{
    const char *fields[] = {"error", err, NULL};
    LOG_AT(CONF_LOG_ERROR, "reload_failed", NULL, fields,
           "conf not reloaded, keeping the running one: %s", err);
    conf_free(conf);
    sd_notify(0, "READY=1\nSTATUS=reload failed; running the previous conf");
}

static void reload(struct server *s)
{
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading",
               (unsigned long long)clock_us());
    char err[1024];
    struct conf *conf = conf_load(s->conf_path, err, sizeof err);
    if (!conf) {
        reload_refused(NULL, err);
        return;
    }
    const struct conf *old = s->cref->conf;
    /* Open the new access log first: a conf that cannot be applied whole is refused. */
    if (strcmp(conf->access_log, old->access_log) != 0 && accesslog_open(conf->access_log) != 0) {
        char why[1200];
        snprintf(why, sizeof why, "%.500s: access_log %.500s: %.100s", s->conf_path, conf->access_log,
                 strerror(errno));
        reload_refused(conf, why);
        return;
    }
    /* The new conf runs with the listeners, threads and admin sockets of the
     * old one: say which restart-only directive changed, by name. */
    if (conf_diff_restart(old, conf, note_restart_only, NULL) > 0)
        log_warn("reload_partial", "some changes take effect at the next restart only "
                 "(see reload_ignored)");
    /* The listeners keep the flags they were bound with until a restart:
     * TLS ones still need a certificate. */
    if (s->tls_bound && conf->n_certs == 0) {
        snprintf(err, sizeof err, "%.900s:0: TLS listeners are running (listen is restart-only): "
                 "[tls] needs a certificate and key", s->conf_path);
        reload_refused(conf, err);
        return;
    }
    /* Certificates are read anew: a bad pair keeps the running ones. */
    struct tls_set *tls = tls_set_new(conf, err, sizeof err);
    if (!tls) {
        reload_refused(conf, err);  /* the running certificates stay */
        return;
    }
    /* JWT keys and the keys file too: a bad one keeps the running ones. */
    struct auth_keys *auth = auth_keys_new(conf, err, sizeof err);
    if (!auth) {
        tls_set_free(tls);
        reload_refused(conf, err);
        return;
    }
    struct confref *cref = confref_new(conf, tls, auth);
    if (!cref) {
        conf_free(conf);
        tls_set_free(tls);
        auth_keys_free(auth);
        log_error("reload_failed", "out of memory");
        sd_notify(0, "READY=1");
        return;
    }
    log_set_level(conf->log_level);
    for (unsigned i = 0; i < s->n_workers; i++)
        if (worker_post_conf(&s->workers[i], cref) != 0)
            log_error("reload_failed", "worker %u did not take the new conf", i);
    confref_put(s->cref);
    s->cref = cref;
    log_info("reload", "conf %s reloaded: %zu route(s), %zu upstream(s)", s->conf_path,
             conf->n_routes, conf->n_upstreams);
    sd_notify(0, "READY=1\nSTATUS=running");
}

/* A worker cut by shutdown_timeout keeps its loop, limiter and the
 * connections it cut (worker_cleanup): exit frees them. server_run keeps them
 * reachable here until then rather than dropping the last pointer to them
 * (which valgrind would rightly call a leak). */
static struct worker *volatile cut_workers;

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    struct server *s = arg;
    (void)fd;
    (void)what;
    log_warn("stop", "shutdown_timeout of %llu ms passed; cutting what is left",
             (unsigned long long)s->cref->conf->shutdown_timeout_ms);
    for (unsigned i = 0; i < s->n_workers; i++)
        (void)worker_post_stop(&s->workers[i]);
}

static void drain(struct server *s, const char *why)
{
    if (s->draining)
        return;
    s->draining = true;
    sd_notify(0, "STOPPING=1\nSTATUS=draining");
    log_info("stopping", "%s: no new connections; finishing in-flight requests", why);
    for (unsigned i = 0; i < s->n_workers; i++)
        (void)worker_post_drain(&s->workers[i]);
    uint64_t ms = s->cref->conf->shutdown_timeout_ms;
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };
    evtimer_add(s->ev_stop, &tv);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct server *s = arg;
    (void)what;
    switch (sig) {
    case SIGHUP:
        if (!s->draining)
            reload(s);
        break;
    case SIGUSR1:
        if (accesslog_reopen() != 0)
            log_error("access_log", "reopen failed: %s", strerror(errno));
        else
            log_info("access_log", "reopened");
        break;
    default:
        drain(s, sig == SIGTERM ? "SIGTERM" : "SIGINT");
        break;
    }
}

static void watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    sd_notify(0, "WATCHDOG=1");
}

static void stats_cb(evutil_socket_t fd, short what, void *arg)
{
    struct server *s = arg;
    (void)fd;
    (void)what;
    unsigned long long req = 0, cls[6] = {0}, upf = 0, undecided = 0;
    for (unsigned i = 0; i < s->n_workers; i++) {
        struct metrics *m = &s->workers[i].metrics;
        req += atomic_load(&m->requests);
        for (int k = 0; k < METRICS_UP_KINDS; k++)
            upf += atomic_load(&m->upstream_errors[k]);
        undecided += atomic_load(&m->ratelimit[METRICS_RL_NONE]);
        for (size_t r = 0; r < METRICS_ROUTES && atomic_load(&m->routes[r].used); r++)
            for (int k = 0; k < 6; k++)
                cls[k] += atomic_load(&m->routes[r].status[k]);
    }
    char b[6][24], r[24], u[24], d[24];
    snprintf(r, sizeof r, "%llu", req);
    snprintf(u, sizeof u, "%llu", upf);
    snprintf(d, sizeof d, "%llu", undecided);
    for (int k = 1; k < 6; k++)
        snprintf(b[k], sizeof b[k], "%llu", cls[k]);
    const char *fields[] = {"requests", r, "status_2xx", b[2], "status_3xx", b[3],
                            "status_4xx", b[4], "status_5xx", b[5], "upstream_failures", u,
                            "ratelimit_unlimited", d, NULL};
    LOG_AT(CONF_LOG_INFO, "stats", NULL, fields, "%llu requests since start", req);
}

static bool admin_ready(void *arg)
{
    struct server *s = arg;
    return !s->draining;
}

static int admin_metrics(void *arg, struct evbuffer *out)
{
    struct server *s = arg;
    struct metrics *ms[1024];
    size_t n = s->n_workers < 1024 ? s->n_workers : 1024;
    for (size_t i = 0; i < n; i++)
        ms[i] = &s->workers[i].metrics;
    int redis = -1;
    if (s->cref->conf->redis_enabled)
        redis = redis_process_down() == 0 ? 1 : 0;
    return metrics_render(ms, n, redis, s->draining, out);
}

/* A file the conf names cannot be used: said on the log and on stderr. */
static int start_failed(struct conf *conf, struct tls_set *tls, const char *why)
{
    const char *fields[] = {"error", why, NULL};
    LOG_AT(CONF_LOG_ERROR, "start_failed", NULL, fields, "cannot start: %s", why);
    fprintf(stderr, "envelopd: %s\n", why);
    conf_free(conf);
    tls_set_free(tls);
    return -1;
}

/*
 * Everything before the loop: the conf reference, logs, signals, timers,
 * worker threads, the admin listener, and READY=1. 0, or -1 (logged; the
 * caller exits, which ends any thread already started).
 */
static int server_start(struct server *s, const char *conf_path, struct conf *conf)
{
    snprintf(s->conf_path, sizeof s->conf_path, "%s", conf_path);
    char terr[1024];
    struct tls_set *tls = tls_set_new(conf, terr, sizeof terr);
    if (!tls)
        return start_failed(conf, NULL, terr);
    for (size_t i = 0; i < conf->n_listen; i++)
        s->tls_bound = s->tls_bound || conf->listen[i].tls;
    struct auth_keys *auth = auth_keys_new(conf, terr, sizeof terr);
    if (!auth)
        return start_failed(conf, tls, terr);
    s->cref = confref_new(conf, tls, auth);
    if (!s->cref) {
        conf_free(conf);
        tls_set_free(tls);
        auth_keys_free(auth);
        return -1;
    }
    log_set_level(conf->log_level);
    if (accesslog_open(conf->access_log) != 0) {
        log_error("access_log", "cannot open %s: %s", conf->access_log, strerror(errno));
        return -1;
    }
    if (evthread_use_pthreads() != 0) {
        log_error("start_failed", "libevent threading unavailable");
        return -1;
    }
    /* A client vanishing mid-write must cost an EPIPE, not the process. */
    signal(SIGPIPE, SIG_IGN);
    s->base = event_base_new();
    if (!s->base)
        return -1;
    s->ev_hup = evsignal_new(s->base, SIGHUP, signal_cb, s);
    s->ev_term = evsignal_new(s->base, SIGTERM, signal_cb, s);
    s->ev_int = evsignal_new(s->base, SIGINT, signal_cb, s);
    s->ev_usr1 = evsignal_new(s->base, SIGUSR1, signal_cb, s);
    s->ev_done = event_new(s->base, -1, 0, done_cb, s);
    s->ev_stop = evtimer_new(s->base, stop_cb, s);
    s->ev_stats = event_new(s->base, -1, EV_PERSIST, stats_cb, s);
    if (!s->ev_hup || !s->ev_term || !s->ev_int || !s->ev_usr1 || !s->ev_done || !s->ev_stop ||
        !s->ev_stats)
        return -1;
    event_add(s->ev_hup, NULL);
    event_add(s->ev_term, NULL);
    event_add(s->ev_int, NULL);
    event_add(s->ev_usr1, NULL);
    struct timeval minute = { 60, 0 };
    event_add(s->ev_stats, &minute);

    s->n_workers = conf->workers ? conf->workers : 1;
    s->workers = calloc(s->n_workers, sizeof *s->workers);
    if (!s->workers)
        return -1;
    char err[1024];
    const struct worker_hooks hooks = {client_accept, client_drain_all, client_reap,
                                         worker_exited, s};
    for (unsigned i = 0; i < s->n_workers; i++) {
        if (worker_init(&s->workers[i], i, &hooks, s->cref, err, sizeof err) != 0) {
            const char *fields[] = {"error", err, NULL};
            LOG_AT(CONF_LOG_ERROR, "start_failed", NULL, fields, "cannot start: %s", err);
            fprintf(stderr, "envelopd: %s\n", err);
            return -1;
        }
    }
    for (unsigned i = 0; i < s->n_workers; i++) {
        if (worker_start(&s->workers[i]) != 0) {
            log_error("start_failed", "cannot start worker thread %u", i);
            return -1;  /* the caller's exit(1) ends the threads already running */
        }
    }
    if (conf->n_admin_listen) {
        struct admin_source src = {s, admin_ready, admin_metrics};
        s->admin = admin_new(s->base, conf, &src, err, sizeof err);
        if (!s->admin) {
            const char *fields[] = {"error", err, NULL};
            LOG_AT(CONF_LOG_ERROR, "start_failed", NULL, fields, "cannot start: %s", err);
            fprintf(stderr, "envelopd: %s\n", err);
            return -1;
        }
    }
    char listens[1024] = "";
    for (size_t i = 0; i < conf->n_listen; i++) {
        size_t l = strlen(listens);
        snprintf(listens + l, sizeof listens - l, "%s%s", i ? ", " : "", conf->listen[i].text);
    }
    char nw[16];
    snprintf(nw, sizeof nw, "%u", s->n_workers);
    const char *fields[] = {"version", ENVELOPD_VERSION, "conf", conf_path, "listen", listens,
                            "workers", nw, NULL};
    LOG_AT(CONF_LOG_INFO, "start", NULL, fields, "envelopd %s listening on %s",
           ENVELOPD_VERSION, listens);
    sd_notifyf(0, "READY=1\nSTATUS=listening on %s", listens);
    uint64_t wd_usec = 0;
    if (sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec > 0) {
        s->ev_watchdog = event_new(s->base, -1, EV_PERSIST, watchdog_cb, s);
        struct timeval tv = { (time_t)(wd_usec / 2 / 1000000), (suseconds_t)(wd_usec / 2 % 1000000) };
        if (s->ev_watchdog)
            event_add(s->ev_watchdog, &tv);
    }
    return 0;
}

/* After the loop: join the workers, say so, and free what they held. */
static void server_stop(struct server *s)
{
    for (unsigned i = 0; i < s->n_workers; i++)
        worker_join(&s->workers[i]);
    unsigned long long total = 0;
    for (unsigned i = 0; i < s->n_workers; i++)
        total += atomic_load(&s->workers[i].metrics.requests);
    log_info("stop", "stopped after %llu request(s)", total);
    for (unsigned i = 0; i < s->n_workers; i++)
        worker_cleanup(&s->workers[i]);
}

static void server_free(struct server *s)
{
    admin_free(s->admin);
    struct event *evs[] = {s->ev_hup, s->ev_term, s->ev_int, s->ev_usr1, s->ev_done,
                           s->ev_stop, s->ev_watchdog, s->ev_stats};
    for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
        if (evs[i])
            event_free(evs[i]);
    if (s->base)
        event_base_free(s->base);
    bool cut = false;
    for (unsigned i = 0; s->workers && i < s->n_workers; i++)
        cut = cut || s->workers[i].nclients != 0;
    if (cut)
        cut_workers = s->workers;
    else
        free(s->workers);
    confref_put(s->cref);
    accesslog_close();
    free(s);
}

int server_run(const char *conf_path, struct conf *conf)
{
    struct server *s = calloc(1, sizeof *s);
    if (!s) {
        conf_free(conf);
        return 1;
    }
    if (server_start(s, conf_path, conf) != 0)
        exit(1);
    event_base_dispatch(s->base);
    server_stop(s);
    server_free(s);
    return 0;
}
