"""TLS: termination on `listen = ADDR tls` listeners with the [tls]
certificates (SNI, versions, ALPN, resumption, handshake deadline, plain
HTTP and garbage on the TLS port, reload of the certificate files, -t
checks), X-Forwarded-Proto/-Host, and TLS to upstreams (tls = yes: CA
file, system store, verify = no, server_name, client certificates, pooled
connections and their session resumption).

Every certificate is made at test time by the `openssl` command into a
temporary directory (a private CA signing leaf certificates with SANs);
no key is ever committed. Clients are Python's ssl module verifying
against that CA. TLS upstreams are http.server over ssl in a thread of
this process.
"""

import base64
import hashlib
import http.server
import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest
import warnings

from test_admin import admin_get, parse_metrics
from harness import (ENVELOPD, GatewayTestCase, base_conf, free_port, parse_responses,
                     read_one_response, read_until_close, request_bytes, run_envelopd, scaled,
                     script_header, slack, wait_port, wait_until)

API = "/api/v1/tasks"
PKI = None

HS = "envelopd_tls_handshakes_total"
HSF = "envelopd_tls_handshake_failures_total"
FAIL_REASONS = ("timeout", "plain_http", "protocol_version", "no_shared_cipher", "alpn",
                "closed", "other")


def handshakes_key(version, resumed):
    return (HS, frozenset({("version", version), ("resumed", resumed)}))


def failures_key(reason):
    return (HSF, frozenset({("reason", reason)}))


# ---------------------------------------------------------------- certificates

class Pki:
    """A private CA and the leaf certificates of the suite, made by `openssl`."""

    # name: (subject CN, subjectAltName)
    LEAVES = {
        "a": ("cert-a", "DNS:a.example.test"),
        "a2": ("cert-a-v2", "DNS:a.example.test"),
        "b": ("cert-b", "DNS:b.example.test"),
        "wild": ("cert-wild", "DNS:*.wild.example.test"),
        "exact": ("cert-exact", "DNS:exact.wild.example.test"),
        "upstream": ("cert-upstream", "DNS:localhost, IP:127.0.0.1"),
        "client": ("envelopd-test-client", "DNS:client.example.test"),
    }

    def __init__(self):
        if not shutil.which("openssl"):
            raise unittest.SkipTest("the openssl command is not installed")
        self.dir = tempfile.mkdtemp(prefix="envelopd-tls-pki-")
        self.ca = self.path("ca.pem")
        self.ca_key = self.path("ca.key")
        self.openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                     "-nodes", "-keyout", self.ca_key, "-out", self.ca, "-days", "2",
                     "-subj", "/CN=envelopd test CA",
                     "-addext", "basicConstraints=critical,CA:TRUE",
                     "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        self.certs = {}
        for name, (cn, san) in self.LEAVES.items():
            self.certs[name] = self.leaf(name, cn, san)

    def path(self, name):
        return os.path.join(self.dir, name)

    @staticmethod
    def openssl(*args):
        p = subprocess.run(["openssl"] + list(args), capture_output=True, timeout=30)
        if p.returncode != 0:
            raise RuntimeError("openssl %s failed:\n%s" % (" ".join(args),
                                                          p.stderr.decode(errors="replace")))

    def leaf(self, name, cn, san):
        cert, key, csr, ext = (self.path(name + s) for s in (".pem", ".key", ".csr", ".ext"))
        with open(ext, "w") as f:
            f.write("basicConstraints=critical,CA:FALSE\n"
                    "keyUsage=critical,digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=serverAuth,clientAuth\n"
                    "subjectKeyIdentifier=hash\n"
                    "authorityKeyIdentifier=keyid,issuer\n"
                    "subjectAltName=%s\n" % san)
        self.openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                     "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=%s" % cn)
        self.openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key,
                     "-set_serial", str(random.getrandbits(63)), "-days", "2", "-out", cert,
                     "-extfile", ext)
        return cert, key

    def cert(self, name):
        return self.certs[name][0]

    def key(self, name):
        return self.certs[name][1]

    def install(self, name, cert_path, key_path):
        """Write leaf NAME's certificate and key over CERT_PATH and KEY_PATH (in place)."""
        for src, dst in ((self.cert(name), cert_path), (self.key(name), key_path)):
            with open(src, "rb") as f:
                data = f.read()
            with open(dst, "wb") as f:
                f.write(data)

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def setUpModule():
    global PKI
    PKI = Pki()


def tearDownModule():
    if PKI is not None:
        PKI.cleanup()


# ---------------------------------------------------------------- clients

def client_ctx(verify=True, check_hostname=True, min_version=None, max_version=None,
               alpn=None, ciphers=None, cert=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        ctx.load_verify_locations(PKI.ca)
        ctx.check_hostname = check_hostname
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        # Python deprecates TLS 1.0 and 1.1; the tests offer them on purpose.
        warnings.simplefilter("ignore", DeprecationWarning)
        if min_version is not None:
            ctx.minimum_version = min_version
        if max_version is not None:
            ctx.maximum_version = max_version
    if ciphers is not None:
        ctx.set_ciphers(ciphers)
    if alpn is not None:
        ctx.set_alpn_protocols(alpn)
    if cert is not None:
        ctx.load_cert_chain(PKI.cert(cert), PKI.key(cert))
    return ctx


def tls_connect(port, ctx=None, server_hostname="a.example.test", session=None, timeout=5):
    """A TLS connection to the gateway, handshake done (ssl.SSLError if it fails)."""
    ctx = ctx or client_ctx()
    raw = socket.create_connection(("127.0.0.1", port), timeout=scaled(timeout))
    try:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return ctx.wrap_socket(raw, server_hostname=server_hostname, session=session)
    except BaseException:
        raw.close()
        raise


def send_get(sock, path=API, headers=(), host="gw.test", timeout=5):
    """One GET on SOCK (TLS or not); the parsed response (None if none came)."""
    sock.sendall(request_bytes("GET", path, list(headers), host=host))
    r, _, _ = read_one_response(sock, scaled(timeout))
    return r


def peer_cn(sock):
    cert = sock.getpeercert()
    return dict(rdn[0] for rdn in cert["subject"])["commonName"]


def client_hello(server_hostname="a.example.test"):
    """The bytes of a real TLS ClientHello (made by Python's ssl on memory BIOs)."""
    ctx = client_ctx()
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=server_hostname)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    data = out.read()
    assert data[:1] == b"\x16" and len(data) > 100, data[:16]
    return data


