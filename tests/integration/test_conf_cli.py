"""Conf check from the command line: `envelopd -t -c FILE` and `envelopd -V`.

Every tests/data/conf/bad_*.conf announces on its first line the error it
must produce ("# expect: LINE: message"); `-t` must print exactly
"FILE:LINE: message" on stderr and exit 1. good.conf and the shipped sample
must pass with "envelopd: FILE: configuration ok" on stdout and exit 0.

Run: cd tests/integration && ENVELOPD=/path/to/envelopd python3 -m unittest -v test_conf_cli
"""

import glob
import os
import subprocess
import tempfile
import unittest

from harness import run_envelopd

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
                        "6: unknown section [metrics] (known: server, envelope, correlation, "
                        "redis, limits, upstream NAME, route NAME)")

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


class Version(unittest.TestCase):
    def test_version(self):
        p = run("-V")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), "envelopd " + VERSION)


if __name__ == "__main__":
    unittest.main()
