"""The conf from the command line: `envelopd -t -c FILE`, `--dump-conf`,
`--list-directives` and `-V`; and what a reload does with restart-only
directives.

Every tests/data/conf/bad_*.conf announces on its first line the error it
must produce ("# expect: LINE: message"); `-t` must print exactly
"FILE:LINE: message" on stderr and exit 1. good.conf and the shipped sample
must pass with "envelopd: FILE: configuration ok" on stdout and exit 0.
`--dump-conf` prints every directive, and its output loads with `-t` to the
same values (dumped again, it is the same text); secrets never appear in it.
A reload that changes a restart-only directive logs `reload_ignored` naming
it and keeps running with the old value.

Run: cd tests/integration && ENVELOPD=/path/to/envelopd python3 -m unittest -v test_conf_cli
"""

import glob
import os
import signal
import subprocess
import tempfile
import unittest

from harness import (GatewayTestCase, base_conf, free_port, port_accepts, run_envelopd,
                     wait_until)

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
FIXTURES = os.path.join(TESTS, "data", "conf")
SAMPLE = os.path.join(os.path.dirname(TESTS), "conf", "envelopd.conf")
VERSION = "0.1.0"

MINIMAL_TAIL = ("[upstream u]\nserver = 127.0.0.1:9001\n"
                "[route r]\nprefix = /\nupstream = u\n")


def envelopd():
    path = os.environ.get("ENVELOPD")
    if not path:
        raise unittest.SkipTest("set ENVELOPD to the envelopd binary")
    return path


def run(*args, timeout=10):
    envelopd()
    return run_envelopd(args, timeout=timeout, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        text=True, stdin=subprocess.DEVNULL)


def expected_error(path):
    with open(path, encoding="utf-8") as f:
        first = f.readline().rstrip("\n")
    prefix = "# expect: "
    if not first.startswith(prefix):
        raise AssertionError("%s: first line must be '# expect: LINE: message'" % path)
    return first[len(prefix):]


class ConfCheck(unittest.TestCase):
    def assert_ok(self, path):
        p = run("-t", "-c", path)
        self.assertEqual(p.returncode, 0, "stdout=%r stderr=%r" % (p.stdout, p.stderr))
        self.assertIn("envelopd: %s: configuration ok" % path, p.stdout)
        self.assertNotIn("error", p.stderr.lower())

    def assert_bad(self, path, want):
        """-t on PATH exits 1 and says exactly PATH:WANT on one stderr line."""
        p = run("-t", "-c", path)
        self.assertEqual(p.returncode, 1, "stdout=%r stderr=%r" % (p.stdout, p.stderr))
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        self.assertIn("%s:%s" % (path, want), lines, p.stderr)
        self.assertNotIn("configuration ok", p.stdout)

    def write(self, text):
        fd, path = tempfile.mkstemp(prefix="envelopd-conf-", suffix=".conf")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        self.addCleanup(os.unlink, path)
        return path

    def test_good_fixture_ok(self):
        self.assert_ok(os.path.join(FIXTURES, "good.conf"))

    def test_sample_conf_ok(self):
        self.assert_ok(SAMPLE)

    def test_relative_path_named_as_given(self):
        envelopd()
        p = run_envelopd(["-t", "-c", "good.conf"], cwd=FIXTURES, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, timeout=10)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("envelopd: good.conf: configuration ok", p.stdout)

    def test_every_bad_fixture(self):
        bad = sorted(glob.glob(os.path.join(FIXTURES, "bad_*.conf")))
        self.assertGreaterEqual(len(bad), 5)
        for path in bad:
            with self.subTest(fixture=os.path.basename(path)):
                self.assert_bad(path, expected_error(path))

    def test_missing_file(self):
        path = os.path.join(FIXTURES, "no-such-file.conf")
        self.assert_bad(path, "0: cannot open: No such file or directory")

    def test_unknown_key_and_section(self):
        self.assert_bad(self.write("[server]\n\nlisten_port = 80\n" + MINIMAL_TAIL),
                        "3: unknown key 'listen_port' in [server]")
        self.assert_bad(self.write(MINIMAL_TAIL + "[metrics]\n"),
                        "6: unknown section [metrics] (known: server, tls, envelope, correlation, "
                        "redis, limits, auth, cors, admin, upstream NAME, plan NAME, route NAME)")

    def test_value_errors_name_key_and_value(self):
        cases = [
            ("[server]\nmax_body_size = 10mb\n", '2: max_body_size: "10mb" is not a size '
             "(use e.g. 16k, 1m)"),
            ("[server]\nshutdown_timeout = 20\n", '2: shutdown_timeout: "20" needs a unit '
             "(e.g. 20s or 20ms)"),
            ("[envelope]\nprofile = jsonapi\n", '2: profile: "jsonapi" is not one of nested, '
             "flat, simple, status, i18n, problem"),
            ("[redis]\non_error = ignore\n", '2: on_error: "ignore" is not one of allow, deny, '
             "local"),
        ]
        for text, want in cases:
            with self.subTest(want=want):
                self.assert_bad(self.write(text + MINIMAL_TAIL), want)

    def test_sections_in_any_order(self):
        self.assert_ok(self.write("[route r]\nprefix = /\nupstream = u\n"
                                  "[upstream u]\nserver = 127.0.0.1:9001\n"))

    def test_check_does_not_bind_or_start(self):
        # -t must return promptly even if the listen port is taken or privileged.
        p = run("-t", "-c", self.write("[server]\nlisten = 127.0.0.1:1\n" + MINIMAL_TAIL))
        self.assertEqual(p.returncode, 0, p.stderr)


