/*
 * test_listener: the worker model rests on listener_bind's socket options,
 * and each mistake there fails quietly elsewhere: a blocking listener
 * stalls a whole worker in accept, one without close-on-exec leaks into
 * every child, one without SO_REUSEPORT makes the second worker's bind
 * fail, an IPv6 socket without V6ONLY steals the port an IPv4 line in the
 * conf wants, a stale unix socket file left by a crash stops a restart.
 * And a failed bind must say which step failed (the operator's only clue)
 * without leaking the fd a reload would then carry for ever, even into an
 * err buffer too small for the message. So the suite binds real sockets on
 * loopback and a temporary directory, and checks the kernel's view of them
 * (fcntl, getsockopt, connect and accept), not the code's. The default
 * per-worker connection cap is checked against its formula, and against
 * the descriptor limit it must never overrun.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "conf.h"
#include "listener.h"

void test_register(void);

/* Open descriptors of this process (the directory's own included, both
 * times). */
static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    CU_ASSERT_EQUAL(closedir(d), 0);
    return n;
}

/* 127.0.0.1:PORT filled in directly (conf_parse_addr refuses port 0). */
static void addr_v4(struct conf_addr *a, unsigned port)
{
    memset(a, 0, sizeof *a);
    struct sockaddr_in *sin = (struct sockaddr_in *)&a->sa;
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin->sin_port = htons((uint16_t)port);
    a->salen = sizeof *sin;
    snprintf(a->text, sizeof a->text, "127.0.0.1:%u", port);
}

/* An address as the conf file would give it. */
static void addr_conf(struct conf_addr *a, const char *s)
{
    memset(a, 0, sizeof *a);
    CU_ASSERT_TRUE_FATAL(conf_parse_addr(s, a));
}

static unsigned port_of(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    CU_ASSERT_EQUAL_FATAL(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    CU_FAIL("not an IP socket");
    return 0;
}

static int sockopt(int fd, int level, int name)
{
    int v = -1;
    socklen_t len = sizeof v;
    CU_ASSERT_EQUAL(getsockopt(fd, level, name, &v, &len), 0);
    return v;
}

/* What every listener must be: non-blocking, close-on-exec, a listening
 * stream socket. */
static void check_listening(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    CU_ASSERT(fl >= 0);
    CU_ASSERT(fl & O_NONBLOCK);
    int fdfl = fcntl(fd, F_GETFD);
    CU_ASSERT(fdfl >= 0);
    CU_ASSERT(fdfl & FD_CLOEXEC);
    CU_ASSERT_EQUAL(sockopt(fd, SOL_SOCKET, SO_TYPE), SOCK_STREAM);
    CU_ASSERT_EQUAL(sockopt(fd, SOL_SOCKET, SO_ACCEPTCONN), 1);
}

/* A connection to A (blocking connect; the kernel completes it against the
 * backlog), or -1. */
static int dial(const struct conf_addr *a)
{
    int c = socket(a->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CU_ASSERT(c >= 0);
    if (c < 0)
        return -1;
    if (connect(c, (const struct sockaddr *)&a->sa, a->salen) != 0) {
        CU_FAIL("connect");
        close(c);
        return -1;
    }
    return c;
}

/* Wait up to 2 s for a connection on FD and accept it: true if one came. */
static bool accept_one(int fd)
{
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 2000) != 1)
        return false;
    int a = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
    if (a < 0)
        return false;
    close(a);
    return true;
}

