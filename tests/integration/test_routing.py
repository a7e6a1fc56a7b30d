"""Routing end to end: routes chosen by host (exact, wildcard, port, case,
trailing dot), by prefix and by one request header (match_header), and what
a route then overrides: its envelope profile, code_map, body size, client
and upstream deadlines, CORS and the Host the upstream receives. Also the
conf checks of conflicting routes (-t), the 421 of a TLS connection asked
for a host it does not serve, and a SIGHUP that changes a route.

Each test starts its own upstream.py processes and envelopd on free ports,
all stopped by PID. Run:
  cd tests/integration && ENVELOPD=/path/to/envelopd python3 -m unittest -v test_routing
"""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

from harness import (Conf, GatewayTestCase, read_one_response, request_bytes,
                     run_envelopd, scaled, scripted, slack, wait_until, free_port, TOKEN)

CORR = "X-Correlation-Id"
CT_JSON = "application/json;charset=utf-8"
CT_PROBLEM = "application/problem+json"


# ---------------------------------------------------------------- conf

def gw_conf(port, profile="nested", **server):
    """A gateway conf without upstreams or routes: [server], [envelope],
    [correlation], [limits] as base_conf has them; SERVER overrides [server]."""
    c = Conf()
    c.set("server", "listen", "127.0.0.1:%d" % port)
    s = {"workers": 1, "max_header_size": "16k", "max_body_size": "1m",
         "client_timeout": "2s", "shutdown_timeout": "1s", "log_level": "info",
         "access_log": "stdout"}
    s.update(server)
    for k, v in s.items():
        c.set("server", k, v)
    c.set("envelope", "profile", profile)
    c.set("correlation", "header", CORR)
    c.set("correlation", "accept", "X-Correlation-Id, X-Request-Id")
    c.set("limits", "per_ip", "100000/1m")
    c.set("limits", "per_token", "100000/1m")
    return c


def add_upstream(c, name, servers, **kw):
    sect = "upstream " + name
    for s in servers:
        c.add(sect, "server", s if isinstance(s, str) else "127.0.0.1:%d" % s)
    opts = {"keepalive": 16, "connect_timeout": "1s", "timeout": "2s", "retries": 0}
    opts.update(kw)
    for k, v in opts.items():
        c.set(sect, k, v)
    return c


def add_route(c, name, prefix, upstream, **kw):
    """[route NAME]; a list value in KW is written as that key repeated."""
    sect = "route " + name
    c.set(sect, "prefix", prefix)
    c.set(sect, "upstream", upstream)
    for k, v in kw.items():
        if isinstance(v, (list, tuple)):
            for one in v:
                c.add(sect, k, one)
        else:
            c.set(sect, k, v)
    return c


# ---------------------------------------------------------------- envelopes

def camel(code):
    parts = code.lower().split("_")
    return parts[0] + "".join(p.title() for p in parts[1:])


def message_of(profile, body):
    return {"nested": lambda b: b["error"]["message"], "flat": lambda b: b["error"],
            "simple": lambda b: b["error"], "status": lambda b: b.get("cause", b["message"]),
            "i18n": lambda b: b["fallbackMessage"], "problem": lambda b: b["detail"]}[profile](body)


def header_tokens(r, name):
    """Every comma-separated element of every NAME line of R, lower case."""
    out = []
    for v in r.header_all(name):
        out += [t.strip().lower() for t in v.split(",") if t.strip()]
    return out


def echo_header(echo, name):
    """The values of request header NAME the upstream received (echo script)."""
    return [v for k, v in echo["headers"] if k.lower() == name.lower()]


class RoutingCase(GatewayTestCase):
    def up(self):
        return self.upstream()

    def start(self, conf, port):
        return self.gateway(conf, port)

    def get(self, gw, path, host=None, headers=None, method="GET", body=None, timeout=10):
        h = dict(headers or {})
        if host is not None:
            h["Host"] = host
        # http.client adds its own Host unless one is given (skip_host would
        # need putrequest); a given Host header replaces it.
        return gw.request(method, path, headers=h, body=body, timeout=timeout)

    def raw_get(self, gw, path, headers=(), host="localhost", version="HTTP/1.1", method="GET",
                body=b""):
        """One raw request (Connection: close); the first parsed response."""
        hdrs = list(headers) + [("Connection", "close")]
        res = gw.raw_ex(request_bytes(method, path, hdrs, body=body, version=version, host=host),
                        timeout=scaled(5))
        rs = [r for r in res.responses() if not 100 <= r.status < 200]
        self.assertTrue(rs, "no response to %s %s: %r" % (method, path, res))
        return rs[0]

    def served_by(self, r, upstream):
        """R is a 200 echo answered by UPSTREAM; returns the echo."""
        self.assertEqual(r.status, 200, r)
        echo = r.json()
        self.assertEqual(echo["port"], upstream.port,
                         "answered by the upstream on port %s, expected %s" % (echo["port"],
                                                                                upstream.port))
        return echo

    def assertProfile(self, r, profile, status, code, message=None):
        """R is an envelope of PROFILE with STATUS and CODE (and MESSAGE); its body."""
        self.assertEqual(r.status, status, r)
        ct = (r.header("Content-Type") or "").replace(" ", "").lower()
        if profile == "problem":
            self.assertTrue(ct.startswith(CT_PROBLEM), "Content-Type %r: %r" % (ct, r))
        else:
            self.assertEqual(ct, CT_JSON, r)
        try:
            body = r.json()
        except ValueError as e:
            self.fail("envelope body is not JSON (%s): %r" % (e, r))
        self.assertIsInstance(body, dict, r)
        rid = r.header(CORR)
        self.assertTrue(rid, "no %s on %r" % (CORR, r))
        if profile == "nested":
            self.assertEqual(list(body), ["error"], body)
            err = body["error"]
            self.assertEqual(err.get("code"), code, body)
            self.assertIsInstance(err.get("message"), str, body)
            self.assertEqual(err["details"]["request_id"], rid, body)
        elif profile == "flat":
            self.assertIsInstance(body.get("error"), str, body)
            self.assertEqual(body.get("code"), code, body)
            self.assertEqual(body["details"]["request_id"], rid, body)
            self.assertNotIn("type", body, body)
        elif profile == "problem":
            self.assertEqual(body.get("type"), "about:blank", body)
            self.assertIsInstance(body.get("title"), str, body)
            self.assertEqual(body.get("status"), status, body)
            self.assertIsInstance(body.get("detail"), str, body)
            self.assertEqual(body.get("code"), code, body)
            self.assertEqual(body.get("request_id"), rid, body)
            self.assertNotIn("error", body, body)
        elif profile == "i18n":
            self.assertEqual(body.get("key"), "api-errors." + camel(code), body)
            self.assertEqual(body["params"]["request_id"], rid, body)
            self.assertIsInstance(body.get("fallbackMessage"), str, body)
        elif profile == "status":
            self.assertEqual(body.get("code"), status, body)
            self.assertIsInstance(body.get("message"), str, body)
        elif profile == "simple":
            self.assertIsInstance(body.get("error"), str, body)
            self.assertNotIn("code", body, body)
        else:
            raise ValueError(profile)
        if message is not None:
            self.assertEqual(message_of(profile, body), message, body)
        return body

    def no_route(self, r, profile):
        """R is the gateway's 404 for a request no route takes, in PROFILE."""
        return self.assertProfile(r, profile, 404, "NOT_FOUND")