def without_first_line(text):
    """A dump without the line naming the file it was made from."""
    return text.split("\n", 1)[1]


def dump_sections(text):
    """{section: [lines]} of a dump; "[redis]" commented out counts as redis."""
    out, cur = {}, None
    for line in text.splitlines():
        bare = line[2:] if line.startswith("# [") else line
        if bare.startswith("[") and bare.endswith("]"):
            cur = bare[1:-1].split()[0]
            out.setdefault(cur, [])
        elif cur:
            out[cur].append(line)
    return out


class DumpConf(unittest.TestCase):
    write = ConfCheck.write

    def dump(self, path):
        p = run("--dump-conf", "-c", path)
        self.assertEqual(p.returncode, 0, "stdout=%r stderr=%r" % (p.stdout, p.stderr))
        self.assertEqual(p.stderr, "")
        return p.stdout

    def directives(self):
        p = run("--list-directives")
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = [tuple(l.split()) for l in p.stdout.splitlines()]
        self.assertTrue(all(len(r) == 2 for r in rows), p.stdout)
        return rows

    def assert_round_trip(self, path):
        """PATH dumped passes -t, and its dump dumped again is the same text."""
        first = self.dump(path)
        again = self.write(first)
        p = run("-t", "-c", again)
        self.assertEqual(p.returncode, 0, "the dump does not load: %s\n%s" % (p.stderr, first))
        self.assertEqual(without_first_line(self.dump(again)), without_first_line(first))
        return first

    def test_round_trip_good_fixture_without_secrets(self):
        with open(os.path.join(FIXTURES, "good.conf"), encoding="utf-8") as f:
            text = "".join(l for l in f if not l.startswith(("password", "hash_secret")))
        dump = self.assert_round_trip(self.write(text))
        for line in ("listen = 127.0.0.1:18080, [::1]:18080", "workers = 3",
                     "keepalive_timeout = 75s", "per_ip = 50/1s",
                     "trusted_proxies = 127.0.0.0/8, ::1/128, 10.0.0.0/8",
                     "methods = DELETE, GET, HEAD, POST, PATCH",
                     "# per_ip =   (unset: that of [limits])",
                     "address = unix:/run/redis/redis.sock", "password ="):
            self.assertIn("\n" + line + "\n", dump)

    def test_round_trip_sample_and_minimal(self):
        self.assert_round_trip(SAMPLE)
        dump = self.assert_round_trip(self.write(MINIMAL_TAIL))
        # Defaults are printed; no [redis] section: it stays commented out.
        self.assertIn("\n[server]\nlisten = 0.0.0.0:8080\n", dump)
        self.assertIn("\nmax_body_size = 10m\n", dump)
        self.assertIn("\n# [redis]\n# address = 127.0.0.1:6379\n", dump)
        self.assertNotIn("\n[redis]\n", dump)

    def test_every_directive_in_its_section(self):
        rows = self.directives()
        self.assertGreaterEqual(len(rows), 50)
        self.assertEqual(len(set(rows)), len(rows), "a directive is listed twice")
        for want in (("admin", "listen"), ("upstream", "tunnel_timeout"),
                     ("upstream", "keepalive_requests"), ("route", "per_ip")):
            self.assertIn(want, rows)
        sections = dump_sections(self.dump(os.path.join(FIXTURES, "good.conf")))
        for sect, name in rows:
            with self.subTest(directive="[%s] %s" % (sect, name)):
                lines = sections.get(sect, [])
                self.assertTrue(any(l.startswith((name + " =", "# " + name + " ="))
                                    for l in lines), "\n".join(lines))

    def test_secrets_hidden(self):
        dump = self.dump(os.path.join(FIXTURES, "good.conf"))
        self.assertIn("\npassword = <hidden>\n", dump)
        self.assertIn("\nhash_secret = <hidden>\n", dump)
        self.assertNotIn("s3cret", dump)
        self.assertNotIn("0123456789abcdef", dump)
        header = [l for l in dump.splitlines() if l.startswith("#")][:6]
        self.assertTrue(any("<hidden>" in l for l in header), header)

    def test_bad_conf_fails_as_check_does(self):
        for path in sorted(glob.glob(os.path.join(FIXTURES, "bad_*.conf")))[:4]:
            with self.subTest(fixture=os.path.basename(path)):
                p = run("--dump-conf", "-c", path)
                self.assertEqual(p.returncode, 1, p.stdout)
                self.assertEqual(p.stdout, "")
                self.assertEqual(p.stderr.splitlines(), ["%s:%s" % (path, expected_error(path))])