static void test_ipv4(void)
{
    int before = count_fds();
    struct conf_addr a;
    addr_v4(&a, 0);
    char err[256] = "untouched";
    int fd = listener_bind(&a, err, sizeof err);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_STRING_EQUAL(err, "untouched");
    check_listening(fd);
    CU_ASSERT_EQUAL(sockopt(fd, SOL_SOCKET, SO_REUSEPORT), 1);
    CU_ASSERT_EQUAL(sockopt(fd, SOL_SOCKET, SO_REUSEADDR), 1);
    /* bound where asked: loopback, a port picked by the kernel */
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    CU_ASSERT_EQUAL_FATAL(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    CU_ASSERT_EQUAL(sin.sin_family, AF_INET);
    CU_ASSERT_EQUAL(ntohl(sin.sin_addr.s_addr), INADDR_LOOPBACK);
    unsigned port = ntohs(sin.sin_port);
    CU_ASSERT(port != 0);
    /* and it takes connections */
    struct conf_addr to;
    char s[64];
    snprintf(s, sizeof s, "127.0.0.1:%u", port);
    addr_conf(&to, s);
    int c = dial(&to);
    CU_ASSERT_TRUE(accept_one(fd));
    if (c >= 0)
        close(c);
    close(fd);
    CU_ASSERT_EQUAL(count_fds(), before);
}

/* Two workers' binds of one port both succeed, and each connection is
 * accepted by exactly one of them. */
static void test_reuseport(void)
{
    struct conf_addr a, b;
    char err[256];
    addr_v4(&a, 0);
    int fd1 = listener_bind(&a, err, sizeof err);
    CU_ASSERT_FATAL(fd1 >= 0);
    unsigned port = port_of(fd1);
    char s[64];
    snprintf(s, sizeof s, "127.0.0.1:%u", port);
    addr_conf(&b, s);
    int fd2 = listener_bind(&b, err, sizeof err);
    CU_ASSERT(fd2 >= 0);
    if (fd2 < 0) {
        fprintf(stderr, "\n    second bind: %s", err);
        close(fd1);
        return;
    }
    check_listening(fd2);
    CU_ASSERT_EQUAL(port_of(fd2), port);

    enum { K = 16 };
    int cl[K];
    for (int i = 0; i < K; i++)
        cl[i] = dial(&b);
    /* one accept per listener that polls readable, so a blocking listener
     * cannot hang the suite; bounded rounds */
    int accepted[2] = {0, 0};
    for (int round = 0; round < 4 * K && accepted[0] + accepted[1] < K; round++) {
        struct pollfd p[2] = {{fd1, POLLIN, 0}, {fd2, POLLIN, 0}};
        if (poll(p, 2, 2000) <= 0)
            break;
        bool any = false;
        for (int j = 0; j < 2; j++) {
            if (!(p[j].revents & POLLIN))
                continue;
            int x = accept4(p[j].fd, NULL, NULL, SOCK_CLOEXEC);
            CU_ASSERT(x >= 0);
            if (x >= 0) {
                any = true;
                accepted[j]++;
                close(x);
            }
        }
        if (!any)
            break;
    }
    CU_ASSERT_EQUAL(accepted[0] + accepted[1], K);
    /* none left over on either */
    struct pollfd p[2] = {{fd1, POLLIN, 0}, {fd2, POLLIN, 0}};
    CU_ASSERT_EQUAL(poll(p, 2, 0), 0);
    for (int i = 0; i < K; i++)
        if (cl[i] >= 0)
            close(cl[i]);
    close(fd1);
    close(fd2);
}

/* A port held by a socket without SO_REUSEPORT, and its address (as the
 * conf parses "127.0.0.1:PORT") in *A: binding A must fail. */
static int hold_port(struct conf_addr *a)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CU_ASSERT_FATAL(s >= 0);
    struct conf_addr any;
    addr_v4(&any, 0);
    CU_ASSERT_EQUAL_FATAL(bind(s, (struct sockaddr *)&any.sa, any.salen), 0);
    CU_ASSERT_EQUAL_FATAL(listen(s, 1), 0);
    char spec[64];
    snprintf(spec, sizeof spec, "127.0.0.1:%u", port_of(s));
    addr_conf(a, spec);
    return s;
}

static void test_in_use(void)
{
    struct conf_addr a;
    int holder = hold_port(&a);
    int before = count_fds();
    char err[256] = "";
    int fd = listener_bind(&a, err, sizeof err);
    CU_ASSERT_EQUAL(fd, -1);
    if (fd >= 0)
        close(fd);
    CU_ASSERT_EQUAL(count_fds(), before);
    /* the address as written, the step, the reason */
    char want[sizeof a.text + 64];
    snprintf(want, sizeof want, "%s: bind: %s", a.text, strerror(EADDRINUSE));
    CU_ASSERT_STRING_EQUAL(err, want);
    close(holder);
}

