"""Protocol upgrades (WebSocket): a request with Connection: upgrade and
Upgrade that the upstream accepts with 101 becomes a tunnel, relayed both
ways untouched until either side closes or tunnel_timeout passes idle.
Everything else about the request (routing, limits, correlation, the access
line) is as for any other request; an upstream that declines answers as
usual, and a 101 nobody asked for is still a 502 envelope."""

import base64
import hashlib
import os
import signal
import socket
import threading
import time
import unittest

from test_admin import admin_get, parse_metrics
from harness import (SLOW, Gateway, Upstream, base_conf, binary_is_sanitized, free_port,
                     is_generated_id, read_until_close, rss_kib, scaled, script_header,
                     wait_until, ws_client_frame)

API = "/api/v1/tasks/live"
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def b64(data):
    return base64.b64encode(data).decode()


def upgrade_request(script=None, extra="", path=API, version="1.1", upgrade="websocket",
                    connection="Upgrade", key=None):
    lines = ["GET %s HTTP/%s" % (path, version), "Host: gw.test"]
    if connection:
        lines.append("Connection: %s" % connection)
    if upgrade:
        lines.append("Upgrade: %s" % upgrade)
    if key:
        lines += ["Sec-WebSocket-Key: %s" % key, "Sec-WebSocket-Version: 13"]
    if script is not None:
        lines.append("X-Test-Script: %s" % script_header(**script))
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


