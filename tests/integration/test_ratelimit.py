"""Rate limits end to end: GCRA exactness in Redis and in process memory,
limits shared by several gateways, per-route and per-IP policy with
X-Forwarded-For, limits that add up (a token never escapes the per-IP limit,
a refused request spends no budget), IPv6 callers keyed by network, Redis
lost / paused / back under each on_error, no token in Redis or in the logs,
an upstream's own 429, and reload.

Each test starts its own redis-server (free port, no persistence, stopped by
PID), upstream.py and envelopd. Waits poll for the event itself with a bound;
the only sleeps are in the GCRA tests, where elapsed time is the subject.

Run: cd tests/integration && ENVELOPD=/path/to/envelopd python3 -m unittest -v test_ratelimit
"""

import os
import re
import secrets
import signal
import socket
import threading
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

from harness import (SLOW, GatewayTestCase, Redis, base_conf, free_port, scripted, slack,
                     wait_until)

API = "/api/v1/tasks"
USERS = "/api/v1/users"
SECRET = "integration-test-hash-secret-0123456789"
LEAK_TOKEN = "secret-token-XYZ123"
# a token's key (its keyed hash) or an address's (ip:...; per_ip applies to
# token requests too)
KEY_RE = re.compile(r"^envelopd:\{([0-9a-f]{32}|ip:[0-9a-f.:]+(/\d+)?)\}:[a-z]+:\d+/\d+$")

# The [redis] timeout of the tests: 50 ms. Under valgrind (harness.SLOW) a
# worker's first Redis round trip alone takes ~200 ms (code run for the first
# time is translated), so that first request would be answered by on_error:
# there, 1 s, and the CLIENT PAUSE scenarios (RedisPaused) stretched to match.
REDIS_TIMEOUT_S = 1.0 if SLOW else 0.05
REDIS_TIMEOUT = "%dms" % round(REDIS_TIMEOUT_S * 1000)


def bearer(token):
    return {"Authorization": "Bearer " + token}


def rl_conf(port, up_ports, per_token="5/1m", per_ip="100000/1m", redis=None,
            on_error="allow", timeout=REDIS_TIMEOUT, hash_secret=SECRET, workers=1, **route):
    """base_conf with [limits] set, and a [redis] section when REDIS is given."""
    c = base_conf(port, up_ports, **route)
    c.set("server", "workers", workers)
    if per_token is not None:
        c.set("limits", "per_token", per_token)
    if per_ip is not None:
        c.set("limits", "per_ip", per_ip)
    if hash_secret:
        c.set("limits", "hash_secret", hash_secret)
    if redis is not None:
        c.set("redis", "address", redis.addr)
        c.set("redis", "timeout", timeout)
        c.set("redis", "on_error", on_error)
        c.set("redis", "key_prefix", "envelopd:")
    return c


def add_users_route(c, **extra):
    """A second route on the same upstream, /api/v1/users, with no limit of its own
    unless EXTRA gives one."""
    for k, v in (("prefix", USERS), ("upstream", "tasks"), ("strip_prefix", "no"),
                 ("methods", "GET, POST"), ("require_token", "no")):
        c.set("route users", k, v)
    for k, v in extra.items():
        c.set("route users", k, v)
    return c


def redis_scan(redis):
    """Every key in REDIS, by SCAN (not KEYS), over the raw RESP helper."""
    keys, cursor = [], b"0"
    while True:
        reply = redis.command("SCAN", cursor, "COUNT", "1000")
        cursor, batch = reply[0], reply[1]
        keys += [k.decode("latin-1") for k in batch]
        if cursor in (b"0", "0"):
            return keys


class Monitor:
    """A raw MONITOR connection to Redis: every command any client sends."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.sendall(b"*1\r\n$7\r\nMONITOR\r\n")
        self.data = b""
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        if not wait_until(lambda: b"+OK" in self.text_bytes(), 5):
            raise AssertionError("MONITOR did not start")

    def _read(self):
        self.sock.settimeout(0.2)
        while True:
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not chunk:
                return
            with self.lock:
                self.data += chunk

    def text_bytes(self):
        with self.lock:
            return self.data

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(2)


class RateLimitCase(GatewayTestCase):
    """Helpers shared by every rate-limit suite."""

    def redis(self, port=None):
        r = Redis(port)
        self.addCleanup(r.kill)
        return r

    def start_gateway(self, conf, port, redis=True):
        gw = self.gateway(conf, port)
        if redis:
            ev = gw.wait_log(lambda l: l.get("event") in ("redis_connected", "redis_back"), 10)
            self.assertIsNotNone(ev, "envelopd never connected to Redis:\n" +
                                 gw.stdout_text()[-2000:])
        return gw

    def timed(self, gw, path=API, headers=None, timeout=10):
        t0 = time.monotonic()
        r = gw.request("GET", path, headers=headers, timeout=timeout)
        return r, time.monotonic() - t0

    def statuses(self, gw, n, path=API, headers=None):
        return [gw.request("GET", path, headers=headers) for _ in range(n)]

    def assertRateHeaders(self, r, limit, remaining=None):
        self.assertEqual(len(r.header_all("X-RateLimit-Limit")), 1, r)
        self.assertEqual(r.header("X-RateLimit-Limit"), str(limit), r)
        rem = int(r.header("X-RateLimit-Remaining"))
        if remaining is not None:
            self.assertEqual(rem, remaining, r)
        reset = int(r.header("X-RateLimit-Reset"))
        self.assertGreaterEqual(reset, 0, r)
        return rem, reset

    def assertNoRateHeaders(self, r):
        for h in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
            self.assertIsNone(r.header(h), "%s on an undecided response: %r" % (h, r))

    def assert429(self, r, limit, window="minute"):
        """R is the gateway's own 429: nested envelope with the limit facts."""
        body = self.assertEnvelope(r, 429, "RATE_LIMITED")
        details = body["error"]["details"]
        ra = r.header("Retry-After")
        self.assertIsNotNone(ra, "429 without Retry-After: %r" % r)
        self.assertRegex(ra, r"^\d+$", r)
        self.assertGreaterEqual(int(ra), 1, r)
        self.assertIsInstance(details.get("retry_after"), int, body)
        self.assertGreaterEqual(details["retry_after"], 1, body)
        self.assertEqual(details["retry_after"], int(ra), "details.retry_after != Retry-After")
        self.assertEqual(details.get("limit"), limit, body)
        self.assertEqual(details.get("window"), window, body)
        self.assertEqual(r.header("X-Correlation-Id"), details["request_id"])
        self.assertRateHeaders(r, limit, 0)
        return body

    def count_passes(self, responses):
        return sum(1 for r in responses if r.status == 200)