# ====================================================================== 1

HOST_API = "api.example.com"
HOST_BILLING = "billing.example.com"


class HostRouting(RoutingCase):
    """api.example.com -> A (nested); billing.example.com and *.billing.example.com
    -> B (problem); *.tenants.example.com -> B; [envelope] profile i18n."""

    def setup_hosts(self, limit_a="300/1m", limit_b="500/1m"):
        self.a, self.b = self.up(), self.up()
        port = free_port()
        c = gw_conf(port, profile="i18n")
        add_upstream(c, "a", [self.a.port])
        add_upstream(c, "b", [self.b.port])
        add_route(c, "api", "/", "a", hosts=HOST_API, profile="nested", per_ip=limit_a,
                  methods="GET, POST")
        add_route(c, "billing", "/", "b", hosts="billing.example.com, *.billing.example.com",
                  profile="problem", per_ip=limit_b, methods="GET, POST")
        add_route(c, "tenants", "/", "b", hosts="*.tenants.example.com", profile="problem",
                  methods="GET, POST")
        self.gw = self.start(c, port)
        return self.gw

    def test_each_host_reaches_its_upstream(self):
        gw = self.setup_hosts()
        r = self.get(gw, "/tasks/1", host=HOST_API)
        echo = self.served_by(r, self.a)
        self.assertEqual(r.header("X-RateLimit-Limit"), "300", "api's per_ip: %r" % r)
        self.assertEqual(echo["target"], "/tasks/1")
        self.assertEqual(echo_header(echo, "Host"), [HOST_API], echo)
        r = self.get(gw, "/invoices/9", host=HOST_BILLING)
        self.served_by(r, self.b)
        self.assertEqual(r.header("X-RateLimit-Limit"), "500", "billing's per_ip: %r" % r)
        self.assertEqual(self.a.stats()["requests"], 1)
        self.assertEqual(self.b.stats()["requests"], 1)

    def test_hosts_that_are_not_hosts_are_refused(self):
        """Review F1: a Host the router cannot read was routed as "no Host",
        to the routes for any host, while nginx (up to its ':') or Express
        read the host-specific one. Such a request is a 400 now."""
        gw = self.setup_hosts()
        add_open = self.up()  # a host-less route, the one a bypass would reach
        c = gw.conf
        add_upstream(c, "open", [add_open.port])
        add_route(c, "open", "/", "open", methods="GET, POST")
        gw.stop()
        port = free_port()
        c.set("server", "listen", "127.0.0.1:%d" % port)
        gw = self.start(c, port)
        for host in ("api.example.com:abc", "api.example.com:80:80", "api.example.com:0080",
                     "api.example.com:99999", "api..example.com", ".api.example.com",
                     "api.example.com,x", "api.example.com;x", "api%2eexample.com",
                     "api.ex\"ample.com", "[::1%25lo]", "[::1]x"):
            with self.subTest(host=host):
                r = self.raw_get(gw, "/tasks/1", host=host)
                self.assertEqual(r.status, 400, r)
        self.assertEqual(add_open.stats()["requests"], 0)
        # A literal in another spelling is the same address (conf's spelling).
        r = self.raw_get(gw, "/x", host="[0:0::1]:80")
        self.served_by(r, add_open)

    def test_host_spellings_match(self):
        gw = self.setup_hosts()
        for host, up, limit in (
                ("api.example.com:8443", self.a, "300"),
                ("api.example.com:80", self.a, "300"),
                ("API.EXAMPLE.COM", self.a, "300"),
                ("api.example.com.", self.a, "300"),
                ("Api.Example.Com.:8080", self.a, "300"),
                ("BILLING.example.com.", self.b, "500"),
                ("billing.example.com:443", self.b, "500")):
            with self.subTest(host=host):
                r = self.get(gw, "/x", host=host)
                self.served_by(r, up)
                self.assertEqual(r.header("X-RateLimit-Limit"), limit, r)

    def test_wildcard_covers_subdomains_not_parent(self):
        gw = self.setup_hosts()
        for host in ("eu.billing.example.com", "a.b.billing.example.com",
                     "EU.Billing.Example.Com.:9000"):
            with self.subTest(host=host):
                r = self.get(gw, "/x", host=host)
                self.served_by(r, self.b)
                self.assertEqual(r.header("X-RateLimit-Limit"), "500", r)
        r = self.get(gw, "/x", host="acme.tenants.example.com")
        self.served_by(r, self.b)
        self.assertEqual(r.header("X-RateLimit-Limit"), "100000", "tenants has no per_ip: %r" % r)
        before = self.b.stats()["requests"]
        # the bare parent of a wildcard, and names that only end like it
        for host in ("tenants.example.com", "tenants.example.com.", "xtenants.example.com",
                     "evilbilling.example.com", "example.com", "billing.example.com.evil.org"):
            with self.subTest(host=host):
                self.no_route(self.get(gw, "/x", host=host), "i18n")
        self.assertEqual(self.b.stats()["requests"], before, "a host no route serves got through")
        self.assertEqual(self.a.stats()["requests"], 0)

    def test_unknown_host_and_no_host_get_404(self):
        gw = self.setup_hosts()
        self.no_route(self.get(gw, "/x", host="unknown.test"), "i18n")
        self.no_route(self.get(gw, "/x", host="127.0.0.1:%d" % gw.port), "i18n")
        # HTTP/1.0 without Host: no host, and every route names hosts
        r = self.raw_get(gw, "/x", host=None, version="HTTP/1.0")
        self.assertTrue(r.complete, r)
        self.no_route(r, "i18n")
        # HTTP/1.1 without Host is malformed (RFC 9112 3.2): 400, never routed
        r = self.raw_get(gw, "/x", host=None)
        self.assertProfile(r, "i18n", 400, "BAD_REQUEST")
        self.assertEqual(self.a.stats()["requests"] + self.b.stats()["requests"], 0)

    def test_gateway_errors_take_the_route_profile(self):
        gw = self.setup_hosts(limit_a="3/1m", limit_b="5/1m")
        # 405: the gateway's own, before the limit
        for host, profile in ((HOST_API, "nested"), (HOST_BILLING, "problem"),
                              ("x.billing.example.com", "problem"),
                              ("x.tenants.example.com", "problem")):
            with self.subTest(status=405, host=host):
                r = self.get(gw, "/x", host=host, method="DELETE")
                self.assertProfile(r, profile, 405, "METHOD_NOT_ALLOWED")
                self.assertEqual(sorted(t.upper() for t in header_tokens(r, "Allow")),
                                 ["GET", "HEAD", "POST"], r)
        # 404: the upstream's plain-text 404, enveloped in the route's profile
        s404 = scripted(status=404, headers=[["Content-Type", "text/plain"]],
                        body="No such thing\n")
        r = self.get(gw, "/x", host=HOST_API, headers=s404)
        self.assertProfile(r, "nested", 404, "NOT_FOUND", "No such thing")
        r = self.get(gw, "/x", host=HOST_BILLING, headers=s404)
        self.assertProfile(r, "problem", 404, "NOT_FOUND", "No such thing")
        # 429: api allows 3 a minute (one spent above), billing 5 (one spent)
        for host, profile, limit in ((HOST_API, "nested", 3), ("eu.billing.example.com",
                                                                "problem", 5)):
            with self.subTest(status=429, host=host):
                rs = [self.get(gw, "/x", host=host) for _ in range(limit - 1)]
                self.assertEqual([r.status for r in rs], [200] * (limit - 1), rs)
                r = self.get(gw, "/x", host=host)
                body = self.assertProfile(r, profile, 429, "RATE_LIMITED")
                facts = body["error"]["details"] if profile == "nested" else body
                self.assertEqual(facts.get("limit"), limit, body)
                self.assertEqual(facts.get("window"), "minute", body)
                self.assertEqual(r.header("X-RateLimit-Limit"), str(limit), r)
                self.assertRegex(r.header("Retry-After") or "", r"^[1-9][0-9]*$", r)
        # the unknown host's 404 keeps the [envelope] profile
        self.no_route(self.get(gw, "/x", host="nowhere.test"), "i18n")


