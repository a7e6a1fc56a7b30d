"""The PROXY protocol on a listener (`[server] listen = ADDR proxy_protocol`,
HAProxy's proxy-protocol.txt, v1 text and v2 binary), end to end: the header
is believed only from a peer in [limits] trusted_proxies; the client it names
becomes the caller (the access line's "client", the last X-Forwarded-For
entry, the per-IP rate-limit key); LOCAL / UNKNOWN keep the real peer; a v2
SSL TLV makes X-Forwarded-Proto https; a malformed, truncated or missing
header closes the connection without an answer (event proxy_protocol_invalid,
with a reason); an untrusted peer is refused at once (event
proxy_protocol_refused); and with `tls proxy_protocol` the header comes
before the TLS handshake.

Every header is sent on a raw socket, so each byte is the test's own. The
harness's start-up probe (one connect-and-close on the listener) logs one
proxy_protocol event of its own: start() waits for it, so every event
counted after that is the test's.

TLS certificates are made with the `openssl` CLI in a temporary directory.

Run: cd tests/integration && ENVELOPD=/path/to/envelopd python3 -m unittest -v test_proxyproto
"""

import ipaddress
import os
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile
import time
import unittest

from harness import (GatewayTestCase, RawResult, base_conf, free_port, parse_responses,
                     read_one_response, read_until_close, request_bytes, scaled, skip_if_slow,
                     slack, wait_port, wait_until)

API = "/api/v1/tasks"

# Client addresses a header names: documentation ranges, never the test's own
# peer (127.0.0.1) and never in trusted_proxies.
SRC_A = "203.0.113.7"
SRC_B = "198.51.100.9"
SRC_6 = "2001:db8::7"
DST = "192.0.2.1"
DST_6 = "2001:db8::1"

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
PP2_TYPE_SSL = 0x20
PP2_SUBTYPE_SSL_VERSION = 0x21
PP2_CLIENT_SSL = 0x01


# ---------------------------------------------------------------- headers

def v1(src=SRC_A, dst=None, sport=40000, dport=80, proto=None):
    """A v1 text header, TCP4 or TCP6 after SRC's family (or PROTO)."""
    if proto is None:
        proto = "TCP6" if ":" in src else "TCP4"
    if dst is None:
        dst = DST_6 if ":" in src else DST
    return ("PROXY %s %s %s %d %d\r\n" % (proto, src, dst, sport, dport)).encode()


def tlv(t, value):
    return bytes([t]) + struct.pack(">H", len(value)) + value


def ssl_tlv(client=PP2_CLIENT_SSL, verify=0, version=b"TLSv1.3"):
    """PP2_TYPE_SSL: client bits, verify result, a PP2_SUBTYPE_SSL_VERSION sub-TLV."""
    sub = tlv(PP2_SUBTYPE_SSL_VERSION, version) if version is not None else b""
    return tlv(PP2_TYPE_SSL, bytes([client]) + struct.pack(">I", verify) + sub)


def v2(src=SRC_A, dst=None, sport=40000, dport=80, local=False, tlvs=b"", ver=2,
       fam=None, length=None, block=None):
    """A v2 binary header: PROXY (or LOCAL) over TCP, IPv4 or IPv6 after SRC.
    FAM, LENGTH and BLOCK override the family byte, the length field and the
    address block (for malformed headers)."""
    if ":" in src:
        f = 0x21
        addrs = (ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst or DST_6).packed)
    else:
        f = 0x11
        addrs = ipaddress.IPv4Address(src).packed + ipaddress.IPv4Address(dst or DST).packed
    if block is None:
        block = addrs + struct.pack(">HH", sport, dport) + tlvs
    fam = f if fam is None else fam
    n = len(block) if length is None else length
    return V2_SIG + bytes([(ver << 4) | (0 if local else 1), fam]) + struct.pack(">H", n) + block


def get(path=API, headers=(), close=True):
    hdrs = list(headers) + ([("Connection", "close")] if close else [])
    return request_bytes("GET", path, hdrs)


def echo_headers(r, name):
    """Values of NAME in the request the echo upstream received (R's body)."""
    name = name.lower()
    return [v for k, v in r.json()["headers"] if k.lower() == name]


def last_xff(r):
    xff = echo_headers(r, "X-Forwarded-For")
    if len(xff) != 1:
        raise AssertionError("upstream got X-Forwarded-For %r, not one line" % (xff,))
    return [p.strip() for p in xff[0].split(",")][-1]