# ====================================================================== 1

class ExactnessMixin:
    """Test 1, in Redis mode and in local mode (the subclasses)."""

    use_redis = True

    def setup_gw(self, workers=1, **kw):
        up = self.upstream()
        port = free_port()
        rd = self.redis() if self.use_redis else None
        conf = rl_conf(port, [up.port], redis=rd, workers=workers, **kw)
        gw = self.start_gateway(conf, port, redis=self.use_redis)
        return gw, up, rd

    def test_exactly_limit_pass_headers_and_envelope(self):
        gw, up, _ = self.setup_gw(per_token="5/1m")
        rs = self.statuses(gw, 12, headers=bearer("tok-exact"))
        self.assertEqual([r.status for r in rs], [200] * 5 + [429] * 7, rs)
        for i, r in enumerate(rs[:5]):
            rem, reset = self.assertRateHeaders(r, 5, 4 - i)
            self.assertLessEqual(reset, 60, r)
            self.assertGreaterEqual(reset, 1, r)
        for r in rs[5:]:
            self.assert429(r, 5)
            self.assertLessEqual(int(r.header("X-RateLimit-Reset")), 60, r)
            # GCRA 5/1m: the next slot frees 12 s after the first request
            self.assertLessEqual(int(r.header("Retry-After")), 12, r)
        self.assertEqual(up.stats()["requests"], 5, "upstream saw a limited request")
        # the access log reports the remaining budget
        acc = gw.wait_access(rs[-1].header("X-Correlation-Id"))
        self.assertIsNotNone(acc)
        self.assertEqual(acc["status"], 429)
        self.assertEqual(acc["error_code"], "RATE_LIMITED")

    def test_head_429_has_headers_no_body(self):
        gw, _, _ = self.setup_gw(per_token="1/1m")
        self.assertEqual(gw.request("HEAD", API, headers=bearer("tok-head")).status, 200)
        r = gw.request("HEAD", API, headers=bearer("tok-head"))
        self.assertEqual(r.status, 429, r)
        self.assertEqual(r.body, b"", r)
        self.assertGreaterEqual(int(r.header("Retry-After")), 1, r)
        self.assertRateHeaders(r, 1, 0)

    def test_concurrent_requests_across_workers_exact(self):
        gw, up, _ = self.setup_gw(per_token="10/1m", workers=3)
        with ThreadPoolExecutor(12) as ex:
            rs = list(ex.map(lambda _: gw.request("GET", API, headers=bearer("tok-conc")),
                             range(40)))
        self.assertEqual(self.count_passes(rs), 10, [r.status for r in rs])
        self.assertEqual(sorted(r.status for r in rs), [200] * 10 + [429] * 30)
        self.assertEqual(up.stats()["requests"], 10)
        rems = sorted(int(r.header("X-RateLimit-Remaining")) for r in rs if r.status == 200)
        self.assertEqual(rems, list(range(10)), "each slot granted once")


class ExactnessRedis(ExactnessMixin, RateLimitCase):
    use_redis = True


class ExactnessLocal(ExactnessMixin, RateLimitCase):
    use_redis = False

    def test_local_mode_said_once_at_start(self):
        gw, _, _ = self.setup_gw()
        self.assertIsNotNone(gw.wait_log(lambda l: l.get("event") == "ratelimit_local", 5),
                             "no ratelimit_local line at start without [redis]")
        self.statuses(gw, 3, headers=bearer("t"))
        self.assertEqual(len(gw.events("ratelimit_local")), 1)


# ====================================================================== GCRA

class GcraMixin:
    """The algorithm's documented behaviour over time (time is the subject:
    these tests sleep on purpose)."""

    use_redis = True

    def setup_gw(self, per_token):
        up = self.upstream()
        port = free_port()
        rd = self.redis() if self.use_redis else None
        gw = self.start_gateway(rl_conf(port, [up.port], per_token=per_token, redis=rd), port,
                                redis=self.use_redis)
        return gw

    def test_refill_one_per_emission_interval(self):
        # 4/8s: T = 2 s, burst 4. T is long enough that request latency on a
        # loaded 2-core machine (sanitizer build, other suites) cannot refill
        # a slot between back-to-back requests.
        gw = self.setup_gw("4/8s")
        h = bearer("tok-gcra")
        t0 = time.monotonic()
        rs = self.statuses(gw, 5, headers=h)
        took = time.monotonic() - t0
        self.assertLess(took, 2.0, "5 requests took %.2f s: the test's premise fails" % took)
        self.assertEqual([r.status for r in rs], [200] * 4 + [429], rs)
        self.assertIn(rs[4].header("Retry-After"), ("1", "2"), rs[4])
        time.sleep(2.2)   # a bit more than T: exactly one slot is back
        rs = self.statuses(gw, 2, headers=h)
        self.assertEqual([r.status for r in rs], [200, 429], rs)
        self.assertEqual(rs[0].header("X-RateLimit-Remaining"), "0", rs[0])

    def test_never_twice_the_limit_across_a_window(self):
        # 5/1s, T = 200 ms. Hammer for 1.6 s: a fixed window would let 10
        # through around an edge; GCRA at most L + D/T in any span D.
        # Each pass was decided somewhere between its send and its receive
        # time; the counts below use the bounds that latency cannot inflate.
        gw = self.setup_gw("5/1s")
        h = bearer("tok-edge")
        passes = []  # (sent, received)
        t0 = time.monotonic()
        conn = gw.connection()
        self.addCleanup(conn.close)
        while time.monotonic() - t0 < 1.6:
            t = time.monotonic()
            r = gw.request("GET", API, headers=h, conn=conn)
            if r.status == 200:
                passes.append((t, time.monotonic()))
            else:
                self.assertEqual(r.status, 429, r)
            time.sleep(0.01)
        self.assertGreaterEqual(len(passes), 5)
        # the decisions span at most last-received minus first-sent
        span = passes[-1][1] - passes[0][0]
        self.assertLessEqual(len(passes), 5 + int(span / 0.2) + 1, passes)
        for i, (sent_i, _) in enumerate(passes):
            # passes certainly decided within one second of pass i
            certain = [p for p in passes[i:] if p[1] - sent_i < 1.0]
            self.assertLessEqual(len(certain), 9, "2L in one window")
        # the burst: L passes before the first emission interval could refill one
        self.assertLess(passes[4][0] - passes[0][1], 0.2 * 5, passes)