/* The first step can fail too: it is named, and nothing is left open. */
static void test_socket_fails(void)
{
    struct conf_addr a;
    memset(&a, 0, sizeof a);
    a.sa.ss_family = AF_UNSPEC;
    a.salen = sizeof a.sa;
    snprintf(a.text, sizeof a.text, "nowhere:1");
    int before = count_fds();
    char err[256] = "";
    CU_ASSERT_EQUAL(listener_bind(&a, err, sizeof err), -1);
    CU_ASSERT_EQUAL(count_fds(), before);
    CU_ASSERT_EQUAL(strncmp(err, "nowhere:1: socket: ", 19), 0);
}

/* The message cut to fit, NUL-terminated, nothing written past errlen. */
static void test_small_err(void)
{
    struct conf_addr a;
    int holder = hold_port(&a);
    char err[32];
    memset(err, 'Z', sizeof err);
    CU_ASSERT_EQUAL(listener_bind(&a, err, 8), -1);
    CU_ASSERT_EQUAL(err[7], '\0');
    CU_ASSERT_EQUAL(strlen(err), 7);
    CU_ASSERT_EQUAL(memcmp(err, "127.0.0", 7), 0);
    for (size_t i = 8; i < sizeof err; i++)
        CU_ASSERT_EQUAL(err[i], 'Z');
    /* room for the terminator only */
    memset(err, 'Z', sizeof err);
    CU_ASSERT_EQUAL(listener_bind(&a, err, 1), -1);
    CU_ASSERT_EQUAL(err[0], '\0');
    CU_ASSERT_EQUAL(err[1], 'Z');
    close(holder);
}

/* A unix socket left by a process that died is replaced, and the new one
 * listens; a live listener's socket and a file that is not a socket are
 * left alone (bind fails); a path whose directory is missing fails at bind,
 * cleanly. */
static void test_unix(void)
{
    char dir[] = "/tmp/envelopd-test-listener-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char path[128], spec[160];
    snprintf(path, sizeof path, "%s/gw.sock", dir);
    snprintf(spec, sizeof spec, "unix:%s", path);
    struct conf_addr a;
    addr_conf(&a, spec);
    CU_ASSERT_EQUAL(a.sa.ss_family, AF_UNIX);

    /* the stale one: bound, then closed without unlinking */
    int old = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CU_ASSERT_FATAL(old >= 0);
    CU_ASSERT_EQUAL_FATAL(bind(old, (struct sockaddr *)&a.sa, a.salen), 0);
    close(old);
    struct stat st;
    CU_ASSERT_EQUAL_FATAL(stat(path, &st), 0);
    CU_ASSERT_TRUE(S_ISSOCK(st.st_mode));
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CU_ASSERT_FATAL(probe >= 0);
    int rc = connect(probe, (struct sockaddr *)&a.sa, a.salen);
    int e = errno;
    CU_ASSERT_EQUAL(rc, -1);
    CU_ASSERT_EQUAL(e, ECONNREFUSED);
    close(probe);

    int before = count_fds();
    char err[256] = "";
    int fd = listener_bind(&a, err, sizeof err);
    CU_ASSERT(fd >= 0);
    if (fd >= 0) {
        check_listening(fd);
        CU_ASSERT_EQUAL(stat(path, &st), 0);
        CU_ASSERT_TRUE(S_ISSOCK(st.st_mode));
        struct sockaddr_un sun;
        socklen_t len = sizeof sun;
        CU_ASSERT_EQUAL(getsockname(fd, (struct sockaddr *)&sun, &len), 0);
        CU_ASSERT_STRING_EQUAL(sun.sun_path, path);
        int c = dial(&a);
        CU_ASSERT_TRUE(accept_one(fd));
        if (c >= 0)
            close(c);
        close(fd);
    } else {
        fprintf(stderr, "\n    %s", err);
    }
    CU_ASSERT_EQUAL(count_fds(), before);

    /* A live listener's socket is not taken over: bind fails, it keeps serving. */
    int live = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CU_ASSERT_FATAL(live >= 0);
    CU_ASSERT_EQUAL_FATAL(unlink(path), 0);
    CU_ASSERT_EQUAL_FATAL(bind(live, (struct sockaddr *)&a.sa, a.salen), 0);
    CU_ASSERT_EQUAL_FATAL(listen(live, 8), 0);
    before = count_fds();
    err[0] = '\0';
    CU_ASSERT_EQUAL(listener_bind(&a, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "bind: "));
    CU_ASSERT_EQUAL(count_fds(), before);
    int c2 = dial(&a);
    CU_ASSERT(c2 >= 0);
    CU_ASSERT_TRUE(accept_one(live));
    if (c2 >= 0)
        close(c2);
    close(live);
    before = count_fds();
    CU_ASSERT_EQUAL(unlink(path), 0);

    /* Nor is a file that is not a socket (a typo in the conf must not delete it). */
    int f = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    CU_ASSERT_FATAL(f >= 0);
    close(f);
    err[0] = '\0';
    CU_ASSERT_EQUAL(listener_bind(&a, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "bind: "));
    CU_ASSERT_EQUAL(stat(path, &st), 0);
    CU_ASSERT_TRUE(S_ISREG(st.st_mode));
    CU_ASSERT_EQUAL(count_fds(), before);
    CU_ASSERT_EQUAL(unlink(path), 0);

    /* a directory that is not there */
    char missing[160];
    snprintf(missing, sizeof missing, "unix:%s/no/such/dir/gw.sock", dir);
    addr_conf(&a, missing);
    err[0] = '\0';
    CU_ASSERT_EQUAL(listener_bind(&a, err, sizeof err), -1);
    CU_ASSERT_EQUAL(count_fds(), before);
    char want[256];
    snprintf(want, sizeof want, "%s: bind: %s", missing, strerror(ENOENT));
    CU_ASSERT_STRING_EQUAL(err, want);
    CU_ASSERT_EQUAL(rmdir(dir), 0);
}

