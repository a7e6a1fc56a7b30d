"""Every envelope profile x every kind of upstream error body, through the real binary.

For each of the six profiles one gateway runs in front of the fixture
upstream, which answers with JSON, HTML, plain text, empty, gzip, oversized,
malformed, deeply nested and invalid-UTF-8 error bodies, a validation error
with field errors, a 429 with Retry-After and a 500 with a stack trace. Each
answer must keep the status, carry the profile's content type, be valid
UTF-8 JSON in the profile's shape, carry the expected message, and (where
the profile has one) a request_id equal to the correlation header.
"""

import base64
import gzip
import json
import unittest

from harness import GatewayTestCase, base_conf, free_port, scripted

API = "/api/v1/tasks"
PROFILES = ("nested", "flat", "simple", "status", "i18n", "problem")


def message_of(profile, body):
    return {"nested": lambda b: b["error"]["message"], "flat": lambda b: b["error"],
            "simple": lambda b: b["error"], "status": lambda b: b.get("cause", b["message"]),
            "i18n": lambda b: b["fallbackMessage"], "problem": lambda b: b["detail"]}[profile](body)


def request_id_of(profile, body):
    return {"nested": lambda b: b["error"]["details"]["request_id"],
            "flat": lambda b: b["details"]["request_id"], "simple": lambda b: None,
            "status": lambda b: None, "i18n": lambda b: b["params"]["request_id"],
            "problem": lambda b: b["request_id"]}[profile](body)


def fields_of(profile, body):
    """{field: message} of a validation envelope, whatever the profile's shape."""
    if profile == "nested":
        return {e["field"]: e["message"] for e in body["error"]["details"]["errors"]}
    if profile == "flat":
        return {k: v for k, v in body["details"].items() if k != "request_id"}
    if profile == "simple":
        return {k: "; ".join(v) for k, v in body["errors"].items()}
    if profile == "i18n":
        return {e["field"]: e["message"] for e in body["params"]["errors"]}
    return {e["field"]: e["message"] for e in body["errors"]}  # status, problem


def retry_after_of(profile, body):
    return {"nested": lambda b: b["error"]["details"].get("retry_after"),
            "flat": lambda b: b["details"].get("retry_after"), "simple": lambda b: None,
            "status": lambda b: None, "i18n": lambda b: b["params"].get("retry_after"),
            "problem": lambda b: b.get("retry_after")}[profile](body)


CASES = [
    # name, script, status, expected message (None: only checked to be clean)
    ("json", dict(status=404, json={"error": "Task not found"}), 404, "Task not found"),
    ("html", dict(status=404, headers=[["Content-Type", "text/html"]],
                  body="<html><head><title>404 Not Found</title><style>p{}</style></head>"
                       "<body><h1>Task missing</h1><script>x()</script></body></html>"),
     404, None),
    ("text", dict(status=409, headers=[["Content-Type", "text/plain"]],
                  body="  Task was edited by someone else\n"), 409, "Task was edited by someone else"),
    ("empty", dict(status=404, framing="none"), 404, "Not Found"),
    ("gzip", dict(status=404, json={"message": "Task not found"}, gzip=True), 404, "Task not found"),
    ("huge", dict(status=404, headers=[["Content-Type", "application/json"]], body_size=200000),
     404, "Not Found"),
    ("malformed", dict(status=400, headers=[["Content-Type", "application/json"]],
                       body='{"error": "unterminated'), 400, None),
    ("invalid_utf8", dict(status=400, headers=[["Content-Type", "application/json"]],
                          body_b64=base64.b64encode(b'{"error":"bad \xff\xfe bytes"}').decode()),
     400, None),
    ("stack_trace", dict(status=500, headers=[["Content-Type", "text/plain"]],
                         body="Traceback (most recent call last):\n  File \"/srv/app.py\", line 3\n"
                              "KeyError: 'secret'\n"), 500, None),
]


class Profiles(GatewayTestCase):
    def run_profile(self, profile):
        gw, (up,) = self.simple()
        conf = gw.conf
        conf.set("envelope", "profile", profile)
        gw2_port = free_port()
        conf.set("server", "listen", "127.0.0.1:%d" % gw2_port)
        gw2 = self.gateway(conf, gw2_port)
        ctype = "application/problem+json" if profile == "problem" else "application/json"
        for name, script, status, message in CASES:
            with self.subTest(profile=profile, body=name):
                r = gw2.request("GET", API, headers=scripted(**script))
                self.assertEqual(r.status, status, r)
                self.assertTrue((r.header("Content-Type") or "").startswith(ctype), r)
                text = r.body.decode("utf-8")  # raises on invalid UTF-8
                body = json.loads(text)
                msg = message_of(profile, body)
                self.assertIsInstance(msg, str)
                self.assertTrue(msg.strip(), body)
                self.assertNotIn("<", msg, body)
                self.assertNotIn("Traceback", text, body)
                self.assertNotIn("/srv/app.py", text, body)
                self.assertNotIn("secret", text, body)
                if message is not None:
                    self.assertEqual(msg, message, body)
                if name == "invalid_utf8":
                    self.assertIn("bad", msg, body)
                rid = request_id_of(profile, body)
                if rid is not None:
                    self.assertEqual(rid, r.header("X-Correlation-Id"), body)
        # deeply nested JSON: too large for a header script, so queued
        up.queue({"status": 400, "headers": [["Content-Type", "application/json"]],
                  "body": "[" * 60000 + "]" * 60000})
        with self.subTest(profile=profile, body="deep"):
            r = gw2.request("GET", API)
            self.assertEqual(r.status, 400, r)
            body = json.loads(r.body.decode("utf-8"))
            self.assertEqual(message_of(profile, body), "Bad Request", body)
        with self.subTest(profile=profile, body="validation"):
            r = gw2.request("POST", API, body=b"{}", headers=scripted(
                status=422, json={"message": "The given data was invalid.",
                                  "errors": {"title": ["The title field is required."],
                                             "due": ["Bad date"]}}))
            self.assertEqual(r.status, 422, r)
            body = json.loads(r.body)
            self.assertEqual(fields_of(profile, body),
                             {"title": "The title field is required.", "due": "Bad date"}, body)
        with self.subTest(profile=profile, body="429"):
            r = gw2.request("GET", API, headers=scripted(status=429, headers=[["Retry-After", "7"]],
                                                         json={"error": "slow down"}))
            self.assertEqual(r.status, 429, r)
            self.assertEqual(r.header_all("Retry-After"), ["7"], r)
            body = json.loads(r.body)
            self.assertEqual(message_of(profile, body), "slow down", body)
            ra = retry_after_of(profile, body)
            if profile not in ("simple", "status"):
                self.assertEqual(ra, 7, body)
        with self.subTest(profile=profile, body="head"):
            r = gw2.request("HEAD", API, headers=scripted(status=404, json={"error": "x"}))
            self.assertEqual(r.status, 404, r)
            self.assertEqual(r.body, b"", r)
            self.assertGreater(int(r.header("Content-Length")), 0, r)

    def test_nested(self):
        self.run_profile("nested")

    def test_flat(self):
        self.run_profile("flat")

    def test_simple(self):
        self.run_profile("simple")

    def test_status(self):
        self.run_profile("status")

    def test_i18n(self):
        self.run_profile("i18n")

    def test_problem(self):
        self.run_profile("problem")


if __name__ == "__main__":
    unittest.main()