class GcraRedis(GcraMixin, RateLimitCase):
    use_redis = True


class GcraLocal(GcraMixin, RateLimitCase):
    use_redis = False


# ====================================================================== 2

class SharedRedis(RateLimitCase):
    """Test 2: several envelopd processes on one Redis share the limits exactly."""

    def two_gateways(self, secret_a=SECRET, secret_b=SECRET, **kw):
        up = self.upstream()
        rd = self.redis()
        gws = []
        for secret in (secret_a, secret_b):
            port = free_port()
            gws.append(self.start_gateway(
                rl_conf(port, [up.port], redis=rd, hash_secret=secret, workers=2, **kw), port))
        return gws, up, rd

    def test_alternating_requests_share_one_budget(self):
        (a, b), up, _ = self.two_gateways(per_token="6/1m")
        rs = [(a if i % 2 == 0 else b).request("GET", API, headers=bearer("tok-shared"))
              for i in range(14)]
        self.assertEqual([r.status for r in rs], [200] * 6 + [429] * 8, rs)
        self.assertEqual([int(r.header("X-RateLimit-Remaining")) for r in rs[:6]],
                         [5, 4, 3, 2, 1, 0])
        for r in rs[6:]:
            self.assert429(r, 6)
        self.assertEqual(up.stats()["requests"], 6)

    def test_concurrent_requests_two_gateways_exact(self):
        (a, b), up, _ = self.two_gateways(per_token="10/1m")
        with ThreadPoolExecutor(16) as ex:
            rs = list(ex.map(lambda i: (a if i % 2 else b).request(
                "GET", API, headers=bearer("tok-race")), range(40)))
        self.assertEqual(self.count_passes(rs), 10, [r.status for r in rs])
        self.assertEqual(up.stats()["requests"], 10)

    def test_ip_budget_shared(self):
        (a, b), _, _ = self.two_gateways(per_ip="4/1m")
        rs = [(a if i % 2 == 0 else b).request("GET", API) for i in range(8)]
        self.assertEqual([r.status for r in rs], [200] * 4 + [429] * 4, rs)

    def test_different_hash_secret_names_tokens_differently(self):
        # documented: without the same hash_secret token budgets are not shared
        (a, b), _, rd = self.two_gateways(secret_a=SECRET, secret_b=SECRET + "-other",
                                          per_token="3/1m")
        ra = self.statuses(a, 4, headers=bearer("tok-x"))
        rb = self.statuses(b, 4, headers=bearer("tok-x"))
        self.assertEqual([r.status for r in ra], [200] * 3 + [429])
        self.assertEqual([r.status for r in rb], [200] * 3 + [429])
        self.assertEqual(len([k for k in redis_scan(rd) if ":tasks:3/60000" in k]), 2)


# ====================================================================== 3

