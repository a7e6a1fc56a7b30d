"""envelopd and systemd: the sd_notify protocol spoken to a real notify
socket, and the shipped unit file checked by systemd-analyze.

The notify tests play the service manager: an AF_UNIX datagram socket in a
temporary directory, NOTIFY_SOCKET pointing at it, WATCHDOG_USEC set (and
WATCHDOG_PID unset, so libsystemd does not decide the watchdog is meant for
another process), SO_PASSCRED on to see which process sent each message
(NotifyAccess=main accepts only the main PID). Every wait is on a datagram,
a port or the process, with a deadline.
"""

import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import unittest

from harness import (ENVELOPD, GatewayTestCase, base_conf, free_port, port_accepts,
                     run_envelopd)
from test_signals import assert_clean_exit

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
UNIT = os.path.join(REPO, "conf", "envelopd.service")
WATCHDOG_USEC = 400000


def built_with_systemd():
    """Whether $ENVELOPD links libsystemd (else it never notifies)."""
    try:
        with open(ENVELOPD, "rb") as f:
            return b"libsystemd.so" in f.read()
    except OSError:
        return False


class NotifySocket:
    """The service manager's end: one datagram socket, messages with sender PIDs."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="envelopd-notify-")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.received = []     # (monotonic time, pid, {key: value}, raw text)

    def recv(self, timeout):
        """The next message as (t, pid, fields, text), or None after TIMEOUT."""
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        except socket.timeout:
            return None
        t = time.monotonic()
        pid = None
        for level, typ, cdata in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
                pid, _, _ = struct.unpack("iII", cdata[:12])
        text = data.decode("utf-8", "replace")
        fields = {}
        for line in text.split("\n"):
            if "=" in line:
                k, _, v = line.partition("=")
                fields[k] = v
        msg = (t, pid, fields, text)
        self.received.append(msg)
        return msg

    def wait_for(self, key, timeout, value=None):
        """Messages up to and including the first carrying KEY (=VALUE);
        raises AssertionError with what arrived if none does in time."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %s%s within %ss; got: %r" % (
                    key, "" if value is None else "=" + value, timeout,
                    [m[3] for m in seen]))
            m = self.recv(left)
            if m is None:
                continue
            seen.append(m)
            if key in m[2] and (value is None or m[2][key] == value):
                return seen

    def close(self):
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class NotifyTest(GatewayTestCase):
    """READY, WATCHDOG, RELOADING, STOPPING as a service manager sees them."""

    def setUp(self):
        super().setUp()
        if not built_with_systemd():
            self.skipTest("envelopd was built without libsystemd: no sd_notify to test")
        self.ns = NotifySocket()
        self.addCleanup(self.ns.close)

    def start(self, conf=None, watchdog=True):
        """A gateway whose environment names our notify socket. The harness
        takes the environment from os.environ at spawn time, so set it for
        the spawn only."""
        self.up = self.upstream()
        self.port = free_port()
        conf = conf or base_conf(self.port, [self.up.port])
        saved = {k: os.environ.get(k) for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
        os.environ["NOTIFY_SOCKET"] = self.ns.path
        if watchdog:
            os.environ["WATCHDOG_USEC"] = str(WATCHDOG_USEC)
        else:
            os.environ.pop("WATCHDOG_USEC", None)
        os.environ.pop("WATCHDOG_PID", None)
        try:
            gw = self.gateway(conf, self.port, start=False)
            t0 = time.monotonic()
            gw.start()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        self.t_spawn = t0
        return gw

    def assertFromMain(self, msgs, gw):
        self.assertTrue(msgs)
        for t, pid, fields, text in msgs:
            self.assertIsNotNone(pid, "no SCM_CREDENTIALS on %r" % text)
            self.assertEqual(pid, gw.pid, "notification %r sent by pid %s, not the main "
                             "pid %s (NotifyAccess=main would drop it)" % (text, pid, gw.pid))

    def test_ready_after_listening_then_watchdog(self):
        gw = self.start()
        first = self.ns.recv(10)
        self.assertIsNotNone(first, "no notification within 10 s of start")
        # The port must already accept when READY=1 arrives: a service
        # manager starts dependent units at that moment.
        accepting = port_accepts(self.port)
        self.assertEqual(first[2].get("READY"), "1", "first notification is not READY=1: %r"
                         % first[3])
        self.assertTrue(accepting, "READY=1 arrived but port %d does not accept" % self.port)
        self.assertIn("STATUS", first[2], "READY=1 without a STATUS= line: %r" % first[3])
        self.assertIn("127.0.0.1:%d" % self.port, first[2]["STATUS"])
        self.assertEqual(gw.request("GET", "/api/v1/tasks/1").status, 200)

        # WATCHDOG_USEC=400ms: a ping every 200 ms, so at least 2 (in fact ~5) in 1 s.
        t_ready = first[0]
        deadline = t_ready + 1.0
        pings = []
        while time.monotonic() < deadline:
            m = self.ns.recv(deadline - time.monotonic())
            if m and m[2].get("WATCHDOG") == "1":
                pings.append(m)
        self.assertGreaterEqual(len(pings), 2, "WATCHDOG=1 %d time(s) in 1 s after READY "
                                "with WATCHDOG_USEC=%d: %r" % (len(pings), WATCHDOG_USEC,
                                                               [m[3] for m in self.ns.received]))
        # ...and not faster than WATCHDOG_USEC/2 (with some scheduling slack), on
        # average: a persistent timer that fired late fires the next one early
        # to keep its period, which a loaded machine (valgrind lanes) shows.
        gaps = [b[0] - a[0] for a, b in zip(pings, pings[1:])]
        self.assertGreater(sum(gaps) / len(gaps), 0.1, "watchdog pings too close: %r" % gaps)
        self.assertFromMain(self.ns.received, gw)
        assert_clean_exit(self, gw, gw.stop())

    def test_no_watchdog_without_watchdog_usec(self):
        gw = self.start(watchdog=False)
        msgs = self.ns.wait_for("READY", 10)
        self.assertEqual(len(msgs), 1, [m[3] for m in msgs])
        m = self.ns.recv(0.7)
        self.assertTrue(m is None or "WATCHDOG" not in m[2],
                        "WATCHDOG=1 sent though WATCHDOG_USEC is unset: %r" % (m and m[3]))
        assert_clean_exit(self, gw, gw.stop())

    def test_reload_reports_reloading_then_ready(self):
        gw = self.start()
        self.ns.wait_for("READY", 10)
        before = int(time.monotonic() * 1e6)
        os.kill(gw.pid, signal.SIGHUP)
        msgs = self.ns.wait_for("RELOADING", 5, "1")
        after = int(time.monotonic() * 1e6)
        rel = msgs[-1][2]
        self.assertIn("MONOTONIC_USEC", rel, "RELOADING=1 without MONOTONIC_USEC: %r" % msgs[-1][3])
        self.assertRegex(rel["MONOTONIC_USEC"], r"^[0-9]+$")
        # CLOCK_MONOTONIC, the clock systemd compares it with (Python's monotonic on Linux).
        mono = int(rel["MONOTONIC_USEC"])
        self.assertTrue(before - 1000 <= mono <= after + 1000,
                        "MONOTONIC_USEC=%d not between %d and %d" % (mono, before, after))
        msgs = self.ns.wait_for("READY", 5, "1")
        self.assertTrue(gw.wait_log(lambda l: l.get("event") == "reload", 5),
                        "no reload event line")
        self.assertEqual(gw.request("GET", "/api/v1/tasks/1").status, 200)
        self.assertFromMain(self.ns.received, gw)
        assert_clean_exit(self, gw, gw.stop())

    def test_failed_reload_still_ends_with_ready(self):
        """systemd keeps the unit in 'reloading' until READY=1: a refused
        conf must end the reload too, or systemctl reload hangs."""
        gw = self.start()
        self.ns.wait_for("READY", 10)
        with open(gw.conf_path, "a") as f:
            f.write("[server\n")
        os.kill(gw.pid, signal.SIGHUP)
        self.ns.wait_for("RELOADING", 5, "1")
        msgs = self.ns.wait_for("READY", 5, "1")
        self.assertTrue(gw.wait_log(lambda l: l.get("event") == "reload_failed", 5))
        self.assertIn("STATUS", msgs[-1][2])
        self.assertEqual(gw.request("GET", "/api/v1/tasks/1").status, 200)
        assert_clean_exit(self, gw, gw.stop())

    def test_sigterm_reports_stopping(self):
        gw = self.start()
        self.ns.wait_for("READY", 10)
        os.kill(gw.pid, signal.SIGTERM)
        self.ns.wait_for("STOPPING", 5, "1")
        try:
            rc = gw.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.fail("envelopd did not exit within 5 s of SIGTERM with nothing in flight")
        assert_clean_exit(self, gw, rc)
        self.assertFromMain(self.ns.received, gw)

    def test_no_notify_socket_is_fine(self):
        """Started by hand (no NOTIFY_SOCKET) it just runs; nothing is sent."""
        up = self.upstream()
        port = free_port()
        saved = os.environ.pop("NOTIFY_SOCKET", None)
        try:
            gw = self.gateway(base_conf(port, [up.port]), port)
        finally:
            if saved is not None:
                os.environ["NOTIFY_SOCKET"] = saved
        self.assertEqual(gw.request("GET", "/api/v1/tasks/1").status, 200)
        self.assertIsNone(self.ns.recv(0.3))
        assert_clean_exit(self, gw, gw.stop())


class UnitFileTest(unittest.TestCase):
    """conf/envelopd.service as systemd reads it."""

    @classmethod
    def setUpClass(cls):
        cls.analyze = shutil.which("systemd-analyze")
        with open(UNIT) as f:
            cls.text = f.read()

    def directives(self, section="Service"):
        out, cur = {}, None
        for line in self.text.splitlines():
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                cur = line.strip("[]")
                continue
            if cur == section and "=" in line:
                k, _, v = line.partition("=")
                out.setdefault(k.strip(), []).append(v.strip())
        return out

    def unit_copy(self):
        """A copy whose commands run the built binary, named envelopd.service
        (verify checks that the executables exist)."""
        if not ENVELOPD:
            self.skipTest("ENVELOPD is not set")
        d = tempfile.mkdtemp(prefix="envelopd-unit-")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "envelopd.service")
        with open(path, "w") as f:
            f.write(self.text.replace("/usr/local/sbin/envelopd", os.path.abspath(ENVELOPD)))
        return path

    def test_contract(self):
        d = self.directives()
        want = {
            "Type": "notify", "NotifyAccess": "main", "KillSignal": "SIGTERM",
            "Restart": "on-failure", "DynamicUser": "yes", "ProtectSystem": "strict",
            "ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes",
            "NoNewPrivileges": "yes", "CapabilityBoundingSet": "",
            "LimitNOFILE": "65536", "LogsDirectory": "envelopd",
            "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
            "SystemCallArchitectures": "native",
        }
        for k, v in want.items():
            self.assertIn(k, d, "%s= missing" % k)
            self.assertEqual(d[k][0], v, "%s=%s, expected %s" % (k, d[k][0], v))
        conf = "/etc/envelopd/envelopd.conf"
        self.assertEqual(d["ExecStartPre"], ["/usr/local/sbin/envelopd -t -c " + conf])
        self.assertEqual(d["ExecStart"], ["/usr/local/sbin/envelopd -c " + conf])
        self.assertEqual(d["ExecReload"], ["/usr/local/sbin/envelopd -t -c " + conf,
                                           "/bin/kill -HUP $MAINPID"])
        self.assertIn("@system-service", d["SystemCallFilter"])
        # The stop timeout must leave room for the default shutdown_timeout (20s).
        self.assertGreater(int(d["TimeoutStopSec"][0]), 20)
        self.assertGreater(int(d["WatchdogSec"][0]), 0)

    def test_commands_in_unit_work(self):
        """ExecStartPre's check accepts the sample conf; -V and -t behave as the unit expects."""
        if not ENVELOPD:
            self.skipTest("ENVELOPD is not set")
        sample = os.path.join(REPO, "conf", "envelopd.conf")
        r = run_envelopd(["-t", "-c", sample], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_systemd_analyze_verify(self):
        if not self.analyze:
            self.skipTest("systemd-analyze not installed (Debian package 'systemd'); "
                          "the unit file was not verified")
        path = self.unit_copy()
        # --man=no: Documentation=man:envelopd(8) is only resolvable once installed.
        r = subprocess.run([self.analyze, "verify", "--man=no", path], capture_output=True,
                           text=True, timeout=60)
        out = (r.stdout + r.stderr).splitlines()
        about_unit = [l for l in out if "envelopd" in l]
        self.assertEqual(r.returncode, 0, "systemd-analyze verify exit %d:\n%s" % (
            r.returncode, "\n".join(out)))
        self.assertEqual(about_unit, [], "systemd-analyze verify complained:\n%s" % "\n".join(out))

    def test_systemd_analyze_security(self):
        """The sandboxing holds: the exposure score systemd computes stays low."""
        if not self.analyze:
            self.skipTest("systemd-analyze not installed (Debian package 'systemd')")
        path = self.unit_copy()
        r = subprocess.run([self.analyze, "security", "--offline=true", "--no-pager", path],
                           capture_output=True, text=True, timeout=60)
        m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout + r.stderr)
        if m is None:
            self.skipTest("this systemd-analyze has no offline security check: %s" %
                          (r.stdout + r.stderr)[-300:])
        self.assertLessEqual(float(m.group(1)), 2.0, r.stdout)


if __name__ == "__main__":
    unittest.main()