def proc_cpu_seconds(pid):
    """utime + stime of process PID (all its threads), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def send_quietly(s, data):
    """sendall that ignores a peer that has already closed or reset."""
    try:
        s.sendall(data)
        return True
    except OSError:
        return False


# ---------------------------------------------------------------- TLS

def make_cert(directory):
    """A self-signed EC certificate for localhost; (cert path, key path)."""
    if not shutil.which("openssl"):
        raise unittest.SkipTest("openssl CLI not installed")
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=localhost",
                    "-days", "2", "-keyout", key, "-out", cert],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
    return cert, key


def client_ctx():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def client_hello():
    """The first flight of a TLS client: its ClientHello record(s)."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_ctx().wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def tls_read_until_close(ts, timeout):
    deadline = time.monotonic() + timeout
    data = b""
    while time.monotonic() < deadline:
        ts.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = ts.recv(65536)
        except socket.timeout:
            break
        except (ssl.SSLError, OSError):
            break
        if not chunk:
            break
        data += chunk
    return data


# ---------------------------------------------------------------- base

class ProxyProtoCase(GatewayTestCase):

    def start(self, flags="proxy_protocol", trusted="127.0.0.1/32", server=None, limits=None,
              tls=None, extra_listen=()):
        """An echo upstream and a gateway on base_conf whose listener has FLAGS;
        [limits] trusted_proxies = TRUSTED; TLS = (cert, key) for [tls];
        EXTRA_LISTEN: more `listen` values (their ports are waited for too)."""
        up = self.upstream()
        port = free_port()
        c = base_conf(port, [up.port])
        c.set("server", "listen", ("127.0.0.1:%d %s" % (port, flags)).strip())
        for extra in extra_listen:
            c.add("server", "listen", extra)
        for k, v in (server or {}).items():
            c.set("server", k, v)
        if trusted:
            c.set("limits", "trusted_proxies", trusted)
        for k, v in (limits or {}).items():
            c.set("limits", k, v)
        if tls:
            c.set("tls", "certificate", tls[0])
            c.set("tls", "key", tls[1])
        gw = self.gateway(c, port)
        for extra in extra_listen:
            p = int(extra.split()[0].rpartition(":")[2])
            self.assertTrue(wait_port(p, scaled(10), gw.proc), "listener %s never opened" % extra)
        if "proxy_protocol" in flags:
            # The harness's start-up probe connected once and closed: its own
            # event must be in before this test counts events.
            ev = gw.wait_log(lambda l: l.get("event") in ("proxy_protocol_invalid",
                                                          "proxy_protocol_refused"), 5)
            self.assertIsNotNone(ev, "the start-up probe left no proxy_protocol event:\n"
                                 + gw.stdout_text()[-2000:])
        return gw, up

    def exchange(self, gw, data, port=None, timeout=5):
        """DATA in one send on a new connection; (first response or None, all bytes, closed)."""
        s = socket.create_connection(("127.0.0.1", port or gw.port), timeout=scaled(timeout))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            send_quietly(s, data)
            return read_one_response(s, scaled(timeout))
        finally:
            s.close()

    def pp_get(self, gw, header, headers=(), port=None):
        """HEADER then a GET of API in the same send: the complete response."""
        r, data, _ = self.exchange(gw, header + get(headers=headers), port)
        self.assertTrue(r is not None and r.complete,
                        "no complete response after header %r: %r" % (header, data[:400]))
        return r

    def access_of(self, gw, r):
        """The access line of response R (by its correlation ID)."""
        rid = r.header("X-Correlation-Id")
        self.assertTrue(rid, "response without X-Correlation-Id: %r" % r)
        acc = gw.wait_access(rid)
        self.assertIsNotNone(acc, "no access line for %s:\n%s" % (rid, gw.stdout_text()[-2000:]))
        return acc

    def assertClient(self, gw, r, client):
        """R was answered by the upstream (200), which saw CLIENT as the last
        X-Forwarded-For entry, and the access line names CLIENT."""
        self.assertEqual(r.status, 200, r)
        self.assertEqual(last_xff(r), client, r.body[:600])
        self.assertEqual(self.access_of(gw, r)["client"], client)

    def count(self, gw, event):
        return len(gw.events(event))

    def new_event(self, gw, event, before, timeout=3):
        """The first EVENT line after the first BEFORE ones, waiting up to TIMEOUT."""
        evs = wait_until(lambda: gw.events(event)[before:], scaled(timeout))
        self.assertTrue(evs, "no new %s event:\n%s" % (event, gw.stdout_text()[-2000:]))
        return evs[0]

    def assertServes(self, gw, src=SRC_B):
        """A valid header and request on a new connection still work."""
        self.assertTrue(gw.alive(), "envelopd exited; stderr:\n" + gw.stderr_text()[-2000:])
        self.assertClient(gw, self.pp_get(gw, v1(src)), src)

    def refused_exchange(self, gw, data, timeout=3):
        """DATA on a new connection, then read until close: a RawResult. A reset
        that comes before connect() has returned counts as a close with no data."""
        t0 = time.monotonic()
        try:
            s = gw.sock(timeout=scaled(5))
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
            return RawResult(b"", True, time.monotonic() - t0, True)
        try:
            send_quietly(s, data)
            return read_until_close(s, scaled(timeout), t0)
        finally:
            s.close()

    def assertInvalidClosed(self, gw, up, data, what, shut_write=False, max_elapsed=1.0):
        """DATA on a new connection: closed within MAX_ELAPSED s, no answer, one new
        proxy_protocol_invalid event with a reason, nothing forwarded."""
        before = self.count(gw, "proxy_protocol_invalid")
        reqs = up.stats()["requests"]
        s = gw.sock(timeout=scaled(5))
        try:
            t0 = time.monotonic()
            send_quietly(s, data)
            if shut_write:
                try:
                    s.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
            res = read_until_close(s, scaled(max_elapsed + 2), t0)
        finally:
            s.close()
        self.assertTrue(res.closed, "%s: the gateway kept the connection open: %r" % (what, res))
        self.assertEqual(res.data, b"", "%s: the gateway answered: %r" % (what, res))
        self.assertLessEqual(res.elapsed, max_elapsed + slack(2),
                             "%s: closed only after %.2f s" % (what, res.elapsed))
        ev = self.new_event(gw, "proxy_protocol_invalid", before)
        self.assertIsInstance(ev.get("reason"), str, "%s: event without a reason: %r" % (what, ev))
        self.assertTrue(ev["reason"], "%s: empty reason: %r" % (what, ev))
        self.assertEqual(up.stats()["requests"], reqs, "%s: a request reached the upstream" % what)
        return ev


