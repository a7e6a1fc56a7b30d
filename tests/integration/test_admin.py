"""The admin listener: /healthz and Prometheus /metrics, through the real binary.

Every /metrics line must match the text exposition format, counters must move
with the traffic that was sent (by route and status class), both workers of
workers = 2 must serve, and /healthz must turn 503 while draining.
"""

import http.client
import re
import signal
import socket
import threading
import time
import unittest

from harness import Gateway, Redis, Upstream, base_conf, free_port, wait_until

API = "/api/v1/tasks"
WAIT_COUNT = ("envelopd_ratelimit_wait_seconds_count", frozenset())

# name{labels} value  |  # HELP name text  |  # TYPE name kind
SAMPLE_RE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? '
                       r'(-?[0-9.eE+-]+|\+Inf|-Inf|NaN)$')
HELP_RE = re.compile(r'^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*$')
TYPE_RE = re.compile(r'^# TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram|summary|untyped)$')


def admin_get(port, path, timeout=5):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read().decode()
    finally:
        c.close()


def parse_metrics(text):
    """{(name, frozenset(labels)): value}; asserts every line is well formed."""
    out = {}
    types = set()
    for line in text.splitlines():
        if line.startswith("# HELP"):
            assert HELP_RE.match(line), line
            continue
        if line.startswith("# TYPE"):
            assert TYPE_RE.match(line), line
            name = line.split()[2]
            assert name not in types, "TYPE given twice for %s" % name
            types.add(name)
            continue
        assert SAMPLE_RE.match(line), "not exposition format: %r" % line
        head, value = line.rsplit(" ", 1)
        if "{" in head:
            name, labels = head.split("{", 1)
            pairs = re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:\\.|[^"\\])*)"', labels)
        else:
            name, pairs = head, []
        out[(name, frozenset(pairs))] = float(value)
    return out


class Admin(unittest.TestCase):
    def setUp(self):
        self.up = Upstream()
        self.addCleanup(self.up.stop)
        self.port = free_port()
        self.admin = free_port()
        c = base_conf(self.port, [self.up.port])
        c.set("server", "workers", 2)
        c.set("admin", "listen", "127.0.0.1:%d" % self.admin)
        self.gw = Gateway(c, self.port)
        self.addCleanup(self.gw.cleanup)

    def metrics(self):
        st, hdr, body = admin_get(self.admin, "/metrics")
        self.assertEqual(st, 200)
        self.assertTrue(hdr["content-type"].startswith("text/plain; version=0.0.4"))
        return parse_metrics(body)

    def test_healthz_ok(self):
        st, hdr, body = admin_get(self.admin, "/healthz")
        self.assertEqual(st, 200, body)
        self.assertIn('"ok"', body)

    def test_unknown_path_and_method(self):
        self.assertEqual(admin_get(self.admin, "/nope")[0], 404)
        c = http.client.HTTPConnection("127.0.0.1", self.admin, timeout=5)
        c.request("POST", "/metrics", body=b"x")
        self.assertEqual(c.getresponse().status, 405)
        c.close()

    def test_counters_move_with_traffic(self):
        before = self.metrics()
        key2 = ("envelopd_requests_total", frozenset({("route", "tasks"), ("code", "2xx")}))
        key4 = ("envelopd_requests_total", frozenset({("route", "none"), ("code", "4xx")}))
        for _ in range(7):
            self.assertEqual(self.gw.request("GET", API).status, 200)
        for _ in range(3):
            self.assertEqual(self.gw.request("GET", "/no/route").status, 404)
        after = self.metrics()
        self.assertEqual(after[key2] - before.get(key2, 0), 7)
        self.assertEqual(after[key4] - before.get(key4, 0), 3)
        count = ("envelopd_request_duration_seconds_count", frozenset({("route", "tasks")}))
        inf = ("envelopd_request_duration_seconds_bucket",
               frozenset({("route", "tasks"), ("le", "+Inf")}))
        self.assertEqual(after[count], after[inf])
        self.assertGreaterEqual(after[count], 7)
        allowed = ("envelopd_ratelimit_decisions_total", frozenset({("decision", "allowed")}))
        # Unrouted requests are answered before any limit applies.
        self.assertEqual(after[allowed] - before.get(allowed, 0), 7)
        # No [redis]: every verdict was decided in the gateway, none waited.
        self.assertEqual(after[WAIT_COUNT], 0)

    def test_upstream_connection_reuse_counted(self):
        new = ("envelopd_upstream_attempts_total", frozenset({("connection", "new")}))
        reused = ("envelopd_upstream_attempts_total", frozenset({("connection", "reused")}))
        before = self.metrics()
        for _ in range(7):
            self.assertEqual(self.gw.request("GET", API).status, 200)
        after = self.metrics()
        d_new = after[new] - before.get(new, 0)
        d_reused = after[reused] - before.get(reused, 0)
        self.assertEqual(d_new + d_reused, 7, "one attempt per request, each counted once")
        # Two workers, each with its own pool: at most one new connection each.
        self.assertGreaterEqual(d_new, 1)
        self.assertLessEqual(d_new, 2)
        # The upstream saw exactly the connections the gateway says it opened.
        self.assertEqual(self.up.stats()["connections"], after[new])

    def test_upstream_errors_counted(self):
        self.up.kill()
        r = self.gw.request("GET", API)
        self.assertIn(r.status, (502, 503))
        m = self.metrics()
        conn = ("envelopd_upstream_errors_total", frozenset({("kind", "connect")}))
        self.assertGreaterEqual(m[conn], 1)

    def test_both_workers_serve(self):
        # Many short connections: SO_REUSEPORT spreads them over both workers.
        for _ in range(60):
            r = self.gw.request("GET", API)
            self.assertEqual(r.status, 200)
        m = self.metrics()
        w0 = m[("envelopd_worker_requests_total", frozenset({("worker", "0")}))]
        w1 = m[("envelopd_worker_requests_total", frozenset({("worker", "1")}))]
        self.assertEqual(w0 + w1, 60)
        self.assertGreater(w0, 0, "worker 0 served nothing")
        self.assertGreater(w1, 0, "worker 1 served nothing")

    def test_healthz_503_while_draining(self):
        self.up.set_default({"delay": 1.5})
        result = {}

        def slow():
            result["r"] = self.gw.request("GET", API, timeout=10)

        t = threading.Thread(target=slow)
        t.start()
        self.assertTrue(wait_until(lambda: self.up.stats()["requests"] >= 1, 5))
        self.gw.proc.send_signal(signal.SIGTERM)
        got = wait_until(lambda: admin_get(self.admin, "/healthz")[0] == 503, 3)
        self.assertTrue(got, "/healthz did not turn 503 while draining")
        t.join(10)
        self.assertEqual(result["r"].status, 200)
        self.assertEqual(self.gw.proc.wait(10), 0)


def wait_bucket(m, le):
    return m[("envelopd_ratelimit_wait_seconds_bucket", frozenset({("le", le)}))]


class AdminRedis(unittest.TestCase):
    """envelopd_ratelimit_wait_seconds: what the Redis round trip costs requests."""

    def setUp(self):
        self.up = Upstream()
        self.addCleanup(self.up.stop)
        self.redis = Redis()
        self.addCleanup(self.redis.kill)
        self.port = free_port()
        self.admin = free_port()
        c = base_conf(self.port, [self.up.port])
        c.set("redis", "address", self.redis.addr)
        c.set("redis", "timeout", "5s")
        c.set("redis", "on_error", "allow")
        c.set("admin", "listen", "127.0.0.1:%d" % self.admin)
        self.gw = Gateway(c, self.port)
        self.addCleanup(self.gw.cleanup)
        self.assertIsNotNone(self.gw.wait_log(lambda l: l.get("event") == "redis_connected", 10))

    def metrics(self):
        st, _, body = admin_get(self.admin, "/metrics")
        self.assertEqual(st, 200)
        return parse_metrics(body)

    def test_each_redis_verdict_is_one_wait(self):
        before = self.metrics()
        for i in range(6):
            r = self.gw.request("GET", API, headers={"Authorization": "Bearer tok-%d" % i})
            self.assertEqual(r.status, 200)
        after = self.metrics()
        self.assertEqual(after[WAIT_COUNT] - before[WAIT_COUNT], 6)
        waited = (after[("envelopd_ratelimit_wait_seconds_sum", frozenset())] -
                  before[("envelopd_ratelimit_wait_seconds_sum", frozenset())])
        self.assertGreater(waited, 0)
        self.assertLess(waited, 6 * 1.0, "a loopback Redis answers well under a second")
        self.assertEqual(wait_bucket(after, "+Inf"), after[WAIT_COUNT])

    def test_paused_redis_shows_in_the_wait(self):
        before = self.metrics()
        self.assertEqual(self.redis.command("CLIENT", "PAUSE", "600"), "OK")
        t0 = time.monotonic()
        r = self.gw.request("GET", API, headers={"Authorization": "Bearer tok-paused"})
        dt = time.monotonic() - t0
        self.assertEqual(r.status, 200)
        after = self.metrics()
        self.assertEqual(after[WAIT_COUNT] - before[WAIT_COUNT], 1)
        # The request sent right after the pause waited for most of it; the
        # histogram has it above 250 ms and, the pause being 600 ms, within 1 s
        # unless the whole request took that long.
        self.assertGreaterEqual(dt, 0.3)
        self.assertEqual(wait_bucket(after, "0.25") - wait_bucket(before, "0.25"), 0)
        if dt < 1.0:
            self.assertEqual(wait_bucket(after, "1") - wait_bucket(before, "1"), 1)


if __name__ == "__main__":
    unittest.main()
