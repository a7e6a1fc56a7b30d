"""Integration-test harness for envelopd (Python 3 standard library only).

Processes under test are started and stopped by PID, on loopback only:
  Upstream  the scriptable fixture server upstream.py (see its docstring)
  Gateway   the real $ENVELOPD binary with a generated conf file
  Redis     redis-server on a free port, no persistence
Nothing here sleeps in the hope that something happened: every wait polls
for the event itself (a port accepting, a log line, a counter) with a
deadline, and gives up with a clear message.
"""

import base64
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ENVELOPD = os.environ.get("ENVELOPD", "")
TOKEN = "secret-token-123"

UUID4_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ULID_RE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
ACCESS_KEYS = ("ts", "request_id", "client", "method", "path", "route", "status",
               "upstream_status", "upstream", "duration_ms", "upstream_ms", "bytes_in",
               "bytes_out", "ratelimit_remaining", "error_code")

HOP_BY_HOP = ("connection", "keep-alive", "te", "trailer", "upgrade",
              "proxy-authorization", "proxy-connection")


def is_generated_id(s):
    """A gateway-made correlation ID: UUIDv4 (lower-case hex) or a ULID."""
    return bool(s) and (UUID4_RE.match(s) is not None or ULID_RE.match(s) is not None)


# ---------------------------------------------------------------- slow runs

# `meson test --setup valgrind` (meson.build) runs envelopd under valgrind:
# ENVELOPD_WRAPPER is a command prefix for envelopd (split like a shell would),
# and ENVELOPD_TIME_FACTOR says how many times slower envelopd is than usual.
# Both are unset in a normal run: no wrapper, factor 1, nothing changes.
ENVELOPD_WRAPPER = shlex.split(os.environ.get("ENVELOPD_WRAPPER", ""))


def _time_factor():
    try:
        return max(1.0, float(os.environ.get("ENVELOPD_TIME_FACTOR", "1")))
    except ValueError:
        return 1.0


TIME_FACTOR = _time_factor()
SLOW = TIME_FACTOR > 1


def scaled(seconds):
    """SECONDS stretched by ENVELOPD_TIME_FACTOR: for deadlines that wait for
    the gateway to do something (start, answer, log), never for ones that
    check it did *not* do something in time."""
    return seconds * TIME_FACTOR


def slack(seconds):
    """Tolerance to add to an upper bound on how long the gateway took: 0 in a
    normal run; under valgrind, where its timers fire late and each request
    costs milliseconds of CPU, a fixed allowance (SECONDS) per wait."""
    return seconds if SLOW else 0.0


def skip_if_slow(reason):
    """Skip a test that cannot hold under ENVELOPD_TIME_FACTOR > 1, saying why."""
    return unittest.skipIf(SLOW, "envelopd runs %gx slower here (valgrind): %s"
                           % (TIME_FACTOR, reason))


VALGRIND_ERRORS_RE = re.compile(r"ERROR SUMMARY: ([1-9][0-9]*) errors")
VALGRIND_DEFLOST_RE = re.compile(r"definitely lost: ([0-9,]+) bytes")
# The first line of each memcheck error, for a log cut short by SIGKILL.
VALGRIND_ERROR_HEAD_RE = re.compile(
    r"^==\d+== (Invalid (read|write|free)|Conditional jump|Use of uninitialised|"
    r"Syscall param|Mismatched free|Source and destination overlap|Argument ')", re.M)
# envelopd killed by a signal it does not handle (SIGSEGV, SIGABRT, ...).
VALGRIND_FATAL_RE = re.compile(r"^==\d+== (Process terminating with default action[^\n]*)", re.M)


def valgrind_problems(log_text):
    """Why a valgrind log (memcheck, --log-file) shows a problem, or None."""
    m = VALGRIND_FATAL_RE.search(log_text)
    if m:
        return m.group(1)
    m = VALGRIND_ERRORS_RE.search(log_text)
    if m:
        return "%s valgrind error(s)" % m.group(1)
    if "ERROR SUMMARY" not in log_text:
        m = VALGRIND_ERROR_HEAD_RE.search(log_text)
        if m:
            return "valgrind error: %s" % m.group(1)
    m = VALGRIND_DEFLOST_RE.search(log_text)
    if m and m.group(1) != "0":
        return "%s bytes definitely lost" % m.group(1)
    return None


