"""Attacks on the gateway's own decisions (issue #15): each test stands for one
way a client or upstream tried to get past routing, limits, header handling,
memory or descriptor limits, or to learn what runs behind the gateway.

Most tests share one conf: two routes on the same fixture upstream,
  [route login] prefix = /api/login, methods = POST, require_token = yes
  [route all]   prefix = /
so a request that reaches route `all` instead of `login` is visible (a GET
there is a 200 echo instead of a 405). Requests are sent on raw sockets
wherever http.client would tidy what is sent.

Run: cd tests/integration && ENVELOPD=/path/to/envelopd python3 -m unittest -v test_attacks
"""

import os
import re
import resource
import select
import socket
import threading
import time
import unittest

from harness import (TOKEN, Gateway, GatewayTestCase, Redis, base_conf, binary_is_sanitized,
                     free_port, read_one_response, read_until_close, request_bytes, rss_kib,
                     scaled, script_header, scripted, skip_if_slow, slack)

LOGIN = "/api/login"
API = "/api/v1/tasks"       # base_conf's route, for the tests that use it
BEARER = "Bearer " + TOKEN

# Each spells /api/login (case, escapes, empty and dot segments, ;params,
# trailing slash, query): every one must reach route `login`.
LOGIN_SPELLINGS = sorted({
    "/api/login"[:i] + (fmt % ord(ch)) + "/api/login"[i + 1:]
    for i, ch in enumerate("/api/login") if ch.isalpha()
    for fmt in ("%%%02X", "%%%02x")
}) + [
    "/%61%70%69/%6c%6f%67%69%6e", "/%41PI/login", "/%41pi/login", "/Api/%4Cogin",
    "//api/login", "//api//login", "/api//login", "///api///login", "/api/login//",
    "/./api/login", "/api/./login", "/api/%2e/login", "/api/%2E/login", "/%2e/api/login",
    "/x/../api/login", "/api/x/../login", "/api/x/%2e%2e/login", "/api/x/%2E%2E/login",
    "/api/x/.%2e/login", "/api/x/%2e./login", "/x/y/../../api/login", "/api/login/x/..",
    "/API/LOGIN", "/Api/Login", "/aPi/lOgIn", "/API/%6cOGIN",
    "/api;x=1/login", "/api/login;jsessionid=1", "/api;/login;", "/API;a=b/Login;c=d",
    "/api/login/", "/api/login?x", "/api/login?x=/../y", "/api/login/?",
    "/api/;x/login", "/;x/api/login", "/api/x;/../login", "/api/login/%2e",
]

# Paths that cannot be normalized unambiguously: 400, never routed.
BAD_PATHS = [
    "/api%2flogin", "/api%2Flogin", "/api%5clogin", "/api%5Clogin", "/api\\login",
    "/api/login%2f", "/api/login%2F..%2F",
    "/api/login%00", "/api/login%0a", "/api/login%0A", "/api/login%0d", "/api/login%09",
    "/api/login%1f", "/api/login%1F", "/api/login%7f", "/api/login%7F", "/api/lo%00gin",
    "/api/login%zz", "/api/%zzlogin", "/api/login%4", "/api/login%", "/api/login%g1",
    "/api/login%%36%63", "/%2",
    "/x/..;/api/login", "/api/.;/login", "/api/..;x=1/login", "/api/.;x/login",
    "/api/x/..;/login", "/api/%2e%2e;/login", "/api/%2e;/login", "/api/login/..;",
    "/..", "/../api/login", "/api/../../login", "/%2e%2e/api/login", "/api/login/../../..",
    "/./..", "/%2E%2E",
]

# Raw bytes in the path that are never valid there: 400 too.
BAD_RAW_PATHS = ["/api/lo\x01gin", "/api/lo\x7fgin", "/api/login\x1b"]

# Dots and spaces only: ".." or "." to an upstream that trims a segment first.
BAD_PATHS += ["/x/..%20/api/login", "/x/..%20%20/api/login", "/x/.%2e%20/api/login",
              "/.%20/api/login", "/x/%20../api/login"]

# Bytes no UTF-8 has: old decoders read %c0%af as '/' and %c0%ae as '.'.
BAD_UTF8_PATHS = ["/api%c0%aflogin", "/api%C0%AFlogin", "/x/%c0%ae%c0%ae/api/login",
                  "/api/%c1%9clogin", "/api/login%f8%80%80%80%af", "/api/login%ff"]

# Headers a client must not name in Connection (the default conf).
PROTECTED = ["Host", "Content-Length", "Transfer-Encoding", "Authorization",
             "X-Correlation-Id", "X-Request-Id", "X-Forwarded-For", "X-Forwarded-Proto",
             "Forwarded"]

# Upstream headers that tell an attacker what runs behind the gateway.
LEAKY = [("Server", "Apache/2.4.1 (Unix) OpenSSL/1.0.1e"), ("X-Powered-By", "PHP/5.3.3"),
         ("x-aspnet-version", "4.0.30319"), ("X-AspNetMvc-Version", "5.2"),
         ("X-Runtime", "0.123456"), ("X-Debug-Token", "dbg-token-77"),
         ("X-Debug-Token-Link", "http://10.0.0.7/_profiler/dbg-token-77"),
         ("x-debug-info", "db=10.0.0.8"), ("SERVER", "gunicorn/19.9.0")]
HIDDEN = [("X-Internal-Trace", "trace-991"), ("x-internal-host", "db7.internal"),
          ("X-Team", "payments-3")]


def two_route_conf(port, up_port, catch_all=True):
    """base_conf without its route: [route login] (POST, token) and [route all] (/)."""
    c = base_conf(port, [up_port])
    c.remove("route tasks")
    for k, v in (("prefix", LOGIN), ("upstream", "tasks"), ("methods", "POST"),
                 ("require_token", "yes")):
        c.set("route login", k, v)
    if catch_all:
        c.set("route all", "prefix", "/")
        c.set("route all", "upstream", "tasks")
    return c


def header_values(headers, name):
    name = name.lower()
    return [v for k, v in headers if k.lower() == name]


