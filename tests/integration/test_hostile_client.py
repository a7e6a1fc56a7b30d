"""Hostile and broken clients: smuggling patterns, limits, slow clients, early closes.

Every malformed request gets a 4xx envelope with Connection: close, the
gateway closes, the request never reaches the upstream, and the gateway
keeps serving the next client.

Run: cd tests/integration && ENVELOPD=/path/to/envelopd python3 -m unittest -v test_hostile_client
"""

import json
import random
import select
import socket
import time
import unittest

from harness import (GatewayTestCase, RawResult, read_one_response, read_until_close, request_bytes,
                     scripted)

API = "/api/v1/tasks"
CLIENT_TIMEOUT = 2.0   # base_conf's client_timeout


class Hostile(GatewayTestCase):
    def setUp(self):
        super().setUp()
        self.gw, (self.up,) = self.simple()

    def reject(self, data, status=400, code="BAD_REQUEST", timeout=4):
        """Send DATA; expect one STATUS envelope, Connection: close, a close,
        nothing forwarded, and a gateway still serving."""
        res = self.gw.raw_ex(data, timeout)
        r = self.assertClosedAfter(res, status, code)
        self.assertEqual(self.up.stats()["requests"], 0,
                         "the rejected request (or a smuggled one) reached the upstream")
        self.assertAlive(self.gw)
        return r

    # -- framing / smuggling
    def test_cl_and_te_together(self):
        smuggled = request_bytes("GET", API + "/smuggled")
        body = b"0\r\n\r\n" + smuggled
        self.reject(request_bytes("POST", API, [("Content-Length", str(len(body))),
                                                ("Transfer-Encoding", "chunked")], body))

    def test_te_and_cl_together_reversed_order(self):
        body = b"5\r\nhello\r\n0\r\n\r\n"
        self.reject(request_bytes("POST", API, [("Transfer-Encoding", "chunked"),
                                                ("Content-Length", "3")], body))

    def test_two_differing_content_lengths(self):
        self.reject(request_bytes("POST", API, [("Content-Length", "3"), ("Content-Length", "5")],
                                  b"hello"))

    def test_content_length_list_differing(self):
        self.reject(request_bytes("POST", API, [("Content-Length", "3, 5")], b"hello"))

    def test_content_length_plus_sign(self):
        self.reject(request_bytes("POST", API, [("Content-Length", "+3")], b"abc"))

    def test_content_length_negative(self):
        self.reject(request_bytes("POST", API, [("Content-Length", "-1")], b"abc"))

    def test_content_length_not_a_number(self):
        self.reject(request_bytes("POST", API, [("Content-Length", "3x")], b"abc"))

    def test_unknown_transfer_coding_501(self):
        self.reject(request_bytes("POST", API, [("Transfer-Encoding", "xchunked")],
                                  b"5\r\nhello\r\n0\r\n\r\n"), 501, "NOT_IMPLEMENTED")

    def test_chunked_on_http10(self):
        self.reject(request_bytes("POST", API, [("Transfer-Encoding", "chunked")],
                                  b"5\r\nhello\r\n0\r\n\r\n", version="HTTP/1.0"))

    def test_invalid_chunk_size(self):
        self.reject(request_bytes("POST", API, [("Transfer-Encoding", "chunked")],
                                  b"zz\r\nhello\r\n0\r\n\r\n"))

    def test_overflowing_chunk_size(self):
        self.reject(request_bytes("POST", API, [("Transfer-Encoding", "chunked")],
                                  b"ffffffffffffffffffffffff\r\nhello\r\n0\r\n\r\n"))

    def test_chunk_missing_crlf(self):
        self.reject(request_bytes("POST", API, [("Transfer-Encoding", "chunked")],
                                  b"5\r\nhelloXX0\r\n\r\n"))

    # -- header syntax
    def test_space_before_colon(self):
        self.reject(request_bytes("GET", API, [("X-Foo ", "bar")]))

    def test_illegal_header_name_char(self):
        self.reject(request_bytes("GET", API, [("X<Foo>", "bar")]))

    def test_header_line_without_colon(self):
        self.reject(request_bytes("GET", API, [("NoColonHere", "")]).replace(b"NoColonHere: ", b"NoColonHere"))

    def test_http11_without_host(self):
        self.reject(request_bytes("GET", API, host=None))

    def test_two_host_headers(self):
        self.reject(request_bytes("GET", API, [("Host", "other.example")]))

    def test_http2_request_line_505(self):
        self.reject(request_bytes("GET", "/", version="HTTP/2.0"), 505, "HTTP_VERSION_NOT_SUPPORTED")

    def test_http3_request_line_505(self):
        self.reject(request_bytes("GET", API, version="HTTP/3.0"), 505, "HTTP_VERSION_NOT_SUPPORTED")

    def test_garbage_request_line(self):
        self.reject(b"THIS IS NOT HTTP\r\n\r\n")

    def test_request_line_missing_version(self):
        self.reject(b"GET /api/v1/tasks\r\nHost: x\r\n\r\n")

    # -- limits
    def test_request_line_over_8k_414(self):
        self.reject(request_bytes("GET", API + "/" + "a" * 9000), 414, "URI_TOO_LONG")

    def test_headers_over_max_header_size_431(self):
        self.reject(request_bytes("GET", API, [("X-Big", "b" * 20000)]), 431, "HEADERS_TOO_LARGE")

    def test_many_headers_over_max_header_size_431(self):
        hdrs = [("X-H%d" % i, "v" * 200) for i in range(100)]  # ~21k
        self.reject(request_bytes("GET", API, hdrs), 431, "HEADERS_TOO_LARGE")

    def test_headers_under_limit_pass(self):
        hdrs = [("X-H%d" % i, "v" * 100) for i in range(50)]  # ~5.5k
        r = self.gw.request("GET", API, headers=dict(hdrs))
        self.assertEqual(r.status, 200, r)

    def test_body_over_max_with_content_length_413(self):
        # headers only: the gateway must answer from the declared length
        self.reject(request_bytes("POST", API, [("Content-Length", str(1048577))]),
                    413, "PAYLOAD_TOO_LARGE")

    def test_body_at_max_passes(self):
        body = b"y" * 1048576
        r = self.gw.request("POST", API, body=body, timeout=15)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.up.stats()["last"]["body_len"], len(body))

    def test_body_over_max_chunked_413(self):
        # a single chunk announcing more than max_body_size, with a little of it
        data = request_bytes("POST", API, [("Transfer-Encoding", "chunked")],
                             b"200000\r\n" + b"z" * 1000)
        self.reject(data, 413, "PAYLOAD_TOO_LARGE")

    def test_body_over_max_many_chunks_413(self):
        s = self.gw.sock()
        self.addCleanup(s.close)
        s.sendall(request_bytes("POST", API, [("Transfer-Encoding", "chunked")]))
        chunk = b"%x\r\n%s\r\n" % (65536, b"c" * 65536)
        t0 = time.monotonic()
        for _ in range(40):  # 2.5 MB in 64k chunks; stop once the gateway answered
            try:
                s.sendall(chunk)
            except OSError:
                break
            rd, _, _ = select.select([s], [], [], 0)
            if rd:
                break
        res = read_until_close(s, 4, t0)
        self.assertClosedAfter(res, 413, "PAYLOAD_TOO_LARGE")
        self.assertEqual(self.up.stats()["requests"], 0)
        self.assertAlive(self.gw)

    # -- slow clients
    def test_slowloris_headers_408(self):
        s = self.gw.sock()
        self.addCleanup(s.close)
        data = request_bytes("GET", API, [("X-Slow", "s" * 50)])
        t0 = time.monotonic()
        got = b""
        closed = False
        i = 0
        while time.monotonic() - t0 < CLIENT_TIMEOUT + 4:
            if i < len(data):
                try:
                    s.sendall(data[i:i + 1])
                except OSError:
                    break
                i += 1
            rd, _, _ = select.select([s], [], [], 0.5)
            if rd:
                try:
                    chunk = s.recv(65536)
                except OSError:
                    closed = True
                    break
                if not chunk:
                    closed = True
                    break
                got += chunk
        elapsed = time.monotonic() - t0
        self.assertLess(i, len(data), "the whole request trickled in before any timeout")
        res = RawResult(got, closed, elapsed)
        self.assertClosedAfter(res, 408, "REQUEST_TIMEOUT")
        self.assertLessEqual(elapsed, CLIENT_TIMEOUT + 1.0,
                             "408 after %.2fs, client_timeout is %.1fs" % (elapsed, CLIENT_TIMEOUT))
        self.assertEqual(self.up.stats()["requests"], 0)
        self.assertAlive(self.gw)

    def test_body_shorter_than_content_length_408(self):
        s = self.gw.sock()
        self.addCleanup(s.close)
        t0 = time.monotonic()
        s.sendall(request_bytes("POST", API, [("Content-Length", "100")], b"only-ten!!"))
        res = read_until_close(s, CLIENT_TIMEOUT + 3, t0)
        self.assertClosedAfter(res, 408, "REQUEST_TIMEOUT")
        self.assertLessEqual(res.elapsed, CLIENT_TIMEOUT + 1.0, res)
        self.assertAlive(self.gw)

    def test_partial_chunk_then_silence_408(self):
        s = self.gw.sock()
        self.addCleanup(s.close)
        t0 = time.monotonic()
        s.sendall(request_bytes("POST", API, [("Transfer-Encoding", "chunked")], b"a\r\nhel"))
        res = read_until_close(s, CLIENT_TIMEOUT + 3, t0)
        self.assertClosedAfter(res, 408, "REQUEST_TIMEOUT")
        self.assertLessEqual(res.elapsed, CLIENT_TIMEOUT + 1.0, res)
        self.assertEqual(self.up.stats()["requests"], 0)

    def test_idle_connection_closed(self):
        s = self.gw.sock()
        self.addCleanup(s.close)
        res = read_until_close(s, CLIENT_TIMEOUT + 3)
        self.assertTrue(res.closed, "an idle connection was kept past client_timeout: %r" % res)
        self.assertLessEqual(res.elapsed, CLIENT_TIMEOUT + 1.0, res)
        if res.data:  # nothing, or a well-formed 408
            self.assertClosedAfter(res, 408, "REQUEST_TIMEOUT")

    def test_idle_keepalive_after_request_closed(self):
        s = self.gw.sock()
        self.addCleanup(s.close)
        s.sendall(request_bytes("GET", API))
        r, _, _ = read_one_response(s, 5)
        self.assertEqual(r.status, 200)
        res = read_until_close(s, CLIENT_TIMEOUT + 3)
        self.assertTrue(res.closed, res)
        self.assertLessEqual(res.elapsed, CLIENT_TIMEOUT + 1.0, res)

    def test_many_slow_clients_do_not_block_others(self):
        socks = []
        self.addCleanup(lambda: [x.close() for x in socks])
        for i in range(100):
            x = self.gw.sock()
            x.sendall(b"GET " + API.encode() + b" HTTP/1.1\r\nHost: x\r\nX-Slow-%d: " % i)
            socks.append(x)
        t0 = time.monotonic()
        for _ in range(5):
            r = self.gw.request("GET", API)
            self.assertEqual(r.status, 200, r)
        self.assertLess(time.monotonic() - t0, 1.0, "100 stalled clients slowed others down")

    # -- early closes
    def test_client_closes_mid_request(self):
        for cut in (b"GET /api/v1", request_bytes("POST", API, [("Content-Length", "100")], b"abc")):
            s = self.gw.sock()
            s.sendall(cut)
            s.close()
        s = self.gw.sock()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.sendall(request_bytes("POST", API, [("Content-Length", "100")], b"abc"))
        s.close()  # RST
        self.assertAlive(self.gw)
        r = self.gw.request("GET", API)
        self.assertEqual(r.status, 200, r)

    def test_client_closes_mid_response(self):
        for linger in (False, True):
            s = self.gw.sock()
            hdr = scripted(body_size=8 * 1024 * 1024)
            s.sendall(request_bytes("GET", API, list(hdr.items())))
            got = s.recv(1024)
            self.assertTrue(got.startswith(b"HTTP/1.1 200"), got)
            if linger:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
        self.assertAlive(self.gw)
        for _ in range(5):
            self.assertEqual(self.gw.request("GET", API).status, 200)

    def test_client_half_close_after_request(self):
        # shutdown(SHUT_WR) after a full request: the answer still comes back
        res = self.gw.raw_ex(request_bytes("GET", API), 4, shut_write=True)
        rs = res.responses()
        self.assertTrue(rs, res)
        self.assertEqual(rs[0].status, 200, res)

    def test_many_pipelined_requests(self):
        n = 300
        data = b"".join(request_bytes("GET", API + "/%d" % i) for i in range(n))
        data += request_bytes("GET", API + "/last", [("Connection", "close")])
        res = self.gw.raw_ex(data, 20)
        rs = [r for r in res.responses() if r.status >= 200]
        self.assertEqual(len(rs), n + 1, "got %d responses" % len(rs))
        self.assertEqual([r.status for r in rs], [200] * (n + 1))
        targets = [json.loads(r.body)["target"] for r in rs]
        self.assertEqual(targets, [API + "/%d" % i for i in range(n)] + [API + "/last"])

    # -- ambiguous inputs: no crash, a well-formed answer
    def ambiguous(self, data):
        res = self.gw.raw_ex(data, 4)
        rs = res.responses()
        self.assertTrue(rs, "no answer at all: %r" % res)
        self.assertTrue(rs[0].complete and rs[0].status in range(200, 600), res)
        if rs[0].status >= 400:
            self.assertEnvelope(rs[0], rs[0].status, rs[0].json()["error"]["code"])
        self.assertAlive(self.gw)
        return rs[0]

    def test_nul_in_header_value(self):
        r = self.ambiguous(request_bytes("GET", API, [("X-Nul", "a\x00b"), ("Connection", "close")]))
        self.assertEqual(r.status, 400, "NUL in a header value should be refused")

    def test_bare_lf_line_endings(self):
        data = b"GET " + API.encode() + b" HTTP/1.1\nHost: x\nConnection: close\n\n"
        self.ambiguous(data)

    def test_obs_fold_header(self):
        self.ambiguous(b"GET " + API.encode() + b" HTTP/1.1\r\nHost: x\r\nX-Fold: a\r\n b\r\n"
                       b"Connection: close\r\n\r\n")

    def test_duplicate_equal_content_length(self):
        self.ambiguous(request_bytes("POST", API, [("Content-Length", "3"), ("Content-Length", "3"),
                                                   ("Connection", "close")], b"abc"))

    def test_absolute_form_target(self):
        self.ambiguous(b"GET http://localhost/api/v1/tasks HTTP/1.1\r\nHost: localhost\r\n"
                       b"Connection: close\r\n\r\n")

    def test_random_binary_garbage(self):
        rnd = random.Random(4242)
        for _ in range(5):
            res = self.gw.raw_ex(bytes(rnd.randrange(256) for _ in range(3000)) + b"\r\n\r\n", 4)
            self.assertTrue(res.closed, res)
        self.assertAlive(self.gw)


if __name__ == "__main__":
    unittest.main()
