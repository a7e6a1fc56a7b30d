"""Upstream pools: round robin, dead servers skipped, retries, timeouts.

Retry policy (docs/configuration.md, [upstream] retries): GET/HEAD/PUT/DELETE/OPTIONS may be
retried on connect failure, reset before a response, 502 and 503;
POST/PATCH only when the request never reached the upstream; never a 500.

Run: cd tests/integration && ENVELOPD=/path/to/envelopd python3 -m unittest -v test_upstream
"""

import threading
import time
import unittest

from harness import GatewayTestCase, Upstream, base_conf, free_port, scaled, scripted, wait_until

API = "/api/v1/tasks"
UP_TIMEOUT = 2.0


def dead_port():
    """A loopback port nobody listens on (connections are refused)."""
    return free_port()


class Pool(GatewayTestCase):
    def gw_over(self, servers, upstream_keys=None, **route):
        """A gateway over SERVERS; UPSTREAM_KEYS: settings for its [upstream]."""
        port = free_port()
        c = base_conf(port, servers, **route)
        for k, v in (upstream_keys or {}).items():
            c.set("upstream tasks", k, v)
        return self.gateway(c, port)

    def test_round_robin(self):
        a, b = self.upstream(), self.upstream()
        gw = self.gw_over([a.port, b.port])
        seen = []
        for _ in range(20):
            r = gw.request("GET", API)
            self.assertEqual(r.status, 200, r)
            seen.append(r.header("X-Upstream-Port"))
        na, nb = seen.count(str(a.port)), seen.count(str(b.port))
        self.assertEqual(na + nb, 20, seen)
        self.assertLessEqual(abs(na - nb), 2, "not round robin: %d vs %d" % (na, nb))
        self.assertEqual(a.stats()["requests"], na)
        self.assertEqual(b.stats()["requests"], nb)

    def test_refused_server_skipped(self):
        b = self.upstream()
        dead = dead_port()
        gw = self.gw_over([dead, b.port])
        for i in range(20):
            m = "GET" if i % 2 else "POST"  # POST may be retried: it never reached the dead one
            r = gw.request(m, API, body=b"{}" if m == "POST" else None)
            self.assertEqual(r.status, 200, (i, m, r))
            self.assertEqual(r.header("X-Upstream-Port"), str(b.port))
        self.assertEqual(b.stats()["requests"], 20)
        ev = gw.wait_log(lambda l: l.get("event") == "upstream_down" and str(dead) in repr(l), 3)
        self.assertIsNotNone(ev, "no upstream_down event naming 127.0.0.1:%d; events: %r" % (
            dead, gw.events()))

    def test_killed_server_skipped_then_back(self):
        a, b = self.upstream(), self.upstream()
        gw = self.gw_over([a.port, b.port])
        for _ in range(4):
            self.assertEqual(gw.request("GET", API).status, 200)
        a.kill()
        for i in range(20):
            r = gw.request("GET", API)
            self.assertEqual(r.status, 200, (i, r))
            self.assertEqual(r.header("X-Upstream-Port"), str(b.port))
        self.assertIsNotNone(gw.wait_log(lambda l: l.get("event") == "upstream_down", 3),
                             gw.events())
        a2 = Upstream(port=a.port)
        self.addCleanup(a2.kill)
        # back in rotation once its backoff passes: keep sending until it gets traffic
        def a2_used():
            gw.request("GET", API)
            return a2.stats()["requests"] > 0
        deadline = time.monotonic() + 20
        ok = False
        while time.monotonic() < deadline:
            if a2_used():
                ok = True
                break
            time.sleep(0.1)
        self.assertTrue(ok, "a restarted server never got traffic again within 20s")
        self.assertIsNotNone(gw.wait_log(lambda l: l.get("event") == "upstream_up", 3),
                             "no upstream_up event: %r" % gw.events())

    def test_surplus_idle_connections_reused_then_purged(self):
        # keepalive = 2, but a burst of 6 concurrent requests needs 6 upstream
        # connections: they stay pooled so the next burst reuses them, and the
        # 4 beyond keepalive are closed after UPSTREAM_SURPLUS_IDLE_MS unused.
        a = self.upstream()
        gw = self.gw_over([a.port], upstream_keys={"keepalive": 2})

        def burst():
            out = []
            ts = [threading.Thread(target=lambda: out.append(
                gw.request("GET", API, headers=scripted(delay=0.4)).status)) for _ in range(6)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(20)
            self.assertEqual(out, [200] * 6)
        burst()
        self.assertEqual(a.stats()["connections"], 6, "the burst did not run concurrently")
        burst()
        self.assertEqual(a.stats()["connections"], 6,
                         "the second burst opened new connections instead of reusing the first's")
        # open counts the stats connection itself: 2 pooled + 1.
        st = wait_until(lambda: a.stats()["open"] == 3 or None, scaled(5), 0.1)
        self.assertIsNotNone(st, "surplus idle connections were not closed: %r" % a.stats())
        time.sleep(0.3)
        self.assertEqual(a.stats()["open"], 3, "keepalive connections were purged too")
        self.assertEqual(gw.request("GET", API).status, 200)
        self.assertEqual(a.stats()["connections"], 6, "a kept connection was not reused")

    def test_keepalive_timeout_closes_idle_connection(self):
        # keepalive_timeout = 300ms: the pooled connection is closed by the
        # gateway once unused that long; a later request opens a new one.
        a = self.upstream()
        gw = self.gw_over([a.port], upstream_keys={"keepalive_timeout": "300ms"})
        self.assertEqual(gw.request("GET", API).status, 200)
        self.assertEqual(gw.request("GET", API).status, 200)
        self.assertEqual(a.stats()["connections"], 1, "the second request did not reuse the first's")
        # open counts the stats connection itself.
        st = wait_until(lambda: a.stats()["open"] == 1 or None, scaled(3), 0.05)
        self.assertIsNotNone(st, "the idle connection was not closed: %r" % a.stats())
        self.assertEqual(gw.request("GET", API).status, 200)
        self.assertEqual(a.stats()["connections"], 2)

    def test_keepalive_requests_retires_connections(self):
        # keepalive_requests = 3: each upstream connection carries three
        # requests, then the gateway closes it; the upstream sees 7 requests
        # on ceil(7/3) = 3 connections, none of them failed.
        a = self.upstream()
        gw = self.gw_over([a.port], upstream_keys={"keepalive_requests": 3})
        for _ in range(7):
            self.assertEqual(gw.request("GET", API).status, 200)
        st = a.stats()
        self.assertEqual(st["requests"], 7, st)
        self.assertEqual(st["connections"], 3, st)

    def test_stale_pooled_connection_recovered(self):
        a = self.upstream()
        gw = self.gw_over([a.port])
        self.assertEqual(gw.request("GET", API).status, 200)  # a pooled connection now exists
        port = a.port
        a.kill()
        a2 = Upstream(port=port)
        self.addCleanup(a2.kill)
        r = gw.request("GET", API)
        self.assertEqual(r.status, 200, "a dead pooled connection failed the request: %r" % r)
        self.assertEqual(a2.stats()["requests"], 1)

    def test_get_retried_after_reset(self):
        a = self.upstream(default={"action": "reset"})
        b = self.upstream()
        gw = self.gw_over([a.port, b.port])
        for i in range(6):
            r = gw.request("GET", API + "/%d" % i)
            self.assertEqual(r.status, 200, (i, r))
            self.assertEqual(r.header("X-Upstream-Port"), str(b.port))
        self.assertGreaterEqual(a.stats()["requests"], 1, "the resetting server was never tried")
        self.assertEqual(b.stats()["requests"], 6)

    def test_post_not_retried_once_sent(self):
        a = self.upstream(default={"action": "reset"})
        gw = self.gw_over([a.port])
        r = gw.request("POST", API, body=b'{"title":"once"}')
        self.assertEnvelope(r, 502, "BAD_GATEWAY")
        self.assertEqual(a.stats()["requests"], 1, "a POST that reached the upstream was sent again")

    def test_post_not_retried_on_other_server(self):
        a = self.upstream(default={"action": "reset"})
        b = self.upstream()
        gw = self.gw_over([a.port, b.port])
        statuses = []
        for i in range(6):
            r = gw.request("POST", API, body=b'{"n":%d}' % i,
                           headers={"X-Correlation-Id": "post-%d" % i})
            statuses.append(r.status)
        sent_a = {dict((k.lower(), v) for k, v in e["headers"])["x-correlation-id"]
                  for e in a.stats()["log"]}
        sent_b = {dict((k.lower(), v) for k, v in e["headers"])["x-correlation-id"]
                  for e in b.stats()["log"]}
        self.assertTrue(sent_a, "server A never got a POST; statuses %r" % statuses)
        self.assertFalse(sent_a & sent_b, "POSTs sent to both servers: %r" % (sent_a & sent_b))
        self.assertIn(502, statuses)

    def test_patch_not_retried_once_sent(self):
        a = self.upstream(default={"action": "reset"})
        gw = self.gw_over([a.port])
        r = gw.request("PATCH", API + "/1", body=b'{"done":true}')
        self.assertEnvelope(r, 502, "BAD_GATEWAY")
        self.assertEqual(a.stats()["requests"], 1)

    def test_delete_retried_after_reset(self):
        a = self.upstream(default={"action": "reset"})
        b = self.upstream()
        gw = self.gw_over([a.port, b.port])
        for i in range(4):
            r = gw.request("DELETE", API + "/%d" % i)
            self.assertEqual(r.status, 200, (i, r))
        self.assertGreaterEqual(a.stats()["requests"], 1)

    def test_get_retried_on_503(self):
        a = self.upstream(default={"status": 503, "json": {"error": "busy"}})
        b = self.upstream()
        gw = self.gw_over([a.port, b.port])
        for i in range(6):
            r = gw.request("GET", API)
            self.assertEqual(r.status, 200, (i, r))
        self.assertGreaterEqual(a.stats()["requests"], 1)

    def test_get_retried_on_502_bounded(self):
        a = self.upstream(default={"status": 502, "body": "bad gateway"})
        gw = self.gw_over([a.port])
        t0 = time.monotonic()
        r = gw.request("GET", API)
        elapsed = time.monotonic() - t0
        self.assertEnvelope(r, 502, "BAD_GATEWAY")
        self.assertLess(elapsed, 2.0, "retry backoff too long: %.2fs for 2 retries" % elapsed)
        n = a.stats()["requests"]
        self.assertGreaterEqual(n, 2, "GET not retried on 502")
        self.assertLessEqual(n, 3, "more than 1 + retries (2) attempts: %d" % n)

    def test_get_never_retried_on_500(self):
        a = self.upstream(default={"status": 500, "body": "boom"})
        b = self.upstream()
        gw = self.gw_over([a.port, b.port])
        statuses = [gw.request("GET", API).status for _ in range(6)]
        self.assertEqual(statuses.count(500), a.stats()["requests"], statuses)
        self.assertEqual(statuses.count(200), b.stats()["requests"], statuses)
        self.assertGreaterEqual(statuses.count(500), 1, statuses)

    def test_post_not_retried_on_503(self):
        a = self.upstream(default={"status": 503, "body": "busy"})
        gw = self.gw_over([a.port])
        r = gw.request("POST", API, body=b"{}")
        self.assertEnvelope(r, 503, "SERVICE_UNAVAILABLE")
        self.assertEqual(a.stats()["requests"], 1)

    def test_retries_zero(self):
        a = self.upstream(default={"status": 503, "body": "busy"})
        port = free_port()
        c = base_conf(port, [a.port])
        c.set("upstream tasks", "retries", 0)
        gw = self.gateway(c, port)
        r = gw.request("GET", API)
        self.assertEqual(r.status, 503)
        self.assertEqual(a.stats()["requests"], 1)

    def test_no_healthy_server(self):
        gw = self.gw_over([dead_port(), dead_port()])
        for m in ("GET", "POST"):
            t0 = time.monotonic()
            r = gw.request(m, API, body=b"{}" if m == "POST" else None)
            self.assertIn(r.status, (502, 503), r)
            self.assertEnvelope(r, r.status, {502: "BAD_GATEWAY", 503: "SERVICE_UNAVAILABLE"}[r.status])
            self.assertLess(time.monotonic() - t0, 2.0)

    def test_refused_502_quickly(self):
        gw = self.gw_over([dead_port()])
        t0 = time.monotonic()
        r = gw.request("GET", API)
        elapsed = time.monotonic() - t0
        self.assertIn(r.status, (502, 503), r)
        self.assertEnvelope(r, r.status, {502: "BAD_GATEWAY", 503: "SERVICE_UNAVAILABLE"}[r.status])
        self.assertLess(elapsed, 1.5, "refused connection took %.2fs" % elapsed)

    def test_slow_upstream_504(self):
        a = self.upstream()
        gw = self.gw_over([a.port])
        t0 = time.monotonic()
        r = gw.request("GET", API, headers=scripted(delay=UP_TIMEOUT + 3, body="late"), timeout=15)
        elapsed = time.monotonic() - t0
        self.assertEnvelope(r, 504, "GATEWAY_TIMEOUT")
        self.assertGreaterEqual(elapsed, UP_TIMEOUT - 0.2, elapsed)
        self.assertLessEqual(elapsed, UP_TIMEOUT + 1.0, "504 after %.2fs, timeout is 2s" % elapsed)
        self.assertEqual(a.stats()["requests"], 1, "a timed-out request was sent again")
        line = gw.wait_access(r.header("X-Correlation-Id"))
        self.assertIsNotNone(line)
        self.assertEqual(line["status"], 504)
        self.assertEqual(line["error_code"], "GATEWAY_TIMEOUT")

    def test_slow_but_within_timeout_ok(self):
        a = self.upstream()
        gw = self.gw_over([a.port])
        r = gw.request("GET", API, headers=scripted(delay=1.0, body="in time"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"in time")

    def test_concurrent_requests_one_slow(self):
        # a slow request must not block others (event loop, one worker)
        a = self.upstream()
        gw = self.gw_over([a.port])
        out = {}

        def slow():
            out["slow"] = gw.request("GET", API, headers=scripted(delay=1.5, body="slow"))
        t = threading.Thread(target=slow)
        t.start()
        self.assertTrue(a.wait_requests(1, 3))
        t0 = time.monotonic()
        for _ in range(5):
            self.assertEqual(gw.request("GET", API).status, 200)
        fast = time.monotonic() - t0
        t.join(10)
        self.assertEqual(out["slow"].status, 200)
        self.assertLess(fast, 1.0, "fast requests waited behind a slow one (%.2fs)" % fast)


if __name__ == "__main__":
    unittest.main()