class PolicyMixin:
    """Test 3: which limit applies to whom."""

    use_redis = False

    def setup_gw(self, trusted=None, **limits):
        up = self.upstream()
        port = free_port()
        rd = self.redis() if self.use_redis else None
        kw = {"per_token": "5/1m", "per_ip": "4/1m"}
        kw.update(limits)
        route = kw.pop("route", {})
        users = kw.pop("users", {})
        c = rl_conf(port, [up.port], redis=rd, **kw)
        for k, v in route.items():
            c.set("route tasks", k, v)
        add_users_route(c, **users)
        if trusted is not None:
            c.set("limits", "trusted_proxies", trusted)
        return self.start_gateway(c, port, redis=self.use_redis), up

    def test_off_disables_a_limit(self):
        # [limits] per_token = off: no token limit, but a token never lowers a
        # limit: token requests are still held to per_ip (4/1m on tasks, the
        # same budget as anonymous ones). A route may turn per_ip off for
        # itself while others keep it: with both off, no limit, no headers.
        gw, up = self.setup_gw(per_token="off", users={"per_ip": "off"})
        h = bearer("tok-off")
        rs = self.statuses(gw, 6, API, h)
        self.assertEqual([r.status for r in rs], [200] * 4 + [429] * 2, rs)
        self.assertRateHeaders(rs[0], 4, 3)
        self.assert429(rs[4], 4)
        anon = self.statuses(gw, 2, API)  # the tokens spent this address's budget
        self.assertEqual([r.status for r in anon], [429] * 2, anon)
        users = self.statuses(gw, 8, USERS, h) + self.statuses(gw, 6, USERS)
        self.assertEqual([r.status for r in users], [200] * 14, users)
        self.assertNoRateHeaders(users[0])
        self.assertNoRateHeaders(users[-1])
        self.assertEqual(up.stats()["requests"], 4 + 14)

    def test_route_override_beats_default(self):
        # X-Forwarded-For from the trusted 127.0.0.1 names a caller per request
        # where a test is about the token alone.
        gw, up = self.setup_gw(trusted="127.0.0.0/8",
                               route={"per_token": "3/1m", "per_ip": "2/1m"})
        h = bearer("tok-route")

        def xff(i, h=None):
            return dict(h or {}, **{"X-Forwarded-For": "203.0.113.%d" % i})
        # tasks: the route's per_token (each request from its own address)
        tasks = [gw.request("GET", API, headers=xff(i, h)) for i in range(1, 6)]
        self.assertEqual([r.status for r in tasks], [200] * 3 + [429] * 2, tasks)
        self.assertRateHeaders(tasks[2], 3, 0)
        self.assert429(tasks[3], 3)
        # the route without its own limit uses [limits] (and a budget of its own)
        users = [gw.request("GET", USERS, headers=xff(i, h)) for i in range(11, 18)]
        self.assertEqual([r.status for r in users], [200] * 5 + [429] * 2, users)
        self.assertRateHeaders(users[4], 5, 0)
        self.assert429(users[5], 5)
        # anonymous: per_ip, the route's own on tasks, [limits] on users
        anon = self.statuses(gw, 3, API, xff(100))
        self.assertEqual([r.status for r in anon], [200, 200, 429], anon)
        self.assertRateHeaders(anon[0], 2, 1)
        anon = self.statuses(gw, 5, USERS, xff(101))
        self.assertEqual([r.status for r in anon], [200] * 4 + [429], anon)
        self.assertRateHeaders(anon[0], 4, 3)
        # a fresh token from one address: the route's per_ip (2) is the tighter
        fresh = self.statuses(gw, 3, API, xff(102, bearer("tok-fresh")))
        self.assertEqual([r.status for r in fresh], [200, 200, 429], fresh)
        self.assertRateHeaders(fresh[0], 2, 1)
        self.assert429(fresh[2], 2)
        self.assertEqual(up.stats()["requests"], 3 + 5 + 2 + 4 + 2)

    def test_different_tokens_separate_budgets(self):
        gw, _ = self.setup_gw(trusted="127.0.0.0/8", per_token="3/1m")
        # each request from its own address, so only the tokens' budgets bind
        a = [gw.request("GET", API, headers=dict(bearer("tok-a"), **{
            "X-Forwarded-For": "198.51.100.%d" % i})) for i in range(1, 5)]
        b = [gw.request("GET", API, headers=dict(bearer("tok-b"), **{
            "X-Forwarded-For": "198.51.100.%d" % i})) for i in range(11, 15)]
        self.assertEqual([r.status for r in a], [200] * 3 + [429], a)
        self.assertEqual([r.status for r in b], [200] * 3 + [429], b)
        self.assert429(a[3], 3)
        # one address: anonymous and token requests share its per_ip (4)
        x = {"X-Forwarded-For": "198.51.100.50"}
        rs = (self.statuses(gw, 2, headers=x) +
              self.statuses(gw, 3, headers=dict(bearer("tok-c"), **x)) +
              self.statuses(gw, 1, headers=x))
        self.assertEqual([r.status for r in rs], [200] * 4 + [429] * 2, rs)
        self.assertRateHeaders(rs[2], 4, 1)   # IP 1 left, tok-c 2 left: the IP speaks
        self.assert429(rs[4], 4)
        self.assert429(rs[5], 4)

    def test_non_bearer_authorization_is_anonymous(self):
        gw, _ = self.setup_gw(per_token="10/1m", per_ip="2/1m")
        rs = [gw.request("GET", API, headers={"Authorization": "Basic dXNlcjpwYXNz%d" % i})
              for i in range(3)]
        self.assertEqual([r.status for r in rs], [200, 200, 429], rs)
        self.assertRateHeaders(rs[0], 2, 1)

    def test_xff_from_untrusted_peer_ignored(self):
        # 127.0.0.1 is not in trusted_proxies: X-Forwarded-For must not be believed
        gw, _ = self.setup_gw(trusted="10.0.0.0/8", per_ip="3/1m")
        rs = [gw.request("GET", API, headers={"X-Forwarded-For": "203.0.113.%d" % (i + 1)})
              for i in range(6)]
        self.assertEqual([r.status for r in rs], [200] * 3 + [429] * 3, rs)

    def test_xff_ignored_with_no_trusted_proxies(self):
        gw, _ = self.setup_gw(per_ip="2/1m")
        rs = [gw.request("GET", API, headers={"X-Forwarded-For": "198.51.100.%d" % i})
              for i in range(4)]
        self.assertEqual([r.status for r in rs], [200, 200, 429, 429], rs)

    def test_xff_from_trusted_peer_believed(self):
        gw, _ = self.setup_gw(trusted="127.0.0.0/8", per_ip="3/1m")
        xa = {"X-Forwarded-For": "203.0.113.10"}
        xb = {"X-Forwarded-For": "203.0.113.20"}
        a = self.statuses(gw, 4, headers=xa)
        b = self.statuses(gw, 4, headers=xb)
        self.assertEqual([r.status for r in a], [200] * 3 + [429], a)
        self.assertEqual([r.status for r in b], [200] * 3 + [429], b)
        # the peer itself (no XFF) has its own budget too
        self.assertEqual(gw.request("GET", API).status, 200)

    def test_trusted_xff_rightmost_untrusted_address_counts(self):
        # A client behind our trusted proxy forges the left part of the chain:
        # the caller is the rightmost address not a trusted proxy, so the
        # forged part must not buy more budget.
        gw, _ = self.setup_gw(trusted="127.0.0.0/8", per_ip="3/1m")
        rs = [gw.request("GET", API, headers={
            "X-Forwarded-For": "192.0.2.%d, 203.0.113.77, 127.0.0.9" % i}) for i in range(5)]
        self.assertEqual([r.status for r in rs], [200] * 3 + [429] * 2, rs)
        r = gw.request("GET", API, headers={"X-Forwarded-For": "203.0.113.77"})
        self.assertEqual(r.status, 429, "the same client seen directly is the same caller")


class PolicyLocal(PolicyMixin, RateLimitCase):
    use_redis = False


class PolicyRedis(PolicyMixin, RateLimitCase):
    use_redis = True

    def test_ip_key_in_redis(self):
        gw, _ = self.setup_gw(trusted="127.0.0.0/8", per_ip="3/1m")
        self.assertEqual(gw.request("GET", API, headers={"X-Forwarded-For": "203.0.113.5"}).status,
                         200)
        keys = redis_scan(self._redis_for_test)
        self.assertIn("envelopd:{ip:203.0.113.5}:tasks:3/60000", keys)

    def redis(self, port=None):
        r = super().redis(port)
        self._redis_for_test = r
        return r


# ====================================================================== add up