/* Whether [::1] can be bound here. */
static bool have_ipv6_loopback(void)
{
    int s = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return false;
    struct sockaddr_in6 sin6;
    memset(&sin6, 0, sizeof sin6);
    sin6.sin6_family = AF_INET6;
    sin6.sin6_addr = in6addr_loopback;
    bool ok = bind(s, (struct sockaddr *)&sin6, sizeof sin6) == 0;
    close(s);
    return ok;
}

/* An IPv6 listener is IPv6 only. Binding to a specific address such as
 * [::1] makes the kernel set V6ONLY by itself, so the getsockopt checks
 * below cannot tell; what can is the IPv4-mapped [::ffff:127.0.0.1]: a
 * V6ONLY socket may not be bound to it (EINVAL at bind), a dual-stack one
 * may, and would then take IPv4 connections nobody listed. */
static void test_ipv6(void)
{
    if (!have_ipv6_loopback()) {
        fprintf(stderr, "\n    skipped: no IPv6 on loopback");
        CU_PASS("skipped: no IPv6 on loopback");
        return;
    }
    int before = count_fds();
    struct conf_addr m;
    addr_conf(&m, "[::ffff:127.0.0.1]:1");
    ((struct sockaddr_in6 *)&m.sa)->sin6_port = 0;
    char merr[256] = "";
    int mfd = listener_bind(&m, merr, sizeof merr);
    CU_ASSERT_EQUAL(mfd, -1);
    if (mfd >= 0)
        close(mfd);
    char mwant[256];
    snprintf(mwant, sizeof mwant, "[::ffff:127.0.0.1]:1: bind: %s", strerror(EINVAL));
    CU_ASSERT_STRING_EQUAL(merr, mwant);
    CU_ASSERT_EQUAL(count_fds(), before);

    struct conf_addr a;
    memset(&a, 0, sizeof a);
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a.sa;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_addr = in6addr_loopback;
    a.salen = sizeof *sin6;
    snprintf(a.text, sizeof a.text, "[::1]:0");
    char err[256] = "";
    int fd = listener_bind(&a, err, sizeof err);
    CU_ASSERT_FATAL(fd >= 0);
    check_listening(fd);
    CU_ASSERT_EQUAL(sockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY), 1);
    unsigned port = port_of(fd);
    /* the conf's [::1]:PORT: a second worker's bind, and a connection */
    char s[64];
    snprintf(s, sizeof s, "[::1]:%u", port);
    struct conf_addr b;
    addr_conf(&b, s);
    CU_ASSERT_EQUAL(b.sa.ss_family, AF_INET6);
    int fd2 = listener_bind(&b, err, sizeof err);
    CU_ASSERT(fd2 >= 0);
    if (fd2 >= 0)
        CU_ASSERT_EQUAL(sockopt(fd2, IPPROTO_IPV6, IPV6_V6ONLY), 1);
    int c = dial(&b);
    struct pollfd p[2] = {{fd, POLLIN, 0}, {fd2, POLLIN, 0}};
    CU_ASSERT(poll(p, fd2 >= 0 ? 2 : 1, 2000) >= 1);
    int got = 0;
    for (int j = 0; j < 2; j++) {
        if (p[j].fd < 0 || !(p[j].revents & POLLIN))
            continue;
        int x = accept4(p[j].fd, NULL, NULL, SOCK_CLOEXEC);
        if (x >= 0) {
            got++;
            close(x);
        }
    }
    CU_ASSERT_EQUAL(got, 1);
    if (c >= 0)
        close(c);
    if (fd2 >= 0)
        close(fd2);
    close(fd);
}