# ---------------------------------------------------------------- TLS upstream

class _UpHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.do_GET()

    def do_GET(self):
        srv = self.server
        sock = self.connection
        cert = sock.getpeercert()
        cn = dict(rdn[0] for rdn in cert["subject"]).get("commonName") if cert else None
        got = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with srv.lock:
            srv.requests += 1
        size = self.headers.get("X-Body-Size")
        if size is not None:
            body = b"y" * int(size)
        else:
            body = json.dumps({"path": self.path, "client_cn": cn, "tls": sock.version(),
                               "resumed": sock.session_reused, "body_len": len(got),
                               "body_sha256": hashlib.sha256(got).hexdigest(),
                               "headers": [[k, v] for k, v in self.headers.items()]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if srv.close_each:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class TlsUpstream(http.server.ThreadingHTTPServer):
    """An HTTPS upstream on 127.0.0.1 (certificate "upstream": localhost and
    IP 127.0.0.1, by the test CA), in threads of this process. Records each
    handshake: the SNI it was sent, whether it resumed, or why it failed."""

    daemon_threads = True

    def __init__(self, require_client_cert=False, close_each=False, idle_timeout=None):
        self.idle_timeout = idle_timeout
        self.lock = threading.Lock()
        self.requests = 0
        self.handshakes = []   # dicts: ok, sni, resumed, error
        self.close_each = close_each
        self._sni = threading.local()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(PKI.cert("upstream"), PKI.key("upstream"))
        if require_client_cert:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(PKI.ca)
        ctx.sni_callback = self._on_sni
        self.ctx = ctx
        super().__init__(("127.0.0.1", free_port()), _UpHandler)
        self.port = self.server_address[1]
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def _on_sni(self, sslobj, name, ctx):
        self._sni.name = name
        return None

    def process_request_thread(self, request, client_address):
        self._sni.name = None
        request.settimeout(10)
        try:
            tls = self.ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            with self.lock:
                self.handshakes.append({"ok": False, "sni": self._sni.name, "error": str(e)})
            self.shutdown_request(request)
            return
        with self.lock:
            self.handshakes.append({"ok": True, "sni": self._sni.name,
                                    "resumed": tls.session_reused, "version": tls.version()})
        if self.idle_timeout:
            tls.settimeout(self.idle_timeout)  # an idle keep-alive connection is closed
        super().process_request_thread(tls, client_address)

    def handle_error(self, request, client_address):
        pass  # a peer that went away; nothing to print

    def ok_handshakes(self):
        with self.lock:
            return [h for h in self.handshakes if h["ok"]]

    def failed_handshakes(self):
        with self.lock:
            return [h for h in self.handshakes if not h["ok"]]

    def stop(self):
        self.shutdown()
        self.server_close()


# ---------------------------------------------------------------- base

class TlsCase(GatewayTestCase):
    """A gateway with a TLS listener (self.port), a plain one (self.plain)
    and an admin listener, over one upstream.py."""

    certs = ("a", "b", "wild", "exact")
    tls_keys = {}
    limits = {}
    server = {}

    def setUp(self):
        super().setUp()
        self.up = self.upstream()
        self.port = free_port()
        self.plain = free_port()
        self.admin = free_port()
        self.conf = self.make_conf()
        self.gw = self.gateway(self.conf, self.port)
        self.assertTrue(wait_port(self.plain, scaled(5), self.gw.proc), "plain listener")
        # Gateway.start's readiness probe connected to the TLS port and left:
        # wait for it to be counted so the tests' deltas start from rest.
        self.assertTrue(wait_until(lambda: self.metrics().get(failures_key("closed"), 0) >= 1,
                                   scaled(5)), "the readiness probe was not counted as closed")

    def make_conf(self):
        c = base_conf(self.port, [self.up.port])
        c.set("server", "listen", "127.0.0.1:%d tls" % self.port)
        c.add("server", "listen", "127.0.0.1:%d" % self.plain)
        c.set("server", "client_timeout", "5s")
        for k, v in self.server.items():
            c.set("server", k, v)
        c.set("admin", "listen", "127.0.0.1:%d" % self.admin)
        for name in self.certs:
            c.add("tls", "certificate", PKI.cert(name))
            c.add("tls", "key", PKI.key(name))
        for k, v in self.tls_keys.items():
            c.set("tls", k, v)
        for k, v in self.limits.items():
            c.set("limits", k, v)
        return c

    def metrics(self):
        st, _, body = admin_get(self.admin, "/metrics")
        self.assertEqual(st, 200, body)
        return parse_metrics(body)

    def tls_metrics(self):
        m = self.metrics()
        return {k: v for k, v in m.items() if k[0] in (HS, HSF)}

    def assertDeltas(self, before, want, timeout=5):
        """The TLS counters moved from BEFORE by exactly WANT ({key: n}) and
        every other TLS counter stayed put (polled: the gateway counts a
        handshake after the client is done with it)."""
        def diff():
            now = self.tls_metrics()
            return {k: now.get(k, 0) - before.get(k, 0) for k in set(now) | set(before)}

        def reached():
            d = diff()
            return all(d.get(k, 0) >= n for k, n in want.items())
        wait_until(reached, scaled(timeout))
        time.sleep(0.05)  # anything counted by mistake shows now too
        d = {k: v for k, v in diff().items() if v}
        want = {k: v for k, v in want.items() if v}
        self.assertEqual(d, want, "TLS counters moved by %r, expected %r" % (d, want))

    def assertServing(self):
        self.assertTrue(self.gw.alive(), "envelopd exited: %s" % self.gw.stderr_text()[-2000:])
        s = tls_connect(self.port)
        try:
            r = send_get(s)
            self.assertIsNotNone(r)
            self.assertEqual(r.status, 200, r)
        finally:
            s.close()

    def plain_get(self, headers=(), host="gw.test"):
        """One GET on a new connection to the plain listener."""
        s = socket.create_connection(("127.0.0.1", self.plain), timeout=scaled(5))
        try:
            return send_get(s, headers=headers, host=host)
        finally:
            s.close()

    def upstream_headers(self, name):
        """Every value of header NAME in the last request upstream.py received."""
        got = self.up.stats()["last"]["headers"]
        return [v for k, v in got if k.lower() == name.lower()]


# ---------------------------------------------------------------- listener

class Sni(TlsCase):
    def test_sni_chooses_the_certificate(self):
        cases = [
            ("a.example.test", "cert-a"),
            ("b.example.test", "cert-b"),
            ("B.Example.TEST", "cert-b"),             # names are case-insensitive
            ("x.wild.example.test", "cert-wild"),
            ("exact.wild.example.test", "cert-exact"),  # exact names before wildcards
            ("a.b.wild.example.test", "cert-a"),     # a wildcard is one label
            ("wild.example.test", "cert-a"),         # ... and never the bare domain
            ("unknown.test", "cert-a"),              # no match: the first pair
            (None, "cert-a"),                        # no SNI: the first pair
        ]
        for name, cn in cases:
            with self.subTest(sni=name):
                s = tls_connect(self.port, client_ctx(check_hostname=False), server_hostname=name)
                try:
                    self.assertEqual(peer_cn(s), cn)
                    r = send_get(s, headers=[("X-Request-Id", "sni-%s" % name)])
                    self.assertEqual(r.status, 200, r)
                finally:
                    s.close()
        # Hostname verification as a real client does it, with the chosen SAN.
        for name, san in (("a.example.test", "a.example.test"),
                          ("b.example.test", "b.example.test"),
                          ("x.wild.example.test", "*.wild.example.test")):
            s = tls_connect(self.port, client_ctx(), server_hostname=name)
            try:
                self.assertEqual(s.getpeercert()["subjectAltName"], (("DNS", san),))
            finally:
                s.close()


class Versions(TlsCase):
    def old_client(self, version):
        return client_ctx(min_version=version, max_version=version,
                          ciphers="DEFAULT:@SECLEVEL=0")

    def test_tls10_and_tls11_refused_12_and_13_served(self):
        before = self.tls_metrics()
        for v in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
            with self.subTest(version=v.name):
                with self.assertRaises(ssl.SSLError) as cm:
                    tls_connect(self.port, self.old_client(v)).close()
                self.assertIn("PROTOCOL_VERSION", str(cm.exception).upper())
        for v, name in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")):
            s = tls_connect(self.port, client_ctx(min_version=v, max_version=v))
            try:
                self.assertEqual(s.version(), name)
                r = send_get(s, headers=[("X-Request-Id", "ver-" + name)])
                self.assertEqual(r.status, 200, r)
            finally:
                s.close()
            line = self.gw.wait_access("ver-" + name)
            self.assertIsNotNone(line)
            self.assertEqual(line["tls"], name)
        # A client offering everything gets the newest.
        s = tls_connect(self.port)
        self.assertEqual(s.version(), "TLSv1.3")
        s.close()
        self.assertDeltas(before, {failures_key("protocol_version"): 2,
                                   handshakes_key("TLSv1.2", "no"): 1,
                                   handshakes_key("TLSv1.3", "no"): 2})
        self.assertServing()

    def test_no_shared_cipher(self):
        before = self.tls_metrics()
        ctx = client_ctx(max_version=ssl.TLSVersion.TLSv1_2,
                         ciphers="ECDHE-ECDSA-AES128-SHA:AES128-SHA")
        with self.assertRaises(ssl.SSLError):
            tls_connect(self.port, ctx).close()
        self.assertDeltas(before, {failures_key("no_shared_cipher"): 1})
        ev = self.gw.wait_log(lambda l: l.get("event") == "tls_handshake_failed"
                              and "cipher" in l.get("reason", ""))
        self.assertIsNotNone(ev, self.gw.stdout_text()[-2000:])
        self.assertServing()


class OnlyTls13(TlsCase):
    tls_keys = {"protocols": "TLSv1.3"}

    def test_tls12_client_refused(self):
        before = self.tls_metrics()
        with self.assertRaises(ssl.SSLError):
            tls_connect(self.port, client_ctx(max_version=ssl.TLSVersion.TLSv1_2)).close()
        s = tls_connect(self.port)
        try:
            self.assertEqual(s.version(), "TLSv1.3")
            self.assertEqual(send_get(s).status, 200)
        finally:
            s.close()
        self.assertDeltas(before, {failures_key("protocol_version"): 1,
                                   handshakes_key("TLSv1.3", "no"): 1})


class OldVersionsWhenAsked(TlsCase):
    """The control of Versions: the TLS 1.1 client of those tests is able to
    talk, so their refusal is the gateway's."""
    tls_keys = {"protocols": "TLSv1.1 TLSv1.2 TLSv1.3",
                "ciphers": "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES128-GCM-SHA256"}

    def test_tls11_served_when_configured(self):
        before = self.tls_metrics()
        ctx = client_ctx(min_version=ssl.TLSVersion.TLSv1_1, max_version=ssl.TLSVersion.TLSv1_1,
                         ciphers="DEFAULT:@SECLEVEL=0")
        s = tls_connect(self.port, ctx)
        try:
            self.assertEqual(s.version(), "TLSv1.1")
            r = send_get(s, headers=[("X-Request-Id", "tls11")])
            self.assertEqual(r.status, 200, r)
        finally:
            s.close()
        line = self.gw.wait_access("tls11")
        self.assertEqual(line["tls"], "TLSv1.1")
        self.assertDeltas(before, {handshakes_key("other", "no"): 1})


class Alpn(TlsCase):
    def test_alpn(self):
        before = self.tls_metrics()
        with self.assertRaises(ssl.SSLError) as cm:
            tls_connect(self.port, client_ctx(alpn=["h2"])).close()
        self.assertIn("NO APPLICATION PROTOCOL", str(cm.exception).upper().replace("_", " "))
        for offer, want in ((["h2", "http/1.1"], "http/1.1"), (["http/1.1"], "http/1.1"),
                            (None, None)):
            with self.subTest(offer=offer):
                s = tls_connect(self.port, client_ctx(alpn=offer))
                try:
                    self.assertEqual(s.selected_alpn_protocol(), want)
                    self.assertEqual(send_get(s).status, 200)
                finally:
                    s.close()
        self.assertDeltas(before, {failures_key("alpn"): 1, handshakes_key("TLSv1.3", "no"): 3})
        self.assertServing()


class Resumption(TlsCase):
    def resume(self, version, name, sni="a.example.test"):
        ctx = client_ctx(min_version=version, max_version=version)
        s = tls_connect(self.port, ctx, server_hostname=sni)
        try:
            self.assertFalse(s.session_reused)
            # The whole response first: a TLS 1.3 ticket comes after the handshake.
            r = send_get(s, headers=[("X-Request-Id", "%s-full" % name)])
            self.assertEqual(r.status, 200, r)
            session = s.session
        finally:
            s.close()
        self.assertIsNotNone(session)
        s = tls_connect(self.port, ctx, server_hostname=sni, session=session)
        try:
            self.assertTrue(s.session_reused, "%s session not resumed" % name)
            r = send_get(s, headers=[("X-Request-Id", "%s-resumed" % name)])
            self.assertEqual(r.status, 200, r)
        finally:
            s.close()
        full = self.gw.wait_access("%s-full" % name)
        resumed = self.gw.wait_access("%s-resumed" % name)
        self.assertIsNotNone(full)
        self.assertIsNotNone(resumed)
        self.assertEqual((full["tls"], full["tls_resumed"]), (name, False), full)
        self.assertEqual((resumed["tls"], resumed["tls_resumed"]), (name, True), resumed)

    def test_tls12_session_resumed(self):
        before = self.tls_metrics()
        self.resume(ssl.TLSVersion.TLSv1_2, "TLSv1.2")
        self.assertDeltas(before, {handshakes_key("TLSv1.2", "no"): 1,
                                   handshakes_key("TLSv1.2", "yes"): 1})

    def test_tls13_session_resumed(self):
        before = self.tls_metrics()
        self.resume(ssl.TLSVersion.TLSv1_3, "TLSv1.3")
        self.assertDeltas(before, {handshakes_key("TLSv1.3", "no"): 1,
                                   handshakes_key("TLSv1.3", "yes"): 1})

    def test_resumed_on_a_certificate_chosen_by_sni(self):
        self.resume(ssl.TLSVersion.TLSv1_3, "TLSv1.3", sni="b.example.test")

    def test_plain_listener_lines_have_no_tls_key(self):
        r = self.plain_get(headers=[("X-Request-Id", "plain-1")])
        self.assertEqual(r.status, 200, r)
        line = self.gw.wait_access("plain-1")
        self.assertIsNotNone(line)
        self.assertNotIn("tls", line)
        self.assertNotIn("tls_resumed", line)


class PlainAndGarbage(TlsCase):
    def test_plain_http_to_tls_port(self):
        before = self.tls_metrics()
        res = self.gw.raw_ex(b"GET /api/v1/tasks HTTP/1.1\r\nHost: x\r\n\r\n", timeout=scaled(5))
        r = self.assertClosedAfter(res, 400, "BAD_REQUEST")
        self.assertEqual(r.version, "HTTP/1.1")
        self.assertIn("HTTPS", r.json()["error"]["message"].upper())
        self.assertEqual(self.up.stats()["requests"], 0, "the plain request was forwarded")
        self.assertDeltas(before, {failures_key("plain_http"): 1})
        self.assertIsNotNone(self.gw.wait_log(lambda l: l.get("event") == "tls_handshake_failed"))
        self.assertServing()

    def test_garbage_after_handshake_byte(self):
        before = self.tls_metrics()
        res = self.gw.raw_ex(b"\x16" + b"\xde\xad\xbe\xef garbage \x00\xff" * 20,
                             timeout=scaled(5))
        self.assertTrue(res.closed, res)
        self.assertNotIn(b"HTTP/", res.data)
        # A handshake record of the right shape whose message is nonsense.
        body = b"\x01\x00\x00\x20" + os.urandom(32)
        res = self.gw.raw_ex(b"\x16\x03\x01" + len(body).to_bytes(2, "big") + body,
                             timeout=scaled(5))
        self.assertTrue(res.closed, res)
        self.assertNotIn(b"HTTP/", res.data)
        # Junk is neither a version nor a cipher problem: both count as other.
        self.assertDeltas(before, {failures_key("other"): 2})
        self.assertServing()

    def test_client_leaving_midway_counts_as_closed(self):
        before = self.tls_metrics()
        hello = client_hello()
        s = self.gw.sock()
        s.sendall(hello[:len(hello) // 2])
        time.sleep(0.1)
        s.close()
        s = self.gw.sock()  # connects, sends nothing, leaves
        s.close()
        self.assertDeltas(before, {failures_key("closed"): 2})
        self.assertServing()

    def test_every_failure_reason_is_exported(self):
        m = self.metrics()
        for reason in FAIL_REASONS:
            self.assertIn(failures_key(reason), m, reason)
        for v, res in (("TLSv1.2", "no"), ("TLSv1.3", "no"), ("TLSv1.2", "yes"),
                       ("TLSv1.3", "yes")):
            self.assertIn(handshakes_key(v, res), m)


class HandshakeTimeout(TlsCase):
    tls_keys = {"handshake_timeout": "500ms"}
    server = {"client_timeout": "10s"}

    def test_silent_and_half_hello_clients_are_closed(self):
        before = self.tls_metrics()
        n_events = len(self.gw.events("tls_handshake_failed"))
        hello = client_hello()
        silent = self.gw.sock()
        half = self.gw.sock()
        t0 = time.monotonic()
        half.sendall(hello[:len(hello) // 2])
        # Meanwhile the gateway serves other clients.
        s = tls_connect(self.port)
        try:
            self.assertEqual(send_get(s).status, 200)
        finally:
            s.close()
        for sock in (silent, half):
            res = read_until_close(sock, scaled(4), t0)
            sock.close()
            self.assertTrue(res.closed, "not closed within 4 s: %r" % res)
            self.assertEqual(res.data, b"")
            self.assertGreaterEqual(res.elapsed, 0.4, res)
            self.assertLessEqual(res.elapsed, 2.0 + slack(3), res)
        self.assertDeltas(before, {failures_key("timeout"): 2, handshakes_key("TLSv1.3", "no"): 1})
        self.assertTrue(wait_until(lambda: len(self.gw.events("tls_handshake_failed"))
                                   >= n_events + 2, scaled(3)),
                        self.gw.stdout_text()[-2000:])
        self.assertServing()

    def test_deadline_ends_with_the_handshake(self):
        # Done with its handshake, a client is under client_timeout (10s), no
        # longer under handshake_timeout.
        s = tls_connect(self.port)
        try:
            time.sleep(1.2)
            r = send_get(s)
            self.assertIsNotNone(r, "closed while idle after the handshake")
            self.assertEqual(r.status, 200, r)
        finally:
            s.close()


class ForwardedHeaders(TlsCase):
    def test_proto_https_over_tls_http_over_plain(self):
        s = tls_connect(self.port)
        try:
            self.assertEqual(send_get(s, host="api.example").status, 200)
        finally:
            s.close()
        self.assertEqual(self.upstream_headers("X-Forwarded-Proto"), ["https"])
        self.assertEqual(self.upstream_headers("X-Forwarded-Host"), ["api.example"])
        r = self.plain_get(host="plain.example")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.upstream_headers("X-Forwarded-Proto"), ["http"])
        self.assertEqual(self.upstream_headers("X-Forwarded-Host"), ["plain.example"])

    def test_untrusted_claims_replaced(self):
        claims = [("X-Forwarded-Proto", "http"), ("X-Forwarded-Host", "evil.test")]
        s = tls_connect(self.port)
        try:
            self.assertEqual(send_get(s, host="api.example", headers=claims).status, 200)
        finally:
            s.close()
        self.assertEqual(self.upstream_headers("X-Forwarded-Proto"), ["https"])
        self.assertEqual(self.upstream_headers("X-Forwarded-Host"), ["api.example"])
        s = socket.create_connection(("127.0.0.1", self.plain), timeout=5)
        try:
            r = send_get(s, host="plain.example",
                         headers=[("X-Forwarded-Proto", "https"),
                                  ("X-Forwarded-Host", "evil.test")])
            self.assertEqual(r.status, 200)
        finally:
            s.close()
        self.assertEqual(self.upstream_headers("X-Forwarded-Proto"), ["http"])
        self.assertEqual(self.upstream_headers("X-Forwarded-Host"), ["plain.example"])


class ForwardedHeadersTrusted(TlsCase):
    limits = {"trusted_proxies": "127.0.0.1/32"}

    def test_trusted_claims_kept(self):
        s = tls_connect(self.port)
        try:
            r = send_get(s, host="internal:8443", headers=[("X-Forwarded-Proto", "http"),
                                                           ("X-Forwarded-Host", "www.example")])
            self.assertEqual(r.status, 200)
            self.assertEqual(self.upstream_headers("X-Forwarded-Proto"), ["http"])
            self.assertEqual(self.upstream_headers("X-Forwarded-Host"), ["www.example"])
            # Without a claim: what this hop saw.
            self.assertEqual(send_get(s, host="internal:8443").status, 200)
            self.assertEqual(self.upstream_headers("X-Forwarded-Proto"), ["https"])
            self.assertEqual(self.upstream_headers("X-Forwarded-Host"), ["internal:8443"])
        finally:
            s.close()
        s = socket.create_connection(("127.0.0.1", self.plain), timeout=5)
        try:
            r = send_get(s, host="plain.example", headers=[("X-Forwarded-Proto", "https"),
                                                           ("X-Forwarded-Host", "www.example")])
            self.assertEqual(r.status, 200)
        finally:
            s.close()
        self.assertEqual(self.upstream_headers("X-Forwarded-Proto"), ["https"])
        self.assertEqual(self.upstream_headers("X-Forwarded-Host"), ["www.example"])


class DataPath(TlsCase):
    """Bytes through the TLS listener: more than a record each way, and
    pipelined requests (decrypted bytes the socket no longer signals)."""

    def test_large_bodies_both_ways(self):
        s = tls_connect(self.port)
        try:
            body = os.urandom(300 * 1024)
            head = request_bytes("POST", API, [("Content-Length", str(len(body))),
                                               ("Content-Type", "application/octet-stream")],
                                 host="gw.test")
            s.sendall(head + body)
            r, _, _ = read_one_response(s, scaled(10))
            self.assertIsNotNone(r)
            self.assertEqual(r.status, 200, r)
            echo = r.json()
            self.assertEqual(echo["body_len"], len(body))
            self.assertEqual(base64.b64decode(echo["body_b64"]), body)
            r = send_get(s, headers=[("X-Test-Script", script_header(body_size=3 * 1024 * 1024))],
                         timeout=10)
            self.assertEqual(r.status, 200, r)
            self.assertTrue(r.complete)
            self.assertEqual(r.body, b"x" * (3 * 1024 * 1024))
        finally:
            s.close()

    def test_pipelined_requests(self):
        s = tls_connect(self.port)
        try:
            s.sendall(b"".join(request_bytes("GET", API + "/%d" % i, [("X-Request-Id", "pipe-%d" % i)],
                                             host="gw.test") for i in range(5)))
            data = b""
            deadline = time.monotonic() + scaled(5)
            while len([r for r in parse_responses(data) if r.complete]) < 5:
                left = deadline - time.monotonic()
                self.assertGreater(left, 0, "only %r" % parse_responses(data))
                s.settimeout(left)
                chunk = s.recv(65536)
                self.assertTrue(chunk, "closed after %r" % parse_responses(data))
                data += chunk
            rs = parse_responses(data)
            self.assertEqual([r.status for r in rs], [200] * 5)
            self.assertEqual([r.json()["target"] for r in rs], [API + "/%d" % i for i in range(5)])
        finally:
            s.close()


# ---------------------------------------------------------------- reload

class Reload(TlsCase):
    def make_conf(self):
        d = tempfile.mkdtemp(prefix="envelopd-tls-live-")
        self.addCleanup(shutil.rmtree, d, True)
        self.live_cert = os.path.join(d, "live.pem")
        self.live_key = os.path.join(d, "live.key")
        PKI.install("a", self.live_cert, self.live_key)
        c = super().make_conf()
        c.remove("tls", "certificate")
        c.remove("tls", "key")
        c.add("tls", "certificate", self.live_cert)
        c.add("tls", "key", self.live_key)
        return c

    def sighup(self, event):
        n = len(self.gw.events(event))
        os.kill(self.gw.pid, signal.SIGHUP)
        ok = wait_until(lambda: len(self.gw.events(event)) > n, scaled(5))
        self.assertTrue(ok, "no %s line after SIGHUP:\n%s" % (event, self.gw.stdout_text()[-2000:]))
        return self.gw.events(event)[-1]

    def new_cn(self):
        s = tls_connect(self.port, client_ctx(check_hostname=False))
        try:
            self.assertEqual(send_get(s).status, 200)
            return peer_cn(s)
        finally:
            s.close()

    def test_renewed_certificate_served_after_sighup(self):
        old = tls_connect(self.port)
        self.addCleanup(old.close)
        self.assertEqual(send_get(old).status, 200)
        self.assertEqual(peer_cn(old), "cert-a")
        PKI.install("a2", self.live_cert, self.live_key)
        self.sighup("reload")
        self.assertEqual(self.new_cn(), "cert-a-v2")
        # The connection from before the reload still serves requests.
        r = send_get(old)
        self.assertIsNotNone(r, "the pre-reload keep-alive TLS connection was closed")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(peer_cn(old), "cert-a")

    def test_mismatched_key_keeps_the_running_certificate(self):
        PKI.install("a2", self.live_cert, self.live_key)
        self.sighup("reload")
        self.assertEqual(self.new_cn(), "cert-a-v2")
        with open(PKI.key("b"), "rb") as f:
            other_key = f.read()
        with open(self.live_key, "wb") as f:
            f.write(other_key)
        ev = self.sighup("reload_failed")
        self.assertIn(self.live_key, json.dumps(ev))
        self.assertTrue(self.gw.alive())
        self.assertEqual(self.new_cn(), "cert-a-v2")
        # Fixed files: the next SIGHUP takes them.
        PKI.install("b", self.live_cert, self.live_key)
        self.sighup("reload")
        self.assertEqual(self.new_cn(), "cert-b")

    def test_handshake_begun_before_a_reload_completes(self):
        # SNI picks "b", a second pair; the ClientHello's first half arrives
        # before the reload, the rest after it.
        c = self.gw.conf
        c.add("tls", "certificate", PKI.cert("b"))
        c.add("tls", "key", PKI.key("b"))
        self.gw.write_conf(c)
        self.sighup("reload")
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = client_ctx().wrap_bio(incoming, outgoing, server_hostname="b.example.test")
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        hello = outgoing.read()
        s = self.gw.sock()
        self.addCleanup(s.close)
        s.sendall(hello[:len(hello) // 2])
        time.sleep(0.1)
        PKI.install("a2", self.live_cert, self.live_key)
        self.sighup("reload")
        s.sendall(hello[len(hello) // 2:])
        deadline = time.monotonic() + scaled(5)
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                pass
            s.sendall(outgoing.read())
            s.settimeout(max(0.01, deadline - time.monotonic()))
            data = s.recv(65536)
            self.assertTrue(data, "the gateway closed the connection during the handshake")
            incoming.write(data)
        s.sendall(outgoing.read())
        self.assertEqual(dict(r[0] for r in obj.getpeercert()["subject"])["commonName"], "cert-b")
        obj.write(request_bytes("GET", API, host="gw.test"))
        s.sendall(outgoing.read())
        got = b""
        while b"\r\n\r\n" not in got:
            try:
                got += obj.read(65536)
                continue
            except ssl.SSLWantReadError:
                pass
            s.settimeout(max(0.01, deadline - time.monotonic()))
            data = s.recv(65536)
            self.assertTrue(data, "closed before a response: %r" % got)
            incoming.write(data)
        self.assertTrue(got.startswith(b"HTTP/1.1 200 "), got[:200])
        self.assertEqual(self.new_cn(), "cert-a-v2")

    def test_tls_settings_apply_on_reload(self):
        self.assertEqual(self.new_cn(), "cert-a")
        c = self.gw.conf
        c.set("tls", "protocols", "TLSv1.3")
        self.gw.write_conf(c)
        self.sighup("reload")
        with self.assertRaises(ssl.SSLError):
            tls_connect(self.port, client_ctx(max_version=ssl.TLSVersion.TLSv1_2)).close()
        self.assertEqual(self.new_cn(), "cert-a")


class ListenerFlagsNeedRestart(TlsCase):
    """`[server] listen` is restart-only, its flags included: a reload that
    drops a `tls` flag or reorders the listeners must not change what the
    running listeners speak."""

    def reload_listen(self, *listen):
        c = self.gw.conf
        c.remove("server", "listen")
        for addr in listen:
            c.add("server", "listen", addr)
        n = len(self.gw.events("reload"))
        self.gw.write_conf(c)
        os.kill(self.gw.pid, signal.SIGHUP)
        self.assertTrue(wait_until(lambda: len(self.gw.events("reload")) > n, scaled(5)),
                        self.gw.stdout_text()[-2000:])

    def assertListenersUnchanged(self):
        for _ in range(3):
            try:
                s = tls_connect(self.port, timeout=1)
            except (ssl.SSLError, OSError) as e:
                self.fail("the TLS listener no longer speaks TLS after the reload: %r" % e)
            try:
                self.assertEqual(send_get(s).status, 200)
            finally:
                s.close()
            r = self.plain_get()
            self.assertIsNotNone(r, "the plain listener no longer answers plain HTTP")
            self.assertEqual(r.status, 200, r)

    def test_reload_dropping_the_tls_flag(self):
        self.reload_listen("127.0.0.1:%d" % self.port, "127.0.0.1:%d" % self.plain)
        self.assertTrue(self.gw.events("reload_ignored"), "no reload_ignored for listen")
        self.assertListenersUnchanged()

    def test_reload_reordering_the_listeners(self):
        self.reload_listen("127.0.0.1:%d" % self.plain, "127.0.0.1:%d tls" % self.port)
        self.assertListenersUnchanged()

    def test_reload_removing_every_certificate_is_refused(self):
        """The TLS listener is still bound: a conf without certificates (and
        without the tls flag, so it loads) must not leave it with none."""
        c = self.gw.conf
        c.remove("server", "listen")
        c.add("server", "listen", "127.0.0.1:%d" % self.port)
        c.add("server", "listen", "127.0.0.1:%d" % self.plain)
        c.remove("tls")
        n = len(self.gw.events("reload_failed"))
        self.gw.write_conf(c)
        os.kill(self.gw.pid, signal.SIGHUP)
        self.assertTrue(wait_until(lambda: len(self.gw.events("reload_failed")) > n, scaled(5)),
                        self.gw.stdout_text()[-2000:])
        self.assertIn("TLS listeners are running", self.gw.events("reload_failed")[-1]["error"])
        self.assertListenersUnchanged()


# ---------------------------------------------------------------- envelopd -t

class ConfCheck(unittest.TestCase):
    def setUp(self):
        if not ENVELOPD:
            raise unittest.SkipTest("ENVELOPD is not set")
        self.dir = tempfile.mkdtemp(prefix="envelopd-tls-t-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.path = os.path.join(self.dir, "envelopd.conf")

    def write(self, cert, key):
        c = base_conf(free_port(), [free_port()])
        c.set("server", "listen", "127.0.0.1:%d tls" % free_port())
        c.add("tls", "certificate", cert)
        c.add("tls", "key", key)
        text = c.text()
        with open(self.path, "w") as f:
            f.write(text)
        lines = text.splitlines()
        cert_line = lines.index("certificate = %s" % cert) + 1
        key_line = lines.index("key = %s" % key) + 1
        return cert_line, key_line

    def check(self):
        p = run_envelopd(["-t", "-c", self.path], capture_output=True)
        return p.returncode, p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")

    def test_good_pair_ok(self):
        self.write(PKI.cert("a"), PKI.key("a"))
        rc, out = self.check()
        self.assertEqual(rc, 0, out)
        self.assertIn("configuration ok", out)

    def test_mismatched_key_names_the_key_line(self):
        _, key_line = self.write(PKI.cert("a"), PKI.key("b"))
        rc, out = self.check()
        self.assertNotEqual(rc, 0, out)
        self.assertIn("%s:%d:" % (self.path, key_line), out)
        self.assertNotIn("configuration ok", out)
        # And a start with it fails too, saying the same.
        p = run_envelopd(["-c", self.path], capture_output=True, timeout=10)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("%s:%d:" % (self.path, key_line), p.stderr.decode(errors="replace"))

    def test_missing_certificate_names_the_certificate_line(self):
        missing = os.path.join(self.dir, "no-such-cert.pem")
        cert_line, _ = self.write(missing, PKI.key("a"))
        rc, out = self.check()
        self.assertNotEqual(rc, 0, out)
        self.assertIn("%s:%d:" % (self.path, cert_line), out)


# ---------------------------------------------------------------- upstream TLS

class UpstreamTls(GatewayTestCase):
    def start(self, require_client_cert=False, close_each=False, idle_timeout=None, **upstream):
        self.tup = TlsUpstream(require_client_cert, close_each, idle_timeout)
        self.addCleanup(self.tup.stop)
        self.port = free_port()
        c = base_conf(self.port, [self.tup.port])
        c.set("upstream tasks", "tls", "yes")
        for k, v in upstream.items():
            c.set("upstream tasks", k, v)
        self.gw = self.gateway(c, self.port)
        return self.gw

    def get(self, rid):
        return self.gw.request("GET", API + "/x", headers={"X-Request-Id": rid})

    def upstream_tls_event(self, rid):
        ev = self.gw.wait_log(lambda l: l.get("event") == "upstream_tls")
        self.assertIsNotNone(ev, "no upstream_tls event:\n%s" % self.gw.stdout_text()[-2000:])
        self.assertEqual(ev.get("request_id"), rid, ev)
        self.assertEqual(ev.get("upstream"), "tasks", ev)
        self.assertEqual(ev.get("server"), "127.0.0.1:%d" % self.tup.port, ev)
        return ev

    def test_ca_file_verifies(self):
        self.start(ca_file=PKI.ca)
        r = self.get("ca-1")
        self.assertEqual(r.status, 200, r)
        body = r.json()
        self.assertEqual(body["path"], API + "/x")
        self.assertIsNone(body["client_cn"])
        self.assertEqual(self.gw.events("upstream_tls"), [])
        # An IP address is checked against the certificate, never sent as SNI.
        self.assertEqual([h["sni"] for h in self.tup.ok_handshakes()], [None])

    def test_system_store_does_not_know_the_private_ca(self):
        self.start()
        r = self.get("sys-1")
        self.assertEnvelope(r, 502, "BAD_GATEWAY")
        ev = self.upstream_tls_event("sys-1")
        self.assertIn("certificate", ev.get("reason", "").lower(), ev)
        self.assertEqual(self.tup.requests, 0)

    def test_verify_no_accepts_any_certificate(self):
        self.start(verify="no")
        r = self.get("nov-1")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.gw.events("upstream_tls"), [])

    def test_wrong_server_name_fails_verification(self):
        self.start(ca_file=PKI.ca, server_name="wrong.test")
        r = self.get("name-1")
        self.assertEnvelope(r, 502, "BAD_GATEWAY")
        ev = self.upstream_tls_event("name-1")
        self.assertIn("mismatch", ev.get("reason", "").lower(), ev)
        self.assertIn("wrong.test", [h["sni"] for h in self.tup.handshakes])
        self.assertEqual(self.tup.requests, 0)

    def test_server_name_sent_as_sni_and_verified(self):
        self.start(ca_file=PKI.ca, server_name="localhost")
        r = self.get("name-2")
        self.assertEqual(r.status, 200, r)
        self.assertEqual([h["sni"] for h in self.tup.ok_handshakes()], ["localhost"])

    def test_mtls_without_client_certificate_fails(self):
        self.start(require_client_cert=True, ca_file=PKI.ca)
        r = self.get("mtls-0")
        self.assertEnvelope(r, 502, "BAD_GATEWAY")
        self.assertEqual(self.tup.requests, 0)
        self.assertTrue(self.tup.failed_handshakes(), "the upstream saw no failed handshake")

    def test_mtls_with_client_certificate(self):
        self.start(require_client_cert=True, ca_file=PKI.ca,
                   client_certificate=PKI.cert("client"), client_key=PKI.key("client"))
        r = self.get("mtls-1")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["client_cn"], "envelopd-test-client")

    def test_pooled_connections_reused(self):
        self.start(ca_file=PKI.ca)
        for i in range(10):
            r = self.get("pool-%d" % i)
            self.assertEqual(r.status, 200, r)
        self.assertEqual(self.tup.requests, 10)
        hs = self.tup.ok_handshakes()
        self.assertLessEqual(len(hs), 2, "keep-alive not used: %d handshakes for 10 requests"
                             % len(hs))

    def test_large_bodies_both_ways(self):
        self.start(ca_file=PKI.ca)
        body = os.urandom(400 * 1024)
        r = self.gw.request("POST", API + "/up", body=body,
                            headers={"Content-Type": "application/octet-stream"}, timeout=10)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["body_len"], len(body))
        self.assertEqual(r.json()["body_sha256"], hashlib.sha256(body).hexdigest())
        r = self.gw.request("GET", API + "/big", headers={"X-Body-Size": str(3 * 1024 * 1024)},
                            timeout=10)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"y" * (3 * 1024 * 1024))

    def test_pooled_connection_closed_by_the_upstream_while_idle(self):
        self.start(idle_timeout=0.3, ca_file=PKI.ca)
        for i in range(3):
            r = self.get("idle-%d" % i)
            self.assertEqual(r.status, 200, r)
            time.sleep(0.6)  # the upstream has closed the pooled connection meanwhile
        self.assertEqual(self.tup.requests, 3)
        self.assertEqual(len(self.tup.ok_handshakes()), 3)

    def test_new_pooled_connections_resume_the_session(self):
        # Each answer closes its connection: every request needs a new one,
        # and each after the first resumes the session the pool kept.
        self.start(close_each=True, ca_file=PKI.ca)
        for i in range(4):
            r = self.get("resume-%d" % i)
            self.assertEqual(r.status, 200, r)
        hs = self.tup.ok_handshakes()
        self.assertEqual(len(hs), 4, hs)
        self.assertEqual([h["resumed"] for h in hs], [False, True, True, True], hs)


if __name__ == "__main__":
    unittest.main()


# ---------------------------------------------------------------- review fixes

class PipelinedRecords(TlsCase):
    """Review F1: bytes OpenSSL decrypted (or read ahead) while the input was
    at its limit must be read once it drains, though the socket is empty."""

    certs = ("a",)

    def test_pipelined_records_larger_than_the_input_limit(self):
        s = tls_connect(self.port)
        self.addCleanup(s.close)
        reqs = b"".join(request_bytes("GET", API + "/p%02d" % i,
                                      [("X-Pad", "a" * (940 - len(API)))], host="gw.test")
                        for i in range(70))
        for k in range(0, len(reqs), 10000):
            s.sendall(reqs[k:k + 10000])  # one record each
        data = b""
        deadline = time.monotonic() + scaled(8)
        while len([r for r in parse_responses(data) if r.complete]) < 70:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            s.settimeout(left)
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            data += chunk
        done = [r for r in parse_responses(data) if r.complete]
        self.assertEqual(len(done), 70, "pipelined requests left unread inside OpenSSL")
        self.assertTrue(all(r.status == 200 for r in done))


class CutTlsUpstream(GatewayTestCase):
    """Review F2: an upstream body that runs until close, ended by a TCP close
    without close_notify (what a FIN injected on the path looks like), is a
    cut, never passed on as whole; with close_notify it is whole."""

    def serve(self, notify):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(PKI.cert("upstream"), PKI.key("upstream"))
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(8)
        self.addCleanup(ls.close)

        def run():
            while True:
                try:
                    raw, _ = ls.accept()
                except OSError:
                    return
                try:
                    s = ctx.wrap_socket(raw, server_side=True)
                    buf = b""
                    while b"\r\n\r\n" not in buf:
                        buf += s.recv(4096)
                    s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                              b"Connection: close\r\n\r\n" + b"A" * 5000)
                    if notify:
                        s.unwrap().close()
                    else:
                        raw2 = socket.socket(fileno=os.dup(s.fileno()))
                        raw2.shutdown(socket.SHUT_RDWR)
                        raw2.close()
                        s.close()
                except (OSError, ssl.SSLError):
                    pass

        threading.Thread(target=run, daemon=True).start()
        return ls.getsockname()[1]

    def fetch(self, notify):
        port = free_port()
        c = base_conf(port, [self.serve(notify)])
        c.set("upstream tasks", "tls", "yes")
        c.set("upstream tasks", "ca_file", PKI.ca)
        c.set("upstream tasks", "retries", 0)
        gw = self.gateway(c, port)
        s = socket.create_connection(("127.0.0.1", port), timeout=scaled(5))
        self.addCleanup(s.close)
        s.sendall(request_bytes("GET", API + "/x", [], host="gw.test"))
        res = read_until_close(s, scaled(5), time.monotonic())
        return gw, res

    def test_close_without_close_notify_is_a_cut(self):
        gw, res = self.fetch(notify=False)
        rs = res.responses()
        self.assertTrue(rs and rs[0].status == 200, res)
        self.assertFalse(rs[0].complete, "a cut body was ended as if whole")
        self.assertIsNotNone(gw.wait_log(lambda l: l.get("event") == "upstream_cut"))

    def test_close_notify_ends_the_body(self):
        gw, res = self.fetch(notify=True)
        rs = res.responses()
        self.assertTrue(rs and rs[0].complete and rs[0].status == 200, res)
        self.assertEqual(len(rs[0].body), 5000)
