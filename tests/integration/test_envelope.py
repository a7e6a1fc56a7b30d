"""Error envelopes end to end: upstream errors rewritten, each profile's 404 shape.

Deep recognition of upstream error shapes is unit-tested elsewhere; this
suite checks the basics through the real binary.

Run: cd tests/integration && ENVELOPD=/path/to/envelopd python3 -m unittest -v test_envelope
"""

import base64
import gzip
import json
import unittest

from harness import GatewayTestCase, base_conf, free_port, request_bytes, scripted

API = "/api/v1/tasks"
NOT_FOUND = {"error": "Task not found"}
MESSAGE_KEYS = ("message", "error", "fallbackMessage", "detail")


def expected_404(profile, rid):
    return {
        "nested": {"error": {"code": "NOT_FOUND", "message": "Task not found",
                             "details": {"request_id": rid}}},
        "flat": {"error": "Task not found", "code": "NOT_FOUND", "details": {"request_id": rid}},
        "simple": {"error": "Task not found"},
        "status": {"code": 404, "message": "Task not found"},
        "i18n": {"key": "api-errors.notFound", "params": {"request_id": rid},
                 "fallbackMessage": "Task not found"},
        "problem": {"type": "about:blank", "title": "Not Found", "status": 404,
                    "detail": "Task not found", "code": "NOT_FOUND", "request_id": rid},
    }[profile]


class Envelope(GatewayTestCase):
    def test_upstream_404_json_message(self):
        gw, _ = self.simple()
        r = gw.request("GET", API + "/9", headers=scripted(status=404, json=NOT_FOUND))
        body = self.assertEnvelope(r, 404, "NOT_FOUND")
        self.assertEqual(body["error"]["message"], "Task not found")

    def test_upstream_code_kept(self):
        gw, _ = self.simple()
        r = gw.request("GET", API, headers=scripted(
            status=404, json={"code": "TASK_NOT_FOUND", "message": "No task 9"}))
        body = self.assertEnvelope(r, 404, "TASK_NOT_FOUND")
        self.assertEqual(body["error"]["message"], "No task 9")

    def test_status_never_changed(self):
        gw, _ = self.simple()
        for st, code in ((400, "BAD_REQUEST"), (403, "FORBIDDEN"), (409, "CONFLICT"),
                         (410, "GONE"), (418, "CLIENT_ERROR"), (422, "VALIDATION_ERROR"),
                         (500, "INTERNAL_ERROR"), (501, "NOT_IMPLEMENTED"), (599, "INTERNAL_ERROR")):
            r = gw.request("POST", API, headers=scripted(status=st, body=""), body=b"{}")
            self.assertEnvelope(r, st, code)

    def test_empty_body_reason_phrase(self):
        gw, _ = self.simple()
        r = gw.request("GET", API, headers=scripted(status=404, body=""))
        body = self.assertEnvelope(r, 404, "NOT_FOUND")
        self.assertEqual(body["error"]["message"], "Not Found")

    def test_upstream_500_stack_trace_hidden(self):
        gw, _ = self.simple()
        trace = ("java.lang.NullPointerException: task was null\n"
                 "\tat com.acme.TaskService.get(TaskService.java:42)\n"
                 "\tat com.acme.TaskController.show(TaskController.java:17)\n")
        r = gw.request("GET", API, headers=scripted(status=500, json={"error": trace, "trace": trace}))
        body = self.assertEnvelope(r, 500, "INTERNAL_ERROR")
        text = json.dumps(body)
        for s in ("NullPointer", "TaskService", "java:42"):
            self.assertNotIn(s, text)

    def test_upstream_html_error_page(self):
        gw, _ = self.simple()
        html = "<html><head><title>Task Missing</title></head><body><h1>Task Missing</h1></body></html>"
        r = gw.request("GET", API, headers=scripted(status=404, body=html,
                                                    headers=[["Content-Type", "text/html"]]))
        body = self.assertEnvelope(r, 404, "NOT_FOUND")
        self.assertNotIn("<", body["error"]["message"])

    def test_upstream_plain_text_error(self):
        gw, _ = self.simple()
        r = gw.request("GET", API, headers=scripted(status=409, body="  Task already exists\n",
                                                    headers=[["Content-Type", "text/plain"]]))
        body = self.assertEnvelope(r, 409, "CONFLICT")
        self.assertEqual(body["error"]["message"], "Task already exists")

    def test_gzip_error_body_decoded(self):
        gw, _ = self.simple()
        raw = gzip.compress(json.dumps(NOT_FOUND).encode())
        r = gw.request("GET", API, headers=scripted(
            status=404, body_b64=base64.b64encode(raw).decode(),
            headers=[["Content-Type", "application/json"], ["Content-Encoding", "gzip"]]))
        body = self.assertEnvelope(r, 404, "NOT_FOUND")
        self.assertEqual(body["error"]["message"], "Task not found")
        self.assertIsNone(r.header("Content-Encoding"), "envelope marked as gzip: %r" % r.headers)

    def test_chunked_error_body(self):
        gw, _ = self.simple()
        r = gw.request("GET", API, headers=scripted(status=404, json=NOT_FOUND, framing="chunked",
                                                    chunk_size=3))
        body = self.assertEnvelope(r, 404, "NOT_FOUND")
        self.assertEqual(body["error"]["message"], "Task not found")

    def test_invalid_json_error_body(self):
        gw, _ = self.simple()
        r = gw.request("GET", API, headers=scripted(status=400, body='{"error": "unterminated',
                                                    headers=[["Content-Type", "application/json"]]))
        self.assertEnvelope(r, 400, "BAD_REQUEST")

    def test_over_max_error_body_not_parsed(self):
        up = self.upstream()
        port = free_port()
        c = base_conf(port, [up.port])
        c.set("envelope", "max_error_body", "1k")
        gw = self.gateway(c, port)
        big = json.dumps({"error": "Specific message", "pad": "p" * 5000})
        r = gw.request("GET", API, headers=scripted(status=404, body=big,
                                                    headers=[["Content-Type", "application/json"]]))
        body = self.assertEnvelope(r, 404, "NOT_FOUND")
        self.assertEqual(body["error"]["message"], "Not Found")

    def test_head_error_no_body(self):
        gw, _ = self.simple()
        res = gw.raw_ex(request_bytes("HEAD", "/no-route", [("Connection", "close")]), 3)
        rs = res.responses(head=True)
        self.assertEqual(rs[0].status, 404, res)
        self.assertEqual(rs[0].body, b"")
        self.assertTrue(rs[0].header("X-Correlation-Id"))
        self.assertIn("application/json", rs[0].header("Content-Type", ""))
        self.assertTrue(res.data.endswith(b"\r\n\r\n"), "bytes after HEAD headers: %r" % res.data)

    def test_upstream_headers_of_error_not_leaked_as_body(self):
        gw, _ = self.simple()
        r = gw.request("GET", API, headers=scripted(status=404, json=NOT_FOUND,
                                                    headers=[["X-Debug-Sql", "SELECT * FROM t"]]))
        self.assertEnvelope(r, 404, "NOT_FOUND")
        self.assertNotIn(b"SELECT", r.body)

    def test_envelope_content_length_correct(self):
        gw, _ = self.simple()
        r = gw.request("GET", "/no-route")
        cl = r.header("Content-Length")
        if cl is not None:
            self.assertEqual(int(cl), len(r.body))