# ====================================================================== addresses

class ClientAddress(ProxyProtoCase):
    """The header's source address becomes the client."""

    def test_v1_tcp4_names_the_client(self):
        gw, _ = self.start()
        self.assertClient(gw, self.pp_get(gw, v1(SRC_A)), SRC_A)

    def test_v1_tcp6_v2_ipv4_v2_ipv6(self):
        gw, _ = self.start()
        for name, header, client in (("v1 TCP6", v1(SRC_6), SRC_6),
                                     ("v2 IPv4", v2(SRC_B), SRC_B),
                                     ("v2 IPv6", v2(SRC_6), SRC_6)):
            with self.subTest(header=name):
                self.assertClient(gw, self.pp_get(gw, header), client)

    def test_client_x_forwarded_for_not_believed_over_header(self):
        """The header's source is not a trusted proxy: an X-Forwarded-For it sends
        is kept in the chain, but the client stays the header's source."""
        gw, _ = self.start()
        r = self.pp_get(gw, v1(SRC_A), headers=[("X-Forwarded-For", "1.2.3.4")])
        self.assertClient(gw, r, SRC_A)
        self.assertEqual(echo_headers(r, "X-Forwarded-For"), ["1.2.3.4, " + SRC_A])

    def test_v1_unknown_and_v2_local_keep_the_peer(self):
        gw, _ = self.start()
        for name, header in (("v1 UNKNOWN", b"PROXY UNKNOWN\r\n"),
                             ("v2 LOCAL, no addresses", v2(local=True, fam=0x00, block=b"")),
                             ("v2 LOCAL, an IPv4 block", v2(SRC_A, local=True))):
            with self.subTest(header=name):
                self.assertClient(gw, self.pp_get(gw, header), "127.0.0.1")

    def test_header_and_pipelined_requests_in_one_send(self):
        """Header, then two requests, all in one write: both answered, both for
        the header's client."""
        gw, _ = self.start()
        s = gw.sock(timeout=scaled(5))
        try:
            s.sendall(v2(SRC_A) + get(close=False) + get())
            res = read_until_close(s, scaled(5))
        finally:
            s.close()
        rs = res.responses()
        self.assertEqual([r.status for r in rs], [200, 200], res)
        for r in rs:
            self.assertClient(gw, r, SRC_A)

    def test_header_alone_then_request_later(self):
        gw, _ = self.start()
        s = gw.sock(timeout=scaled(5))
        try:
            s.sendall(v1(SRC_A))
            time.sleep(0.2)
            s.sendall(get())
            r, data, _ = read_one_response(s, scaled(5))
        finally:
            s.close()
        self.assertTrue(r is not None and r.complete, data[:400])
        self.assertClient(gw, r, SRC_A)

    def test_header_split_byte_by_byte(self):
        gw, _ = self.start()
        for name, header, client in (("v1", v1(SRC_A), SRC_A),
                                     ("v2 with SSL TLV", v2(SRC_6, tlvs=ssl_tlv()), SRC_6)):
            with self.subTest(header=name):
                s = gw.sock(timeout=scaled(5))
                try:
                    for i in range(len(header)):
                        s.sendall(header[i:i + 1])
                        time.sleep(0.003)
                    s.sendall(get())
                    r, data, _ = read_one_response(s, scaled(5))
                finally:
                    s.close()
                self.assertTrue(r is not None and r.complete, data[:400])
                self.assertClient(gw, r, client)

    @skip_if_slow("a CPU-time bound")
    def test_partial_header_does_not_spin(self):
        """While half a header waits for its rest, the worker must sleep, not
        poll the socket in a loop."""
        gw, _ = self.start(server={"client_timeout": "5s"})
        header = v1(SRC_A)
        s = gw.sock(timeout=scaled(5))
        try:
            s.sendall(header[:12])
            time.sleep(0.1)
            c0 = proc_cpu_seconds(gw.pid)
            time.sleep(1.0)
            used = proc_cpu_seconds(gw.pid) - c0
            s.sendall(header[12:] + get())
            r, data, _ = read_one_response(s, scaled(5))
        finally:
            s.close()
        self.assertLess(used, 0.2, "envelopd used %.2f s of CPU in 1 s waiting for the rest "
                        "of a PROXY header" % used)
        self.assertTrue(r is not None and r.complete, data[:400])
        self.assertClient(gw, r, SRC_A)

    def test_flag_is_per_listener(self):
        """A listener without the flag reads a PROXY line as a (bad) request and
        never takes the address from it; its clients are the real peer."""
        plain = free_port()
        gw, up = self.start(extra_listen=["127.0.0.1:%d" % plain])
        self.assertClient(gw, self.pp_get(gw, v1(SRC_A)), SRC_A)
        reqs = up.stats()["requests"]
        r, data, _ = self.exchange(gw, v1(SRC_B) + get(), port=plain)
        self.assertIsNotNone(r, data[:400])
        self.assertEqual(r.status, 400, r)
        self.assertEqual(up.stats()["requests"], reqs, "the PROXY line was forwarded")
        r = self.pp_get(gw, b"", port=plain)
        self.assertClient(gw, r, "127.0.0.1")
        self.assertFalse([a for a in gw.access_logs() if a.get("client") == SRC_B],
                         "a plain listener took the address of a PROXY line")


