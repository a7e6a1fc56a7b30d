"""scripts/envelopd-keys against a real redis-server (started on a free port
and stopped by PID) and on keys files: `add` writes the record documented in
docs/apikeys.md under PREFIX{ID}:apikey and prints the key once, ID being
HMAC-SHA256(secret, key) computed here independently (and the fixed vector
tests/test_apikey.c checks in C); `revoke`, `show` and `list` by key or id;
a failed write prints no key; the password comes from REDISCLI_AUTH; bad
input is refused before Redis is touched. It does not need envelopd.

Run: cd tests/integration && python3 -m unittest -v test_apikeys_cli
"""

import hashlib
import hmac
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import unittest

from harness import Redis, free_port

HERE = os.path.dirname(os.path.abspath(__file__))
CLI = os.path.join(HERE, "..", "..", "scripts", "envelopd-keys")

# The vector of tests/test_apikey.c and docs/apikeys.md.
SECRET = b"0123456789abcdef0123456789abcdef"
KEY = "pjk_live_4eC39HqLyjWDarjtT1zdp7dc"
KEY_ID = "ca14c887954425181b09520c3d6eeab59a0a99605bc6f3ea82ed43cdd676ce77"

KEY_RE = re.compile(r"pjk_live_[0-9A-Za-z]{43}\Z")


def hmac_id(secret, key):
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()


class Result:
    def __init__(self, p):
        self.rc = p.returncode
        self.out = p.stdout.decode()
        self.err = p.stderr.decode()


class KeysCliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not shutil.which("redis-cli"):
            raise unittest.SkipTest("redis-cli not installed")
        cls.redis = Redis()
        cls.tmp = tempfile.mkdtemp(prefix="envelopd-keys-test.")
        cls.secret_file = os.path.join(cls.tmp, "secret")
        with open(cls.secret_file, "wb") as f:
            f.write(SECRET + b"\n")

    @classmethod
    def tearDownClass(cls):
        cls.redis.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.redis.command("FLUSHALL")

    def run_cli(self, *args, stdin=None, env=None, port=None, secret=True):
        argv = [sys.executable, CLI, "-p", str(port or self.redis.port)]
        if secret:
            argv += ["--secret-file", self.secret_file]
        e = dict(os.environ)
        e.pop("REDISCLI_AUTH", None)
        e.pop("ENVELOPD_SECRET_FILE", None)
        e.update(env or {})
        p = subprocess.run(argv + list(args), input=(stdin or "").encode(), capture_output=True,
                           env=e, timeout=60)
        return Result(p)

    def record(self, kid, prefix="envelopd:"):
        r = self.redis.command("HGETALL", "%s{%s}:apikey" % (prefix, kid))
        return {r[i].decode(): r[i + 1].decode() for i in range(0, len(r), 2)}

    def add(self, *args):
        r = self.run_cli("add", "--prefix", "pjk_live_", *args)
        self.assertEqual(r.rc, 0, r.err)
        key = r.out.strip()
        self.assertRegex(key, KEY_RE)
        return key, hmac_id(SECRET, key)

    # ---- hash ----

    def test_hash_fixed_vector(self):
        r = self.run_cli("hash", KEY)
        self.assertEqual((r.rc, r.out), (0, KEY_ID + "\n"), r.err)
        # from stdin, with or without "-"
        self.assertEqual(self.run_cli("hash", "-", stdin=KEY + "\n").out, KEY_ID + "\n")
        self.assertEqual(self.run_cli("hash", stdin=KEY + "\r\n").out, KEY_ID + "\n")

    def test_secret_file_read_like_envelopd(self):
        # first line only, CR/LF stripped, 16-255 characters
        crlf = os.path.join(self.tmp, "secret-crlf")
        with open(crlf, "wb") as f:
            f.write(SECRET + b"\r\nsecond line\n")
        r = self.run_cli("--secret-file", crlf, "hash", KEY, secret=False)
        self.assertEqual(r.out, KEY_ID + "\n", r.err)
        short = os.path.join(self.tmp, "secret-short")
        with open(short, "wb") as f:
            f.write(b"x" * 15 + b"\n")
        r = self.run_cli("--secret-file", short, "hash", KEY, secret=False)
        self.assertEqual(r.rc, 1)
        self.assertIn("must be 16 to 255 characters", r.err)
        r = self.run_cli("hash", KEY, secret=False)
        self.assertEqual(r.rc, 1)
        self.assertIn("--secret-file", r.err)
        r = self.run_cli("hash", KEY, secret=False, env={"ENVELOPD_SECRET_FILE": crlf})
        self.assertEqual(r.out, KEY_ID + "\n", r.err)
        r = self.run_cli("--secret-file", os.path.join(self.tmp, "none"), "hash", KEY,
                         secret=False)
        self.assertEqual(r.rc, 1)
        self.assertIn("cannot read", r.err)

    def test_hash_refuses_malformed_keys(self):
        for bad in ("a b", "k\u00e9y", "x" * 257, "ab=c", ""):
            r = self.run_cli("hash", "-", stdin=bad + "\n")
            self.assertEqual((r.rc, r.out), (1, ""), bad)
            self.assertIn("not a well-formed key", r.err)
        self.assertEqual(self.run_cli("hash", "x" * 256).rc, 0)

    # ---- add ----

    def test_add_writes_the_record(self):
        before = int(time.time())
        key, kid = self.add("--org", "acme", "--scopes", "tasks:read, tasks:write",
                            "--plan", "pro", "--expires", "30d")
        after = int(time.time())
        rec = self.record(kid)
        self.assertEqual(rec["status"], "active")
        self.assertEqual(rec["org"], "acme")
        self.assertEqual(rec["scopes"], "tasks:read,tasks:write")
        self.assertEqual(rec["plan"], "pro")
        self.assertTrue(before + 30 * 86400 <= int(rec["expires_at"]) <= after + 30 * 86400)
        self.assertTrue(before <= int(rec["created_at"]) <= after)
        # the key is in no key name nor value, and only one record exists
        keys = self.redis.command("KEYS", "*")
        self.assertEqual(keys, [("envelopd:{%s}:apikey" % kid).encode()])
        for v in rec.values():
            self.assertNotIn(key[9:], v)
        # hash agrees with add
        self.assertEqual(self.run_cli("hash", key).out, kid + "\n")

    def test_add_defaults_and_options(self):
        r = self.run_cli("add", "--org", "beta")
        self.assertEqual(r.rc, 0, r.err)
        key = r.out.strip()
        self.assertRegex(key, r"\A[0-9A-Za-z]{43}\Z")
        self.assertIn("shown only once", r.err)
        rec = self.record(hmac_id(SECRET, key))
        self.assertEqual((rec["status"], rec["org"], rec["scopes"], rec["plan"],
                          rec["expires_at"]), ("active", "beta", "", "", "0"))
        # --expires-at, a key prefix, a db; options before and after the command
        r = self.run_cli("--key-prefix", "gw7:", "add", "-n", "3", "--org", "acme",
                         "--expires-at", "2030-01-01", "--prefix", "pjk_test_")
        self.assertEqual(r.rc, 0, r.err)
        key = r.out.strip()
        self.assertTrue(key.startswith("pjk_test_"))
        out = subprocess.run(["redis-cli", "-p", str(self.redis.port), "-n", "3", "HGET",
                              "gw7:{%s}:apikey" % hmac_id(SECRET, key), "expires_at"],
                             capture_output=True).stdout.decode().strip()
        self.assertEqual(out, "1893456000")
        r = self.run_cli("add", "--org", "acme", "--expires-at", "2030-01-01T12:00:00Z")
        self.assertEqual(r.rc, 0, r.err)
        self.assertEqual(self.record(hmac_id(SECRET, r.out.strip()))["expires_at"],
                         "1893499200")
        # two adds, two different keys
        k1, _ = self.add("--org", "acme")
        k2, _ = self.add("--org", "acme")
        self.assertNotEqual(k1, k2)

    def test_add_refuses_bad_input(self):
        cases = [
            (["--org", "a b"], 1, "org is not"),
            (["--org", ""], 1, "org is not"),
            (["--org", "acme", "--plan", "a/b"], 1, "plan is not"),
            (["--org", "acme", "--scopes", "tasks:*"], 1, "scopes are not"),
            (["--org", "acme", "--prefix", "pjk live"], 1, "--prefix must be"),
            (["--org", "acme", "--prefix", "p" * 214], 1, "--prefix must be"),
            (["--org", "acme", "--expires", "30"], 2, "not a duration"),
            (["--org", "acme", "--expires", "0d"], 2, "not a duration"),
            (["--org", "acme", "--expires-at", "tomorrow"], 2, "is not unix seconds"),
            (["--org", "acme", "--expires-at", "1000"], 1, "in the past"),
            (["--org", "acme", "--expires", "1d", "--expires-at", "2030-01-01"], 2,
             "not allowed with"),
            (["--scopes", "a"], 2, "--org"),
        ]
        for args, rc, msg in cases:
            r = self.run_cli("add", *args)
            self.assertEqual((r.rc, r.out), (rc, ""), args)
            self.assertIn(msg, r.err, args)
        self.assertEqual(self.redis.command("DBSIZE"), 0)
        self.assertEqual(self.run_cli("add", "--org", "acme", "--prefix", "p" * 213).rc, 0)

    def test_failed_write_prints_no_key(self):
        r = self.run_cli("add", "--org", "acme", port=free_port())
        self.assertEqual((r.rc, r.out), (1, ""))
        self.assertIn("Could not connect", r.err)
        # a Redis that refuses the command (no such db: redis-cli -n would go on in db 0)
        r = self.run_cli("add", "-n", "999", "--org", "acme")
        self.assertEqual((r.rc, r.out), (1, ""))
        self.assertIn("DB index is out of range", r.err)
        r = self.run_cli("list", "-n", "999")
        self.assertEqual((r.rc, r.out), (1, ""))
        self.assertIn("DB index is out of range", r.err)
        self.assertEqual(self.redis.command("DBSIZE"), 0)
        r = self.run_cli("add", "--org", "acme", env={"REDIS_CLI": "/nonexistent/redis-cli"})
        self.assertEqual((r.rc, r.out), (1, ""))
        self.assertIn("not found", r.err)

    def test_password_from_environment(self):
        port = self.redis.port
        self.redis.command("CONFIG", "SET", "requirepass", "s3cret-pw")
        try:
            r = self.run_cli("add", "--org", "acme")
            self.assertEqual((r.rc, r.out), (1, ""))
            self.assertIn("envelopd-keys: Redis: ", r.err)
            r = self.run_cli("add", "--org", "acme", env={"REDISCLI_AUTH": "s3cret-pw"})
            self.assertEqual(r.rc, 0, r.err)
            r = self.run_cli("list", env={"REDISCLI_AUTH": "s3cret-pw"})
            self.assertEqual(len(r.out.splitlines()), 1, r.err)
        finally:
            subprocess.run(["redis-cli", "-p", str(port), "--no-auth-warning", "-a",
                            "s3cret-pw", "CONFIG", "SET", "requirepass", ""],
                           capture_output=True, check=True)

    # ---- revoke, show, list ----

    def test_revoke_by_key_and_by_id(self):
        k1, id1 = self.add("--org", "acme", "--plan", "pro")
        k2, id2 = self.add("--org", "acme")
        r = self.run_cli("revoke", "-", stdin=k1 + "\n")
        self.assertEqual((r.rc, r.out), (0, "revoked %s\n" % id1), r.err)
        rec = self.record(id1)
        self.assertEqual((rec["status"], rec["org"], rec["plan"]), ("revoked", "acme", "pro"))
        self.assertIn("revoked_at", rec)
        r = self.run_cli("revoke", id2.upper(), secret=False)  # an id needs no secret
        self.assertEqual((r.rc, r.out), (0, "revoked %s\n" % id2), r.err)
        self.assertEqual(self.record(id2)["status"], "revoked")
        # again: still revoked, still fine
        self.assertEqual(self.run_cli("revoke", id2).rc, 0)
        # unknown: nothing is created
        r = self.run_cli("revoke", KEY)
        self.assertEqual(r.rc, 1)
        self.assertIn("no record for id " + KEY_ID, r.err)
        self.assertEqual(self.record(KEY_ID), {})
        r = self.run_cli("revoke", "not a key")
        self.assertEqual(r.rc, 1)

    def test_show(self):
        key, kid = self.add("--org", "acme", "--scopes", "a,b", "--expires", "1h")
        r = self.run_cli("show", key)
        self.assertEqual(r.rc, 0, r.err)
        lines = dict(line.split(" ", 1) for line in r.out.splitlines())
        self.assertEqual((lines["id"], lines["state"], lines["status"], lines["org"],
                          lines["scopes"]), (kid, "active", "active", "acme", "a,b"))
        self.assertIn("created_at", lines)
        # the state envelopd would see: expired, bad record
        self.redis.command("HSET", "envelopd:{%s}:apikey" % kid, "expires_at", "1")
        self.assertIn("state expired\n", self.run_cli("show", kid).out)
        self.redis.command("HSET", "envelopd:{%s}:apikey" % kid, "org", "a b")
        out = self.run_cli("show", kid).out
        self.assertIn("state bad record\n", out)
        self.assertIn("problem org is not", out)
        r = self.run_cli("show", KEY_ID)
        self.assertEqual((r.rc, r.out), (1, ""))

    def test_list(self):
        _, id1 = self.add("--org", "acme", "--scopes", "tasks:read", "--plan", "pro",
                          "--expires-at", "2030-01-01")
        _, id2 = self.add("--org", "beta")
        _, id3 = self.add("--org", "acme")
        self.run_cli("revoke", id3)
        # what list must skip or flag: other prefixes, not ids, limiter keys, bad records
        self.redis.command("HSET", "other:{%s}:apikey" % KEY_ID, "status", "active")
        self.redis.command("HSET", "envelopd:{nothex}:apikey", "status", "active")
        self.redis.command("SET", "envelopd:{%s}:default:100/60000" % KEY_ID[:32], "1")
        self.redis.command("HSET", "envelopd:{%s}:apikey" % KEY_ID, "org", "acme")
        wrong = "f" * 64
        self.redis.command("SET", "envelopd:{%s}:apikey" % wrong, "x")
        r = self.run_cli("list")
        self.assertEqual(r.rc, 0, r.err)
        want = sorted([
            "%s status=active org=acme scopes=tasks:read plan=pro expires_at=1893456000" % id1,
            "%s status=active org=beta" % id2,
            "%s status=revoked org=acme" % id3,
            "# %s: bad record: no status" % KEY_ID,
            "# %s: WRONGTYPE Operation against a key holding the wrong kind of value" % wrong,
        ])
        self.assertEqual(sorted(r.out.splitlines()), want)
        r = self.run_cli("list", "--org", "beta")
        self.assertEqual(r.out.splitlines(), ["%s status=active org=beta" % id2])
        # a prefix with glob characters matches itself only
        self.redis.command("HSET", "a*:{%s}:apikey" % id1, "status", "revoked")
        self.redis.command("HSET", "ab:{%s}:apikey" % id2, "status", "revoked")
        r = self.run_cli("--key-prefix", "a*:", "list")
        self.assertEqual(r.out, "%s status=revoked\n" % id1, r.err)
        # many keys: listed in batches
        for i in range(250):
            self.redis.command("HSET", "many:{%064x}:apikey" % i, "status", "revoked")
        r = self.run_cli("--key-prefix", "many:", "list")
        self.assertEqual(len(r.out.splitlines()), 250, r.err)

    # ---- keys file ----

    def test_keys_file(self):
        path = os.path.join(self.tmp, "keys")
        if os.path.exists(path):
            os.unlink(path)
        r = self.run_cli("add", "--keys-file", path, "--org", "acme", "--scopes", "a b",
                         "--plan", "pro", "--prefix", "pjk_live_", port=free_port())
        self.assertEqual(r.rc, 0, r.err)
        self.assertIn("SIGHUP", r.err)
        k1 = r.out.strip()
        id1 = hmac_id(SECRET, k1)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        with open(path) as f:
            self.assertEqual(f.read(), "%s status=active org=acme scopes=a,b plan=pro\n" % id1)
        # hand-written lines and comments survive, CRLF too
        with open(path, "a", newline="") as f:
            f.write("# a comment\r\n  %s\tstatus=active org=beta # beta's key\r\n" % KEY_ID)
        os.chmod(path, 0o640)
        k2 = self.run_cli("add", "--keys-file", path, "--org", "gamma").out.strip()
        id2 = hmac_id(SECRET, k2)
        r = self.run_cli("revoke", "--keys-file", path, KEY)
        self.assertEqual((r.rc, r.out), (0, "revoked %s\n" % KEY_ID), r.err)
        with open(path, newline="") as f:
            text = f.read()
        self.assertEqual(text, "%s status=active org=acme scopes=a,b plan=pro\n"
                         "# a comment\r\n"
                         "%s status=revoked org=beta # beta's key\r\n"
                         "%s status=active org=gamma\n" % (id1, KEY_ID, id2))
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o640)
        r = self.run_cli("list", "--keys-file", path)
        self.assertEqual(r.out.splitlines(), [
            "%s status=active org=acme scopes=a,b plan=pro" % id1,
            "%s status=revoked org=beta" % KEY_ID,
            "%s status=active org=gamma" % id2])
        self.assertIn("state revoked", self.run_cli("show", "--keys-file", path, KEY).out)
        self.assertEqual(self.run_cli("revoke", "--keys-file", path, "0" * 64).rc, 1)
        # Redis was never involved
        self.assertEqual(self.redis.command("DBSIZE"), 0)
        self.assertEqual([f for f in os.listdir(self.tmp) if f.startswith(".envelopd-keys")], [])

    def test_help(self):
        for args in (["--help"], ["add", "--help"]):
            r = subprocess.run([sys.executable, CLI] + args, capture_output=True)
            self.assertEqual(r.returncode, 0)
            self.assertIn(b"envelopd-keys", r.stdout)
        r = subprocess.run([sys.executable, CLI], capture_output=True)
        self.assertEqual(r.returncode, 2)


if __name__ == "__main__":
    unittest.main()