class Profiles(GatewayTestCase):
    def gw_profile(self, profile):
        up = self.upstream()
        port = free_port()
        c = base_conf(port, [up.port])
        c.set("envelope", "profile", profile)
        return self.gateway(c, port)

    def check_profile(self, profile):
        gw = self.gw_profile(profile)
        rid = "prof-%s-1" % profile
        r = gw.request("GET", API + "/9", headers=dict(scripted(status=404, json=NOT_FOUND),
                                                       **{"X-Correlation-Id": rid}))
        self.assertEqual(r.status, 404, r)
        ct = (r.header("Content-Type") or "").replace(" ", "").lower()
        want_ct = ("application/problem+json" if profile == "problem" else "application/json") + \
            ";charset=utf-8"
        if profile == "problem":
            self.assertTrue(ct.startswith("application/problem+json"), ct)
        else:
            self.assertEqual(ct, want_ct)
        self.assertEqual(r.header("X-Correlation-Id"), rid)
        self.assertEqual(r.json(), expected_404(profile, rid))
        # the gateway's own 404 has the same shape (the message may differ)
        r = gw.request("GET", "/no-route", headers={"X-Correlation-Id": rid + "b"})
        self.assertEqual(r.status, 404)
        self.assertSameShape(r.json(), expected_404(profile, rid + "b"))

    def assertSameShape(self, got, exp, where="body"):
        """Same keys everywhere and equal values, except human messages (any string)."""
        if isinstance(exp, dict):
            self.assertIsInstance(got, dict, where)
            self.assertEqual(sorted(got.keys()), sorted(exp.keys()), where)
            for k in exp:
                if k in MESSAGE_KEYS and isinstance(exp[k], str):
                    self.assertIsInstance(got[k], str, where + "." + k)
                    self.assertTrue(got[k], where + "." + k)
                else:
                    self.assertSameShape(got[k], exp[k], where + "." + k)
        else:
            self.assertEqual(got, exp, where)

    def test_nested(self):
        self.check_profile("nested")

    def test_flat(self):
        self.check_profile("flat")

    def test_simple(self):
        self.check_profile("simple")

    def test_status(self):
        self.check_profile("status")

    def test_i18n(self):
        self.check_profile("i18n")

    def test_problem(self):
        self.check_profile("problem")


if __name__ == "__main__":
    unittest.main()