def read_head(s, timeout=5):
    """Read up to the end of a response head: (status, headers dict, bytes after)."""
    deadline = time.monotonic() + scaled(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("no response head within %ss: %r" % (timeout, data))
        s.settimeout(left)
        chunk = s.recv(65536)
        if not chunk:
            raise AssertionError("closed before a response head: %r" % data)
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        k, v = line.split(":", 1)
        headers.setdefault(k.strip().lower(), []).append(v.strip())
    return status, headers, rest


def read_exact(s, n, timeout=5, have=b""):
    deadline = time.monotonic() + scaled(timeout)
    data = have
    while len(data) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("got %d of %d bytes" % (len(data), n))
        s.settimeout(left)
        chunk = s.recv(65536)
        if not chunk:
            raise AssertionError("closed after %d of %d bytes" % (len(data), n))
        data += chunk
    return data


def ws_read_frame(s, have=b""):
    """One unmasked server frame: (opcode, payload, rest)."""
    data = read_exact(s, 2, have=have)
    n = data[1] & 0x7F
    off = 2
    if n == 126:
        data = read_exact(s, 4, have=data)
        n = int.from_bytes(data[2:4], "big")
        off = 4
    data = read_exact(s, off + n, have=data)
    return data[0] & 0x0F, data[off:off + n], data[off + n:]


class TunnelBase(unittest.TestCase):
    tunnel_timeout = None

    def setUp(self):
        self.up = Upstream()
        self.addCleanup(self.up.stop)
        self.port = free_port()
        c = base_conf(self.port, [self.up.port])
        if self.tunnel_timeout:
            c.set("upstream tasks", "tunnel_timeout", self.tunnel_timeout)
        self.make_conf(c)
        self.conf = c
        self.gw = Gateway(c, self.port)
        self.addCleanup(self.gw.cleanup)

    def make_conf(self, c):
        pass

    def open_tunnel(self, extra_bytes=b"", **script):
        script.setdefault("action", "upgrade")
        s = self.gw.sock()
        self.addCleanup(s.close)
        s.sendall(upgrade_request(script) + extra_bytes)
        status, headers, rest = read_head(s)
        self.assertEqual(status, 101, headers)
        return s, headers, rest

    def upstream_open(self):
        """Connections open at the upstream, not counting the one asking."""
        return self.up.stats()["open"] - 1

    def access_line(self, rid):
        line = self.gw.wait_access(rid)
        self.assertIsNotNone(line, "no access line for %s" % rid)
        return line


class Tunnel(TunnelBase):
    def test_websocket_handshake_and_frames(self):
        key = b64(os.urandom(16))
        s = self.gw.sock()
        self.addCleanup(s.close)
        s.sendall(upgrade_request({"action": "upgrade", "tunnel": "ws"}, key=key,
                                  extra="X-Request-Id: ws-corr-1\r\n"))
        status, h, rest = read_head(s)
        self.assertEqual(status, 101)
        self.assertEqual(h["upgrade"], ["websocket"])
        self.assertEqual([v.lower() for v in h["connection"]], ["upgrade"])
        accept = b64(hashlib.sha1(key.encode() + WS_GUID).digest())
        self.assertEqual(h["sec-websocket-accept"], [accept])
        self.assertEqual(h["x-correlation-id"], ["ws-corr-1"])
        for name in ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"):
            self.assertIn(name, h)
        self.assertNotIn("content-length", h)
        self.assertNotIn("transfer-encoding", h)
        # What the upstream was asked: the upgrade, the WebSocket headers, the ID.
        got = dict((k.lower(), v) for k, v in self.up.stats()["last"]["headers"])
        self.assertEqual(got["upgrade"], "websocket")
        self.assertEqual(got["connection"].lower(), "upgrade")
        self.assertEqual(got["sec-websocket-key"], key)
        self.assertEqual(got["x-correlation-id"], "ws-corr-1")
        for i, msg in enumerate([b"hello", b"x" * 300, "caf\u00e9".encode()]):
            s.sendall(ws_client_frame(1, msg))
            op, payload, rest = ws_read_frame(s, rest)
            self.assertEqual((op, payload), (1, b"echo:" + msg), "frame %d" % i)
        s.sendall(ws_client_frame(9, b"are you there"))
        op, payload, rest = ws_read_frame(s, rest)
        self.assertEqual((op, payload), (10, b"are you there"))
        s.sendall(ws_client_frame(8, (1000).to_bytes(2, "big")))
        op, payload, rest = ws_read_frame(s, rest)
        self.assertEqual((op, payload), (8, (1000).to_bytes(2, "big")))
        end = read_until_close(s, scaled(3))
        self.assertTrue(end.closed, "the gateway kept the connection after the upstream closed")
        self.assertEqual(end.data, b"")
        line = self.access_line("ws-corr-1")
        self.assertEqual(line["status"], 101)
        self.assertEqual(line["upstream_status"], 101)
        self.assertIsNone(line["error_code"])
        self.assertEqual(line["method"], "GET")
        self.assertEqual(line["path"], API)
        self.assertGreater(line["bytes_in"], 300)
        self.assertGreater(line["bytes_out"], 300)

    def test_bytes_before_and_with_the_101_are_kept(self):
        # Client bytes right behind the request head, and upstream bytes in
        # the same write as its 101, belong to the new protocol.
        s, h, rest = self.open_tunnel(extra_bytes=b"early-client-bytes",
                                      greeting_b64=b64(b"GREETING|"))
        want = b"GREETING|early-client-bytes"
        self.assertEqual(read_exact(s, len(want), have=rest), want)

    def test_large_transfer_both_ways_is_byte_exact(self):
        # 6 MiB each way at once: more than every buffer on the path, so the
        # gateway's flow control (pause reading one side while the other is
        # behind) has to work for the echo to come back whole.
        s, h, rest = self.open_tunnel(tunnel="echo")
        data = os.urandom(6 * 1024 * 1024)
        err = []

        def writer():
            try:
                s.sendall(data)
            except OSError as e:
                err.append(e)

        t = threading.Thread(target=writer)
        t.start()
        got = read_exact(s, len(data), timeout=60, have=rest)
        t.join(scaled(10))
        self.assertEqual(err, [])
        self.assertEqual(len(got), len(data))
        self.assertTrue(got == data, "the echo differs from what was sent")

    def test_slow_reader_holds_the_upstream_back(self):
        # The client does not read while 16 MiB go through the echo: the
        # gateway must stop reading the upstream (and so the client) rather
        # than buffer it all.
        s, h, rest = self.open_tunnel(tunnel="echo")
        blob = os.urandom(16 * 1024 * 1024)
        rss0 = rss_kib(self.gw.pid)
        sender = threading.Thread(target=lambda: _sendall_quietly(s, blob))
        sender.start()
        time.sleep(scaled(1.5))
        rss1 = rss_kib(self.gw.pid)
        got = read_exact(s, len(blob), timeout=60, have=rest)
        sender.join(scaled(10))
        self.assertTrue(got == blob, "the echo differs from what was sent")
        if not SLOW and not binary_is_sanitized():
            self.assertLess(rss1 - rss0, 4096, "envelopd buffered the stalled tunnel: RSS "
                            "%d -> %d KiB" % (rss0, rss1))

    def test_client_half_close_reaches_the_upstream(self):
        # FIN from the client: the upstream sees its own EOF (and may still
        # answer), then its close ends the tunnel.
        s, h, rest = self.open_tunnel(tunnel="echo", on_eof_b64=b64(b"bye"))
        s.sendall(b"last words")
        self.assertEqual(read_exact(s, 10, have=rest), b"last words")
        s.shutdown(socket.SHUT_WR)
        end = read_until_close(s, scaled(3))
        self.assertEqual(end.data, b"bye")
        self.assertTrue(end.closed)
        self.assertTrue(wait_until(lambda: self.upstream_open() == 0, scaled(3)),
                        "the upstream connection was left open")

    def test_upstream_close_ends_the_tunnel_and_is_not_pooled(self):
        s, h, rest = self.open_tunnel(tunnel="close", greeting_b64=b64(b"only this"))
        end = read_until_close(s, scaled(3))
        self.assertEqual(rest + end.data, b"only this")
        self.assertTrue(end.closed)
        rid = h["x-correlation-id"][0]
        self.assertTrue(is_generated_id(rid))
        self.assertEqual(self.access_line(rid)["status"], 101)
        # The next request needs a new upstream connection: a switched one
        # never goes back to the pool.
        before = self.up.stats()["last"]["conn_id"]
        r = self.gw.request("GET", API)
        self.assertEqual(r.status, 200)
        self.assertNotEqual(r.json()["conn_id"], before)

    def test_a_client_still_sending_gets_every_byte_after_the_upstream_closed(self):
        # The upstream sends 4 MiB and closes while the client, reading
        # slowly, keeps sending (as a WebSocket peer answering a close
        # does): closing on the client's unread bytes would reset the
        # connection and drop what the kernel had not delivered yet.
        n = 4 * 1024 * 1024
        s, h, rest = self.open_tunnel(tunnel="close", greeting_size=n)
        got = bytearray(rest)
        reset = False
        s.settimeout(scaled(10))
        while True:
            try:
                chunk = s.recv(16384)
            except ConnectionResetError:
                reset = True
                break
            if not chunk:
                break
            got += chunk
            try:
                s.sendall(b".")
            except OSError:
                pass
        self.assertFalse(reset, "reset after %d of %d bytes" % (len(got), n))
        self.assertEqual(len(got), n)
        self.assertTrue(bytes(got) == (bytes(range(256)) * (n // 256))[:n])

    def test_an_upstream_reset_resets_the_client(self):
        # A broken upstream must not look like a clean end to the client.
        s, h, rest = self.open_tunnel(tunnel="reset")
        end = read_until_close(s, scaled(3))
        self.assertTrue(end.reset, "the client saw a clean close: %r" % end)
        self.assertEqual(self.access_line(h["x-correlation-id"][0])["status"], 101)

    def test_client_reset_closes_the_upstream_and_logs_101(self):
        s, h, rest = self.open_tunnel(tunnel="echo")
        rid = h["x-correlation-id"][0]
        self.assertTrue(wait_until(lambda: self.upstream_open() == 1, scaled(2)))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
        self.assertTrue(wait_until(lambda: self.upstream_open() == 0, scaled(3)),
                        "the upstream connection outlived the client")
        line = self.access_line(rid)
        self.assertEqual(line["status"], 101, "a tunnel the client ends is no 499")
        self.assertIsNone(line["error_code"])
        self.assertTrue(self.gw.alive())

    def test_upstream_declining_answers_as_usual(self):
        # 426 from the upstream: an envelope, and the connection stays an
        # HTTP connection that serves the next request.
        s = self.gw.sock()
        self.addCleanup(s.close)
        s.sendall(upgrade_request({"status": 426, "json": {"message": "Use WebSocket v13"}}))
        status, h, rest = read_head(s)
        self.assertEqual(status, 426)
        self.assertTrue(h["content-type"][0].startswith("application/json"))
        body = read_exact(s, int(h["content-length"][0]), have=rest)
        self.assertIn(b'"Use WebSocket v13"', body)
        s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % API.encode())
        status, h, rest = read_head(s)
        self.assertEqual(status, 200)

    def test_101_without_upgrade_header_is_502(self):
        s = self.gw.sock()
        self.addCleanup(s.close)
        s.sendall(upgrade_request({"action": "upgrade", "upgrade_header": False}))
        status, h, rest = read_head(s)
        self.assertEqual(status, 502)
        self.assertTrue(self.gw.wait_log(lambda l: l.get("event") == "upstream_invalid" and
                                         "101" in l.get("message", "")))

    def test_101_to_a_plain_request_is_502(self):
        r = self.gw.request("GET", API, headers={
            "X-Test-Script": script_header(action="upgrade")})
        self.assertEqual(r.status, 502)
        self.assertEqual(r.json()["error"]["code"], "BAD_GATEWAY")

    def test_upgrade_only_for_http11_requests_without_body(self):
        # HTTP/1.0 cannot switch, and a request with a body is not taken up:
        # both go upstream as plain requests, Upgrade and Connection dropped.
        s = self.gw.sock()
        self.addCleanup(s.close)
        s.sendall(upgrade_request({"echo": True}, version="1.0"))
        status, h, rest = read_head(s)
        self.assertEqual(status, 200)
        got = [k.lower() for k, v in self.up.stats()["last"]["headers"]]
        self.assertNotIn("upgrade", got)
        r = self.gw.request("POST", API, body=b"{}", headers={
            "Connection": "Upgrade", "Upgrade": "h2c", "Content-Type": "application/json"})
        self.assertEqual(r.status, 200)
        got = [k.lower() for k, v in self.up.stats()["last"]["headers"]]
        self.assertNotIn("upgrade", got)
        # Upgrade without "upgrade" in Connection is not an upgrade either.
        r = self.gw.request("GET", API, headers={"Upgrade": "websocket"})
        self.assertEqual(r.status, 200)
        got = [k.lower() for k, v in self.up.stats()["last"]["headers"]]
        self.assertNotIn("upgrade", got)

    def test_reload_keeps_an_open_tunnel(self):
        s, h, rest = self.open_tunnel(tunnel="echo")
        self.conf.set("server", "log_level", "debug")
        self.gw.write_conf(self.conf)
        os.kill(self.gw.pid, signal.SIGHUP)
        self.assertTrue(self.gw.wait_log(lambda l: l.get("event") == "reload"))
        s.sendall(b"after reload")
        self.assertEqual(read_exact(s, 12, have=rest), b"after reload")


class TunnelMetrics(TunnelBase):
    def setUp(self):
        self.admin = free_port()
        super().setUp()

    def make_conf(self, c):
        c.set("admin", "listen", "127.0.0.1:%d" % self.admin)

    def test_tunnel_counts_once_with_the_time_to_switch(self):
        # requests_total counts the tunnel when it switches; the latency
        # histogram gets the time to the 101, not the tunnel's life.
        s, h, rest = self.open_tunnel(tunnel="echo")
        rid = h["x-correlation-id"][0]
        time.sleep(1.2)
        s.close()
        line = self.access_line(rid)
        self.assertGreater(line["duration_ms"], 1100, "the access line has the whole tunnel")
        st, _, body = admin_get(self.admin, "/metrics")
        self.assertEqual(st, 200)
        m = parse_metrics(body)
        route = frozenset({("route", "tasks")})
        self.assertEqual(m[("envelopd_requests_total",
                            frozenset({("route", "tasks"), ("code", "1xx")}))], 1)
        self.assertEqual(m[("envelopd_request_duration_seconds_count", route)], 1)
        self.assertLess(m[("envelopd_request_duration_seconds_sum", route)], 1.0)


class TunnelRules(TunnelBase):
    def make_conf(self, c):
        c.set("limits", "per_ip", "1/1m")
        c.set("route tasks", "require_token", "no")
        c.add("route private", "prefix", "/private")
        c.set("route private", "upstream", "tasks")
        c.set("route private", "require_token", "yes")

    def test_an_upgrade_is_limited_like_any_request(self):
        s, h, rest = self.open_tunnel(tunnel="echo")
        self.assertEqual(h["x-ratelimit-remaining"], ["0"])
        s2 = self.gw.sock()
        self.addCleanup(s2.close)
        s2.sendall(upgrade_request({"action": "upgrade"}))
        status, h2, rest2 = read_head(s2)
        self.assertEqual(status, 429)
        self.assertIn("retry-after", h2)
        body = read_exact(s2, int(h2["content-length"][0]), have=rest2)
        self.assertIn(b'"RATE_LIMITED"', body)
        self.assertEqual(self.up.stats()["requests"], 1, "the limited upgrade reached the upstream")

    def test_an_upgrade_needs_the_token_the_route_requires(self):
        s = self.gw.sock()
        self.addCleanup(s.close)
        s.sendall(upgrade_request({"action": "upgrade"}, path="/private/ws"))
        status, h, rest = read_head(s)
        self.assertEqual(status, 401)
        self.assertEqual(self.up.stats()["requests"], 0)


class TunnelIdle(TunnelBase):
    tunnel_timeout = "1s"

    def test_idle_tunnel_is_closed(self):
        s, h, rest = self.open_tunnel(tunnel="echo")
        # Traffic keeps it open past the timeout...
        for i in range(3):
            time.sleep(0.5)
            s.sendall(b"tick")
            self.assertEqual(read_exact(s, 4, have=rest), b"tick")
            rest = b""
        # ...silence closes it.
        t0 = time.monotonic()
        end = read_until_close(s, scaled(5))
        self.assertTrue(end.closed)
        self.assertGreater(time.monotonic() - t0, 0.8)
        self.assertTrue(self.gw.wait_log(lambda l: l.get("event") == "tunnel_timeout"))
        self.assertTrue(wait_until(lambda: self.upstream_open() == 0, scaled(3)))


class TunnelDrain(unittest.TestCase):
    def test_sigterm_keeps_tunnels_until_shutdown_timeout(self):
        up = Upstream()
        self.addCleanup(up.stop)
        port = free_port()
        c = base_conf(port, [up.port])
        c.set("server", "shutdown_timeout", "2s")
        gw = Gateway(c, port)
        self.addCleanup(gw.cleanup)
        s = gw.sock()
        self.addCleanup(s.close)
        s.sendall(upgrade_request({"action": "upgrade", "tunnel": "echo"}))
        status, h, rest = read_head(s)
        self.assertEqual(status, 101)
        t0 = time.monotonic()
        os.kill(gw.pid, signal.SIGTERM)
        # Draining: the tunnel still carries bytes, as an in-flight request would.
        time.sleep(0.3)
        s.sendall(b"still here")
        self.assertEqual(read_exact(s, 10, have=rest), b"still here")
        self.assertEqual(gw.proc.wait(scaled(10)), 0)
        self.assertGreater(time.monotonic() - t0, 1.5, "the tunnel was cut before shutdown_timeout")
        self.assertTrue(read_until_close(s, scaled(2)).closed)


def _sendall_quietly(s, data):
    try:
        s.sendall(data)
    except OSError:
        pass


if __name__ == "__main__":
    unittest.main()