# ====================================================================== 2

class TrustedForwardedHost(RoutingCase):
    """Review F3: behind a trusted proxy the upstream reads X-Forwarded-Host,
    so routing reads it too: the two never disagree."""

    def test_routing_follows_the_trusted_forwarded_host(self):
        self.a, self.b = self.up(), self.up()
        port = free_port()
        c = gw_conf(port)
        c.set("limits", "trusted_proxies", "127.0.0.1/32")
        add_upstream(c, "a", [self.a.port])
        add_upstream(c, "b", [self.b.port])
        add_route(c, "admin", "/", "a", hosts="admin.example.com", require_token="yes")
        add_route(c, "public", "/", "b")
        gw = self.start(c, port)
        r = self.raw_get(gw, "/", [("X-Forwarded-Host", "admin.example.com")],
                         host="www.example.com")
        self.assertEqual(r.status, 401, r)  # admin's policy, not public's
        self.assertEqual(self.b.stats()["requests"], 0)
        r = self.raw_get(gw, "/", host="www.example.com")
        self.served_by(r, self.b)


class PrefixProfiles(RoutingCase):
    def test_v1_flat_v2_nested(self):
        a = self.up()
        port = free_port()
        c = gw_conf(port, profile="problem")
        add_upstream(c, "a", [a.port])
        add_route(c, "v1", "/v1", "a", profile="flat")
        add_route(c, "v2", "/v2", "a", profile="nested")
        gw = self.start(c, port)
        s404 = scripted(status=404, headers=[["Content-Type", "text/plain"]],
                        body="Task 7 is gone\n")
        r = self.get(gw, "/v1/tasks/7", headers=s404)
        body = self.assertProfile(r, "flat", 404, "NOT_FOUND", "Task 7 is gone")
        self.assertEqual(set(body), {"error", "code", "details"}, body)
        r = self.get(gw, "/v2/tasks/7", headers=s404)
        self.assertProfile(r, "nested", 404, "NOT_FOUND", "Task 7 is gone")
        # routes_ignore_case (default yes): /V1 is [route v1]
        r = self.get(gw, "/V1/tasks/7", headers=s404)
        self.assertProfile(r, "flat", 404, "NOT_FOUND", "Task 7 is gone")
        # /v10 is not under /v1 (segment boundary): no route, [envelope]'s profile
        self.no_route(self.get(gw, "/v10/tasks"), "problem")
        self.no_route(self.get(gw, "/v3/tasks"), "problem")
        self.assertEqual(a.stats()["requests"], 3)


# ====================================================================== 3