def proc_cpu_seconds(pid):
    """utime + stime of process PID (all its threads), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class AttackCase(GatewayTestCase):
    """Helpers shared by every attack."""

    def start(self, catch_all=True, up_default=None, server=None, section=None, limits=None):
        """An upstream and a gateway on two_route_conf; SERVER / LIMITS: extra
        [server] / [limits] keys; SECTION: {name: {key: value}} for others."""
        up = self.upstream(up_default)
        port = free_port()
        c = two_route_conf(port, up.port, catch_all)
        for k, v in (server or {}).items():
            c.set("server", k, v)
        for k, v in (limits or {}).items():
            c.set("limits", k, v)
        for name, items in (section or {}).items():
            for k, v in items.items():
                c.set(name, k, v)
        return self.gateway(c, port), up

    def one(self, gw, method, target, headers=(), body=b"", host="localhost"):
        """One raw request on a new connection; its response (complete), returned."""
        hdrs = list(headers)
        if method in ("POST", "PUT", "PATCH"):
            hdrs.append(("Content-Length", str(len(body))))
        s = gw.sock(timeout=scaled(5))
        try:
            s.sendall(request_bytes(method, target, hdrs, body, host=host))
            r, data, closed = read_one_response(s, scaled(5))
        finally:
            s.close()
        self.assertTrue(r is not None and r.complete, "%s %r: no complete response: %r"
                        % (method, target, data[:400]))
        return r

    def assertServing(self, gw, path="/still-serving"):
        self.assertTrue(gw.alive(), "envelopd exited; stderr:\n" + gw.stderr_text()[-2000:])
        r = gw.request("GET", path)
        self.assertEqual(r.status, 200, "gateway no longer answers normally: %r" % r)

    def assertNothingForwarded(self, up, settle=0.2, since=0):
        """The upstream got no request beyond the first SINCE."""
        time.sleep(settle)  # a forwarded request would reach the upstream within this
        st = up.stats()
        self.assertEqual(st["requests"], since, "reached the upstream: %r" % (st["log"][since:],))

    def assert405Login(self, r, what):
        self.assertEqual(r.status, 405, "%s went past route login: %r" % (what, r))
        allow = [m.strip().upper() for m in (r.header("Allow") or "").split(",") if m.strip()]
        self.assertEqual(allow, ["POST"], r)


# ====================================================================== 1

class PathNormalization(AttackCase):
    """Attack 1: reach /api/login through route `all` (any method, no token)."""

    def test_spellings_of_login_route_to_login(self):
        """Attack 1: escapes, case, // . .. ;params spell /api/login past its route."""
        gw, up = self.start()
        for target in LOGIN_SPELLINGS:
            with self.subTest(target=target):
                self.assert405Login(self.one(gw, "GET", target), "GET " + target)
        self.assertNothingForwarded(up)

    def test_spellings_without_token_get_401(self):
        """Attack 1: POST to a respelled /api/login without a token."""
        gw, up = self.start()
        for target in ("/api/%6cogin", "/api/%6Cogin", "/%41PI/login", "//api//login",
                       "/x/../api/login", "/api/x/%2e%2e/login", "/API/LOGIN",
                       "/api;x=1/login", "/api/login;jsessionid=1", "/api/login/"):
            with self.subTest(target=target):
                r = self.one(gw, "POST", target)
                self.assertEnvelope(r, 401, "UNAUTHORIZED")
        self.assertNothingForwarded(up)

    def test_deep_dot_segments_and_fragments(self):
        """Attack 1: long chains of . and .. segments, and a #fragment, around /api/login."""
        gw, up = self.start()
        for target in ("/api/" + "./" * 1000 + "login",
                       "/" + "x/" * 500 + "../" * 500 + "api/login",
                       "/" + "x/%2e%2e/" * 300 + "api/login",
                       "/api/" + "x/%2E%2E/" * 300 + "login"):
            with self.subTest(target=target[:60]):
                self.assert405Login(self.one(gw, "GET", target), "GET " + target[:60])
        r = self.one(gw, "GET", "/" + "x/" * 10 + "../" * 11 + "api/login")
        self.assertEnvelope(r, 400, "BAD_REQUEST")  # one .. too many: above the root
        for target in ("/api/%6cogin#frag", "/api/login#/../x", "/api/login#", "//API/login#"):
            with self.subTest(target=target):
                r = self.one(gw, "GET", target)
                self.assertIn(r.status, (400, 405), "GET %s reached route all: %r" % (target, r))
        self.assertNothingForwarded(up)

    def test_absolute_form_is_normalized(self):
        """Attack 1: the same respellings in an absolute-form request target."""
        gw, up = self.start()
        for target in ("http://localhost/api/%6cogin", "http://localhost//API//login",
                       "http://localhost/x/../api/login;a=b", "HTTP://LOCALHOST/api/%6Cogin"):
            with self.subTest(target=target):
                self.assert405Login(self.one(gw, "GET", target), "GET " + target)
        r = self.one(gw, "POST", "http://localhost/api/%6cogin")
        self.assertEnvelope(r, 401, "UNAUTHORIZED")
        r = self.one(gw, "GET", "http://localhost/api%2flogin")
        self.assertEnvelope(r, 400, "BAD_REQUEST")
        self.assertNothingForwarded(up)

    def test_ambiguous_paths_refused_400(self):
        """Attack 1: encoded slashes and backslashes, controls, bad escapes, ..; and
        climbing above the root: refused, never routed anywhere."""
        gw, up = self.start()
        for target in BAD_PATHS + BAD_RAW_PATHS + BAD_UTF8_PATHS:
            for method in ("GET", "POST"):
                with self.subTest(target=target, method=method):
                    r = self.one(gw, method, target, [("Authorization", BEARER)])
                    self.assertEnvelope(r, 400, "BAD_REQUEST")
        self.assertNothingForwarded(up)
        self.assertServing(gw)

    def test_upstream_gets_normalized_path(self):
        """Attack 1: the upstream must be sent the path the gateway routed on (a
        second spelling would let it decide differently); the query is untouched."""
        gw, up = self.start()
        cases = [
            ("GET", "/%61ll//x/./y%7e?q=%2F", "/all/x/y~?q=%2F"),
            ("GET", "/all/%c3%a9/%7bx%7D/%2d%5f%2E%30", "/all/%C3%A9/%7Bx%7D/-_.0"),
            ("GET", "/x/../all/%2e/a/b/..?%61=%2e%2e", "/all/a/?%61=%2e%2e"),
            ("GET", "/all/a/b/%2E%2E/c/.", "/all/a/c/"),
            ("POST", "/api/%6cogin", "/api/login"),
            ("POST", "//API;v=1//Login;jsessionid=1", "/API;v=1/Login;jsessionid=1"),
        ]
        for method, target, want in cases:
            with self.subTest(target=target):
                r = self.one(gw, method, target, [("Authorization", BEARER)])
                self.assertEqual(r.status, 200, r)
                self.assertEqual(up.stats()["last"]["target"], want)

    def test_merge_slashes_no_forwards_slashes_as_sent(self):
        """Attack 1: with merge_slashes = no, // still cannot dodge a route."""
        gw, up = self.start(server={"merge_slashes": "no"})
        r = self.one(gw, "GET", "/%61ll//x/./y%7e?q=%2F")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(up.stats()["last"]["target"], "/all//x/y~?q=%2F")
        for target in ("//api/login", "/api//login", "//API//%6cogin"):
            with self.subTest(target=target):
                self.assert405Login(self.one(gw, "GET", target), "GET " + target)
        r = self.one(gw, "POST", "//api//login", [("Authorization", BEARER)])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(up.stats()["last"]["target"], "//api//login")

    def test_dot_segment_after_empty_segment_refused(self):
        """Review F1: with merge_slashes = no, /api//../login was /login to routing
        (route all) and /api/login to the upstream: refused in every mode."""
        for merge in ("no", "yes"):
            gw, up = self.start(server={"merge_slashes": merge})
            for target in ("/api//../login", "/api//%2e%2e/login", "/api/x//../../login",
                           "/api//./../login"):
                for method in ("GET", "DELETE"):
                    with self.subTest(merge=merge, target=target, method=method):
                        self.assertEnvelope(self.one(gw, method, target), 400, "BAD_REQUEST")
            self.assertNothingForwarded(up)
            gw.stop()

    def test_trailing_dots_and_spaces_route_to_login(self):
        """Review F4: IIS and Spring's trimTokens serve /api/login. and /api/login%20
        as /api/login, so they route as it; the upstream gets them as sent."""
        gw, up = self.start()
        for target in ("/api/login.", "/api/login%20", "/api/login..", "/api/login.%20",
                       "/api./login", "/API%20/LOGIN.", "/api/login./", "/api/login;x."):
            with self.subTest(target=target):
                self.assert405Login(self.one(gw, "GET", target), "GET " + target)
        self.assertNothingForwarded(up)
        r = self.one(gw, "POST", "/api/login.", [("Authorization", BEARER)])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(up.stats()["last"]["target"], "/api/login.")

    def test_routes_ignore_case_no(self):
        """Attack 1: with routes_ignore_case = no, case matters but escapes do not."""
        gw, up = self.start(server={"routes_ignore_case": "no"})
        for target in ("/API/login", "/Api/Login"):
            with self.subTest(target=target):
                r = self.one(gw, "GET", target)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(up.stats()["last"]["target"], target)
        for target in ("/api/login", "/api/%6Cogin", "//api/./login"):
            with self.subTest(target=target):
                self.assert405Login(self.one(gw, "GET", target), "GET " + target)