/* The default cap: (nofile - 32 - workers * (8 + listeners)) / (2 * workers),
 * at least 1, at most LISTENER_MAX_CONNECTIONS. */
static void test_default_cap(void)
{
    static const struct {
        uint64_t nofile;
        unsigned workers;
        size_t n_listen;
        unsigned want;
    } t[] = {
        {65536, 2, 1, (65536 - 32 - 18) / 4},
        {65536, 1, 1, (65536 - 32 - 9) / 2},
        {1024, 1, 1, (1024 - 32 - 9) / 2},
        {1024, 0, 1, (1024 - 32 - 9) / 2},          /* 0 workers counts as 1 */
        {1024, 1, 16, (1024 - 32 - 24) / 2},        /* every listening socket is kept out */
        {1024, 8, 2, (1024 - 32 - 80) / 16},
        {64, 1, 1, (64 - 32 - 9) / 2},
        {64, 2, 1, (64 - 32 - 18) / 4},
        {64, 4, 1, 1},                              /* the reserve exceeds the limit */
        {41, 1, 1, 1},                              /* exactly the reserve */
        {42, 1, 1, 1},                              /* half a client's pair is not one */
        {45, 1, 1, 2},
        {0, 1, 1, 1},
        {UINT64_MAX, 1, 1, LISTENER_MAX_CONNECTIONS}, /* RLIM_INFINITY */
        {UINT64_MAX, 1024, 16, LISTENER_MAX_CONNECTIONS},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        unsigned got = listener_default_max_connections(t[i].nofile, t[i].workers, t[i].n_listen);
        if (got != t[i].want)
            fprintf(stderr, "\n  nofile %llu workers %u listen %zu: %u, want %u\n",
                    (unsigned long long)t[i].nofile, t[i].workers, t[i].n_listen, got, t[i].want);
        CU_ASSERT_EQUAL(got, t[i].want);
    }
    /* Whenever the cap is above its floor of 1, two descriptors per client
     * on every worker plus the reserve fit in the limit. */
    for (uint64_t nofile = 0; nofile < 5000; nofile += 7) {
        for (unsigned w = 1; w <= 16; w++) {
            unsigned cap = listener_default_max_connections(nofile, w, 1);
            CU_ASSERT(cap >= 1);
            if (cap > 1)
                CU_ASSERT(2ULL * cap * w + LISTENER_FD_RESERVE +
                              (uint64_t)w * (LISTENER_FD_PER_WORKER + 1) <= nofile);
        }
    }
}

void test_register(void)
{
    CU_pSuite s = CU_add_suite("listener", NULL, NULL);
    if (!s)
        return;
    CU_add_test(s, "IPv4: non-blocking, close-on-exec, listening", test_ipv4);
    CU_add_test(s, "two binds of one port share its connections", test_reuseport);
    CU_add_test(s, "address in use: -1, \"bind\", no fd leaked", test_in_use);
    CU_add_test(s, "socket(2) failing is named too", test_socket_fails);
    CU_add_test(s, "small err buffer stays terminated", test_small_err);
    CU_add_test(s, "unix socket: a stale one is replaced, a live one or a file is not", test_unix);
    CU_add_test(s, "IPv6 [::1]: V6ONLY", test_ipv6);
    CU_add_test(s, "default max_connections from the descriptor limit", test_default_cap);
}