class MatchHeader(RoutingCase):
    def setUp(self):
        super().setUp()
        self.a, self.b = self.up(), self.up()
        port = free_port()
        c = gw_conf(port)
        add_upstream(c, "a", [self.a.port])
        add_upstream(c, "b", [self.b.port])
        add_route(c, "plain", "/api", "a")
        add_route(c, "v2", "/api", "b", match_header="X-Api-Version: 2")
        self.gw = self.start(c, port)

    def test_header_chooses_the_route(self):
        gw = self.gw
        self.served_by(self.get(gw, "/api/tasks"), self.a)
        echo = self.served_by(self.get(gw, "/api/tasks", headers={"X-Api-Version": "2"}), self.b)
        self.assertEqual(echo_header(echo, "X-Api-Version"), ["2"], "the upstream sees it")
        self.served_by(self.get(gw, "/api/tasks", headers={"x-api-version": "2"}), self.b)
        r = self.raw_get(gw, "/api/tasks", [("X-API-VERSION", " \t2 ")])
        self.served_by(r, self.b)
        for other in ("3", "02", "2.0", "2, 2", ""):
            with self.subTest(value=other):
                r = self.raw_get(gw, "/api/tasks", [("X-Api-Version", other)])
                self.served_by(r, self.a)

    def test_answers_vary_on_the_header(self):
        """Review F5: one URL, two routes by a header: a shared cache must key
        on it, so both routes' answers (errors included) say Vary on it."""
        gw = self.gw
        for headers in ({}, {"X-Api-Version": "2"}):
            r = self.get(gw, "/api/tasks", headers=headers)
            vary = [v.strip().lower() for line in r.header_all("Vary") for v in line.split(",")]
            self.assertIn("x-api-version", vary, r)

    def test_underscore_spelling_refused(self):
        before = self.a.stats()["requests"] + self.b.stats()["requests"]
        for name in ("X_Api_Version", "x_api-version"):
            with self.subTest(name=name):
                r = self.raw_get(self.gw, "/api/tasks", [(name, "2")])
                self.assertEnvelope(r, 400, "BAD_REQUEST")
        self.assertEqual(self.a.stats()["requests"] + self.b.stats()["requests"], before)

    def test_connection_naming_the_header_refused(self):
        before = self.a.stats()["requests"] + self.b.stats()["requests"]
        for hdrs in ([("X-Api-Version", "2"), ("Connection", "X-Api-Version")],
                     [("X-Api-Version", "2"), ("Connection", "keep-alive, x-api-version")],
                     [("Connection", "X-Api-Version")]):
            with self.subTest(headers=hdrs):
                r = self.raw_get(self.gw, "/api/tasks", hdrs)
                self.assertEnvelope(r, 400, "BAD_REQUEST")
        self.assertEqual(self.a.stats()["requests"] + self.b.stats()["requests"], before)

    def test_header_twice_is_refused(self):
        """Upstreams read the first line, the last or both: a route chosen on
        one copy would serve a request another copy describes (review F2)."""
        for hdrs in ([("X-Api-Version", "2"), ("X-Api-Version", "2")],
                     [("X-Api-Version", "2"), ("x-api-version", "3")]):
            with self.subTest(headers=hdrs):
                r = self.raw_get(self.gw, "/api/tasks", hdrs)
                self.assertEqual(r.status, 400, r)
        self.assertEqual(self.a.stats()["requests"], 0)
        self.assertEqual(self.b.stats()["requests"], 0)


# ====================================================================== 4

class RouteOverrides(RoutingCase):
    def setUp(self):
        super().setUp()
        self.a = self.up()
        port = free_port()
        c = gw_conf(port, max_body_size="1m", client_timeout="5s")
        add_upstream(c, "a", [self.a.port], timeout="600ms")
        add_route(c, "small", "/small", "a", max_body_size="1k", profile="flat")
        add_route(c, "big", "/big", "a")
        add_route(c, "slowbody", "/slowbody", "a", client_timeout="400ms")
        add_route(c, "quick", "/quick", "a", timeout="200ms")
        add_route(c, "long", "/long", "a", timeout="3s")
        add_route(c, "inherit", "/inherit", "a")
        self.gw = self.start(c, port)

    def test_max_body_size_per_route(self):
        gw = self.gw
        body = b"b" * 2000
        r = self.get(gw, "/small/x", method="POST", body=body,
                     headers={"Content-Type": "application/octet-stream"})
        self.assertProfile(r, "flat", 413, "PAYLOAD_TOO_LARGE")
        # chunked, no length known up front
        data = request_bytes("POST", "/small/x", [("Transfer-Encoding", "chunked")],
                             body=b"7d0\r\n" + body + b"\r\n0\r\n\r\n")
        res = gw.raw_ex(data, timeout=scaled(5))
        rs = res.responses()
        self.assertTrue(rs, res)
        self.assertProfile(rs[0], "flat", 413, "PAYLOAD_TOO_LARGE")
        self.assertEqual(self.a.stats()["requests"], 0, "an oversized body reached the upstream")
        echo = self.served_by(self.get(gw, "/big/x", method="POST", body=body), self.a)
        self.assertEqual(echo["body_len"], 2000)
        echo = self.served_by(self.get(gw, "/small/x", method="POST", body=b"s" * 1024), self.a)
        self.assertEqual(echo["body_len"], 1024)

    def test_client_timeout_per_route(self):
        gw = self.gw
        head = request_bytes("POST", "/slowbody/x", [("Content-Length", "100")], body=b"x" * 10)
        res = gw.raw_ex(head, timeout=scaled(4))
        r = self.assertClosedAfter(res, 408)
        self.assertProfile(r, "nested", 408, "REQUEST_TIMEOUT")
        self.assertGreaterEqual(res.elapsed, 0.35, res)
        self.assertLess(res.elapsed, 1.5 + slack(3), "cut at [server]'s 5 s, not the route's "
                        "400 ms: %r" % res)
        # the same slow body on a route without client_timeout: still waited for
        s = gw.sock()
        try:
            s.sendall(request_bytes("POST", "/big/x", [("Content-Length", "100")],
                                    body=b"x" * 10))
            s.settimeout(1.0)
            try:
                early = s.recv(65536)
            except socket.timeout:
                early = None
            self.assertIsNone(early, "answered before the body came: %r" % early)
            s.sendall(b"y" * 90)
            r, _, _ = read_one_response(s, scaled(5))
        finally:
            s.close()
        self.assertIsNotNone(r)
        self.assertEqual(r.status, 200, r)

    def test_timeout_per_route(self):
        gw = self.gw
        t0 = time.monotonic()
        r = self.get(gw, "/quick/x", headers=scripted(delay=1.5, json={"ok": 1}))
        took = time.monotonic() - t0
        self.assertProfile(r, "nested", 504, "GATEWAY_TIMEOUT")
        self.assertLess(took, 0.5 + slack(2), "the route's 200 ms, not the upstream's 600 ms")
        # inheriting the upstream's 600 ms
        t0 = time.monotonic()
        r = self.get(gw, "/inherit/x", headers=scripted(delay=1.5, json={"ok": 1}))
        took = time.monotonic() - t0
        self.assertProfile(r, "nested", 504, "GATEWAY_TIMEOUT")
        self.assertGreaterEqual(took, 0.55, r)
        self.assertLess(took, 1.4 + slack(2), r)
        # a route longer than its upstream's timeout waits its own 3 s
        r = self.get(gw, "/long/x", headers=scripted(delay=1.0, json={"ok": 1}))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"ok": 1})


# ====================================================================== 5