# ====================================================================== 2

class TokenEscapeMixin:
    """Attack 2: an invented token must not buy a fresh budget past per_ip."""

    use_redis = False

    def setup_rl(self, per_ip="3/1m", token_header=None, trusted=None, per_token="100000/1m",
                 extra=None):
        up = self.upstream()
        port = free_port()
        c = base_conf(port, [up.port])
        c.set("limits", "per_ip", per_ip)
        c.set("limits", "per_token", per_token)
        for k, v in (extra or {}).items():
            c.set("limits", k, v)
        c.set("limits", "hash_secret", "attack-suite-hash-secret-0123456789")
        if token_header:
            c.set("limits", "token_header", token_header)
        if trusted:
            c.set("limits", "trusted_proxies", trusted)
        if self.use_redis:
            rd = Redis()
            self.addCleanup(rd.kill)
            c.set("redis", "address", rd.addr)
            c.set("redis", "timeout", "1s")
            c.set("redis", "on_error", "deny")
        gw = self.gateway(c, port)
        if self.use_redis:
            ev = gw.wait_log(lambda l: l.get("event") in ("redis_connected", "redis_back"), 10)
            self.assertIsNotNone(ev, "envelopd never connected to Redis:\n" +
                                 gw.stdout_text()[-2000:])
        return gw, up

    def assertOnlyIpBudget(self, rs, up, limit=3):
        self.assertEqual([r.status for r in rs], [200] * limit + [429] * (len(rs) - limit), rs)
        for r in rs[limit:]:
            self.assertEqual(r.header("X-RateLimit-Limit"), str(limit), r)
            ra = r.header("Retry-After")
            self.assertIsNotNone(ra, r)
            self.assertRegex(ra, r"^[1-9][0-9]*$", r)
        self.assertEqual(up.stats()["requests"], limit)

    def test_random_bearer_tokens_do_not_escape_per_ip(self):
        """Attack 2: a new random Bearer token on every request."""
        gw, up = self.setup_rl()
        rs = [gw.request("GET", API, headers={"Authorization": "Bearer " + os.urandom(12).hex()})
              for _ in range(10)]
        self.assertOnlyIpBudget(rs, up)

    def test_random_tokens_in_custom_token_header(self):
        """Attack 2: random tokens in a custom token_header (X-Api-Key)."""
        gw, up = self.setup_rl(token_header="X-Api-Key")
        rs = [gw.request("GET", API, headers={"X-Api-Key": os.urandom(12).hex()})
              for _ in range(10)]
        self.assertOnlyIpBudget(rs, up)

    def test_anonymous_and_token_requests_share_ip_budget(self):
        """Attack 2: spend the IP's budget anonymously, then go on with invented tokens."""
        gw, up = self.setup_rl()
        rs = [gw.request("GET", API) for _ in range(2)]
        rs += [gw.request("GET", API, headers={"Authorization": "Bearer " + os.urandom(12).hex()})
               for _ in range(4)]
        rs.append(gw.request("GET", API))
        self.assertOnlyIpBudget(rs, up)

    def test_refused_request_consumes_nothing(self):
        """Attack 2: a token over its own limit must not drain its IP's budget too."""
        gw, up = self.setup_rl(per_token="1/1m")
        tok = {"Authorization": "Bearer " + os.urandom(12).hex()}
        rs = [gw.request("GET", API, headers=tok) for _ in range(4)]
        self.assertEqual([r.status for r in rs], [200, 429, 429, 429], rs)
        self.assertEqual(rs[1].header("X-RateLimit-Limit"), "1", rs[1])
        anon = [gw.request("GET", API) for _ in range(3)]
        self.assertEqual([r.status for r in anon], [200, 200, 429], anon)
        self.assertEqual(anon[2].header("X-RateLimit-Limit"), "3", anon[2])

    def test_ipv6_addresses_of_one_64_share_a_budget(self):
        """Attack 2: hopping between addresses of one IPv6 /64."""
        gw, up = self.setup_rl(trusted="127.0.0.1/32")

        def get(addr):
            return gw.request("GET", API, headers={"X-Forwarded-For": addr})
        rs = [get("2001:db8::1"), get("2001:db8::1"), get("2001:db8::2"),
              get("2001:db8::2"), get("2001:db8::ffff:1")]
        self.assertEqual([r.status for r in rs], [200, 200, 200, 429, 429], rs)
        self.assertEqual(rs[3].header("X-RateLimit-Limit"), "3", rs[3])
        other = get("2001:db8:0:1::1")
        self.assertEqual(other.status, 200, "another /64 has its own budget: %r" % other)


class TokenEscapeLocal(TokenEscapeMixin, AttackCase):
    use_redis = False

    def test_ipv6_prefix_128_keys_each_address(self):
        """Attack 2: [limits] ipv6_prefix = 128 (the /64 default is a setting)."""
        gw, up = self.setup_rl(per_ip="2/1m", trusted="127.0.0.1/32",
                               extra={"ipv6_prefix": "128"})

        def get(addr):
            return gw.request("GET", API, headers={"X-Forwarded-For": addr}).status
        self.assertEqual([get("2001:db8::1") for _ in range(3)], [200, 200, 429])
        self.assertEqual([get("2001:db8::2") for _ in range(3)], [200, 200, 429])


class TokenEscapeRedis(TokenEscapeMixin, AttackCase):
    use_redis = True


# ====================================================================== 3