class AddUpRedis(RateLimitCase):
    """Limits add up, decided in one EVALSHA: the per-IP limit always, the
    per-token one too when a token is sent; nothing is spent unless all pass."""

    def setup_gw(self, trusted=None, **limits):
        up = self.upstream()
        rd = self.redis()
        port = free_port()
        c = rl_conf(port, [up.port], redis=rd, on_error="deny", **limits)
        if trusted is not None:
            c.set("limits", "trusted_proxies", trusted)
        return self.start_gateway(c, port), up, rd

    def test_random_tokens_cannot_escape_per_ip(self):
        gw, up, _ = self.setup_gw(per_ip="3/1m", per_token="100/1m")
        rs = [gw.request("GET", API, headers=bearer(secrets.token_urlsafe(24)))
              for _ in range(10)]
        self.assertEqual([r.status for r in rs], [200] * 3 + [429] * 7, rs)
        for i, r in enumerate(rs[:3]):
            self.assertRateHeaders(r, 3, 2 - i)   # the IP's budget, not a token's 99
        for r in rs[3:]:
            self.assert429(r, 3)
            self.assertEqual(r.header("X-RateLimit-Limit"), "3", r)
        self.assertEqual(up.stats()["requests"], 3)

    def test_denied_request_spends_no_token_budget(self):
        # per_ip 2/1m, per_token 4/1m. From address A the token passes twice,
        # then A's limit refuses it three times: those refusals must leave the
        # token's 2 remaining slots (and its key in Redis) untouched, so from
        # two other addresses it passes exactly twice more.
        gw, up, rd = self.setup_gw(trusted="127.0.0.0/8", per_ip="2/1m", per_token="4/1m")
        h = bearer("tok-denied")

        def at(ip):
            return gw.request("GET", API, headers=dict(h, **{"X-Forwarded-For": ip}))
        rs = [at("203.0.113.1") for _ in range(2)]
        self.assertEqual([r.status for r in rs], [200, 200], rs)
        token_keys = [k for k in redis_scan(rd) if "{ip:" not in k]
        self.assertEqual(len(token_keys), 1, redis_scan(rd))
        before = rd.command("GET", token_keys[0])
        self.assertTrue(before, "the token's state is not in Redis")
        denied = [at("203.0.113.1") for _ in range(3)]
        for r in denied:
            self.assert429(r, 2)              # the address refused it
        self.assertEqual(rd.command("GET", token_keys[0]), before,
                         "a refused request moved the token's state")
        rs = [at("203.0.113.2"), at("203.0.113.3"), at("203.0.113.4")]
        self.assertEqual([r.status for r in rs], [200, 200, 429], rs)
        self.assert429(rs[2], 4)              # now the token's own limit
        self.assertEqual(up.stats()["requests"], 4)

    def test_ipv6_keyed_by_network(self):
        gw, _, rd = self.setup_gw(trusted="127.0.0.0/8", per_ip="2/1m")

        def at(ip):
            return gw.request("GET", API, headers={"X-Forwarded-For": ip})
        # three hosts of one /64 are one caller; the next /64 is another
        rs = [at("2001:db8:1:2::1"), at("2001:db8:1:2:ffff::2"), at("2001:DB8:1:2::3")]
        self.assertEqual([r.status for r in rs], [200, 200, 429], rs)
        self.assertEqual(at("2001:db8:1:3::1").status, 200)
        # an IPv4-mapped address is that IPv4 address
        rs = [at("192.0.2.9"), at("::ffff:192.0.2.9"), at("192.0.2.9")]
        self.assertEqual([r.status for r in rs], [200, 200, 429], rs)
        keys = redis_scan(rd)
        self.assertIn("envelopd:{ip:2001:db8:1:2::/64}:tasks:2/60000", keys)
        self.assertIn("envelopd:{ip:2001:db8:1:3::/64}:tasks:2/60000", keys)
        self.assertIn("envelopd:{ip:192.0.2.9}:tasks:2/60000", keys)
        for k in keys:
            self.assertRegex(k, KEY_RE)

    def test_ipv6_prefix_48(self):
        up = self.upstream()
        rd = self.redis()
        port = free_port()
        c = rl_conf(port, [up.port], redis=rd, per_ip="2/1m")
        c.set("limits", "trusted_proxies", "127.0.0.0/8")
        c.set("limits", "ipv6_prefix", 48)
        gw = self.start_gateway(c, port)
        rs = [gw.request("GET", API, headers={"X-Forwarded-For": ip})
              for ip in ("2001:db8:1:2::1", "2001:db8:1:ffff::1", "2001:db8:1:3::1",
                         "2001:db8:2::1")]
        self.assertEqual([r.status for r in rs], [200, 200, 429, 200], rs)
        keys = redis_scan(rd)
        self.assertIn("envelopd:{ip:2001:db8:1::/48}:tasks:2/60000", keys)
        self.assertIn("envelopd:{ip:2001:db8:2::/48}:tasks:2/60000", keys)


# ====================================================================== 4