def binary_is_sanitized(path=None):
    """Was PATH (default $ENVELOPD) built with ASan? Its runtime's entry point
    is named in the binary. RSS means little there (shadow memory, quarantine)."""
    try:
        with open(path or ENVELOPD, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


def run_envelopd(args, timeout=10, **kw):
    """Run $ENVELOPD with ARGS to completion (keyword arguments go to
    subprocess.run). Under ENVELOPD_WRAPPER (valgrind) the run goes through
    it too, and a valgrind problem fails the calling test."""
    if not ENVELOPD:
        raise unittest.SkipTest("ENVELOPD is not set")
    if not ENVELOPD_WRAPPER:
        return subprocess.run([ENVELOPD] + list(args), timeout=timeout, **kw)
    fd, log = tempfile.mkstemp(prefix="envelopd-vg-", suffix=".log")
    os.close(fd)
    env = dict(kw.pop("env", None) or os.environ, VALGRIND_LOG_FILE=log)
    try:
        p = subprocess.run(ENVELOPD_WRAPPER + [ENVELOPD] + list(args), timeout=scaled(timeout),
                           env=env, **kw)
        with open(log, errors="replace") as f:
            why = valgrind_problems(f.read())
    finally:
        os.unlink(log)
    if why:
        raise AssertionError("valgrind: %s in envelopd %s" % (why, " ".join(args)))
    return p


# ---------------------------------------------------------------- waiting

def ws_client_frame(opcode, payload):
    """A masked WebSocket client frame (RFC 6455 5.2), payload under 64 KiB."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, 0x80 | n])
    else:
        head = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
    return head + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload))


def rss_kib(pid):
    """Resident set size of process PID, in KiB (VmRSS)."""
    with open("/proc/%d/status" % pid) as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))


def wait_until(pred, timeout, interval=0.02):
    """Poll PRED until it returns a truthy value (returned) or TIMEOUT passes (None)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


# scripts/test runs integration suites side by side under valgrind, where a
# gateway takes seconds to bind the port it was given: a port the kernel
# picked for one suite could be picked again for the other meanwhile. So each
# suite run at once gets its own range in ENVELOPD_TEST_PORTS ("LO-HI", below
# the kernel's ephemeral range), and its ports are taken from it in turn.
_PORTS = tuple(int(x) for x in os.environ.get("ENVELOPD_TEST_PORTS", "").split("-") if x)
_ports_next = [_PORTS[0] if _PORTS else 0]
_ports_lock = threading.Lock()


def _bindable(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port():
    """A port nothing listens on: from this suite's ENVELOPD_TEST_PORTS range
    when one is set, else one the kernel picks."""
    if len(_PORTS) == 2 and _PORTS[0] < _PORTS[1]:
        lo, hi = _PORTS
        with _ports_lock:
            for _ in range(hi - lo):
                port = _ports_next[0]
                _ports_next[0] = port + 1 if port + 1 < hi else lo
                if _bindable(port):
                    return port
        raise RuntimeError("no free port left in ENVELOPD_TEST_PORTS=%d-%d" % (lo, hi))
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def port_accepts(port, host="127.0.0.1"):
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return True
    except OSError:
        return False


def wait_port(port, timeout, proc=None):
    """Wait until PORT accepts; False if it does not or PROC exits first."""
    def ok():
        if proc is not None and proc.poll() is not None:
            return "dead"
        return port_accepts(port)
    return wait_until(ok, timeout) is True


def wait_port_closed(port, timeout):
    return wait_until(lambda: not port_accepts(port), timeout) is not None


# ---------------------------------------------------------------- upstream

def script_header(**script):
    """X-Test-Script header value for upstream.py."""
    return base64.urlsafe_b64encode(json.dumps(script).encode()).decode().rstrip("=")


def scripted(**script):
    """Request headers that make upstream.py answer with SCRIPT."""
    return {"X-Test-Script": script_header(**script)}


class Upstream:
    """upstream.py in its own process on a free port."""

    def __init__(self, default=None, port=None):
        self.port = port or free_port()
        self.default = default
        self.proc = None
        self.start()

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def start(self):
        cmd = [sys.executable, os.path.join(HERE, "upstream.py"), "--port", str(self.port)]
        if self.default:
            cmd += ["--default", json.dumps(self.default)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_port(self.port, 10, self.proc):
            self.kill()
            raise RuntimeError("upstream.py did not start on port %d" % self.port)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.alive():
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc and self.proc.poll()

    def kill(self):
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def control(self, method, path, body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            data = None if body is None else json.dumps(body).encode()
            c.request(method, path, body=data, headers={"Connection": "close"})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def stats(self):
        st, body = self.control("GET", "/__stats")
        assert st == 200, st
        return json.loads(body)

    def reset(self):
        self.control("POST", "/__reset")

    def set_default(self, script):
        self.control("POST", "/__default", script or {})

    def queue(self, *scripts):
        self.control("POST", "/__queue", list(scripts))

    def wait_requests(self, n, timeout=5):
        """Wait until the upstream has received at least N test requests
        (TIMEOUT scaled by ENVELOPD_TIME_FACTOR: the gateway forwards them)."""
        return wait_until(lambda: self.stats()["requests"] >= n, scaled(timeout), 0.05) is not None


# ---------------------------------------------------------------- conf

class Conf:
    """An INI conf as ordered sections of (key, value) pairs; keys may repeat."""

    def __init__(self):
        self.sections = []  # [name, [[k, v], ...]]

    def section(self, name, create=True):
        for s in self.sections:
            if s[0] == name:
                return s[1]
        if not create:
            return None
        self.sections.append([name, []])
        return self.sections[-1][1]

    def set(self, section, key, value):
        """Replace every KEY in SECTION by one KEY = VALUE (added if absent)."""
        items = self.section(section)
        for i, (k, _) in enumerate(items):
            if k == key:
                items[i][1] = str(value)
                items[:] = [it for j, it in enumerate(items) if it[0] != key or j == i]
                return self
        items.append([key, str(value)])
        return self

    def add(self, section, key, value):
        self.section(section).append([key, str(value)])
        return self

    def remove(self, section, key=None):
        if key is None:
            self.sections = [s for s in self.sections if s[0] != section]
        else:
            items = self.section(section, create=False)
            if items is not None:
                items[:] = [it for it in items if it[0] != key]
        return self

    def text(self):
        out = []
        for name, items in self.sections:
            out.append("[%s]" % name)
            out += ["%s = %s" % (k, v) for k, v in items]
            out.append("")
        return "\n".join(out)


def base_conf(port, servers, **route):
    """The standard test conf: one upstream "tasks" with SERVERS, one route
    /api/v1/tasks; ROUTE keyword arguments override [route tasks] keys."""
    c = Conf()
    c.set("server", "listen", "127.0.0.1:%d" % port)
    for k, v in (("workers", 1), ("max_header_size", "16k"), ("max_body_size", "1m"),
                 ("client_timeout", "2s"), ("shutdown_timeout", "5s"),
                 ("log_level", "info"), ("access_log", "stdout")):
        c.set("server", k, v)
    c.set("envelope", "profile", "nested")
    c.set("correlation", "header", "X-Correlation-Id")
    c.set("correlation", "accept", "X-Correlation-Id, X-Request-Id")
    c.set("limits", "per_ip", "100000/1m")
    c.set("limits", "per_token", "100000/1m")
    up = c.section("upstream tasks")
    for s in servers:
        up.append(["server", s if isinstance(s, str) else "127.0.0.1:%d" % s])
    for k, v in (("keepalive", 16), ("connect_timeout", "1s"), ("timeout", "2s"), ("retries", 2)):
        c.set("upstream tasks", k, v)
    r = {"prefix": "/api/v1/tasks", "upstream": "tasks", "strip_prefix": "no",
         "methods": "GET, POST, PATCH, DELETE", "require_token": "no"}
    r.update(route)
    for k, v in r.items():
        c.set("route tasks", k, v)
    return c


# ---------------------------------------------------------------- gateway

class Response:
    def __init__(self, status, reason, headers, body, version=11):
        self.status = status
        self.reason = reason
        self.headers = headers          # [(name, value)] as received
        self.body = body
        self.version = version

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<Response %s %r %r>" % (self.status, self.headers, self.body[:300])


class RawResult:
    """Bytes a raw socket received, whether the peer closed, and when."""

    def __init__(self, data, closed, elapsed, reset=False):
        self.data = data
        self.closed = closed      # True: the peer closed (EOF or RST)
        self.reset = reset        # True: closed by RST
        self.elapsed = elapsed    # seconds from the first send to close/timeout

    def responses(self, head=False):
        return parse_responses(self.data, head)

    def __repr__(self):
        return "<RawResult closed=%s elapsed=%.2f %r>" % (self.closed, self.elapsed, self.data[:400])


class ParsedResponse(Response):
    def __init__(self, status, reason, headers, body, complete, version):
        super().__init__(status, reason, headers, body, version)
        self.complete = complete  # False: the framing says more bytes were due


def parse_responses(data, head=False):
    """Split a byte stream into HTTP/1.x responses (1xx interim ones included).
    HEAD: bool, or a list of bools per final response. The last one may be
    incomplete (complete=False)."""
    out = []
    finals = 0
    while data:
        i = data.find(b"\r\n\r\n")
        if i < 0:
            out.append(ParsedResponse(0, "", [], data, False, ""))
            break
        lines = data[:i].split(b"\r\n")
        data = data[i + 4:]
        sl = lines[0].decode("latin-1").split(" ", 2)
        try:
            status = int(sl[1])
        except (IndexError, ValueError):
            out.append(ParsedResponse(0, lines[0].decode("latin-1"), [], data, False, sl[0]))
            break
        reason = sl[2] if len(sl) > 2 else ""
        headers = []
        for ln in lines[1:]:
            k, _, v = ln.decode("latin-1").partition(":")
            headers.append((k, v.strip()))
        r = ParsedResponse(status, reason, headers, b"", True, sl[0])
        out.append(r)
        if 100 <= status < 200:
            continue
        is_head = head[finals] if isinstance(head, (list, tuple)) else head
        finals += 1
        if is_head or status in (204, 304):
            continue
        te = r.header("transfer-encoding")
        cl = r.header("content-length")
        if te is not None and "chunked" in te.lower():
            body = b""
            ok = False
            while True:
                j = data.find(b"\r\n")
                if j < 0:
                    break
                try:
                    size = int(data[:j].split(b";")[0].strip(), 16)
                except ValueError:
                    break
                if size == 0:
                    k = data.find(b"\r\n\r\n", j)
                    if data[j:j + 4] == b"\r\n\r\n":
                        data = data[j + 4:]
                        ok = True
                    elif k >= 0:
                        data = data[k + 4:]
                        ok = True
                    break
                if len(data) < j + 2 + size + 2:
                    body += data[j + 2:j + 2 + size]
                    data = b""
                    break
                body += data[j + 2:j + 2 + size]
                data = data[j + 2 + size + 2:]
            r.body, r.complete = body, ok
            if not ok:
                break
        elif cl is not None:
            n = int(cl)
            r.body = data[:n]
            r.complete = len(data) >= n
            data = data[n:]
        else:
            r.body, data = data, b""
    return out


class Gateway:
    """The envelopd binary, run in the foreground with a generated conf."""

    def __init__(self, conf, port, start=True, extra_args=(), preexec_fn=None):
        if not ENVELOPD:
            raise unittest.SkipTest("ENVELOPD is not set")
        self.port = port
        # Run in the child before exec (e.g. resource.setrlimit for a test
        # that needs envelopd started under a small RLIMIT_NOFILE).
        self.preexec_fn = preexec_fn
        self.conf = conf
        self.tmp = tempfile.mkdtemp(prefix="envelopd-it-")
        self.conf_path = os.path.join(self.tmp, "envelopd.conf")
        self.out_path = os.path.join(self.tmp, "stdout")
        self.err_path = os.path.join(self.tmp, "stderr")
        self.extra_args = list(extra_args)
        self.proc = None
        self.rc = None
        if start:
            self.start()

    def write_conf(self, conf=None):
        if conf is not None:
            self.conf = conf
        text = self.conf if isinstance(self.conf, str) else self.conf.text()
        with open(self.conf_path, "w") as f:
            f.write(text)

    def start(self, timeout=10):
        self.write_conf()
        self._out = open(self.out_path, "ab")
        self._err = open(self.err_path, "ab")
        env = None
        if ENVELOPD_WRAPPER:
            # tests/valgrind-wrap writes valgrind's report here, one file per process.
            env = dict(os.environ, VALGRIND_LOG_FILE=os.path.join(self.tmp, "valgrind.%p.log"))
        self.proc = subprocess.Popen(ENVELOPD_WRAPPER + [ENVELOPD, "-c", self.conf_path] +
                                     self.extra_args, stdout=self._out, stderr=self._err,
                                     stdin=subprocess.DEVNULL, env=env,
                                     preexec_fn=self.preexec_fn)
        timeout = scaled(timeout)
        t0 = time.monotonic()
        if not wait_port(self.port, timeout, self.proc) or not all(
                wait_port(p, max(0.5, t0 + timeout - time.monotonic()), self.proc)
                for p in self._admin_ports()):
            rc = self.proc.poll()
            self.kill()
            raise AssertionError("envelopd did not accept on %d within %ss (rc=%s)\nconf:\n%s\n"
                                 "stdout:\n%s\nstderr:\n%s" % (
                                     self.port, timeout, rc, open(self.conf_path).read(),
                                     self.stdout_text()[-3000:], self.stderr_text()[-3000:]))

    def _admin_ports(self):
        """The [admin] listen ports of the conf: envelopd opens them after the
        main listeners, so a slow (valgrind) start needs a wait for them too."""
        items = None if isinstance(self.conf, str) else self.conf.section("admin", create=False)
        ports = []
        for k, v in items or ():
            if k == "listen" and v.rpartition(":")[2].isdigit():
                ports.append(int(v.rpartition(":")[2]))
        return ports

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    # -- logs
    def stdout_text(self):
        try:
            with open(self.out_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def stderr_text(self):
        try:
            with open(self.err_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_lines(self):
        return self.stdout_text().splitlines()

    def logs(self):
        """Every stdout line that parses as a JSON object."""
        out = []
        for ln in self.log_lines():
            try:
                v = json.loads(ln)
            except ValueError:
                continue
            if isinstance(v, dict):
                out.append(v)
        return out

    def access_logs(self):
        return [l for l in self.logs() if "status" in l and "request_id" in l and "event" not in l]

    def events(self, name=None):
        return [l for l in self.logs() if "event" in l and (name is None or l["event"] == name)]

    def wait_log(self, pred, timeout=5):
        """The first JSON log line matching PRED, waiting up to TIMEOUT (scaled by
        ENVELOPD_TIME_FACTOR); None if none."""
        def find():
            for l in self.logs():
                try:
                    if pred(l):
                        return l
                except (KeyError, TypeError):
                    pass
            return None
        return wait_until(find, scaled(timeout), 0.02)

    def wait_access(self, request_id, timeout=5):
        return self.wait_log(lambda l: l.get("request_id") == request_id and "status" in l, timeout)

    # -- clients
    def connection(self, timeout=10):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, headers=None, body=None, timeout=10, conn=None):
        """One request through http.client (a new connection unless CONN)."""
        own = conn is None
        c = conn or self.connection(timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            body = r.read()
            return Response(r.status, r.reason, list(r.getheaders()), body, r.version)
        finally:
            if own:
                c.close()

    def sock(self, timeout=10):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def raw_ex(self, data, timeout=5, sock=None, shut_write=False):
        """Send DATA, then read until the gateway closes or TIMEOUT passes."""
        s = sock or self.sock(timeout)
        t0 = time.monotonic()
        try:
            if data:
                s.sendall(data)
            if shut_write:
                s.shutdown(socket.SHUT_WR)
            return read_until_close(s, timeout, t0)
        finally:
            if sock is None:
                s.close()

    def raw(self, data, timeout=5):
        return self.raw_ex(data, timeout).data

    # -- process
    def stop(self, timeout=10, expect_zero=False):
        """SIGTERM and wait; returns the exit status."""
        if self.alive():
            os.kill(self.proc.pid, signal.SIGTERM)
            timeout = scaled(timeout)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError("envelopd did not exit within %ss of SIGTERM" % timeout)
        self.rc = self.proc.returncode if self.proc else None
        if expect_zero and self.rc != 0:
            raise AssertionError("envelopd exited %s, expected 0\nstderr:\n%s%s" % (
                self.rc, self.stderr_text()[-2000:], self.valgrind_report() or ""))
        return self.rc

    def kill(self):
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        self.rc = self.proc.returncode if self.proc else None

    def valgrind_report(self):
        """Under valgrind: every log of this gateway's processes that shows an
        error or a definite leak, as one text; None when there is none."""
        out = []
        for name in sorted(os.listdir(self.tmp)) if os.path.isdir(self.tmp) else ():
            if name.startswith("valgrind.") and name.endswith(".log"):
                with open(os.path.join(self.tmp, name), errors="replace") as f:
                    text = f.read()
                why = valgrind_problems(text)
                if why:
                    out.append("\n%s: %s\n%s" % (name, why, text[-20000:]))
        return "".join(out) or None

    def close_files(self):
        for f in (getattr(self, "_out", None), getattr(self, "_err", None)):
            if f:
                f.close()

    def cleanup(self):
        if ENVELOPD_WRAPPER and self.alive():
            # valgrind writes its leak report only when envelopd exits by
            # itself: SIGTERM (envelopd drains, up to shutdown_timeout) before
            # the SIGKILL of a normal run.
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(scaled(3))
            except subprocess.TimeoutExpired:
                pass
        self.kill()
        self.close_files()
        report = self.valgrind_report() if ENVELOPD_WRAPPER else None
        shutil.rmtree(self.tmp, ignore_errors=True)
        if report:
            raise AssertionError("valgrind found problems in envelopd (pid %s):%s" % (
                self.proc.pid if self.proc else "?", report))


def read_until_close(s, timeout, t0=None):
    t0 = t0 or time.monotonic()
    deadline = t0 + timeout
    data = b""
    closed = reset = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            closed = reset = True
            break
        except OSError:
            closed = True
            break
        if not chunk:
            closed = True
            break
        data += chunk
    return RawResult(data, closed, time.monotonic() - t0, reset)


def read_one_response(s, timeout, head=False):
    """Read from S until one full final response is there (or close/timeout).
    Returns (ParsedResponse or None, leftover-bytes-seen, closed)."""
    deadline = time.monotonic() + timeout
    data = b""
    closed = False
    while True:
        rs = [r for r in parse_responses(data, head) if not 100 <= r.status < 200]
        if rs and rs[0].complete and (rs[0].header("content-length") is not None or
                                      rs[0].header("transfer-encoding") is not None or head or
                                      rs[0].status in (204, 304)):
            return rs[0], data, closed
        left = deadline - time.monotonic()
        if left <= 0 or closed:
            return (rs[0] if rs else None), data, closed
        s.settimeout(left)
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            closed = True
            continue
        if not chunk:
            closed = True
        data += chunk


class Redis:
    """redis-server on a free port, no persistence."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.proc = None
        self.start()

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def start(self):
        exe = shutil.which("redis-server")
        if not exe:
            raise unittest.SkipTest("redis-server not installed")
        self.proc = subprocess.Popen([exe, "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_port(self.port, 10, self.proc):
            self.kill()
            raise RuntimeError("redis-server did not start on %d" % self.port)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def command(self, *args, timeout=5):
        """One RESP command; returns the decoded reply (simple parser)."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        try:
            msg = b"*%d\r\n" % len(args)
            for a in args:
                a = a if isinstance(a, bytes) else str(a).encode()
                msg += b"$%d\r\n%s\r\n" % (len(a), a)
            s.sendall(msg)
            f = s.makefile("rb")
            return _resp_read(f)
        finally:
            s.close()

    def stop(self):
        if self.alive():
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self):
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


def _resp_read(f):
    line = f.readline().rstrip(b"\r\n")
    t, rest = line[:1], line[1:]
    if t == b"+":
        return rest.decode()
    if t == b"-":
        return RuntimeError(rest.decode())
    if t == b":":
        return int(rest)
    if t == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data
    if t == b"*":
        n = int(rest)
        return None if n < 0 else [_resp_read(f) for _ in range(n)]
    raise ValueError("bad RESP %r" % line)


# ---------------------------------------------------------------- test base

class GatewayTestCase(unittest.TestCase):
    """Per-test processes, all stopped by PID in cleanups."""

    def setUp(self):
        if not ENVELOPD:
            raise unittest.SkipTest("ENVELOPD is not set")

    def upstream(self, default=None):
        u = Upstream(default)
        self.addCleanup(u.kill)
        return u

    def gateway(self, conf, port, start=True):
        g = Gateway(conf, port, start=start)
        self.addCleanup(g.cleanup)
        return g

    def simple(self, n_upstreams=1, default=None, **route):
        """N upstreams, a gateway with base_conf over them; returns (gw, [ups], port)."""
        ups = [self.upstream(default) for _ in range(n_upstreams)]
        port = free_port()
        gw = self.gateway(base_conf(port, [u.port for u in ups], **route), port)
        return gw, ups

    # -- assertions
    def assertAlive(self, gw):
        self.assertTrue(gw.alive(), "envelopd exited (rc=%s); stderr tail:\n%s" % (
            gw.proc.poll(), gw.stderr_text()[-2000:]))
        r = gw.request("GET", "/__health-probe-no-route")
        self.assertEqual(r.status, 404, "gateway no longer answers normally: %r" % r)

    def assertEnvelope(self, r, status, code, corr_header="X-Correlation-Id"):
        """R is a nested-profile envelope with STATUS and CODE; returns the body."""
        self.assertEqual(r.status, status, r)
        ct = r.header("Content-Type") or ""
        self.assertEqual(ct.replace(" ", "").lower(), "application/json;charset=utf-8", r)
        try:
            body = r.json()
        except ValueError as e:
            self.fail("envelope body is not JSON (%s): %r" % (e, r.body[:300]))
        self.assertIsInstance(body, dict, r)
        self.assertEqual(list(body.keys()), ["error"], body)
        err = body["error"]
        self.assertEqual(err.get("code"), code, body)
        self.assertIsInstance(err.get("message"), str, body)
        self.assertTrue(err["message"], body)
        rid = err.get("details", {}).get("request_id")
        self.assertTrue(rid, body)
        self.assertEqual(r.header(corr_header), rid, "correlation header != details.request_id")
        return body

    def assertClosedAfter(self, res, status, code=None, max_elapsed=None, head=False):
        """A raw exchange: exactly one final response STATUS (an envelope with
        CODE when given) carrying Connection: close, and then the gateway closed."""
        rs = [r for r in res.responses(head) if not 100 <= r.status < 200]
        self.assertTrue(rs, "no response at all: %r" % res)
        r = rs[0]
        self.assertEqual(r.status, status, res)
        self.assertTrue(r.complete, "response not complete: %r" % res)
        if code is not None:
            self.assertEnvelope(r, status, code)
        self.assertIn("close", (r.header("Connection") or "").lower(),
                      "no Connection: close on %r" % res)
        self.assertTrue(res.closed, "gateway did not close the connection: %r" % res)
        self.assertEqual(len(rs), 1, "more than one response: %r" % res)
        if max_elapsed is not None:
            self.assertLessEqual(res.elapsed, max_elapsed, res)
        return r

    def assertNoTokenInLogs(self, gw, token=TOKEN):
        text = gw.stdout_text() + gw.stderr_text()
        self.assertNotIn(token, text, "token found in the logs")


def request_bytes(method, path, headers=(), body=b"", version="HTTP/1.1", host="localhost"):
    """Raw request bytes; HEADERS is a list of (name, value); Host first unless host=None."""
    out = "%s %s %s\r\n" % (method, path, version)
    if host is not None:
        out += "Host: %s\r\n" % host
    for k, v in headers:
        out += "%s: %s\r\n" % (k, v)
    out = out.encode("latin-1") + b"\r\n"
    return out + (body if isinstance(body, bytes) else body.encode())