# ====================================================================== proto

class ForwardedProto(ProxyProtoCase):
    """X-Forwarded-Proto on a plain proxy_protocol listener."""

    def test_ssl_tlv_makes_https(self):
        gw, _ = self.start()
        for name, header, want in (
                ("v1", v1(SRC_A), "http"),
                ("v2 without TLV", v2(SRC_A), "http"),
                ("v2 SSL TLV, client bit", v2(SRC_A, tlvs=ssl_tlv()), "https"),
                ("v2 SSL TLV, no sub-TLV", v2(SRC_A, tlvs=ssl_tlv(version=None)), "https"),
                ("v2 SSL TLV, client bit clear", v2(SRC_A, tlvs=ssl_tlv(client=0)), "http")):
            with self.subTest(header=name):
                r = self.pp_get(gw, header)
                self.assertClient(gw, r, SRC_A)
                self.assertEqual(echo_headers(r, "X-Forwarded-Proto"), [want], r.body[:600])

    def test_untrusted_client_claim_of_https_ignored(self):
        """The header's source is no trusted proxy: its X-Forwarded-Proto is not taken."""
        gw, _ = self.start()
        r = self.pp_get(gw, v2(SRC_A), headers=[("X-Forwarded-Proto", "https")])
        self.assertClient(gw, r, SRC_A)
        self.assertEqual(echo_headers(r, "X-Forwarded-Proto"), ["http"], r.body[:600])