class RedisOutage(RateLimitCase):
    """Test 4: redis-server SIGKILLed mid-run, then restarted on the same port."""

    TIMEOUT_S = REDIS_TIMEOUT_S
    MARGIN_S = 0.5

    def setup_gw(self, on_error, per_token="5/1m"):
        up = self.upstream()
        rd = self.redis()
        port = free_port()
        gw = self.start_gateway(rl_conf(port, [up.port], per_token=per_token, redis=rd,
                                        on_error=on_error, timeout=REDIS_TIMEOUT), port)
        # Redis is deciding: headers present, budget counting down
        rs = self.statuses(gw, 2, headers=bearer("tok-before"))
        self.assertEqual([int(r.header("X-RateLimit-Remaining")) for r in rs], [4, 3], rs)
        return gw, up, rd

    def kill_redis(self, gw, rd):
        rd.kill()   # SIGKILL by PID
        self.assertFalse(rd.alive())

    def restart_redis(self, gw, rd):
        port = rd.port
        self.redis(port)
        ev = gw.wait_log(lambda l: l.get("event") == "redis_back", 15)
        self.assertIsNotNone(ev, "no redis_back event:\n" + gw.stdout_text()[-2000:])
        self.assertEqual(ev.get("level"), "info", ev)

    def outage_requests(self, gw, n, headers):
        out = []
        for _ in range(n):
            r, dt = self.timed(gw, headers=headers)
            self.assertLess(dt, self.TIMEOUT_S + self.MARGIN_S, "request took %.3fs: %r" % (dt, r))
            out.append(r)
        return out

    def assertEnforcedAgain(self, gw, limit=5):
        """After redis_back, a fresh token gets exactly LIMIT, decided by Redis."""
        rs = self.statuses(gw, limit + 2, headers=bearer("tok-after"))
        self.assertEqual([r.status for r in rs], [200] * limit + [429] * 2, rs)
        self.assertRateHeaders(rs[0], limit, limit - 1)
        self.assert429(rs[-1], limit)

    def test_on_error_allow(self):
        gw, up, rd = self.setup_gw("allow")
        self.kill_redis(gw, rd)
        t0 = time.monotonic()
        rs = self.outage_requests(gw, 12, bearer("tok-outage"))
        span = time.monotonic() - t0
        self.assertEqual([r.status for r in rs], [200] * 12, rs)
        for r in rs:
            self.assertNoRateHeaders(r)
        lost = gw.wait_log(lambda l: l.get("event") == "redis_lost", 5)
        self.assertIsNotNone(lost, "no redis_lost event")
        self.assertEqual(lost.get("level"), "warn", lost)
        warn = gw.wait_log(lambda l: l.get("event") == "ratelimit_undecided", 5)
        self.assertIsNotNone(warn, "allowed undecided requests were not warned about")
        # at most one warning a second (12 quick requests: normally a single one)
        self.assertLessEqual(len(gw.events("ratelimit_undecided")), 1 + int(span),
                             gw.events("ratelimit_undecided"))
        self.restart_redis(gw, rd)
        self.assertEnforcedAgain(gw)
        self.assertEqual(len(gw.events("redis_lost")), 1)
        self.assertEqual(len(gw.events("redis_back")), 1)
        self.assertTrue(gw.alive())

    def test_on_error_deny(self):
        gw, up, rd = self.setup_gw("deny")
        self.kill_redis(gw, rd)
        before = up.stats()["requests"]
        rs = self.outage_requests(gw, 6, bearer("tok-outage"))
        for r in rs:
            self.assertEnvelope(r, 503, "SERVICE_UNAVAILABLE")
            self.assertNoRateHeaders(r)
        self.assertEqual(up.stats()["requests"], before, "denied requests reached the upstream")
        self.assertIsNotNone(gw.wait_log(lambda l: l.get("event") == "redis_lost", 5))
        self.restart_redis(gw, rd)
        self.assertEnforcedAgain(gw)

    def test_on_error_local(self):
        gw, up, rd = self.setup_gw("local")
        self.kill_redis(gw, rd)
        rs = self.outage_requests(gw, 8, bearer("tok-outage"))
        self.assertEqual([r.status for r in rs], [200] * 5 + [429] * 3, rs)
        self.assertEqual([int(r.header("X-RateLimit-Remaining")) for r in rs[:5]],
                         [4, 3, 2, 1, 0])
        self.assert429(rs[5], 5)
        self.assertIsNotNone(gw.wait_log(lambda l: l.get("event") == "redis_lost", 5))
        self.restart_redis(gw, rd)
        self.assertEnforcedAgain(gw)

    def test_killed_with_queries_pending(self):
        # timeout = 1s and Redis paused: queries are waiting on Redis when it
        # is SIGKILLed. They are answered by on_error (deny: 503) when the
        # connection drops, not left hanging, and the gateway survives.
        up = self.upstream()
        rd = self.redis()
        port = free_port()
        gw = self.start_gateway(rl_conf(port, [up.port], per_token="50/1m", redis=rd,
                                        on_error="deny", timeout="1s"), port)
        self.assertEqual(gw.request("GET", API, headers=bearer("tok-pend")).status, 200)
        self.assertEqual(rd.command("CLIENT", "PAUSE", "5000"), "OK")
        sent = threading.Barrier(7)
        results = []

        def one(i):
            c = gw.connection(timeout=5)
            try:
                c.putrequest("GET", API)
                c.putheader("Authorization", "Bearer tok-pend-%d" % i)
                c.endheaders()
                sent.wait(5)
                r = c.getresponse()
                r.read()
                results.append((r.status, time.monotonic()))
            finally:
                c.close()
        threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        sent.wait(5)
        t_kill = time.monotonic()
        rd.kill()
        for t in threads:
            t.join(5)
        self.assertEqual(len(results), 6, results)
        self.assertEqual([s for s, _ in results], [503] * 6, results)
        for _, t_answer in results:
            # pending until the kill (else this test proves nothing), then
            # answered within the 1 s timeout at the latest
            self.assertGreaterEqual(t_answer, t_kill, "answered before Redis died")
            self.assertLess(t_answer - t_kill, 1.0 + 0.5, "pending request left hanging")
        self.assertIsNotNone(gw.wait_log(lambda l: l.get("event") == "redis_lost", 5))
        self.assertAlive(gw)
        self.restart_redis(gw, rd)
        self.assertEnforcedAgain(gw, limit=50)

    def test_redis_flushed_script_reloaded(self):
        # SCRIPT FLUSH: the next EVALSHA gets NOSCRIPT; the gateway reloads
        # the script and the request is still decided by Redis.
        gw, up, rd = self.setup_gw("deny")
        self.assertEqual(rd.command("SCRIPT", "FLUSH"), "OK")
        r = gw.request("GET", API, headers=bearer("tok-before"))
        self.assertEqual(r.status, 200, r)
        self.assertRateHeaders(r, 5, 2)


# ====================================================================== 5