class ReloadRestartOnly(GatewayTestCase):
    """A reload applies what it can and names each restart-only directive it did not."""

    def reload_with(self, gw, conf):
        n = len([l for l in gw.events() if l["event"] in ("reload", "reload_failed")])
        gw.write_conf(conf)
        os.kill(gw.pid, signal.SIGHUP)
        ev = wait_until(lambda: [l for l in gw.events()
                                 if l["event"] in ("reload", "reload_failed")][n:], 5)
        self.assertTrue(ev, "no reload line within 5 s:\n%s" % gw.stdout_text()[-2000:])
        self.assertEqual(ev[0]["event"], "reload", ev[0])

    def test_changed_restart_only_directives_are_named_and_kept(self):
        up = self.upstream()
        port, new_port, admin_port = free_port(), free_port(), free_port()
        gw = self.gateway(base_conf(port, [up.port]), port)
        self.assertEqual(gw.request("GET", "/api/v1/added/1").status, 404)

        c = base_conf(port, [up.port])
        c.set("server", "listen", "127.0.0.1:%d" % new_port)
        c.set("server", "workers", 2)
        c.set("admin", "listen", "127.0.0.1:%d" % admin_port)
        c.set("route added", "prefix", "/api/v1/added")
        c.set("route added", "upstream", "tasks")
        self.reload_with(gw, c)
        ignored = gw.events("reload_ignored")
        self.assertEqual([e.get("directive") for e in ignored],
                         ["[server] listen", "[server] workers", "[admin] listen"], ignored)
        for e in ignored:
            self.assertEqual(e["level"], "warn", e)
            self.assertEqual(e["message"], "%s changed; it takes effect at the next restart"
                             % e["directive"])
        # The old values run on; the rest of the conf took effect.
        self.assertEqual(gw.request("GET", "/api/v1/added/1").status, 200)
        self.assertFalse(port_accepts(new_port))
        self.assertFalse(port_accepts(admin_port))

        # A reload that changes nothing restart-only names nothing more.
        c.remove("route added")
        c.set("server", "client_timeout", "3s")
        self.reload_with(gw, c)
        self.assertEqual(len(gw.events("reload_ignored")), 3)
        self.assertEqual(gw.request("GET", "/api/v1/added/1").status, 404)
        self.assertEqual(gw.stop(), 0)


class Version(unittest.TestCase):
    def test_version(self):
        p = run("-V")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), "envelopd " + VERSION)


if __name__ == "__main__":
    unittest.main()