# ====================================================================== limits

class PerIpLimit(ProxyProtoCase):
    """[limits] per_ip is keyed on the header's client (local limiter, no Redis)."""

    def test_each_proxied_client_has_its_own_budget(self):
        gw, _ = self.start(limits={"per_ip": "2/1m"})

        def st(header):
            return self.pp_get(gw, header).status
        self.assertEqual([st(v1(SRC_A)) for _ in range(3)], [200, 200, 429])
        self.assertEqual([st(v2(SRC_B)) for _ in range(2)], [200, 200],
                         "a second client shared the first one's budget")
        # the real peer (LOCAL): a budget of its own too
        self.assertEqual([st(v2(local=True, fam=0x00, block=b"")) for _ in range(2)], [200, 200])
        r = self.pp_get(gw, v1(SRC_B))
        self.assertEnvelope(r, 429, "RATE_LIMITED")
        self.assertEqual(self.access_of(gw, r)["client"], SRC_B)
        r = self.pp_get(gw, v2(SRC_A, sport=50123))
        self.assertEnvelope(r, 429, "RATE_LIMITED")


# ====================================================================== refusals

class Refusals(ProxyProtoCase):

    def test_untrusted_peer_refused_at_once(self):
        """127.0.0.1 is not in trusted_proxies (10.0.0.0/8): closed before anything
        is read, even a valid header; event proxy_protocol_refused."""
        gw, up = self.start(trusted="10.0.0.0/8", server={"client_timeout": "5s"})
        for name, data in (("valid header and request", v1(SRC_A) + get()),
                           ("nothing sent", b"")):
            with self.subTest(case=name):
                before = self.count(gw, "proxy_protocol_refused")
                res = self.refused_exchange(gw, data)
                self.assertTrue(res.closed, res)
                self.assertEqual(res.data, b"", res)
                self.assertLess(res.elapsed, 1.0 + slack(2), res)
                self.new_event(gw, "proxy_protocol_refused", before)
        self.assertEqual(up.stats()["requests"], 0)
        self.assertEqual(self.count(gw, "proxy_protocol_invalid"), 0)
        self.assertFalse([a for a in gw.access_logs() if a.get("client") == SRC_A])

    def test_malformed_headers_closed(self):
        gw, up = self.start(server={"client_timeout": "5s"})
        cases = [
            ("v1 port 99999", b"PROXY TCP4 203.0.113.7 192.0.2.1 99999 80\r\n"),
            ("v1 extra field", b"PROXY TCP4 203.0.113.7 192.0.2.1 40000 80 9\r\n"),
            ("v1 TCP4 with an IPv6 address", b"PROXY TCP4 2001:db8::7 192.0.2.1 40000 80\r\n"),
            ("v1 lower case", b"proxy TCP4 203.0.113.7 192.0.2.1 40000 80\r\n"),
            ("v2 version nibble 1", v2(SRC_A, ver=1)),
            ("v2 version nibble 3", v2(SRC_A, ver=3)),
            ("no header: plain HTTP", b""),
        ]
        for name, header in cases:
            with self.subTest(case=name):
                self.assertInvalidClosed(gw, up, header + get(), name)
        self.assertServes(gw)

    def test_truncated_v2_then_close(self):
        """A v2 length larger than what is sent, then FIN: closed at once as
        invalid, not left until client_timeout."""
        gw, up = self.start(server={"client_timeout": "5s"})
        header = v2(SRC_A, length=200)  # a 12-byte block announced as 200
        self.assertInvalidClosed(gw, up, header, "truncated v2, then FIN", shut_write=True)
        self.assertServes(gw)

    def test_silent_peer_closed_after_client_timeout(self):
        gw, up = self.start(server={"client_timeout": "1s"})
        before = self.count(gw, "proxy_protocol_invalid")
        s = gw.sock(timeout=scaled(5))
        try:
            t0 = time.monotonic()
            res = read_until_close(s, scaled(5), t0)
        finally:
            s.close()
        self.assertTrue(res.closed, "not closed within 5 s: %r" % res)
        self.assertEqual(res.data, b"", res)
        self.assertGreaterEqual(res.elapsed, 0.9, "closed before client_timeout: %r" % res)
        self.assertLessEqual(res.elapsed, 3.0 + slack(3), res)
        self.new_event(gw, "proxy_protocol_invalid", before)
        self.assertEqual(up.stats()["requests"], 0)
        self.assertServes(gw)