class ConnectionHeader(AttackCase):
    """Attack 3: have the gateway see a header that the upstream will not (or
    the other way round)."""

    def refuse(self, gw, up, headers, what, corr_header="X-Correlation-Id"):
        n0 = up.stats()["requests"]
        r = self.one(gw, "GET", "/all/x", headers)
        self.assertEqual(r.status, 400, "%s: %r" % (what, r))
        self.assertEnvelope(r, 400, "BAD_REQUEST", corr_header)
        self.assertNothingForwarded(up, settle=0, since=n0)

    def test_connection_naming_protected_headers_400(self):
        """Attack 3: Connection: <a header the gateway decides on>, any case and position."""
        gw, up = self.start()
        for name in PROTECTED:
            for value in ([name], [name.lower()], [name.upper()], ["close, " + name.lower()],
                          [name + " , keep-alive"], ["keep-alive,x-hop," + name],
                          ["keep-alive", name], [name, "close"]):
                with self.subTest(connection=value):
                    hdrs = [("Connection", v) for v in value]
                    if name == "Authorization":
                        hdrs.append(("Authorization", "Bearer " + os.urandom(8).hex()))
                    self.refuse(gw, up, hdrs, "Connection: %s" % " / ".join(value))
        time.sleep(0.2)
        self.assertNothingForwarded(up)
        # what Connection is for still works
        for value in ("keep-alive", "close", "TE", "keep-alive, X-Hop-Custom"):
            with self.subTest(benign=value):
                hdrs = [("Connection", value)]
                if value == "TE":
                    hdrs.append(("TE", "trailers"))
                r = self.one(gw, "GET", "/all/ok", hdrs)
                self.assertEqual(r.status, 200, r)
        s = gw.sock()
        self.addCleanup(s.close)
        key = "dGhlIHNhbXBsZSBub25jZQ=="
        s.sendall(request_bytes("GET", "/all/ws", [
            ("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Key", key),
            ("Sec-WebSocket-Version", "13"),
            ("X-Test-Script", script_header(action="upgrade", tunnel="ws"))]))
        head = b""
        deadline = time.monotonic() + scaled(5)
        while b"\r\n\r\n" not in head and time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = s.recv(4096)
            if not chunk:
                break
            head += chunk
        self.assertTrue(head.startswith(b"HTTP/1.1 101 "), "WebSocket upgrade: %r" % head[:300])

    def test_h2c_and_other_upgrades_are_not_tunnelled(self):
        """Review F5: after a 101 nothing on the connection is policed, so only
        WebSocket is tunnelled; an h2c upgrade is served as an ordinary request."""
        gw, up = self.start()
        for proto in ("h2c", "HTTP/2.0", "websocket, h2c", "tls/1.3"):
            with self.subTest(upgrade=proto):
                r = self.one(gw, "GET", "/all/x", [("Connection", "Upgrade, HTTP2-Settings"),
                                                   ("Upgrade", proto),
                                                   ("HTTP2-Settings", "AAMAAABkAAQAoAAA")])
                self.assertEqual(r.status, 200, r)
                seen = [k.lower() for k, _ in up.stats()["last"]["headers"]]
                self.assertNotIn("upgrade", seen)
                self.assertNotIn("http2-settings", seen)
        # a WebSocket upgrade answered with a switch to another protocol, or with
        # the wrong Sec-WebSocket-Accept, is not believed either
        key = "dGhlIHNhbXBsZSBub25jZQ=="
        ws = [("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Key", key),
              ("Sec-WebSocket-Version", "13")]
        r = self.one(gw, "GET", "/all/x", ws + [("X-Test-Script", script_header(
            action="upgrade", tunnel="ws", upgrade_header="h2c"))])
        self.assertEqual(r.status, 502, r)
        s2 = gw.sock(timeout=scaled(5))
        self.addCleanup(s2.close)
        s2.sendall(request_bytes("GET", "/all/x", [
            ("Connection", "Upgrade"), ("Upgrade", "websocket"),
            ("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAA=="), ("Sec-WebSocket-Version", "13"),
            ("X-Test-Script", script_header(action="upgrade", tunnel="ws",
                                            headers=[["Sec-WebSocket-Accept", "bogus"]]))]))
        r2, data, _ = read_one_response(s2, scaled(5))  # a second, wrong Accept
        self.assertTrue(r2 is not None and r2.status == 502, data[:200])
        # an upstream that switches anyway is not believed
        r = self.one(gw, "GET", "/all/x", [
            ("Connection", "Upgrade"), ("Upgrade", "h2c"),
            ("X-Test-Script", script_header(action="upgrade", tunnel="ws"))])
        self.assertEqual(r.status, 502, r)

    def test_bearer_with_tab_is_a_token(self):
        """Review: "Bearer<TAB>tok", which many upstreams accept, is a token to the
        gateway too (else no per-token limit, and require_token says 401)."""
        gw, up = self.start()
        r = self.one(gw, "POST", LOGIN, [("Authorization", "Bearer\t" + TOKEN)])
        self.assertEqual(r.status, 200, r)

    def test_two_authorization_lines_400(self):
        """Attack 3: two token lines, the gateway limits on one, the upstream reads the other."""
        gw, up = self.start()
        for hdrs in ([("Authorization", "Bearer aaa"), ("Authorization", "Bearer bbb")],
                     [("Authorization", BEARER), ("authorization", BEARER)],
                     [("Authorization", "Basic dXNlcjpwYXNz"), ("Authorization", BEARER)],
                     [("Authorization", BEARER), ("X-Other", "1"), ("AUTHORIZATION", "")]):
            with self.subTest(headers=hdrs):
                self.refuse(gw, up, hdrs, "two Authorization lines")
        r = self.one(gw, "POST", LOGIN, [("Authorization", BEARER), ("Authorization", BEARER)])
        self.assertEqual(r.status, 400, r)
        self.assertNothingForwarded(up)
        r = self.one(gw, "POST", LOGIN, [("Authorization", BEARER)])
        self.assertEqual(r.status, 200, r)

    def test_custom_correlation_headers_in_connection_400(self):
        """Attack 3: Connection naming the conf's own correlation headers."""
        gw, up = self.start(section={"correlation": {"header": "X-Trace-Id",
                                                     "accept": "X-Trace-Id, X-Amzn-Trace-Id"}})
        for value in ("X-Trace-Id", "close, x-amzn-trace-id", "\tX-TRACE-ID\t"):
            with self.subTest(connection=value):
                self.refuse(gw, up, [("Connection", value), ("X-Trace-Id", "t-1")], value,
                            corr_header="X-Trace-Id")
        r = self.one(gw, "GET", "/all/ok", [("X-Trace-Id", "t-2")])
        self.assertEqual(r.status, 200, r)

    def test_underscore_spellings_of_decided_headers_400(self):
        """Attack 3: X_Forwarded_For, X_Api_Key...: CGI, WSGI, Rack and PHP read '_' as
        '-', so the upstream would read a header the gateway never judged."""
        gw, up = self.start(limits={"token_header": "X-Api-Key"})
        for hdrs in ([("X_Forwarded_For", "6.6.6.6")], [("x_forwarded_for", "6.6.6.6")],
                     [("X_Api_Key", "k-stolen")], [("X-Api-Key", "k1"), ("X_API_KEY", "k2")],
                     [("X_Correlation_Id", "spoof")], [("X_Request-Id", "spoof")],
                     [("X_Forwarded_Proto", "https")], [("X-Forwarded_For", "6.6.6.6")]):
            with self.subTest(headers=hdrs):
                self.refuse(gw, up, hdrs, "underscore alias")
        # other names with '_' are the application's business
        r = self.one(gw, "GET", "/all/ok", [("X_Custom_Thing", "1"), ("X-Api-Key", "k1")])
        self.assertEqual(r.status, 200, r)
        seen = up.stats()["last"]["headers"]
        self.assertTrue(any(k.lower() == "x_custom_thing" for k, _ in seen), seen)

    def test_override_and_rewrite_headers_underscored_or_forwarded(self):
        """Review F2, F3: X_HTTP_Method_Override (read as the override by Rack, Symfony,
        PHP) is refused; X-Original-URL / X-Rewrite-URL never reach the upstream."""
        gw, up = self.start()
        for name in ("X_HTTP_Method_Override", "X-HTTP-Method_Override", "x_http_method",
                     "X_Original_URL", "X_Real_IP"):
            with self.subTest(name=name):
                self.refuse(gw, up, [(name, "DELETE" if "ethod" in name else "/api/login")],
                            name)
        r = self.one(gw, "GET", "/all/x", [("X-Original-URL", "/api/login"),
                                           ("X-Rewrite-URL", "/api/login")])
        self.assertEqual(r.status, 200, r)
        seen = [k.lower() for k, _ in up.stats()["last"]["headers"]]
        self.assertNotIn("x-original-url", seen)
        self.assertNotIn("x-rewrite-url", seen)

    def test_query_method_override_obeys_route_methods(self):
        """Review F7: POST /api/login?_method=DELETE (Symfony, Laravel)."""
        gw, up = self.start()
        for q in ("_method=DELETE", "a=1&_method=delete", "_method=D%45LETE", "_method=FROB",
                  "%5Fmethod=DELETE", "_me%74hod=DELETE", ".method=DELETE", "[method=DELETE",
                  "+method=DELETE", "a=1;_method=DELETE"):
            with self.subTest(query=q):
                r = self.one(gw, "POST", LOGIN + "?" + q, [("Authorization", BEARER)])
                self.assert405Login(r, q)
        self.assertNothingForwarded(up)
        r = self.one(gw, "POST", LOGIN + "?_method=POST&x_method=DELETE",
                     [("Authorization", BEARER)])
        self.assertEqual(r.status, 200, r)

    def test_method_override_obeys_route_methods(self):
        """Attack 3: POST with X-HTTP-Method-Override: DELETE on a POST-only route;
        Express, Rails, Laravel and ASP.NET would run the DELETE."""
        gw, up = self.start()
        for name in ("X-HTTP-Method-Override", "x-http-method", "X-Method-Override"):
            for value in ("DELETE", "get", "PUT", "FROB", ""):
                with self.subTest(name=name, value=value):
                    r = self.one(gw, "POST", LOGIN, [("Authorization", BEARER), (name, value)])
                    self.assert405Login(r, "%s: %s" % (name, value))
        r = self.one(gw, "POST", LOGIN, [("Authorization", BEARER),
                                         ("X-HTTP-Method-Override", "POST"),
                                         ("X-HTTP-Method", "DELETE")])
        self.assert405Login(r, "two overrides that disagree")
        self.assertNothingForwarded(up)
        r = self.one(gw, "POST", LOGIN, [("Authorization", BEARER),
                                         ("X-HTTP-Method-Override", "post")])
        self.assertEqual(r.status, 200, r)
        # a route that allows every method lets overrides through untouched
        r = self.one(gw, "POST", "/all/x", [("X-HTTP-Method-Override", "DELETE")])
        self.assertEqual(r.status, 200, r)

    def test_custom_token_header_in_connection_or_twice_400(self):
        """Attack 3: the same with [limits] token_header = X-Api-Key."""
        gw, up = self.start(limits={"token_header": "X-Api-Key"})
        for hdrs in ([("Connection", "X-Api-Key"), ("X-Api-Key", "k1")],
                     [("Connection", "close, x-api-key"), ("X-Api-Key", "k1")],
                     [("Connection", "keep-alive"), ("Connection", "X-API-KEY")],
                     [("X-Api-Key", "k1"), ("X-Api-Key", "k2")],
                     [("X-Api-Key", "k1"), ("x-api-key", "k1")]):
            with self.subTest(headers=hdrs):
                self.refuse(gw, up, hdrs, "X-Api-Key")
        r = self.one(gw, "GET", "/all/ok", [("X-Api-Key", "k1"), ("Connection", "keep-alive")])
        self.assertEqual(r.status, 200, r)


