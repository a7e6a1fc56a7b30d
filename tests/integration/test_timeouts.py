"""Whose clock runs: upstream timeouts versus slow clients, and pooled
connections after bodiless responses (regressions from a review).

- A client that uploads slowly must not earn the upstream a 504 and a
  "down" mark: while the upstream has read everything it was given, only the
  client's body deadline runs.
- A client that reads slowly must not be cut by the upstream's idle timer
  while the gateway itself paused reading the upstream; its own send
  deadline (client_timeout) is what applies.
- Responses without a body (204, empty 200, HEAD) must leave the pooled
  upstream connection reusable.
"""

import socket
import time
import unittest

from harness import GatewayTestCase, base_conf, free_port, request_bytes, script_header, scripted

API = "/api/v1/tasks"


class Timeouts(GatewayTestCase):
    def gw_with(self, up, **server):
        port = free_port()
        c = base_conf(port, [up.port])
        c.set("upstream tasks", "timeout", "1s")
        for k, v in server.items():
            c.set("server", k, v)
        return self.gateway(c, port)

    def test_slow_upload_is_not_an_upstream_timeout(self):
        up = self.upstream()
        gw = self.gw_with(up, client_timeout="10s")
        s = gw.sock()
        self.addCleanup(s.close)
        s.sendall(request_bytes("POST", API + "/slow", [("Content-Length", "10")]) + b"hello")
        time.sleep(2.0)  # twice the upstream timeout, well inside client_timeout
        # meanwhile another client is served: the server was not marked down
        self.assertEqual(gw.request("GET", API + "/other").status, 200)
        s.sendall(b"world")
        s.settimeout(5)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:200])
        self.assertFalse([e for e in gw.events("upstream_down")], gw.events("upstream_down"))
        self.assertFalse([e for e in gw.events("upstream_timeout")])

    def test_slow_reader_is_not_cut_by_the_upstream_timer(self):
        up = self.upstream()
        gw = self.gw_with(up, client_timeout="10s")
        size = 8 * 1024 * 1024
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.addCleanup(s.close)
        s.connect(("127.0.0.1", gw.port))
        s.sendall(request_bytes("GET", API + "/big",
                                [("X-Test-Script", script_header(status=200, body_size=size)),
                                 ("Connection", "close")]))
        time.sleep(2.5)  # the gateway pauses the upstream; its 1 s timer must not fire
        s.settimeout(10)
        got = b""
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            got += chunk
        head, _, body = got.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), head[:200])
        self.assertEqual(len(body), size)
        self.assertFalse(gw.events("upstream_timeout"), gw.events("upstream_timeout"))

    def test_client_that_never_reads_is_cut_by_its_send_deadline(self):
        up = self.upstream()
        gw = self.gw_with(up, client_timeout="1s")
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.addCleanup(s.close)
        s.connect(("127.0.0.1", gw.port))
        t0 = time.monotonic()
        s.sendall(request_bytes("GET", API + "/big",
                                [("X-Test-Script", script_header(status=200,
                                                                 body_size=8 * 1024 * 1024))]))
        ev = gw.wait_log(lambda l: l.get("event") == "client_timeout", 6)
        self.assertIsNotNone(ev, "a client that reads nothing held the response for good")
        self.assertLess(time.monotonic() - t0, 5)
        self.assertAlive(gw)

    def test_bodiless_responses_keep_the_upstream_connection(self):
        for name, script, method in (("204", {"status": 204, "framing": "none"}, "GET"),
                                     ("empty 200", {"status": 200, "body": ""}, "GET"),
                                     ("HEAD", {"status": 200, "body": "hello"}, "HEAD")):
            with self.subTest(name):
                up = self.upstream(default=script)
                gw = self.gw_with(up)
                c = gw.connection()
                self.addCleanup(c.close)
                for _ in range(5):
                    r = gw.request(method, API, conn=c)
                    self.assertEqual(r.status, script["status"], r)
                st = up.stats()
                self.assertEqual(st["requests"], 5)
                self.assertEqual(st["connections"], 1,
                                 "%s: %d upstream connections for 5 requests" % (
                                     name, st["connections"]))


if __name__ == "__main__":
    unittest.main()