class CodeMap(RoutingCase):
    def test_code_map(self):
        a = self.up()
        port = free_port()
        c = gw_conf(port)
        add_upstream(c, "a", [a.port])
        add_route(c, "mapped", "/mapped", "a", methods="GET, POST",
                  code_map=["404:TASK_NOT_FOUND, 409:CONFLICT_HERE", "405:VERB_REFUSED"])
        add_route(c, "other", "/other", "a", methods="GET, POST")
        gw = self.start(c, port)
        text404 = scripted(status=404, headers=[["Content-Type", "text/plain"]], body="gone")
        r = self.get(gw, "/mapped/7", headers=text404)
        self.assertEnvelope(r, 404, "TASK_NOT_FOUND")
        self.assertEqual(r.json()["error"]["message"], "gone")
        r = self.get(gw, "/mapped/7", headers=scripted(status=404, framing="none"))
        self.assertEnvelope(r, 404, "TASK_NOT_FOUND")
        r = self.get(gw, "/mapped/7", headers=scripted(status=404, json={"message": "no task"}))
        self.assertEnvelope(r, 404, "TASK_NOT_FOUND")
        # the upstream's own code is kept
        r = self.get(gw, "/mapped/7", headers=scripted(
            status=404, json={"code": "TASK_MISSING", "message": "no task 7"}))
        self.assertEnvelope(r, 404, "TASK_MISSING")
        r = self.get(gw, "/mapped/7", headers=scripted(status=409, json={"error": "edited"}))
        self.assertEnvelope(r, 409, "CONFLICT_HERE")
        # the gateway's own answer on the route (second code_map line)
        r = self.get(gw, "/mapped/7", method="DELETE")
        self.assertEnvelope(r, 405, "VERB_REFUSED")
        # statuses not in the map keep the built-in codes
        r = self.get(gw, "/mapped/7", headers=scripted(status=410, body="old"))
        self.assertEnvelope(r, 410, "GONE")
        # another route keeps the built-in codes
        r = self.get(gw, "/other/7", headers=text404)
        self.assertEnvelope(r, 404, "NOT_FOUND")
        r = self.get(gw, "/other/7", headers=scripted(status=409, json={"error": "edited"}))
        self.assertEnvelope(r, 409, "CONFLICT")
        self.assertEnvelope(self.get(gw, "/other/7", method="DELETE"), 405, "METHOD_NOT_ALLOWED")
        # no route: the built-in code
        self.assertEnvelope(self.get(gw, "/nowhere"), 404, "NOT_FOUND")


# ====================================================================== 6

APP_ORIGIN = "https://app.example.com"
EXPOSED = ("X-Correlation-Id", "X-RateLimit-Remaining", "Retry-After")
# CORS-safelisted response header names (Fetch): readable without being exposed
SAFELISTED = ("cache-control", "content-language", "content-length", "content-type", "expires",
              "last-modified", "pragma")


def bearer(token=TOKEN):
    return {"Authorization": "Bearer " + token}