# ====================================================================== 4

@unittest.skipIf(binary_is_sanitized(), "RSS means little under ASan")
class Backpressure(AttackCase):
    """Attack 4: one connection pipelines requests and never reads the answers."""

    BOUND_KIB = 2048

    def start_bp(self, **kw):
        server = {"client_timeout": "60s", "keepalive_timeout": "60s"}
        server.update(kw.pop("server", {}))
        return self.start(server=server, **kw)

    def idle_rss(self, gw, req, head=False):
        """RSS after warm-up: a few of the same requests, one at a time and pipelined."""
        s = gw.sock()
        try:
            for _ in range(20):
                s.sendall(req)
                r, _, _ = read_one_response(s, scaled(5), head=head)
                self.assertIsNotNone(r, "no answer during warm-up")
            s.sendall(req * 100 + request_bytes("GET", "/__warm", [("Connection", "close")]))
            read_until_close(s, scaled(10))
        finally:
            s.close()
        samples = []
        for _ in range(3):
            time.sleep(0.1)
            samples.append(rss_kib(gw.pid))
        return max(samples)

    def flood(self, gw, req, seconds, idle, stop_on_close=False):
        """Pipeline REQ over and over on one connection without reading, for
        SECONDS; sample VmRSS every 0.25 s. Returns (peak growth KiB, seconds
        to the gateway's close or None, the socket)."""
        s = gw.sock()
        self.addCleanup(s.close)
        s.setblocking(False)
        blob = memoryview(req * max(1, 65536 // len(req)))
        off = 0
        peak = 0
        closed_at = None
        t0 = time.monotonic()
        next_sample = t0
        while True:
            now = time.monotonic()
            if now >= next_sample:
                peak = max(peak, rss_kib(gw.pid) - idle)
                next_sample += 0.25
                if peak > 4 * self.BOUND_KIB:
                    break  # clearly unbounded: stop before it takes the machine
            if now - t0 >= seconds or (closed_at is not None and stop_on_close):
                break
            if closed_at is not None:
                time.sleep(max(0.0, min(0.05, next_sample - now)))
                continue
            try:
                n = s.send(blob[off:])
                off = (off + n) % len(blob)
            except BlockingIOError:
                select.select([], [s], [], max(0.0, min(0.05, next_sample - now)))
            except (BrokenPipeError, ConnectionResetError):
                closed_at = now - t0
        return peak, closed_at, s

    def assertBounded(self, peak, what):
        self.assertLess(peak, self.BOUND_KIB, "%s: envelopd grew %d KiB above idle "
                        "(bound %d)" % (what, peak, self.BOUND_KIB))

    def assertAnswered(self, s, status, head=False):
        """The flooded connection, still open, answers once read (the flood was real)."""
        s.setblocking(True)
        r, data, _ = read_one_response(s, scaled(5), head=head)
        self.assertIsNotNone(r, "no answer on the flooded connection: %r" % data[:300])
        self.assertEqual(r.status, status, r)

    def run_flood(self, gw, req, status, seconds, head=False, what=""):
        idle = self.idle_rss(gw, req, head)
        peak, closed_at, s = self.flood(gw, req, seconds, idle)
        self.assertBounded(peak, what)
        self.assertIsNone(closed_at, "%s: closed after %.1f s, client_timeout is 60 s"
                          % (what, closed_at or 0))
        self.assertAnswered(s, status, head)
        s.close()
        r = gw.request("GET", "/__after", timeout=scaled(5))
        self.assertIn(r.status, (200, 404, 429), r)

    @skip_if_slow("memory growth under valgrind says nothing about envelopd")
    def test_pipelined_405_never_read_30s(self):
        """Attack 4: pipelined gateway-made 405s never read, for 30 s (the 903 MiB case)."""
        gw, _ = self.start_bp()
        self.run_flood(gw, request_bytes("GET", LOGIN), 405, 30, what="405 flood")

    @skip_if_slow("memory growth under valgrind says nothing about envelopd")
    def test_pipelined_404_never_read(self):
        """Attack 4: pipelined 404s (no route) never read."""
        gw, _ = self.start_bp(catch_all=False)
        self.run_flood(gw, request_bytes("GET", "/nothing/here"), 404, 8, what="404 flood")

    @skip_if_slow("memory growth under valgrind says nothing about envelopd")
    def test_pipelined_head_never_read(self):
        """Attack 4: pipelined HEAD requests answered without a body, never read."""
        gw, _ = self.start_bp()
        self.run_flood(gw, request_bytes("HEAD", LOGIN), 405, 8, head=True, what="HEAD flood")

    @skip_if_slow("memory growth under valgrind says nothing about envelopd")
    def test_pipelined_429_never_read(self):
        """Attack 4: pipelined requests over the limit (429s) never read."""
        gw, _ = self.start_bp(limits={"per_ip": "1/1m"})
        self.run_flood(gw, request_bytes("GET", "/all/x"), 429, 8, what="429 flood")

    @skip_if_slow("memory growth under valgrind says nothing about envelopd")
    def test_pipelined_upstream_404_enveloped_never_read(self):
        """Attack 4: pipelined requests whose upstream 404s are enveloped, never read."""
        gw, _ = self.start_bp(up_default={"status": 404, "json": {"message": "no such thing"}})
        self.run_flood(gw, request_bytes("GET", "/all/x"), 404, 8, what="upstream 404 flood")

    @skip_if_slow("memory growth under valgrind says nothing about envelopd")
    def test_pipelined_upstream_204_never_read(self):
        """Attack 4: pipelined requests whose upstream answers 204 (no body), never read."""
        gw, _ = self.start_bp(up_default={"status": 204})
        self.run_flood(gw, request_bytes("GET", "/all/x"), 204, 8, what="upstream 204 flood")

    @skip_if_slow("memory growth under valgrind says nothing about envelopd")
    def test_non_reader_closed_after_client_timeout(self):
        """Attack 4: a client that keeps pipelining and never reads holds the
        connection only for client_timeout."""
        timeout = 2.0
        gw, _ = self.start_bp(server={"client_timeout": "2s", "keepalive_timeout": "2s"})
        req = request_bytes("GET", LOGIN)
        idle = self.idle_rss(gw, req)
        peak, closed_at, s = self.flood(gw, req, timeout + 6, idle, stop_on_close=True)
        self.assertBounded(peak, "non-reader")
        if closed_at is None:
            # A close by FIN (lingering) shows only when reading: whatever is
            # queued comes out, then the end, without the gateway going on.
            s.setblocking(True)
            res = read_until_close(s, 1.0)
            self.assertTrue(res.closed, "a client that never read was kept %.0f s "
                            "(client_timeout %.0f s)" % (timeout + 6, timeout))
        else:
            self.assertGreaterEqual(closed_at, timeout * 0.75, "closed before client_timeout")
            self.assertLessEqual(closed_at, timeout + 4, closed_at)
        self.assertServing(gw)

    @skip_if_slow("memory growth under valgrind says nothing about envelopd")
    def test_slow_reader_gets_answers_in_order(self):
        """Attack 4: a reader of one byte a second while a large pipeline waits:
        bounded memory, and every answer, in order, once it reads."""
        gw, _ = self.start_bp(server={"client_timeout": "30s", "keepalive_timeout": "30s"})
        n = 40000
        req = request_bytes("GET", LOGIN)
        idle = self.idle_rss(gw, req)
        blob = b"".join(request_bytes("GET", LOGIN, [("X-Request-Id", "s%05d" % i)])
                        for i in range(n - 1))
        blob += request_bytes("GET", LOGIN, [("X-Request-Id", "s%05d" % (n - 1)),
                                             ("Connection", "close")])
        s = gw.sock(timeout=scaled(30))  # sendall's whole-call limit, too
        self.addCleanup(s.close)
        sender = threading.Thread(target=lambda: s.sendall(blob), daemon=True)
        sender.start()
        got = b""
        peak = 0
        for _ in range(4):
            time.sleep(1)
            got += s.recv(1)
            peak = max(peak, rss_kib(gw.pid) - idle)
        self.assertEqual(got, b"HTTP", got)
        self.assertBounded(peak, "slow reader")
        res = read_until_close(s, scaled(30))
        data = got + res.data
        self.assertTrue(res.closed, "not closed after the last (Connection: close) answer")
        ids = re.findall(rb"\r\nX-Correlation-Id: (s\d{5})\r\n", data, re.I)
        statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", data)
        self.assertEqual(len(ids), n, "answers missing: %d of %d" % (len(ids), n))
        self.assertEqual(ids, [b"s%05d" % i for i in range(n)], "answers out of order")
        self.assertEqual(set(statuses), {b"405"})
        sender.join(scaled(5))


# ====================================================================== 5

class ForwardedFor(AttackCase):
    """Attack 5: several X-Forwarded-For lines, where only the first was read."""

    def xff_get(self, gw, lines, headers=()):
        hdrs = [("X-Forwarded-For", v) for v in lines] + list(headers)
        return self.one(gw, "GET", "/all/x", hdrs)

    def test_address_claims_only_from_trusted_proxies(self):
        """Review F6: Forwarded, X-Real-IP, True-Client-IP... from an untrusted client
        would name to the upstream a caller the gateway never limited."""
        claims = [("Forwarded", "for=1.2.3.4"), ("X-Real-IP", "1.2.3.4"),
                  ("True-Client-IP", "1.2.3.4"), ("X-Forwarded-Host", "evil.example"),
                  ("X-Client-IP", "1.2.3.4")]
        gw, up = self.start()
        r = self.one(gw, "GET", "/all/x", claims)
        self.assertEqual(r.status, 200, r)
        got = up.stats()["last"]["headers"]
        seen = [k.lower() for k, _ in got]
        for name, _ in claims:
            if name == "X-Forwarded-Host":
                # The gateway writes its own: the Host the client asked for.
                xfh = [v for k, v in got if k.lower() == "x-forwarded-host"]
                host = [v for k, v in got if k.lower() == "host"]
                self.assertEqual(xfh, host)
                self.assertNotIn("evil.example", xfh)
            else:
                self.assertNotIn(name.lower(), seen)
        gw.stop()
        gw, up = self.start(limits={"trusted_proxies": "127.0.0.1/32"})
        r = self.one(gw, "GET", "/all/x", claims)
        seen = [k.lower() for k, _ in up.stats()["last"]["headers"]]
        for name, _ in claims:
            self.assertIn(name.lower(), seen)

    def test_xff_with_ports_keys_the_address(self):
        """Review: a trusted proxy writing ip:port must not collapse every client
        onto the proxy's own key."""
        gw, up = self.start(limits={"trusted_proxies": "127.0.0.1/32", "per_ip": "2/1m"})
        for i in range(2):
            self.assertEqual(self.xff_get(gw, ["9.9.9.1:%d" % (4000 + i)]).status, 200)
        self.assertEqual(self.xff_get(gw, ["9.9.9.1:5000"]).status, 429)
        self.assertEqual(self.xff_get(gw, ["[2001:db8::9]:443"]).status, 200)
        self.assertEqual(self.xff_get(gw, ["9.9.9.2:4000"]).status, 200)

    def test_trusted_proxy_xff_lines_joined(self):
        """Attack 5: a second XFF line (added by our trusted proxy) decides the key
        and is forwarded, joined with the first."""
        gw, up = self.start(limits={"trusted_proxies": "127.0.0.1/32", "per_ip": "2/1m"})
        r = self.xff_get(gw, ["1.1.1.1", "2.2.2.2"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(header_values(up.stats()["last"]["headers"], "X-Forwarded-For"),
                         ["1.1.1.1, 2.2.2.2, 127.0.0.1"])
        self.assertEqual(self.xff_get(gw, ["1.1.1.1", "2.2.2.2"]).status, 200)
        # the caller is 2.2.2.2: a different leftmost address buys nothing
        self.assertEqual(self.xff_get(gw, ["9.9.9.9", "2.2.2.2"]).status, 429)
        self.assertEqual(self.xff_get(gw, ["2.2.2.2"]).status, 429)
        self.assertEqual(self.xff_get(gw, ["7.7.7.7, 8.8.8.8", "2.2.2.2"]).status, 429)
        # a different rightmost address is another caller
        self.assertEqual(self.xff_get(gw, ["1.1.1.1", "3.3.3.3"]).status, 200)
        # trusted entries are walked over, across lines
        r = self.xff_get(gw, ["5.5.5.5, 4.4.4.4", "127.0.0.1"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(header_values(up.stats()["last"]["headers"], "X-Forwarded-For"),
                         ["5.5.5.5, 4.4.4.4, 127.0.0.1, 127.0.0.1"])
        self.assertEqual(self.xff_get(gw, ["6.6.6.6", "4.4.4.4, 127.0.0.1"]).status, 200)
        # the name in any case is the same header
        r = self.one(gw, "GET", "/all/x", [("x-forwarded-for", "1.1.1.1"),
                                           ("X-FORWARDED-FOR", "3.3.3.3")])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(header_values(up.stats()["last"]["headers"], "X-Forwarded-For"),
                         ["1.1.1.1, 3.3.3.3, 127.0.0.1"])
        self.assertEqual(self.one(gw, "GET", "/all/x", [("x-forwarded-for", "6.6.6.6"),
                                                        ("X-FORWARDED-FOR", "3.3.3.3")]).status,
                         429)
        self.assertEqual(self.xff_get(gw, ["4.4.4.4"]).status, 429)

    def test_untrusted_peer_xff_lines_never_decide_key(self):
        """Attack 5: an untrusted client sends random XFF lines to escape per_ip."""
        gw, up = self.start(limits={"per_ip": "3/1m"})
        rs = []
        for i in range(6):
            a, b = "198.51.100.%d" % (i + 1), "203.0.113.%d" % (i + 1)
            r = self.xff_get(gw, [a, b])
            rs.append(r)
            if r.status == 200:
                self.assertEqual(header_values(up.stats()["last"]["headers"], "X-Forwarded-For"),
                                 ["%s, %s, 127.0.0.1" % (a, b)])
        self.assertEqual([r.status for r in rs], [200] * 3 + [429] * 3, rs)


# ====================================================================== 6

class HeadFraming(AttackCase):
    """Attack 6: a head that ends early for one parser and not for another."""

    def reject(self, gw, up, data):
        n0 = up.stats()["requests"]
        res = gw.raw_ex(data, scaled(4))
        self.assertClosedAfter(res, 400, "BAD_REQUEST")
        self.assertNothingForwarded(up, settle=0.3, since=n0)

    def reject_each(self, heads):
        """Each of HEADS on its own connection: a 400, and nothing forwarded."""
        gw, up = self.start()
        for data in heads:
            with self.subTest(data=data):
                self.reject(gw, up, data)
        self.assertServing(gw)

    def test_bare_cr_in_head_400(self):
        """Attack 6: a bare CR splits the head into two requests for http_parser."""
        smuggled = b"GET /all/smuggled HTTP/1.1\r\nHost: h\r\n\r\n"
        self.reject_each((
                b"GET /all/a HTTP/1.1\r\nHost: h\r\nX: y\n\rZ: w\r\n\r\n",
                b"GET /all/a HTTP/1.1\r\nHost: h\r\nX: y\n\r" + smuggled,
                b"GET /all/a HTTP/1.1\r\nHost: h\r\nName:\r<x>\r\n\r\n",
                b"GET /all/a HTTP/1.1\r\nHost: h\r\nName:\r" + smuggled,
                b"GET /all/a HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n",
                b"GET /all/a HTTP/1.1\r\nHost: h\r\nX: a\r" + smuggled,
                b"GET /all/a HTTP/1.1\r\nHost: h\r\nX: a\r\r\n\r\n",
                b"GET /all/a HTTP/1.1\r\nHost: h\r\n\r" + smuggled,
                b"GET /all/a HTTP/1.1\r\nX\r: 1\r\nHost: h\r\n\r\n",
                b"GET /all/a HTTP/1.1\rHost: h\r\n\r\n",
                b"GET /all/a\r HTTP/1.1\r\nHost: h\r\n\r\n"))

    def test_obs_fold_400(self):
        """Attack 6: obs-fold (a line starting with SP or HTAB) joins lines for one
        parser only."""
        self.reject_each((
                b"GET /all/a HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n",
                b"GET /all/a HTTP/1.1\r\nHost: h\r\nX: a\r\n\tb\r\n\r\n",
                b"GET /all/a HTTP/1.1\r\n Host: h\r\n\r\n",
                b"GET /all/a HTTP/1.1\r\n\tX: a\r\nHost: h\r\n\r\n",
                b"GET /all/a HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer a\r\n Bearer b\r\n\r\n",
                b"POST /all/a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n 0\r\n\r\nabc",
                b"GET /all/a HTTP/1.1\r\nHost: h\r\nX: a\r\n \r\n\r\n"))


# ====================================================================== 7

class Descriptors(AttackCase):
    """Attack 7: run the worker out of descriptors or connections."""

    def held_conf(self, up):
        port = free_port()
        c = base_conf(port, [up.port])
        c.set("server", "client_timeout", "30s")
        c.set("server", "keepalive_timeout", "30s")
        return c, port

    def saturate_and_measure(self, gw):
        socks = []
        self.addCleanup(lambda: [x.close() for x in socks])
        for _ in range(100):
            socks.append(socket.create_connection(("127.0.0.1", gw.port), timeout=5))
        time.sleep(0.5)
        size0 = os.path.getsize(gw.out_path)
        lines0 = len(self.accept_events(gw))
        cpu0, t0 = proc_cpu_seconds(gw.pid), time.monotonic()
        for _ in range(10):
            time.sleep(0.5)
            if os.path.getsize(gw.out_path) - size0 > (1 << 20):
                gw.kill()
                self.fail("over 1 MiB of log lines within %.1f s of saturation"
                          % (time.monotonic() - t0))
        cpu = (proc_cpu_seconds(gw.pid) - cpu0) / (time.monotonic() - t0)
        lines = len(self.accept_events(gw)) - lines0
        self.assertTrue(any(l.get("event") == "accept_paused" for l in self.accept_events(gw)),
                        "never saturated: no accept_paused line")
        self.assertLess(cpu, 0.20, "envelopd used %.0f%% CPU while out of descriptors" % (cpu * 100))
        self.assertLessEqual(lines, 15, "%d accept_paused/accept_failed lines in 5 s" % lines)
        for x in socks:
            x.close()
        r = gw.request("GET", API, timeout=scaled(5))
        self.assertEqual(r.status, 200, r)

    def accept_events(self, gw):
        return [l for l in gw.logs() if l.get("event") in ("accept_paused", "accept_failed")]

    @skip_if_slow("CPU use and accept pacing under valgrind say nothing about envelopd")
    def test_rlimit_nofile_64_no_spin(self):
        """Attack 7: 100 connections against a worker started with 64 descriptors."""
        up = self.upstream()
        c, port = self.held_conf(up)

        def small_nofile():
            resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        gw = Gateway(c, port, preexec_fn=small_nofile)
        self.addCleanup(gw.cleanup)
        self.assertEqual(gw.request("GET", API).status, 200)
        self.saturate_and_measure(gw)

    @skip_if_slow("CPU use and accept pacing under valgrind say nothing about envelopd")
    def test_emfile_after_start_no_spin(self):
        """Attack 7: descriptors run out below what the connection cap assumed (EMFILE)."""
        up = self.upstream()
        c, port = self.held_conf(up)
        gw = self.gateway(c, port)
        self.assertEqual(gw.request("GET", API).status, 200)
        hard = resource.prlimit(gw.pid, resource.RLIMIT_NOFILE)[1]
        resource.prlimit(gw.pid, resource.RLIMIT_NOFILE, (64, hard))
        self.saturate_and_measure(gw)

    def test_max_connections_cap(self):
        """Attack 7: [server] max_connections = 5 holds: a 6th waits until one closes."""
        up = self.upstream()
        c, port = self.held_conf(up)
        c.set("server", "max_connections", 5)
        gw = self.gateway(c, port)
        held = []
        self.addCleanup(lambda: [x.close() for x in held])
        for _ in range(5):
            s = gw.sock()
            held.append(s)
            s.sendall(request_bytes("GET", API))
            r, _, _ = read_one_response(s, scaled(5))
            self.assertEqual(r and r.status, 200, r)
        sixth = gw.sock()
        held.append(sixth)
        sixth.sendall(request_bytes("GET", API))
        r, data, _ = read_one_response(sixth, 1.0)
        self.assertIsNone(r, "a 6th connection was served with 5 open: %r" % data)
        held[0].close()
        r, data, _ = read_one_response(sixth, scaled(5))
        self.assertIsNotNone(r, "the 6th connection was not served once one closed: %r" % data)
        self.assertEqual(r.status, 200, r)

    def test_cap_held_by_silent_clients_freed_by_client_timeout(self):
        """Attack 7: fill max_connections with clients that send nothing (slowloris)."""
        up = self.upstream()
        c, port = self.held_conf(up)
        c.set("server", "max_connections", 5)
        c.set("server", "client_timeout", "1s")
        c.set("server", "keepalive_timeout", "1s")
        gw = self.gateway(c, port)
        held = [gw.sock() for _ in range(5)]
        self.addCleanup(lambda: [x.close() for x in held])
        time.sleep(0.2)
        t0 = time.monotonic()
        s = gw.sock()
        held.append(s)
        s.sendall(request_bytes("GET", API))
        r, data, _ = read_one_response(s, scaled(6))
        self.assertIsNotNone(r, "the cap was never freed: %r" % data)
        self.assertEqual(r.status, 200, r)
        self.assertLessEqual(time.monotonic() - t0, 1.0 + 2.0 + slack(3), "freed too late")

    def test_one_server_group_not_marked_down_by_timeout(self):
        """Attack 7: one slow request must not take a one-server upstream out (503s)."""
        up = self.upstream()
        port = free_port()
        c = base_conf(port, [up.port])
        c.set("upstream tasks", "timeout", "1s")
        gw = self.gateway(c, port)
        for _ in range(2):
            r = gw.request("GET", API, headers=scripted(delay=2.5), timeout=scaled(10))
            self.assertEqual(r.status, 504, r)
            r = gw.request("GET", API)
            self.assertEqual(r.status, 200, "after a response timeout: %r" % r)


# ====================================================================== 8

class UpstreamBanner(AttackCase):
    """Attack 8: learn the upstream's software and internals from a 5xx."""

    def fail_with(self, gw, status, headers, method="GET"):
        h = scripted(status=status, headers=[list(x) for x in headers],
                     body="Traceback (most recent call last): boom")
        return gw.request(method, "/all/x", headers=h)

    def assertNoneOf(self, r, pairs):
        for name, value in pairs:
            self.assertEqual(header_values(r.headers, name), [], "%s reached the client: %r"
                             % (name, r))
            for k, v in r.headers:
                self.assertNotIn(value, v, "%s's value reached the client in %s" % (name, k))

    def assertAllOf(self, r, pairs):
        for name, value in pairs:
            self.assertIn(value, header_values(r.headers, name), r)

    def test_banners_dropped_on_enveloped_5xx(self):
        """Attack 8: Server, X-Powered-By, X-AspNet*, X-Runtime, X-Debug-* on a 5xx."""
        gw, up = self.start()
        for status, method in ((500, "GET"), (502, "POST"), (503, "POST"), (504, "GET")):
            with self.subTest(status=status):
                r = self.fail_with(gw, status, LEAKY, method)
                self.assertEqual(r.status, status, r)
                self.assertNoneOf(r, LEAKY)
        r = self.fail_with(gw, 500, LEAKY, "HEAD")
        self.assertEqual((r.status, r.body), (500, b""), r)
        self.assertNoneOf(r, LEAKY)
        r = gw.request("GET", "/all/x", headers=scripted(headers=[["Server", "Apache/2.4.1"]]))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(header_values(r.headers, "Server"), ["Apache/2.4.1"], r)

    def test_hide_headers_dropped_on_enveloped_5xx(self):
        """Attack 8: the operator's own internal headers ([envelope] hide_headers)."""
        gw, up = self.start(section={"envelope": {"hide_headers": "X-Internal-*, X-Team"}})
        r = self.fail_with(gw, 500, LEAKY + HIDDEN + [("X-Team-Region", "eu-1")])
        self.assertEqual(r.status, 500, r)
        self.assertNoneOf(r, LEAKY + HIDDEN)
        self.assertAllOf(r, [("X-Team-Region", "eu-1")])  # a name, not a prefix

    def test_expose_upstream_5xx_keeps_headers(self):
        """Attack 8: with expose_upstream_5xx = yes the operator asked to see them."""
        gw, up = self.start(section={"envelope": {"hide_headers": "X-Internal-*, X-Team",
                                                  "expose_upstream_5xx": "yes"}})
        r = self.fail_with(gw, 500, LEAKY + HIDDEN)
        self.assertEqual(r.status, 500, r)
        self.assertAllOf(r, LEAKY + HIDDEN)


if __name__ == "__main__":
    unittest.main()