# ====================================================================== TLS

class TlsProxyProtocol(ProxyProtoCase):
    """`listen = ADDR tls proxy_protocol`: the header, then the TLS handshake."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="envelopd-pp-tls-")
        try:
            cls.cert = make_cert(cls.tmp)
        except Exception:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def start_tls(self, **kw):
        return self.start(flags="tls proxy_protocol", tls=self.cert, **kw)

    def assertTlsAccess(self, gw, data, client):
        rs = [r for r in parse_responses(data) if r.status >= 200]
        self.assertTrue(rs and rs[0].complete, "no complete response over TLS: %r" % data[:400])
        r = rs[0]
        self.assertClient(gw, r, client)
        self.assertEqual(echo_headers(r, "X-Forwarded-Proto"), ["https"])
        acc = self.access_of(gw, r)
        self.assertEqual(acc.get("tls"), "TLSv1.3", acc)

    def test_header_then_handshake(self):
        gw, _ = self.start_tls()
        s = gw.sock(timeout=scaled(5))
        try:
            s.sendall(v2(SRC_A))
            ts = client_ctx().wrap_socket(s, server_hostname="localhost")
            try:
                ts.sendall(get())
                data = tls_read_until_close(ts, scaled(5))
            finally:
                ts.close()
        finally:
            s.close()
        self.assertTlsAccess(gw, data, SRC_A)

    def test_header_and_client_hello_in_one_send(self):
        """The bytes after the header are the ClientHello, sent in the same write."""
        gw, _ = self.start_tls()
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = client_ctx().wrap_bio(inc, out, server_hostname="localhost")
        s = gw.sock(timeout=scaled(5))
        data = b""
        try:
            try:
                obj.do_handshake()
            except ssl.SSLWantReadError:
                pass
            s.sendall(v1(SRC_6) + out.read())
            deadline = time.monotonic() + scaled(5)
            while True:
                try:
                    obj.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    pending = out.read()
                    if pending:
                        s.sendall(pending)
                    self.assertLess(time.monotonic(), deadline, "handshake did not finish")
                    chunk = s.recv(65536)
                    self.assertTrue(chunk, "the gateway closed during the handshake")
                    inc.write(chunk)
            obj.write(get())
            s.sendall(out.read())
            while time.monotonic() < deadline:
                try:
                    part = obj.read(65536)
                    if not part:
                        break
                    data += part
                    continue
                except ssl.SSLWantReadError:
                    pass
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    break
                pending = out.read()
                if pending:
                    send_quietly(s, pending)
                chunk = s.recv(65536)
                if not chunk:
                    inc.write_eof()
                    continue
                inc.write(chunk)
        finally:
            s.close()
        self.assertTlsAccess(gw, data, SRC_6)

    def test_untrusted_peer_refused(self):
        """Header and ClientHello from an untrusted peer: closed, no ServerHello."""
        gw, up = self.start_tls(trusted="10.0.0.0/8")
        before = self.count(gw, "proxy_protocol_refused")
        res = self.refused_exchange(gw, v2(SRC_A) + client_hello())
        self.assertTrue(res.closed, res)
        self.assertEqual(res.data, b"", res)
        self.assertLess(res.elapsed, 1.0 + slack(2), res)
        self.new_event(gw, "proxy_protocol_refused", before)
        self.assertEqual(up.stats()["requests"], 0)

    def test_malformed_header_before_handshake(self):
        gw, up = self.start_tls()
        self.assertInvalidClosed(gw, up, b"PROXY TCP4 203.0.113.7 192.0.2.1 99999 80\r\n",
                                 "bad v1 port on a TLS listener")
        self.assertInvalidClosed(gw, up, client_hello(), "a ClientHello without a header")


if __name__ == "__main__":
    unittest.main()