class Cors(RoutingCase):
    def setup_cors(self, per_ip="100000/1m"):
        self.a = self.up()
        port = free_port()
        c = gw_conf(port)
        add_upstream(c, "a", [self.a.port])
        add_route(c, "app", "/app", "a", require_token="yes", methods="GET, POST",
                  cors_origins="https://app.example.com, https://*.example.net",
                  cors_credentials="yes", per_ip=per_ip)
        self.gw = self.start(c, port)
        return self.gw

    def preflight(self, gw, path, origin, method="POST",
                  req_headers="authorization, content-type"):
        h = {"Origin": origin, "Access-Control-Request-Method": method}
        if req_headers is not None:
            h["Access-Control-Request-Headers"] = req_headers
        return self.get(gw, path, method="OPTIONS", headers=h)

    def assertVaryOrigin(self, r):
        self.assertIn("origin", header_tokens(r, "Vary"), "no Vary: Origin on %r" % r)

    def assertPreflightOk(self, r, origin, credentials, max_age=None):
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.body, b"", r)
        self.assertEqual(r.header_all("Access-Control-Allow-Origin"), [origin], r)
        if credentials:
            self.assertEqual(r.header_all("Access-Control-Allow-Credentials"), ["true"], r)
        else:
            self.assertEqual(r.header_all("Access-Control-Allow-Credentials"), [], r)
        self.assertIn("POST", [t.upper() for t in header_tokens(r, "Access-Control-Allow-Methods")],
                      r)
        allowed = header_tokens(r, "Access-Control-Allow-Headers")
        for h in ("authorization", "content-type"):
            self.assertIn(h, allowed, r)
        ma = r.header("Access-Control-Max-Age")
        self.assertRegex(ma or "", r"^[0-9]+$", r)
        if max_age is not None:
            self.assertEqual(int(ma), max_age, r)
        self.assertVaryOrigin(r)

    def assertPreflightRefused(self, r):
        """A preflight the browser must fail: no Allow-Origin (status may stay 204)."""
        self.assertNotIn(r.status, (401, 405, 429), r)
        self.assertEqual(r.header_all("Access-Control-Allow-Origin"), [], r)
        self.assertEqual(r.header_all("Access-Control-Allow-Credentials"), [], r)
        self.assertVaryOrigin(r)

    def browser_check(self, r, origin, credentials, expose=EXPOSED):
        """What the Fetch standard's CORS check needs for a page at ORIGIN to
        read R's body and the EXPOSE headers: exactly one Access-Control-Allow-
        Origin, equal to ORIGIN byte for byte (or '*' when no credentials);
        with credentials Access-Control-Allow-Credentials exactly 'true'; each
        non-safelisted header named in Access-Control-Expose-Headers ('*'
        counts only without credentials)."""
        acao = r.header_all("Access-Control-Allow-Origin")
        # header list "get" joins several lines with ", ": that never matches
        self.assertEqual(len(acao), 1, "Access-Control-Allow-Origin lines: %r on %r" % (acao, r))
        if credentials:
            self.assertEqual(acao[0], origin, r)
            self.assertEqual(r.header_all("Access-Control-Allow-Credentials"), ["true"], r)
        else:
            self.assertIn(acao[0], ("*", origin), r)
        exposed = header_tokens(r, "Access-Control-Expose-Headers")
        star = "*" in exposed and not credentials
        for h in expose:
            if h.lower() in SAFELISTED or star:
                continue
            self.assertIn(h.lower(), exposed, "%s not exposed to the page: %r" % (h, r))
        self.assertVaryOrigin(r)

    def test_preflight_allowed(self):
        gw = self.setup_cors()
        r = self.preflight(gw, "/app/tasks", APP_ORIGIN)
        self.assertPreflightOk(r, APP_ORIGIN, credentials=True)
        r = self.preflight(gw, "/app/tasks", "https://preview.example.net", method="GET",
                           req_headers="Authorization")
        self.assertEqual(r.header_all("Access-Control-Allow-Origin"),
                         ["https://preview.example.net"], r)
        self.assertEqual(r.header_all("Access-Control-Allow-Credentials"), ["true"], r)
        r = self.preflight(gw, "/app/tasks", "https://a.b.example.net")
        self.assertPreflightOk(r, "https://a.b.example.net", credentials=True)
        self.assertEqual(self.a.stats()["requests"], 0, "a preflight reached the upstream")

    def test_preflight_refused(self):
        gw = self.setup_cors()
        for origin, method in (("https://evil.com", "POST"),
                               (APP_ORIGIN, "DELETE"),
                               ("https://example.net", "POST"),
                               ("http://app.example.com", "POST"),
                               ("https://app.example.com.evil.com", "POST"),
                               ("https://app.example.com:8443", "POST"),
                               ("null", "POST")):
            with self.subTest(origin=origin, method=method):
                r = self.preflight(gw, "/app/tasks", origin, method=method)
                self.assertEqual(r.status, 204, r)
                self.assertPreflightRefused(r)
        self.assertEqual(self.a.stats()["requests"], 0)

    def test_actual_requests_readable(self):
        gw = self.setup_cors()
        origin = {"Origin": APP_ORIGIN}
        r = self.get(gw, "/app/tasks", headers=dict(origin, **bearer()))
        self.assertEqual(r.status, 200, r)
        self.browser_check(r, APP_ORIGIN, credentials=True)
        # 401 (no token): the page must be able to read the envelope
        r = self.get(gw, "/app/tasks", headers=origin)
        self.assertEnvelope(r, 401, "UNAUTHORIZED")
        self.browser_check(r, APP_ORIGIN, credentials=True)
        # 405
        r = self.get(gw, "/app/tasks", method="DELETE", headers=dict(origin, **bearer()))
        self.assertEnvelope(r, 405, "METHOD_NOT_ALLOWED")
        self.browser_check(r, APP_ORIGIN, credentials=True)
        # an enveloped upstream 404
        h = dict(origin, **bearer())
        h.update(scripted(status=404, headers=[["Content-Type", "text/plain"]], body="nope"))
        r = self.get(gw, "/app/tasks/9", headers=h)
        self.assertEnvelope(r, 404, "NOT_FOUND")
        self.browser_check(r, APP_ORIGIN, credentials=True)
        # a wildcard origin
        r = self.get(gw, "/app/tasks", headers=dict(bearer(), Origin="https://x.example.net"))
        self.browser_check(r, "https://x.example.net", credentials=True)

    def test_disallowed_origin_gets_no_allow_origin(self):
        gw = self.setup_cors()
        for h in ({"Origin": "https://evil.com"}, {}):
            with self.subTest(headers=h):
                r = self.get(gw, "/app/tasks", headers=dict(h, **bearer()))
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.header_all("Access-Control-Allow-Origin"), [], r)
                self.assertEqual(r.header_all("Access-Control-Allow-Credentials"), [], r)
                self.assertVaryOrigin(r)

    def test_upstream_cors_headers_replaced(self):
        gw = self.setup_cors()
        own = [["Access-Control-Allow-Origin", "*"],
               ["Access-Control-Allow-Credentials", "false"],
               ["Access-Control-Expose-Headers", "X-Upstream-Secret"]]
        r = self.get(gw, "/app/tasks", headers=dict(bearer(), Origin=APP_ORIGIN,
                                                    **scripted(headers=own, json={"ok": 1})))
        self.assertEqual(r.status, 200, r)
        self.browser_check(r, APP_ORIGIN, credentials=True)
        self.assertNotIn("x-upstream-secret", header_tokens(r, "Access-Control-Expose-Headers"))
        # and for an origin the route does not allow, the upstream's * is gone too
        r = self.get(gw, "/app/tasks", headers=dict(bearer(), Origin="https://evil.com",
                                                    **scripted(headers=own, json={"ok": 1})))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header_all("Access-Control-Allow-Origin"), [], r)
        # enveloped error with the upstream's own *
        r = self.get(gw, "/app/tasks", headers=dict(bearer(), Origin=APP_ORIGIN, **scripted(
            status=404, headers=own, json={"error": "nope"})))
        self.assertEnvelope(r, 404, "NOT_FOUND")
        self.browser_check(r, APP_ORIGIN, credentials=True)

    def test_429_readable(self):
        gw = self.setup_cors(per_ip="2/1m")
        h = dict(bearer(), Origin=APP_ORIGIN)
        rs = [self.get(gw, "/app/tasks", headers=h) for _ in range(2)]
        self.assertEqual([r.status for r in rs], [200, 200], rs)
        r = self.get(gw, "/app/tasks", headers=h)
        self.assertEnvelope(r, 429, "RATE_LIMITED")
        self.assertIsNotNone(r.header("Retry-After"), r)
        self.browser_check(r, APP_ORIGIN, credentials=True)
        # a preflight is never refused by the limit
        r = self.preflight(gw, "/app/tasks", APP_ORIGIN)
        self.assertPreflightOk(r, APP_ORIGIN, credentials=True)

    def test_global_cors_and_route_replacement(self):
        a = self.up()
        port = free_port()
        c = gw_conf(port)
        c.set("cors", "origins", "https://global.example.org")
        c.set("cors", "credentials", "yes")
        c.set("cors", "max_age", "1h")
        add_upstream(c, "a", [a.port])
        add_route(c, "g", "/g", "a")
        add_route(c, "app", "/app", "a", cors_origins=APP_ORIGIN)
        gw = self.start(c, port)
        g = "https://global.example.org"
        r = self.preflight(gw, "/g/x", g)
        self.assertPreflightOk(r, g, credentials=True, max_age=3600)
        r = self.get(gw, "/g/x", headers={"Origin": g})
        self.assertEqual(r.status, 200, r)
        self.browser_check(r, g, credentials=True)
        # [cors] does not add to a route's own cors_origins...
        self.assertPreflightRefused(self.preflight(gw, "/app/x", g))
        r = self.get(gw, "/app/x", headers={"Origin": g})
        self.assertEqual(r.header_all("Access-Control-Allow-Origin"), [], r)
        # ...nor the route's to [cors]
        self.assertPreflightRefused(self.preflight(gw, "/g/x", APP_ORIGIN))
        # the route's cors_* replace [cors] as a whole: no credentials, default max_age
        r = self.preflight(gw, "/app/x", APP_ORIGIN)
        self.assertPreflightOk(r, APP_ORIGIN, credentials=False, max_age=600)
        r = self.get(gw, "/app/x", headers={"Origin": APP_ORIGIN})
        self.browser_check(r, APP_ORIGIN, credentials=False)
        self.assertEqual(r.header_all("Access-Control-Allow-Credentials"), [], r)


# ====================================================================== 7