class RedisPaused(RateLimitCase):
    """Test 5: CLIENT PAUSE 2000 with timeout = 50ms: every request answered
    within timeout + 300 ms, following on_error."""

    BOUND_S = REDIS_TIMEOUT_S + 0.3 + slack(0.5)
    # Under valgrind each paused request takes REDIS_TIMEOUT_S = 1 s: a longer
    # run (test_local needs 6 requests in it) inside a longer pause.
    RUN_S = 6.5 if SLOW else 1.5
    PAUSE_MS = 8000 if SLOW else 2000

    def paused_run(self, on_error, per_token="5/1m"):
        up = self.upstream()
        rd = self.redis()
        port = free_port()
        gw = self.start_gateway(rl_conf(port, [up.port], per_token=per_token, redis=rd,
                                        on_error=on_error, timeout=REDIS_TIMEOUT), port)
        r = gw.request("GET", API, headers=bearer("tok-warm"))
        self.assertRateHeaders(r, 5, 4)
        self.assertEqual(rd.command("CLIENT", "PAUSE", str(self.PAUSE_MS)), "OK")
        t0 = time.monotonic()
        rs = []
        while time.monotonic() - t0 < self.RUN_S:
            r, dt = self.timed(gw, headers=bearer("tok-paused"))
            self.assertLess(dt, self.BOUND_S, "request waited %.3fs during CLIENT PAUSE (%s): %r"
                            % (dt, on_error, r))
            rs.append(r)
        self.assertGreaterEqual(len(rs), 4)
        return gw, up, rd, rs

    def wait_redis_deciding(self, gw, token):
        """After the pause, Redis decides again within a bound. Each probe uses
        a token of its own (a probe sent while Redis is still paused runs there
        later); then TOKEN, never used before, must get a fresh budget."""
        n = [0]

        def deciding():
            n[0] += 1
            r = gw.request("GET", API, headers=bearer("probe-%d" % n[0]))
            return r.status == 200 and r.header("X-RateLimit-Remaining") == "4"
        self.assertTrue(wait_until(deciding, 10 + slack(10), 0.1),
                        "Redis never decided again after CLIENT PAUSE")
        return gw.request("GET", API, headers=bearer(token))

    def test_allow(self):
        gw, up, rd, rs = self.paused_run("allow")
        for r in rs:
            self.assertEqual(r.status, 200, r)
            self.assertNoRateHeaders(r)
        self.assertIsNotNone(gw.wait_log(lambda l: l.get("event") == "ratelimit_undecided", 5))
        # late replies of the abandoned queries reach no request, crash nothing
        r = self.wait_redis_deciding(gw, "tok-after")
        self.assertRateHeaders(r, 5, 4)
        self.assertAlive(gw)

    def test_deny(self):
        gw, up, rd, rs = self.paused_run("deny")
        for r in rs:
            self.assertEnvelope(r, 503, "SERVICE_UNAVAILABLE")
        r = self.wait_redis_deciding(gw, "tok-after")
        self.assertRateHeaders(r, 5, 4)

    def test_deny_refused_requests_not_charged(self):
        # "A denied request changes nothing": requests answered 503 because
        # Redis was too slow must not spend the caller's budget once Redis
        # runs the abandoned queries. At most the one query in flight when the
        # stall began may still count.
        up = self.upstream()
        rd = self.redis()
        port = free_port()
        gw = self.start_gateway(rl_conf(port, [up.port], per_token="5/1m", redis=rd,
                                        on_error="deny", timeout=REDIS_TIMEOUT), port)
        # long enough for 4 requests to time out on it
        self.assertEqual(rd.command("CLIENT", "PAUSE", str(self.PAUSE_MS // 2)), "OK")
        rs = self.statuses(gw, 4, headers=bearer("tok-refused"))
        self.assertEqual([r.status for r in rs], [503] * 4, rs)
        self.wait_redis_deciding(gw, "tok-fresh")
        r = gw.request("GET", API, headers=bearer("tok-refused"))
        self.assertEqual(r.status, 200, r)
        rem, _ = self.assertRateHeaders(r, 5)
        self.assertGreaterEqual(rem, 3, "requests refused with 503 were charged: "
                                "Remaining %d after one served request" % rem)

    def test_local(self):
        gw, up, rd, rs = self.paused_run("local")
        self.assertEqual([r.status for r in rs[:6]], [200] * 5 + [429], rs)
        self.assertTrue(all(r.status == 429 for r in rs[5:]), [r.status for r in rs])
        self.assert429(rs[5], 5)
        self.wait_redis_deciding(gw, "tok-after")


# ====================================================================== 6

class NoTokenLeak(RateLimitCase):
    """Test 6: the token is never in a Redis key, a Redis command, or a log line."""

    def run_traffic(self, gw):
        h = bearer(LEAK_TOKEN)
        rs = self.statuses(gw, 5, headers=h)     # 3 pass, 2 limited
        self.assertEqual([r.status for r in rs], [200] * 3 + [429] * 2, rs)
        # other headers carrying it (e.g. a custom token header name) and an error path
        gw.request("GET", API, headers=dict(h, **scripted(status=500, body="boom")))
        gw.request("GET", "/no-route", headers=h)
        gw.request("GET", API, headers={"Authorization": "Bearer " + LEAK_TOKEN + "\x01"})
        return rs

    def test_redis_keys_commands_and_logs(self):
        up = self.upstream()
        rd = self.redis()
        port = free_port()
        conf = rl_conf(port, [up.port], per_token="3/1m", redis=rd)
        conf.set("server", "log_level", "debug")
        gw = self.start_gateway(conf, port)
        mon = Monitor(rd.port)
        self.addCleanup(mon.close)
        self.run_traffic(gw)
        # wait until the monitor saw the gateway's decisions
        self.assertTrue(wait_until(lambda: mon.text_bytes().lower().count(b'"evalsha"') >= 5, 5),
                        mon.text_bytes()[-2000:])
        keys = redis_scan(rd)
        self.assertTrue(keys, "no key in Redis")
        for k in keys:
            self.assertNotIn(LEAK_TOKEN, k)
            self.assertNotIn(LEAK_TOKEN.lower(), k.lower())
            self.assertRegex(k, KEY_RE)
            v = rd.command("GET", k)
            self.assertNotIn(LEAK_TOKEN.encode(), v or b"")
        self.assertNotIn(LEAK_TOKEN.encode(), mon.text_bytes(), "token sent to Redis in clear")
        self.assertNoTokenInLogs(gw, LEAK_TOKEN)
        self.assertTrue(gw.access_logs(), "no access log at all")

    def test_local_mode_logs(self):
        up = self.upstream()
        port = free_port()
        conf = rl_conf(port, [up.port], per_token="3/1m")
        conf.set("server", "log_level", "debug")
        gw = self.start_gateway(conf, port, redis=False)
        rs = self.run_traffic(gw)
        self.assertIsNotNone(gw.wait_access(rs[-1].header("X-Correlation-Id")))
        self.assertNoTokenInLogs(gw, LEAK_TOKEN)

    def test_custom_token_header(self):
        up = self.upstream()
        rd = self.redis()
        port = free_port()
        conf = rl_conf(port, [up.port], per_token="2/1m", per_ip="100/1m", redis=rd)
        conf.set("limits", "token_header", "X-Api-Key")
        gw = self.start_gateway(conf, port)
        rs = self.statuses(gw, 3, headers={"X-Api-Key": LEAK_TOKEN})
        self.assertEqual([r.status for r in rs], [200, 200, 429], rs)
        self.assertRateHeaders(rs[0], 2, 1)
        for k in redis_scan(rd):
            self.assertNotIn(LEAK_TOKEN, k)
        self.assertNoTokenInLogs(gw, LEAK_TOKEN)


# ====================================================================== 7

class UpstreamOwn429(RateLimitCase):
    """Test 7: an upstream's 429 is normalized and its Retry-After kept."""

    def test_upstream_429_normalized_retry_after_kept(self):
        up = self.upstream()
        port = free_port()
        gw = self.start_gateway(rl_conf(port, [up.port], per_token="50/1m"), port, redis=False)
        r = gw.request("GET", API, headers=dict(bearer("tok-up"), **scripted(
            status=429, headers=[["Retry-After", "7"]],
            json={"message": "Slow down, please", "internal": "quota-bucket-17"})))
        body = self.assertEnvelope(r, 429, "RATE_LIMITED")
        self.assertEqual(r.header_all("Retry-After"), ["7"], r)
        details = body["error"]["details"]
        self.assertEqual(details.get("retry_after"), 7, body)
        self.assertEqual(body["error"]["message"], "Slow down, please", body)
        self.assertNotIn("quota-bucket-17", r.body.decode(), "unrecognised upstream field leaked")
        # the gateway's own limit still reported, once
        self.assertRateHeaders(r, 50, 49)

    def test_upstream_429_own_code_kept(self):
        up = self.upstream()
        port = free_port()
        gw = self.start_gateway(rl_conf(port, [up.port]), port, redis=False)
        r = gw.request("GET", API, headers=scripted(
            status=429, headers=[["Retry-After", "7"]],
            json={"error": {"code": "QUOTA_EXCEEDED", "message": "Quota exceeded"}}))
        body = self.assertEnvelope(r, 429, "QUOTA_EXCEEDED")
        self.assertEqual(r.header_all("Retry-After"), ["7"], r)
        self.assertEqual(body["error"]["message"], "Quota exceeded")


# ====================================================================== 8

class ReloadLimits(RateLimitCase):
    """Test 8: SIGHUP with a changed per_token applies to new requests."""

    def reload(self, gw, conf):
        n = len(gw.events("reload"))
        gw.write_conf(conf)
        os.kill(gw.pid, signal.SIGHUP)
        ok = wait_until(lambda: len(gw.events("reload")) > n or gw.events("reload_failed"), 10)
        self.assertTrue(ok, "no reload event:\n" + gw.stdout_text()[-2000:])
        self.assertFalse(gw.events("reload_failed"), gw.events("reload_failed"))

    def run_reload(self, use_redis):
        up = self.upstream()
        rd = self.redis() if use_redis else None
        port = free_port()
        conf = rl_conf(port, [up.port], per_token="3/1m", redis=rd)
        gw = self.start_gateway(conf, port, redis=use_redis)
        h = bearer("tok-reload")
        rs = self.statuses(gw, 4, headers=h)
        self.assertEqual([r.status for r in rs], [200] * 3 + [429], rs)
        # raise the limit: fresh budget with the new rate
        self.reload(gw, rl_conf(port, [up.port], per_token="6/1m", redis=rd))
        rs = self.statuses(gw, 8, headers=h)
        self.assertEqual([r.status for r in rs], [200] * 6 + [429] * 2, rs)
        self.assertRateHeaders(rs[0], 6, 5)
        self.assert429(rs[6], 6)
        # lower it, on a route of its own this time: the route override wins
        self.reload(gw, self._route_conf(port, up, rd))
        rs = self.statuses(gw, 3, headers=h)
        self.assertEqual([r.status for r in rs], [200] * 2 + [429], rs)
        self.assertRateHeaders(rs[0], 2, 1)
        self.assertAlive(gw)

    @staticmethod
    def _route_conf(port, up, rd):
        c = rl_conf(port, [up.port], per_token="6/1m", redis=rd)
        c.set("route tasks", "per_token", "2/1m")
        return c

    def test_reload_local(self):
        self.run_reload(False)

    def test_reload_redis(self):
        self.run_reload(True)

    def test_bad_reload_keeps_running_limits(self):
        up = self.upstream()
        port = free_port()
        conf = rl_conf(port, [up.port], per_token="3/1m")
        gw = self.start_gateway(conf, port, redis=False)
        bad = rl_conf(port, [up.port], per_token="lots/1m")
        n = len(gw.events("reload_failed"))
        gw.write_conf(bad)
        os.kill(gw.pid, signal.SIGHUP)
        self.assertTrue(wait_until(lambda: len(gw.events("reload_failed")) > n, 10))
        rs = self.statuses(gw, 4, headers=bearer("tok-bad"))
        self.assertEqual([r.status for r in rs], [200] * 3 + [429], rs)


# ====================================================================== events

class RedisEvents(RateLimitCase):
    """docs/ratelimit.md: redis_connected (info, once per address)."""

    def test_redis_connected_logged_at_info_once(self):
        up = self.upstream()
        rd = self.redis()
        port = free_port()
        gw = self.start_gateway(rl_conf(port, [up.port], redis=rd, workers=2), port)
        self.statuses(gw, 2, headers=bearer("t"))
        evs = gw.events("redis_connected")
        self.assertEqual(len(evs), 1, evs)
        self.assertEqual(evs[0].get("level"), "info", evs[0])


if __name__ == "__main__":
    unittest.main()
