"""Hostile and broken upstreams: invalid responses, deaths, silence.

Invalid responses become 502 envelopes (quickly, not after the timeout),
silence becomes a 504 envelope, a death mid-body cuts the client connection
without a clean end, and the gateway keeps serving.

Run: cd tests/integration && ENVELOPD=/path/to/envelopd python3 -m unittest -v test_hostile_upstream
"""

import base64
import json
import time
import unittest

from harness import GatewayTestCase, read_until_close, request_bytes, scripted

API = "/api/v1/tasks"
UP_TIMEOUT = 2.0   # base_conf's [upstream] timeout


class HostileUpstream(GatewayTestCase):
    def setUp(self):
        super().setUp()
        self.gw, (self.up,) = self.simple()

    def bad(self, method="POST", status=502, code="BAD_GATEWAY", max_elapsed=1.5, **script):
        t0 = time.monotonic()
        r = self.gw.request(method, API, headers=scripted(**script),
                            body=b"{}" if method == "POST" else None, timeout=15)
        elapsed = time.monotonic() - t0
        self.assertEnvelope(r, status, code)
        self.assertLessEqual(elapsed, max_elapsed, "%s took %.2fs" % (script, elapsed))
        self.assertGreaterEqual(self.up.stats()["requests"], 1)
        self.assertAlive(self.gw)
        return r, elapsed

    def test_garbage_status_line_502(self):
        self.bad(action="garbage")

    def test_garbage_status_line_get_502(self):
        self.bad("GET", action="garbage", max_elapsed=3.0)

    def test_huge_response_headers_502(self):
        self.bad(action="huge_headers", header_bytes=512 * 1024, body="ok")

    def test_cl_and_te_in_response_502(self):
        self.bad(framing="cl+te", body="hello world")

    def test_invalid_content_length_in_response_502(self):
        raw = b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\nhello"
        self.bad(action="raw", raw_b64=base64.b64encode(raw).decode())

    def test_two_differing_content_lengths_in_response_502(self):
        raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello!!"
        self.bad(action="raw", raw_b64=base64.b64encode(raw).decode())

    def test_http09_style_response_502(self):
        self.bad(action="raw", raw_b64=base64.b64encode(b"hello there\n").decode())

    def test_close_before_headers_502(self):
        self.bad(action="close")

    def test_reset_before_headers_502(self):
        self.bad(action="reset")

    def test_reset_before_headers_get_502(self):
        # a GET may be retried (retries = 2), but every attempt is reset
        r, _ = self.bad("GET", action="reset", max_elapsed=3.0)
        self.assertLessEqual(self.up.stats()["requests"], 3)

    def test_no_answer_504(self):
        t0 = time.monotonic()
        r = self.gw.request("POST", API, headers=scripted(action="hang"), body=b"{}", timeout=15)
        elapsed = time.monotonic() - t0
        self.assertEnvelope(r, 504, "GATEWAY_TIMEOUT")
        self.assertGreaterEqual(elapsed, UP_TIMEOUT - 0.2, elapsed)
        self.assertLessEqual(elapsed, UP_TIMEOUT + 1.0, elapsed)
        self.assertAlive(self.gw)

    def test_headers_late_504(self):
        t0 = time.monotonic()
        r = self.gw.request("GET", API, headers=scripted(delay=UP_TIMEOUT + 2, body="late"), timeout=15)
        elapsed = time.monotonic() - t0
        self.assertEnvelope(r, 504, "GATEWAY_TIMEOUT")
        self.assertLessEqual(elapsed, UP_TIMEOUT + 1.0, elapsed)

    def test_trickled_headers_504(self):
        # one header byte every 0.3 s: the response deadline is not reset per read
        t0 = time.monotonic()
        r = self.gw.request("POST", API, headers=scripted(trickle=0.3, body="late"), body=b"{}",
                            timeout=20)
        elapsed = time.monotonic() - t0
        self.assertEnvelope(r, 504, "GATEWAY_TIMEOUT")
        self.assertLessEqual(elapsed, UP_TIMEOUT + 1.0, elapsed)

    def test_extra_bytes_after_body_not_taken_as_next_response(self):
        # an upstream that sends more than its Content-Length must not desync the pool
        raw = (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
               b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\nX-Smuggled: yes\r\n\r\nSMUGGLED")
        r = self.gw.request("GET", API, headers=scripted(action="raw", keep_open=True,
                                                         raw_b64=base64.b64encode(raw).decode()))
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"ok")
        for i in range(3):
            r = self.gw.request("GET", API + "/next%d" % i)
            self.assertNotEqual(r.body, b"SMUGGLED", "response desync: a smuggled upstream "
                                                      "response answered another request")
            self.assertIsNone(r.header("X-Smuggled"))
            self.assertEqual(r.status, 200, r)
            self.assertEqual(json.loads(r.body)["target"], API + "/next%d" % i)

    def death_mid_body(self, **script):
        res = self.gw.raw_ex(request_bytes("GET", API, list(scripted(**script).items())), 5)
        self.assertTrue(res.closed, "client connection not closed after the upstream died: %r" % res)
        self.assertLess(res.elapsed, 3.0, res)
        rs = [r for r in res.responses() if r.status >= 200]
        self.assertTrue(rs, res)
        r = rs[0]
        if r.status == 200:
            self.assertFalse(r.complete, "a cut-short body was relayed as a clean, complete "
                                         "response: %r" % res)
        else:  # the gateway buffered and answered with an error instead: acceptable
            self.assertEnvelope(r, 502, "BAD_GATEWAY")
        self.assertAlive(self.gw)

    def test_death_mid_body_content_length(self):
        self.death_mid_body(action="die_mid_body", body_size=200000)

    def test_death_mid_body_chunked(self):
        self.death_mid_body(action="die_mid_body", body_size=200000, framing="chunked",
                            chunk_size=4096)

    def test_upstream_killed_mid_body(self):
        # the process dies (SIGKILL) while the body is being streamed
        s = self.gw.sock()
        self.addCleanup(s.close)
        s.sendall(request_bytes("GET", API, list(scripted(body_size=20 * 1024 * 1024).items())))
        first = s.recv(4096)
        self.assertTrue(first.startswith(b"HTTP/1.1 200"), first)
        self.up.kill()
        res = read_until_close(s, 10)
        self.assertTrue(res.closed, "client not closed after the upstream was killed")
        total = len(first) + len(res.data)
        self.assertLess(total, 20 * 1024 * 1024, "the whole body arrived?")
        self.assertTrue(self.gw.alive())

    def test_interim_1xx_then_final(self):
        raw = (b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
               b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        r = self.gw.request("GET", API, headers=scripted(action="raw", raw_b64=base64.b64encode(raw).decode()))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"ok")

    def test_huge_error_body_enveloped(self):
        body = json.dumps({"error": "x" * (8 * 1024 * 1024)})
        self.up.queue(dict(status=500, body=body, headers=[["Content-Type", "application/json"]]))
        t0 = time.monotonic()
        r = self.gw.request("GET", API, timeout=15)
        self.assertEnvelope(r, 500, "INTERNAL_ERROR")
        self.assertLess(len(r.body), 64 * 1024)
        self.assertLess(time.monotonic() - t0, 5.0)
        self.assertAlive(self.gw)

    def test_invalid_gzip_error_body(self):
        r = self.gw.request("GET", API, headers=scripted(
            status=404, body="this is not gzip at all",
            headers=[["Content-Type", "application/json"], ["Content-Encoding", "gzip"]]))
        body = self.assertEnvelope(r, 404, "NOT_FOUND")
        self.assertNotIn("not gzip", json.dumps(body))
        self.assertAlive(self.gw)

    def test_deeply_nested_error_json(self):
        nested = "[" * 100000 + "]" * 100000
        self.up.queue(dict(status=400, body=nested, headers=[["Content-Type", "application/json"]]))
        r = self.gw.request("GET", API)
        self.assertEnvelope(r, 400, "BAD_REQUEST")
        self.assertAlive(self.gw)

    def test_invalid_utf8_error_body(self):
        raw = b'{"error": "bad \xff\xfe bytes \xc3"}'
        r = self.gw.request("GET", API, headers=scripted(
            status=404, body_b64=base64.b64encode(raw).decode(),
            headers=[["Content-Type", "application/json"]]))
        self.assertEnvelope(r, 404, "NOT_FOUND")
        r.body.decode("utf-8")  # the envelope itself is valid UTF-8

    def test_still_serving_after_all_that(self):
        for sc in (dict(action="garbage"), dict(action="reset"), dict(framing="cl+te", body="x")):
            self.gw.request("POST", API, headers=scripted(**sc), body=b"{}")
        for _ in range(5):
            self.assertEqual(self.gw.request("GET", API).status, 200)


if __name__ == "__main__":
    unittest.main()