class UpstreamHost(RoutingCase):
    def test_host_rewrites(self):
        a, b = self.up(), self.up()
        port = free_port()
        c = gw_conf(port)
        add_upstream(c, "plain", [a.port])
        add_upstream(c, "byname", ["localhost:%d" % b.port])
        add_upstream(c, "uphost", [a.port], host="upstream-level.internal")
        add_route(c, "keep", "/keep", "plain")
        add_route(c, "up", "/up", "plain", host="upstream")
        add_route(c, "named", "/named", "plain", host="backend.internal:8080")
        add_route(c, "byname", "/byname", "byname", host="upstream")
        add_route(c, "uplevel", "/uplevel", "uphost")
        add_route(c, "uplevelkeep", "/uplevelkeep", "uphost", host="keep")
        gw = self.start(c, port)
        client_host = "Client.Example.com:8080"
        for path, want in (("/keep/x", client_host),
                           ("/up/x", "127.0.0.1:%d" % a.port),
                           ("/named/x", "backend.internal:8080"),
                           ("/byname/x", "localhost:%d" % b.port),
                           ("/uplevel/x", "upstream-level.internal"),
                           ("/uplevelkeep/x", client_host)):
            with self.subTest(path=path):
                # a client's own X-Forwarded-Host is not believed (not a trusted proxy)
                r = self.get(gw, path, host=client_host,
                             headers={"X-Forwarded-Host": "spoofed.example"})
                self.assertEqual(r.status, 200, r)
                echo = r.json()
                self.assertEqual(echo_header(echo, "Host"), [want], echo["headers"])
                self.assertEqual(echo_header(echo, "X-Forwarded-Host"), [client_host],
                                 echo["headers"])

    def test_server_name_is_the_upstream_name(self):
        """host = upstream names the upstream's server_name when it has one."""
        a = self.up()
        port = free_port()
        c = gw_conf(port)
        add_upstream(c, "sn", [a.port], server_name="billing.internal")
        add_route(c, "sn", "/sn", "sn", host="upstream")
        path = os.path.join(tempfile.mkdtemp(prefix="envelopd-rt-"), "c.conf")
        self.addCleanup(shutil.rmtree, os.path.dirname(path), True)
        with open(path, "w") as f:
            f.write(c.text())
        p = run_envelopd(["-t", "-c", path], capture_output=True, text=True)
        if p.returncode != 0:
            self.skipTest("server_name without tls is refused by the conf: %s" % p.stderr.strip())
        gw = self.start(c, port)
        r = self.get(gw, "/sn/x", host="api.example.com")
        self.assertEqual(r.status, 200, r)
        echo = r.json()
        self.assertEqual(echo_header(echo, "Host"), ["billing.internal"], echo["headers"])
        self.assertEqual(echo_header(echo, "X-Forwarded-Host"), ["api.example.com"])


# ====================================================================== 8

class ConfConflicts(unittest.TestCase):
    HEAD = "[upstream u]\nserver = 127.0.0.1:9\n"

    def setUp(self):
        if not os.environ.get("ENVELOPD"):
            raise unittest.SkipTest("ENVELOPD is not set")
        self.dir = tempfile.mkdtemp(prefix="envelopd-rt-conf-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def check(self, text):
        path = os.path.join(self.dir, "envelopd.conf")
        with open(path, "w") as f:
            f.write(text)
        p = run_envelopd(["-t", "-c", path], capture_output=True, text=True,
                         stdin=subprocess.DEVNULL)
        return path, p

    @staticmethod
    def line_of(text, needle, nth=1):
        n = 0
        for i, ln in enumerate(text.splitlines(), 1):
            if needle in ln:
                n += 1
                if n == nth:
                    return i
        raise AssertionError("%r not in the conf" % needle)

    def assertBad(self, text, line, *words):
        path, p = self.check(text)
        self.assertEqual(p.returncode, 1, "stdout=%r stderr=%r\nconf:\n%s" % (p.stdout, p.stderr,
                                                                               text))
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        hit = [l for l in lines if l.startswith("%s:%d: " % (path, line))]
        self.assertTrue(hit, "no '%s:%d: ' line in stderr %r\nconf:\n%s" % (path, line, p.stderr,
                                                                            text))
        for w in words:
            self.assertIn(w, hit[0], hit[0])
        self.assertNotIn("configuration ok", p.stdout)
        return hit[0]

    def assertGood(self, text):
        path, p = self.check(text)
        self.assertEqual(p.returncode, 0, "stderr=%r\nconf:\n%s" % (p.stderr, text))

    def test_same_host_and_prefix(self):
        text = self.HEAD + ("[route a]\nhosts = api.example.com\nprefix = /v1\nupstream = u\n"
                            "[route b]\nprefix = /v1\nhosts = API.example.com.\nupstream = u\n")
        msg = self.assertBad(text, self.line_of(text, "hosts", 2), "hosts", "[route a]")
        self.assertIn("[route a] (line %d)" % self.line_of(text, "[route a]"), msg)
        # one host of a list shared is enough
        text = self.HEAD + ("[route a]\nhosts = x.example.com, y.example.com\nprefix = /\n"
                            "upstream = u\n"
                            "[route b]\nhosts = z.example.com, Y.EXAMPLE.COM\nprefix = /\n"
                            "upstream = u\n")
        self.assertBad(text, self.line_of(text, "hosts", 2), "[route a]")
        # the same wildcard
        text = self.HEAD + ("[route a]\nhosts = *.example.com\nprefix = /\nupstream = u\n"
                            "[route b]\nhosts = *.EXAMPLE.com\nprefix = /\nupstream = u\n")
        self.assertBad(text, self.line_of(text, "hosts", 2), "[route a]")
        # no hosts on either, same prefix in another case (routes_ignore_case)
        text = self.HEAD + ("[route a]\nprefix = /api\nupstream = u\n"
                            "[route b]\nprefix = /API\nupstream = u\n")
        self.assertBad(text, self.line_of(text, "prefix", 2), "[route a]")
        # same host, prefix and match_header (name in another case)
        text = self.HEAD + ("[route a]\nprefix = /api\nmatch_header = X-Api-Version: 2\n"
                            "upstream = u\n"
                            "[route b]\nprefix = /api\nmatch_header = x-api-version:2\n"
                            "upstream = u\n")
        path, p = self.check(text)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("[route a]", p.stderr)

    def test_distinct_routes_are_fine(self):
        self.assertGood(self.HEAD + (
            "[route a]\nhosts = api.example.com\nprefix = /v1\nupstream = u\n"
            "[route b]\nhosts = other.example.com, *.api.example.com\nprefix = /v1\nupstream = u\n"
            "[route c]\nprefix = /v1\nupstream = u\n"
            "[route d]\nprefix = /v1\nmatch_header = X-Api-Version: 2\nupstream = u\n"
            "[route e]\nhosts = api.example.com\nprefix = /v1\nmatch_header = X-Api-Version: 2\n"
            "upstream = u\n"
            "[route f]\nprefix = /v1\nupstream = u\ncors_origins = https://app.example.com\n"
            "cors_credentials = yes\nhosts = cors.example.com\n"))

    def test_malformed_wildcards(self):
        for bad in ("a.*.example.com", "*", "**.example.com", "*.1.2.3", "*example.com",
                    "example.*", "*.", "api_x.example.com"):
            with self.subTest(hosts=bad):
                text = self.HEAD + "[route a]\nprefix = /\nupstream = u\nhosts = %s\n" % bad
                self.assertBad(text, self.line_of(text, "hosts"), "hosts")

    def test_star_origins_with_credentials(self):
        text = self.HEAD + ("[route a]\nprefix = /\nupstream = u\ncors_origins = *\n"
                            "cors_credentials = yes\n")
        self.assertBad(text, self.line_of(text, "cors_credentials"))
        # "*" among other origins is refused by itself, on its own line
        text = self.HEAD + ("[route a]\nprefix = /\nupstream = u\n"
                            "cors_origins = https://a.example.com, *\ncors_credentials = yes\n")
        self.assertBad(text, self.line_of(text, "cors_origins"), "cors_origins")
        text = ("[cors]\norigins = *\ncredentials = yes\n" + self.HEAD +
                "[route a]\nprefix = /\nupstream = u\n")
        self.assertBad(text, self.line_of(text, "credentials"))
        # cors_* without cors_origins on the route
        text = self.HEAD + "[route a]\nprefix = /\nupstream = u\ncors_credentials = yes\n"
        self.assertBad(text, self.line_of(text, "cors_credentials"))


# ====================================================================== 9

class Misdirected(RoutingCase):
    def test_421_for_a_host_the_connection_is_not_for(self):
        if not shutil.which("openssl"):
            self.skipTest("the openssl command is not installed")
        d = tempfile.mkdtemp(prefix="envelopd-rt-tls-")
        self.addCleanup(shutil.rmtree, d, True)
        cert, key = os.path.join(d, "a.pem"), os.path.join(d, "a.key")
        p = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                            "-days", "2", "-subj", "/CN=a.example.test",
                            "-addext", "subjectAltName=DNS:a.example.test"],
                           capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        a = self.up()
        port, plain = free_port(), free_port()
        c = gw_conf(port)
        c.set("server", "listen", "127.0.0.1:%d tls, 127.0.0.1:%d" % (port, plain))
        c.set("tls", "certificate", cert)
        c.set("tls", "key", key)
        add_upstream(c, "a", [a.port])
        add_route(c, "a", "/", "a", hosts="a.example.test")
        gw = self.start(c, port)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(cert)

        def over_tls(host):
            raw = socket.create_connection(("127.0.0.1", port), timeout=scaled(5))
            with ctx.wrap_socket(raw, server_hostname="a.example.test") as s:
                s.sendall(request_bytes("GET", "/x", [("Connection", "close")], host=host))
                r, _, _ = read_one_response(s, scaled(5))
            self.assertIsNotNone(r, "no answer over TLS for Host %s" % host)
            return r

        r = over_tls("b.example.test")
        self.assertEnvelope(r, 421, "MISDIRECTED_REQUEST")
        self.assertEqual(a.stats()["requests"], 0)
        for host in ("a.example.test", "A.Example.Test.:%d" % port):
            with self.subTest(host=host):
                self.served_by(over_tls(host), a)
        # without TLS there is no SNI: the plain 404
        res = socket.create_connection(("127.0.0.1", plain), timeout=scaled(5))
        try:
            res.sendall(request_bytes("GET", "/x", [("Connection", "close")],
                                      host="b.example.test"))
            r, _, _ = read_one_response(res, scaled(5))
        finally:
            res.close()
        self.assertEnvelope(r, 404, "NOT_FOUND")


# ====================================================================== 10

class Reload(RoutingCase):
    def conf(self, port, hosts, profile, upstream):
        c = gw_conf(port, profile="flat")
        add_upstream(c, "a", [self.a.port])
        add_upstream(c, "b", [self.b.port])
        add_route(c, "api", "/", upstream, hosts=hosts, profile=profile)
        return c

    def test_sighup_changes_hosts_and_profile(self):
        self.a, self.b = self.up(), self.up()
        port = free_port()
        gw = self.start(self.conf(port, "api.example.com", "nested", "a"), port)
        s404 = scripted(status=404, headers=[["Content-Type", "text/plain"]], body="missing")
        self.served_by(self.get(gw, "/x", host="api.example.com"), self.a)
        self.assertProfile(self.get(gw, "/x", host="api.example.com", headers=s404), "nested",
                           404, "NOT_FOUND", "missing")
        self.no_route(self.get(gw, "/x", host="api.example.org"), "flat")
        # a keep-alive connection opened before the reload
        ka = gw.connection()
        self.addCleanup(ka.close)
        self.served_by(gw.request("GET", "/x", headers={"Host": "api.example.com"}, conn=ka),
                       self.a)

        n = len(gw.events("reload"))
        gw.write_conf(self.conf(port, "api.example.org, *.api.example.org", "problem", "b"))
        os.kill(gw.pid, signal.SIGHUP)
        ok = wait_until(lambda: len(gw.events("reload")) > n or gw.events("reload_failed"),
                        scaled(5))
        self.assertTrue(ok, "no reload line:\n%s" % gw.stdout_text()[-2000:])
        self.assertEqual(gw.events("reload_failed"), [], gw.stdout_text()[-2000:])

        self.no_route(self.get(gw, "/x", host="api.example.com"), "flat")
        self.served_by(self.get(gw, "/x", host="api.example.org"), self.b)
        self.served_by(self.get(gw, "/x", host="eu.api.example.org"), self.b)
        self.assertProfile(self.get(gw, "/x", host="api.example.org", headers=s404), "problem",
                           404, "NOT_FOUND", "missing")
        # the next request on the old connection starts after the reload too
        r = gw.request("GET", "/x", headers={"Host": "api.example.org"}, conn=ka)
        self.served_by(r, self.b)
        r = gw.request("GET", "/x", headers={"Host": "api.example.com"}, conn=ka)
        self.no_route(r, "flat")


if __name__ == "__main__":
    unittest.main()
