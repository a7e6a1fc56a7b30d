"""Identity (issue #19) end to end: routes with auth = jwt | api_key |
jwt_or_api_key checked by the real envelopd against JWTs signed here (RS256,
PS256, ES256, EdDSA from a jwks_file; HS256 from hs256_secret_file) and API
keys whose records live in a keys file or in a real redis-server. Checked:
the 401/403/429/503 envelopes and their WWW-Authenticate, what the upstream
receives (X-Auth-Subject/Org/Scopes, never the client's own; Authorization
only without hide_credentials), require_scope, forbid_api_keys, X-Org-Id,
limits by verified identity, plan and org, the per-IP brake on failed
authentications, the access log (subject, never a credential), SIGHUP with
rotated keys, -t with a broken key set, and a body behind an asynchronous
key lookup.

Keys are made here with python3-cryptography, using only what Debian 12's
version (38.0) has. Each class starts its own upstream.py, envelopd and,
where needed, redis-server on free loopback ports, stopped by PID. Run:
  cd tests/integration && ENVELOPD=/path/to/envelopd python3 -m unittest -v test_auth
"""

import base64
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

from harness import (ENVELOPD, SLOW, Gateway, GatewayTestCase, Redis, Upstream, base_conf,
                     free_port, parse_responses, read_one_response, request_bytes, run_envelopd,
                     scaled, wait_until)

try:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
    HAVE_CRYPTO = True
except ImportError:  # python3-cryptography (scripts/deps)
    HAVE_CRYPTO = False

HERE = os.path.dirname(os.path.abspath(__file__))
CLI = os.path.join(HERE, "..", "..", "scripts", "envelopd-keys")

CORR = "X-Correlation-Id"
SECRET = "0123456789abcdef0123456789abcdef"          # [limits] hash_secret
HS_SECRET = "hs256-test-secret-0123456789abcdef-xyz"  # >= 32 bytes
PREFIX = "pjk_live_"
ISS = "https://issuer.example.com/"
AUD = "envelopd-tests"

MSG_REQUIRED = "Authentication required"
MSG_INVALID = "JWT token is malformed or invalid"
MSG_EXPIRED = "JWT token has expired"
MSG_KEY = "API key is missing or invalid"
MSG_KEY_ORG = "API key bound to a different organization"
MSG_TOKEN_ORG = "Token bound to a different organization"
MSG_SCOPE = "Key lacks required scopes"
MSG_NO_KEYS = "Not available for API key auth \u2014 use a user session"
WWW_INVALID = 'Bearer error="invalid_token"'

AUTH_HEADERS = ("x-auth-subject", "x-auth-org", "x-auth-scopes")


# ---------------------------------------------------------------- JWT / JWKS

def b64u(data):
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def b64u_int(n, size=None):
    size = size or (n.bit_length() + 7) // 8
    return b64u(n.to_bytes(size, "big"))


def b64u_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class SigningKey:
    """A private key of one JWS algorithm, its kid and its public JWK."""

    def __init__(self, alg, kid):
        self.alg, self.kid = alg, kid
        if alg in ("RS256", "PS256"):
            self.priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif alg == "ES256":
            self.priv = ec.generate_private_key(ec.SECP256R1())
        elif alg == "EdDSA":
            self.priv = ed25519.Ed25519PrivateKey.generate()
        else:
            raise ValueError(alg)

    def jwk(self):
        pub = self.priv.public_key()
        if self.alg in ("RS256", "PS256"):
            nums = pub.public_numbers()
            k = {"kty": "RSA", "n": b64u_int(nums.n), "e": b64u_int(nums.e)}
        elif self.alg == "ES256":
            nums = pub.public_numbers()
            k = {"kty": "EC", "crv": "P-256", "x": b64u_int(nums.x, 32),
                 "y": b64u_int(nums.y, 32)}
        else:
            raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            k = {"kty": "OKP", "crv": "Ed25519", "x": b64u(raw)}
        k.update({"kid": self.kid, "use": "sig", "alg": self.alg})
        return k

    def public_pem(self):
        return self.priv.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def sign(self, data):
        if self.alg == "RS256":
            return self.priv.sign(data, padding.PKCS1v15(), hashes.SHA256())
        if self.alg == "PS256":
            return self.priv.sign(data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                                    salt_length=32), hashes.SHA256())
        if self.alg == "ES256":
            r, s = utils.decode_dss_signature(self.priv.sign(data, ec.ECDSA(hashes.SHA256())))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return self.priv.sign(data)

    def verify(self, data, sig):
        """Our own check of a signature (the helpers' self-test)."""
        pub = self.priv.public_key()
        if self.alg == "RS256":
            pub.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
        elif self.alg == "PS256":
            pub.verify(sig, data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                       hashes.SHA256())
        elif self.alg == "ES256":
            der = utils.encode_dss_signature(int.from_bytes(sig[:32], "big"),
                                             int.from_bytes(sig[32:], "big"))
            pub.verify(der, data, ec.ECDSA(hashes.SHA256()))
        else:
            pub.verify(sig, data)


def jwks_text(*keys):
    return json.dumps({"keys": [k.jwk() for k in keys]})


def claims(sub="alice", ttl=600, **extra):
    """Standard claims: sub, iss, aud, iat, exp (now + TTL), a fresh jti; EXTRA
    overrides (a value None removes the claim)."""
    now = int(time.time())
    c = {"sub": sub, "iss": ISS, "aud": AUD, "iat": now, "exp": now + ttl,
         "jti": uuid.uuid4().hex}
    c.update(extra)
    return {k: v for k, v in c.items() if v is not None}


def make_jwt(key, payload=None, header=None, alg=None, kid=None):
    """A compact JWS of PAYLOAD signed by KEY (a SigningKey, or bytes: an HMAC
    secret for HS256). HEADER replaces the computed header."""
    if isinstance(key, (bytes, str)):
        secret = key.encode() if isinstance(key, str) else key
        h = {"alg": alg or "HS256", "typ": "JWT"}
        if kid:
            h["kid"] = kid
    else:
        secret = None
        h = {"alg": alg or key.alg, "typ": "JWT", "kid": kid or key.kid}
    if header is not None:
        h = header
    p = claims() if payload is None else payload
    signing_input = (b64u(json.dumps(h, separators=(",", ":")).encode()) + "." +
                     b64u(json.dumps(p, separators=(",", ":")).encode())).encode()
    if secret is not None:
        sig = hmac.new(secret, signing_input, hashlib.sha256).digest()
    else:
        sig = key.sign(signing_input)
    return signing_input.decode() + "." + b64u(sig)


# ---------------------------------------------------------------- API keys

def key_id(key, secret=SECRET):
    return hmac.new(secret.encode(), key.encode(), hashlib.sha256).hexdigest()


def new_key(prefix=PREFIX):
    return prefix + base64.b64encode(os.urandom(30)).decode().replace("+", "A").replace(
        "/", "B").rstrip("=")


def keys_file_line(key, status="active", org="acme", scopes="", plan="", expires_at=0):
    parts = [key_id(key), "status=" + status]
    if org:
        parts.append("org=" + org)
    if scopes:
        parts.append("scopes=" + scopes)
    if plan:
        parts.append("plan=" + plan)
    parts.append("expires_at=%d" % expires_at)
    return " ".join(parts)


def redis_put_key(rd, key, status="active", org="acme", scopes="", plan="", expires_at=0,
                  prefix="envelopd:"):
    args = ["status", status, "org", org, "scopes", scopes, "plan", plan,
            "expires_at", str(expires_at)]
    rd.command("HSET", "%s{%s}:apikey" % (prefix, key_id(key)), *args)


def bearer(token):
    return {"Authorization": "Bearer " + token}


def echo_headers(echo, name):
    return [v for k, v in echo["headers"] if k.lower() == name.lower()]


def write_file(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


# ---------------------------------------------------------------- conf

def auth_conf(port, up_port, tmp, **auth):
    """base_conf with the routes of this suite and an [auth] section; AUTH
    keyword arguments set [auth] keys (None: leave out)."""
    c = base_conf(port, [up_port], auth="jwt")
    c.set("limits", "hash_secret", SECRET)
    c.set("limits", "per_ip_auth_failures", "100000/1m")
    routes = [
        ("keys", "/api/v1/keys", {"auth": "api_key"}),
        ("both", "/api/v1/both", {"auth": "jwt_or_api_key"}),
        ("write", "/api/v1/write", {"auth": "jwt_or_api_key", "require_scope": "tasks:write"}),
        ("session", "/api/v1/session", {"auth": "jwt_or_api_key", "forbid_api_keys": "yes"}),
        ("hidden", "/api/v1/hidden", {"auth": "jwt_or_api_key", "hide_credentials": "yes"}),
        ("open", "/api/v1/open", {"auth": "none"}),
    ]
    for name, prefix, kw in routes:
        sect = "route " + name
        c.set(sect, "prefix", prefix)
        c.set(sect, "upstream", "tasks")
        c.set(sect, "methods", "GET, POST")
        for k, v in kw.items():
            c.set(sect, k, v)
    a = {"jwks_file": os.path.join(tmp, "jwks.json"), "issuer": ISS, "audience": AUD,
         "leeway": "30s", "key_prefix_required": PREFIX}
    a.update(auth)
    for k, v in a.items():
        if v is not None:
            c.set("auth", k, v)
    return c


def add_redis(c, rd):
    c.set("redis", "address", rd.addr)
    c.set("redis", "timeout", "1s" if SLOW else "200ms")   # see test_ratelimit
    c.set("redis", "key_prefix", "envelopd:")
    return c


def start_redis_gateway(gw):
    ev = gw.wait_log(lambda l: l.get("event") in ("redis_connected", "redis_back"), 10)
    if ev is None:
        raise AssertionError("envelopd did not connect to Redis:\n" + gw.stdout_text()[-2000:])


# ---------------------------------------------------------------- base

class AuthCase(GatewayTestCase):
    """Shared helpers; classes start their processes in setUpClass and stop
    them by PID in tearDownClass."""

    @classmethod
    def setUpClass(cls):
        if not HAVE_CRYPTO:
            raise unittest.SkipTest("python3-cryptography not installed")
        if not ENVELOPD:
            raise unittest.SkipTest("ENVELOPD is not set")
        cls._procs = []
        cls.tmp = tempfile.mkdtemp(prefix="envelopd-auth-")
        try:
            cls.start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def start(cls):
        """Start the class's processes (keep() each one)."""

    @classmethod
    def tearDownClass(cls):
        for p in reversed(cls._procs):
            try:
                p.cleanup() if isinstance(p, Gateway) else p.kill()
            except Exception:
                pass
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def keep(cls, proc):
        cls._procs.append(proc)
        return proc

    @classmethod
    def start_redis_stack(cls, key, tweak=None, **auth):
        """KEY's JWKS, a redis-server, an upstream, and a gateway with [redis]
        (TWEAK(conf) changes its conf first; AUTH sets [auth] keys)."""
        cls.rs = key
        write_file(os.path.join(cls.tmp, "jwks.json"), jwks_text(key))
        cls.rd = cls.keep(Redis())
        cls.up = cls.keep(Upstream())
        port = free_port()
        conf = add_redis(auth_conf(port, cls.up.port, cls.tmp, **auth), cls.rd)
        if tweak:
            tweak(conf)
        cls.gw = cls.keep(Gateway(conf, port))
        start_redis_gateway(cls.gw)

    def get(self, path, headers=None, method="GET", body=None, gw=None):
        return (gw or self.gw).request(method, path, headers=headers, body=body)

    def passed(self, r):
        """R is the upstream's echo (200); returns the echo."""
        self.assertEqual(r.status, 200, r)
        self.assertIsNotNone(r.header("X-Upstream-Port"), "not from the upstream: %r" % r)
        return r.json()

    def assertIdentity(self, echo, subject, org=None, scopes=None):
        """The upstream got exactly one X-Auth-Subject SUBJECT and, when given,
        X-Auth-Org ORG and X-Auth-Scopes SCOPES ("" or None: absent)."""
        self.assertEqual(echo_headers(echo, "X-Auth-Subject"), [subject], echo["headers"])
        want_org = [org] if org else []
        self.assertEqual(echo_headers(echo, "X-Auth-Org"), want_org, echo["headers"])
        want_sc = [scopes] if scopes else []
        self.assertEqual(echo_headers(echo, "X-Auth-Scopes"), want_sc, echo["headers"])

    def assertRefused(self, r, status, code, message, www=None):
        """R is the nested envelope STATUS/CODE/MESSAGE; WWW: the exact
        WWW-Authenticate (False: none; None: not checked). Returns the body."""
        body = self.assertEnvelope(r, status, code)
        self.assertEqual(body["error"]["message"], message, body)
        if www is False:
            self.assertIsNone(r.header("WWW-Authenticate"), r)
        elif www is not None:
            self.assertEqual(r.header("WWW-Authenticate"), www, r)
        self.assertIsNone(r.header("X-Upstream-Port"), "the upstream answered: %r" % r)
        return body

    def assertTokenInvalid(self, r, why=""):
        self.assertEqual(r.status, 401, "%s: %r" % (why, r))
        self.assertRefused(r, 401, "TOKEN_INVALID", MSG_INVALID, WWW_INVALID)

    def assertKeyInvalid(self, r, why=""):
        self.assertEqual(r.status, 401, "%s: %r" % (why, r))
        self.assertRefused(r, 401, "UNAUTHORIZED", MSG_KEY)
        self.assertTrue((r.header("WWW-Authenticate") or "").startswith("Bearer"), r)


# ====================================================================== helpers self-test

@unittest.skipUnless(HAVE_CRYPTO, "python3-cryptography not installed")
class Helpers(unittest.TestCase):
    """The JWT and JWKS helpers agree with cryptography and the RFCs (no envelopd)."""

    def test_signatures_verify_and_jwks_round_trips(self):
        for alg in ("RS256", "PS256", "ES256", "EdDSA"):
            k = SigningKey(alg, "k-" + alg)
            tok = make_jwt(k, claims(sub="s"))
            h, p, s = tok.split(".")
            self.assertEqual(json.loads(b64u_decode(h)), {"alg": alg, "typ": "JWT", "kid": k.kid})
            self.assertEqual(json.loads(b64u_decode(p))["sub"], "s")
            sig = b64u_decode(s)
            if alg == "ES256":
                self.assertEqual(len(sig), 64)
            k.verify((h + "." + p).encode(), sig)      # raises when wrong
            jwk = k.jwk()
            self.assertNotIn("d", jwk)
            self.assertEqual(jwk["alg"], alg)
            if alg in ("RS256", "PS256"):
                n = int.from_bytes(b64u_decode(jwk["n"]), "big")
                self.assertEqual(n, k.priv.public_key().public_numbers().n)
                self.assertEqual(jwk["e"], "AQAB")
            for v in jwk.values():
                self.assertNotIn("=", v)
        hs = make_jwt(HS_SECRET, claims())
        h, p, s = hs.split(".")
        self.assertEqual(b64u_decode(s), hmac.new(HS_SECRET.encode(), (h + "." + p).encode(),
                                                  hashlib.sha256).digest())

    def test_key_id_vector(self):
        # the vector of docs/apikeys.md and tests/test_apikey.c
        self.assertEqual(key_id("pjk_live_4eC39HqLyjWDarjtT1zdp7dc"),
                         "ca14c887954425181b09520c3d6eeab59a0a99605bc6f3ea82ed43cdd676ce77")


# ====================================================================== JWT and keys file

class Identity(AuthCase):
    """One envelopd with four public keys (RS256, PS256, ES256, EdDSA), an
    HS256 secret, issuer, audience, leeway 30s and a keys file (no Redis)."""

    @classmethod
    def start(cls):
        cls.rs = SigningKey("RS256", "rs-1")
        cls.ps = SigningKey("PS256", "ps-1")
        cls.es = SigningKey("ES256", "es-1")
        cls.ed = SigningKey("EdDSA", "ed-1")
        cls.rogue = SigningKey("RS256", "rs-1")     # same kid, not in the set
        cls.jwks = os.path.join(cls.tmp, "jwks.json")
        write_file(cls.jwks, jwks_text(cls.rs, cls.ps, cls.es, cls.ed))
        cls.hs_file = os.path.join(cls.tmp, "hs256")
        write_file(cls.hs_file, HS_SECRET + "\n")
        cls.k_full = new_key()
        cls.k_read = new_key()
        cls.k_revoked = new_key()
        cls.k_expired = new_key()
        cls.k_beta = new_key()
        cls.k_noprefix = "sk_" + new_key("")      # has an active record, lacks the prefix
        lines = ["# test keys",
                 keys_file_line(cls.k_full, org="acme", scopes="tasks:read,tasks:write",
                                plan="pro"),
                 keys_file_line(cls.k_read, org="acme", scopes="tasks:read"),
                 keys_file_line(cls.k_revoked, status="revoked", org="acme"),
                 keys_file_line(cls.k_expired, org="acme", expires_at=1000000000),
                 keys_file_line(cls.k_beta, org="beta", scopes="tasks:write"),
                 keys_file_line(cls.k_noprefix, org="acme", scopes="tasks:write")]
        cls.keys_file = os.path.join(cls.tmp, "keys")
        write_file(cls.keys_file, "\n".join(lines) + "\n")
        cls.up = cls.keep(Upstream())
        port = free_port()
        conf = auth_conf(port, cls.up.port, cls.tmp, hs256_secret_file=cls.hs_file,
                         keys_file=cls.keys_file)
        cls.gw = cls.keep(Gateway(conf, port))
        cls.used = []      # every credential sent: none may reach a log

    def tok(self, key=None, **kw):
        t = make_jwt(key or self.rs, claims(**kw))
        self.used.append(t)
        return t

    def key(self, k):
        self.used.append(k)
        return k

    # ---- 1. no credential

    def test_no_credential_is_401_bearer(self):
        for path in ("/api/v1/tasks", "/api/v1/keys", "/api/v1/both", "/api/v1/write",
                     "/api/v1/session"):
            r = self.get(path)
            self.assertRefused(r, 401, "UNAUTHORIZED", MSG_REQUIRED, "Bearer")
        # a non-Bearer Authorization is no credential either
        r = self.get("/api/v1/tasks", {"Authorization": "Basic dXNlcjpwYXNz"})
        self.assertEqual(r.status, 401, r)
        # auth = none routes still pass
        self.passed(self.get("/api/v1/open"))

    # ---- 2. JWT

    def test_jwt_every_algorithm_passes_with_identity(self):
        for k in (self.rs, self.ps, self.es, self.ed):
            sub = "user-" + k.alg.lower()
            r = self.get("/api/v1/tasks", bearer(self.tok(k, sub=sub, org="acme",
                                                          scope="tasks:read tasks:write")))
            echo = self.passed(r)
            self.assertIdentity(echo, sub, "acme", "tasks:read tasks:write")

    def test_jwt_scp_array_and_no_org(self):
        echo = self.passed(self.get("/api/v1/tasks",
                                    bearer(self.tok(self.es, sub="u-scp",
                                                    scp=["tasks:read", "billing:view"]))))
        self.assertIdentity(echo, "u-scp", None, "tasks:read billing:view")

    def test_hs256_with_the_configured_secret(self):
        t = make_jwt(HS_SECRET, claims(sub="hs-user", org="acme"))
        self.used.append(t)
        self.assertIdentity(self.passed(self.get("/api/v1/tasks", bearer(t))), "hs-user", "acme")
        bad = make_jwt(HS_SECRET + "x", claims(sub="hs-user"))
        self.assertTokenInvalid(self.get("/api/v1/tasks", bearer(bad)), "HS256, wrong secret")

    def test_client_identity_headers_are_stripped(self):
        forged = {"X-Auth-Subject": "admin", "X-Auth-Org": "evilcorp",
                  "X-Auth-Scopes": "admin:all", "x-auth-subject": "root"}
        h = dict(bearer(self.tok(sub="real-user", org="acme", scope="tasks:read")), **forged)
        echo = self.passed(self.get("/api/v1/tasks", h))
        self.assertIdentity(echo, "real-user", "acme", "tasks:read")
        # a JWT without org/scope: the forged ones are not let through instead
        h = dict(bearer(self.tok(sub="bare-user")), **forged)
        self.assertIdentity(self.passed(self.get("/api/v1/tasks", h)), "bare-user", None, None)
        h = dict(bearer(self.key(self.k_full)), **forged)
        echo = self.passed(self.get("/api/v1/keys", h))
        self.assertIdentity(echo, "key:" + key_id(self.k_full), "acme", "tasks:read tasks:write")
        # auth = none: none of them reach the upstream
        echo = self.passed(self.get("/api/v1/open", forged))
        for name in AUTH_HEADERS:
            self.assertEqual(echo_headers(echo, name), [], echo["headers"])

    def test_jwt_refused_as_invalid(self):
        good = self.tok(sub="victim")
        h, p, s = good.split(".")
        admin_payload = b64u(json.dumps(claims(sub="admin")).encode())
        none_header = b64u(json.dumps({"alg": "none", "typ": "JWT", "kid": "rs-1"}).encode())
        es_der = make_jwt(self.es, claims())
        eh, ep, _ = es_der.split(".")
        der_sig = self.es.priv.sign((eh + "." + ep).encode(), ec.ECDSA(hashes.SHA256()))
        cases = [
            ("bad signature (another key, same kid)", make_jwt(self.rogue, claims())),
            ("payload swapped under a valid signature", h + "." + admin_payload + "." + s),
            ("alg none, empty signature", none_header + "." + p + "."),
            ("alg none, old signature kept", none_header + "." + p + "." + s),
            ("unknown kid", make_jwt(self.rs, claims(), kid="nope")),
            ("no kid with several keys", make_jwt(self.rs, claims(), header={"alg": "RS256"})),
            ("PS256 header on the RS256 key", make_jwt(self.rs, claims(), alg="PS256")),
            ("ES256 signature in DER, not R||S", eh + "." + ep + "." + b64u(der_sig)),
            ("wrong issuer", make_jwt(self.rs, claims(iss="https://evil.example.com/"))),
            ("no issuer", make_jwt(self.rs, claims(iss=None))),
            ("wrong audience", make_jwt(self.rs, claims(aud="someone-else"))),
            ("audience array without ours", make_jwt(self.rs, claims(aud=["a", "b"]))),
            ("nbf beyond leeway", make_jwt(self.rs, claims(nbf=int(time.time()) + 300))),
            ("no exp", make_jwt(self.rs, claims(exp=None))),
            ("no sub", make_jwt(self.rs, claims(sub=None))),
            ("HS256 signed with the RSA public key PEM, kid rs-1",
             make_jwt(self.rs.public_pem(), claims(), alg="HS256", kid="rs-1")),
            ("HS256 signed with the RSA public key PEM, no kid",
             make_jwt(self.rs.public_pem(), claims(), alg="HS256")),
            ("not a JWT", "not-a-jwt"),
            ("three garbage parts", "abc.def.ghi"),
            ("four parts", good + ".x"),
            ("padded base64", h + "=." + p + "." + s),
            ("truncated signature", good[:-4]),
        ]
        for why, t in cases:
            self.used.append(t)
            self.assertTokenInvalid(self.get("/api/v1/tasks", bearer(t)), why)
        # the wrong issuer is invalid even when expired too (iss is checked first)
        t = make_jwt(self.rs, claims(iss="https://evil.example.com/", exp=1000000000))
        self.assertTokenInvalid(self.get("/api/v1/tasks", bearer(t)), "wrong iss, expired")
        # the victim's own token still passes (nothing was cached wrongly)
        self.assertIdentity(self.passed(self.get("/api/v1/tasks", bearer(good))), "victim")

    def test_jwt_expired_and_leeway(self):
        now = int(time.time())
        t = self.tok(exp=now - 3600, iat=now - 7200)
        r = self.get("/api/v1/tasks", bearer(t))
        self.assertRefused(r, 401, "TOKEN_EXPIRED", MSG_EXPIRED)
        self.assertTrue(r.header("WWW-Authenticate", "").startswith(WWW_INVALID), r)
        # exp = now - 31 s is past the 30 s leeway
        self.assertRefused(self.get("/api/v1/tasks", bearer(self.tok(exp=now - 31))), 401,
                           "TOKEN_EXPIRED", MSG_EXPIRED)
        # within the leeway: 10 s past exp, nbf 10 s ahead
        self.passed(self.get("/api/v1/tasks", bearer(self.tok(sub="late", exp=now - 10))))
        self.passed(self.get("/api/v1/tasks", bearer(self.tok(sub="early", nbf=now + 10))))

    def test_api_key_on_jwt_route_and_jwt_on_key_route(self):
        self.assertTokenInvalid(self.get("/api/v1/tasks", bearer(self.key(self.k_full))),
                                "an API key on auth = jwt")
        self.assertKeyInvalid(self.get("/api/v1/keys", bearer(self.tok())),
                              "a JWT on auth = api_key")

    # ---- 3. API keys (keys file)

    def test_api_key_active(self):
        for path in ("/api/v1/keys", "/api/v1/both"):
            echo = self.passed(self.get(path, bearer(self.key(self.k_full))))
            self.assertIdentity(echo, "key:" + key_id(self.k_full), "acme",
                                "tasks:read tasks:write")
        echo = self.passed(self.get("/api/v1/keys", bearer(self.key(self.k_read))))
        self.assertIdentity(echo, "key:" + key_id(self.k_read), "acme", "tasks:read")

    def test_api_key_refused(self):
        cases = [("unknown", new_key()), ("revoked", self.k_revoked),
                 ("no required prefix (its record is active)", self.k_noprefix),
                 ("wrong prefix case", "PJK_LIVE_" + self.k_full[len(PREFIX):]),
                 ("prefix alone", PREFIX),
                 ("malformed: a quote", PREFIX + 'abc"def'),
                 ("too long", PREFIX + "a" * 300)]
        for why, k in cases:
            self.used.append(k)
            for path in ("/api/v1/keys", "/api/v1/both"):
                self.assertKeyInvalid(self.get(path, bearer(k)), "%s on %s" % (why, path))
        r = self.get("/api/v1/keys", bearer(self.key(self.k_expired)))
        self.assertEqual(r.status, 401, r)
        self.assertRefused(r, 401, "TOKEN_EXPIRED", r.json()["error"]["message"])
        self.assertTrue(r.header("WWW-Authenticate", "").startswith(WWW_INVALID), r)
        # the active key with the right prefix still passes
        self.passed(self.get("/api/v1/keys", bearer(self.key(self.k_full))))

    # ---- 4. organization

    def test_org_request_header(self):
        k = self.key(self.k_full)
        self.passed(self.get("/api/v1/keys", dict(bearer(k), **{"X-Org-Id": "acme"})))
        for other in ("beta", "ACME", "acm", "acme,acme"):
            r = self.get("/api/v1/keys", dict(bearer(k), **{"X-Org-Id": other}))
            self.assertRefused(r, 403, "FORBIDDEN", MSG_KEY_ORG)
        t = self.tok(sub="org-user", org="acme")
        self.passed(self.get("/api/v1/tasks", dict(bearer(t), **{"X-Org-Id": "acme"})))
        r = self.get("/api/v1/tasks", dict(bearer(t), **{"X-Org-Id": "beta"}))
        self.assertRefused(r, 403, "FORBIDDEN", MSG_TOKEN_ORG)
        # a token without an org claim may ask for any org (the upstream decides)
        t = self.tok(sub="multi-org-user")
        echo = self.passed(self.get("/api/v1/tasks", dict(bearer(t), **{"X-Org-Id": "beta"})))
        self.assertIdentity(echo, "multi-org-user", None, None)
        # an unproven caller learns nothing about the org: 401 first
        r = self.get("/api/v1/keys", {"Authorization": "Bearer " + new_key(), "X-Org-Id": "zzz"})
        self.assertKeyInvalid(r, "unknown key with X-Org-Id")

    # ---- 5. scopes

    def assertScopeMissing(self, r, scope):
        body = self.assertRefused(r, 403, "FORBIDDEN", MSG_SCOPE)
        errs = body["error"]["details"].get("errors")
        self.assertIsInstance(errs, list, body)
        self.assertTrue(any(e.get("field") == "scope" and scope in e.get("message", "")
                            for e in errs), body)

    def test_require_scope(self):
        self.assertScopeMissing(self.get("/api/v1/write", bearer(self.key(self.k_read))),
                                "tasks:write")
        echo = self.passed(self.get("/api/v1/write", bearer(self.key(self.k_full))))
        self.assertIdentity(echo, "key:" + key_id(self.k_full), "acme", "tasks:read tasks:write")
        for scope in ("tasks:read", "tasks", "tasks:write:all", "TASKS:WRITE"):
            t = self.tok(sub="scoped", scope=scope)
            self.assertScopeMissing(self.get("/api/v1/write", bearer(t)), "tasks:write")
        t = self.tok(sub="writer", scp=["tasks:read", "tasks:write"])
        self.passed(self.get("/api/v1/write", bearer(t)))
        # no credential, or a bad one: 401 before any scope question
        self.assertRefused(self.get("/api/v1/write"), 401, "UNAUTHORIZED", MSG_REQUIRED)
        self.assertKeyInvalid(self.get("/api/v1/write", bearer(new_key())), "unknown key")

    def test_claims_read_as_the_upstream_reads_them(self):
        # a blank at either end would be a fresh budget that reads the same upstream
        for bad in (dict(sub=" carol"), dict(sub="carol "), dict(sub="c", org=" acme"),
                    dict(sub="c", org=""), dict(sub="c", plan="pro "),
                    dict(sub="key:" + key_id(self.k_full))):   # the API keys' namespace
            self.assertTokenInvalid(self.get("/api/v1/tasks", bearer(self.tok(**bad))), bad)
        # a comma inside one scope token does not make two scopes
        self.assertScopeMissing(
            self.get("/api/v1/write", bearer(self.tok(sub="comma", scope="x,tasks:write"))),
            "tasks:write")
        self.assertScopeMissing(
            self.get("/api/v1/write", bearer(self.tok(sub="comma", scp=["x,tasks:write"]))),
            "tasks:write")

    # ---- 6. forbid_api_keys

    def test_forbid_api_keys(self):
        r = self.get("/api/v1/session", bearer(self.key(self.k_full)))
        self.assertRefused(r, 403, "FORBIDDEN", MSG_NO_KEYS)
        self.assertIn("\u2014", r.body.decode("utf-8"))
        self.passed(self.get("/api/v1/session", bearer(self.tok(sub="session-user"))))
        self.assertKeyInvalid(self.get("/api/v1/session", bearer(new_key())), "unknown key")

    # ---- 9. hide_credentials

    def test_hide_credentials(self):
        t = self.tok(sub="hider")
        echo = self.passed(self.get("/api/v1/hidden", bearer(t)))
        self.assertEqual(echo_headers(echo, "Authorization"), [], echo["headers"])
        self.assertIdentity(echo, "hider")
        echo = self.passed(self.get("/api/v1/hidden", bearer(self.key(self.k_full))))
        self.assertEqual(echo_headers(echo, "Authorization"), [], echo["headers"])
        echo = self.passed(self.get("/api/v1/tasks", bearer(t)))
        self.assertEqual(echo_headers(echo, "Authorization"), ["Bearer " + t])
        echo = self.passed(self.get("/api/v1/both", bearer(self.k_full)))
        self.assertEqual(echo_headers(echo, "Authorization"), ["Bearer " + self.k_full])

    # ---- 10. access log

    def test_access_log_has_subject(self):
        t = self.tok(sub="log-user-%s" % uuid.uuid4().hex[:8], org="acme")
        r = self.get("/api/v1/tasks", bearer(t))
        self.passed(r)
        line = self.gw.wait_access(r.header(CORR))
        self.assertIsNotNone(line, "no access line for %s" % r.header(CORR))
        self.assertEqual(line.get("subject"), json.loads(b64u_decode(t.split(".")[1]))["sub"],
                         line)
        r = self.get("/api/v1/keys", bearer(self.key(self.k_full)))
        self.passed(r)
        line = self.gw.wait_access(r.header(CORR))
        self.assertIsNotNone(line)
        self.assertEqual(line.get("subject"), "key:" + key_id(self.k_full), line)
        # refusals are logged too (the credential is not: test_zz_...)
        r = self.get("/api/v1/tasks", bearer(self.tok(exp=1000000000)))
        self.assertEqual(r.status, 401, r)
        line = self.gw.wait_access(r.header(CORR))
        self.assertIsNotNone(line)
        self.assertEqual(line.get("status"), 401, line)

    def test_zz_no_credential_in_any_log(self):
        """Last (by name): every token and key this class sent, passed or
        refused, is nowhere in envelopd's stdout (access log) or stderr."""
        self.passed(self.get("/api/v1/both", bearer(self.key(self.k_beta))))
        self.assertEqual(self.get("/api/v1/keys", bearer(self.key(self.k_revoked))).status, 401)
        time.sleep(0.2)   # let the last access lines be written
        text = self.gw.stdout_text() + self.gw.stderr_text()
        self.assertIn(key_id(self.k_beta), text, "the key's id is not even logged")
        creds = self.used + [self.k_full, self.k_read, self.k_revoked, self.k_expired,
                             self.k_beta, self.k_noprefix]
        self.assertGreater(len(creds), 20)
        for cred in creds:
            parts = [cred] + ([cred.split(".")[2]] if cred.count(".") == 2 else [])
            if cred.startswith(PREFIX):
                parts.append(cred[len(PREFIX):])
            for part in parts:
                if len(part) >= 16:
                    self.assertNotIn(part, text, "a credential is in the logs")


# ====================================================================== API keys in Redis

def read_responses(sock, n, timeout):
    """Read from SOCK until N complete responses are there (or timeout/close)."""
    deadline = time.monotonic() + timeout
    data = b""
    while True:
        rs = [r for r in parse_responses(data) if not 100 <= r.status < 200]
        if len(rs) >= n and all(r.complete for r in rs[:n]):
            return rs[:n]
        left = deadline - time.monotonic()
        if left <= 0:
            return rs
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            return rs
        data += chunk


class RedisKeys(AuthCase):
    """API key records in a real redis-server (no keys file), key_cache_ttl 1s."""

    @classmethod
    def start(cls):
        cls.start_redis_stack(SigningKey("RS256", "rs-1"), key_cache_ttl="1s")

    def put(self, key=None, **rec):
        key = key or new_key()
        redis_put_key(self.rd, key, **rec)
        return key

    def test_active_key(self):
        k = self.put(org="acme", scopes="tasks:read,tasks:write", plan="pro")
        for _ in range(2):          # looked up, then cached
            echo = self.passed(self.get("/api/v1/keys", bearer(k)))
            self.assertIdentity(echo, "key:" + key_id(k), "acme", "tasks:read tasks:write")
        # a JWT on jwt_or_api_key still works next to Redis keys
        t = make_jwt(self.rs, claims(sub="redis-mode-user"))
        self.assertIdentity(self.passed(self.get("/api/v1/both", bearer(t))), "redis-mode-user")

    def test_refused_keys(self):
        self.assertKeyInvalid(self.get("/api/v1/keys", bearer(new_key())), "unknown")
        self.assertKeyInvalid(self.get("/api/v1/keys", bearer(self.put(status="revoked"))),
                              "revoked")
        bad = new_key()
        self.rd.command("HSET", "envelopd:{%s}:apikey" % key_id(bad), "status", "Active",
                        "org", "acme")
        self.assertKeyInvalid(self.get("/api/v1/keys", bearer(bad)), "bad record")
        r = self.get("/api/v1/keys", bearer(self.put(expires_at=int(time.time()) - 10)))
        self.assertEqual(r.status, 401, r)
        self.assertRefused(r, 401, "TOKEN_EXPIRED", r.json()["error"]["message"])

    def hgetall_calls(self):
        info = self.rd.command("INFO", "commandstats").decode()
        for line in info.splitlines():
            if line.startswith("cmdstat_hgetall:"):
                return int(line.split("calls=")[1].split(",")[0])
        return 0

    def test_key_without_prefix_is_never_looked_up(self):
        k = "sk_" + new_key("")
        self.put(k, org="acme")       # an active record under its id
        self.rd.command("CONFIG", "RESETSTAT")
        for path in ("/api/v1/keys", "/api/v1/both"):
            self.assertKeyInvalid(self.get(path, bearer(k)), "no prefix")
        self.assertEqual(self.hgetall_calls(), 0, "a key without the prefix was looked up")
        # the check itself: a prefixed unknown key is looked up
        self.get("/api/v1/keys", bearer(new_key()))
        self.assertEqual(self.hgetall_calls(), 1)

    def test_revocation_seen_within_cache_ttl(self):
        k = self.put(org="acme")
        self.passed(self.get("/api/v1/keys", bearer(k)))
        self.rd.command("HSET", "envelopd:{%s}:apikey" % key_id(k), "status", "revoked")
        time.sleep(1.5)
        self.assertKeyInvalid(self.get("/api/v1/keys", bearer(k)), "revoked 1.5 s ago")

    def test_new_key_seen_after_negative_cache(self):
        k = new_key()
        self.assertKeyInvalid(self.get("/api/v1/keys", bearer(k)), "not yet created")
        self.put(k, org="acme")
        time.sleep(1.5)
        self.passed(self.get("/api/v1/keys", bearer(k)))

    def test_envelopd_keys_cli(self):
        if not shutil.which("redis-cli"):
            self.skipTest("redis-cli not installed")
        sf = os.path.join(self.tmp, "secret")
        write_file(sf, SECRET + "\n")
        base = [sys.executable, CLI, "-p", str(self.rd.port), "--secret-file", sf]
        env = dict(os.environ)
        env.pop("REDISCLI_AUTH", None)
        p = subprocess.run(base + ["add", "--org", "cli-org", "--scopes", "tasks:write",
                                   "--prefix", PREFIX], capture_output=True, env=env, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        k = p.stdout.decode().strip()
        echo = self.passed(self.get("/api/v1/write", bearer(k)))
        self.assertIdentity(echo, "key:" + key_id(k), "cli-org", "tasks:write")
        p = subprocess.run(base + ["revoke", "-"], input=(k + "\n").encode(),
                           capture_output=True, env=env, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        time.sleep(1.5)
        self.assertKeyInvalid(self.get("/api/v1/write", bearer(k)), "revoked by the CLI")

    def test_org_and_scope_after_async_lookup(self):
        r = self.get("/api/v1/keys", dict(bearer(self.put(org="acme")), **{"X-Org-Id": "beta"}))
        self.assertRefused(r, 403, "FORBIDDEN", MSG_KEY_ORG)
        self.passed(self.get("/api/v1/keys", dict(bearer(self.put(org="acme")),
                                                  **{"X-Org-Id": "acme"})))
        r = self.get("/api/v1/write", bearer(self.put(org="acme", scopes="tasks:read")))
        body = self.assertRefused(r, 403, "FORBIDDEN", MSG_SCOPE)
        self.assertTrue(any(e.get("field") == "scope" and "tasks:write" in e.get("message", "")
                            for e in body["error"]["details"].get("errors", [])), body)
        r = self.get("/api/v1/session", bearer(self.put(org="acme")))
        self.assertRefused(r, 403, "FORBIDDEN", MSG_NO_KEYS)

    def test_body_and_pipelining_behind_async_lookup(self):
        k1, k2, k3 = (self.put(org="acme", scopes="tasks:write") for _ in range(3))
        body = bytes(range(256)) * 256          # 64 KiB, every byte value
        post = request_bytes("POST", "/api/v1/keys", [
            ("Authorization", "Bearer " + k1), ("Content-Type", "application/octet-stream"),
            ("Content-Length", str(len(body)))], body=body)
        chunked = b"5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n"
        post2 = request_bytes("POST", "/api/v1/write", [
            ("Authorization", "Bearer " + k2), ("Transfer-Encoding", "chunked")], body=chunked)
        get = request_bytes("GET", "/api/v1/keys?after=1", [("Authorization", "Bearer " + k3)])
        s = self.gw.sock()
        try:
            # the head and part of the body, then (while the key is looked up) the rest
            # and two more requests pipelined behind it
            s.sendall(post[:len(post) - len(body) + 1000])
            time.sleep(0.1)
            s.sendall(post[len(post) - len(body) + 1000:] + post2 + get)
            rs = read_responses(s, 3, scaled(10))
        finally:
            s.close()
        self.assertEqual(len(rs), 3, rs)
        e1, e2, e3 = (self.passed(r) for r in rs)
        self.assertEqual(e1["method"], "POST")
        self.assertEqual(e1["body_len"], len(body))
        self.assertEqual(base64.b64decode(e1["body_b64"]), body, "the body changed on its way")
        self.assertIdentity(e1, "key:" + key_id(k1), "acme", "tasks:write")
        self.assertEqual(base64.b64decode(e2["body_b64"]), b"hello, world")
        self.assertIdentity(e2, "key:" + key_id(k2), "acme", "tasks:write")
        self.assertEqual((e3["method"], e3["target"]), ("GET", "/api/v1/keys?after=1"))
        self.assertIdentity(e3, "key:" + key_id(k3), "acme", "tasks:write")

    def test_refused_post_body_does_not_poison_the_connection(self):
        k = self.put(org="acme")
        bad = request_bytes("POST", "/api/v1/keys", [
            ("Authorization", "Bearer " + new_key()), ("Content-Length", "11")],
            body=b"GET /x HTTP")
        good = request_bytes("GET", "/api/v1/keys", [("Authorization", "Bearer " + k)])
        s = self.gw.sock()
        try:
            s.sendall(bad + good)
            rs = read_responses(s, 2, scaled(5))
        finally:
            s.close()
        self.assertTrue(rs, "no answer")
        self.assertKeyInvalid(rs[0], "unknown key with a body")
        if len(rs) > 1:   # kept open: the next request must be the real one, not the body
            self.assertIdentity(self.passed(rs[1]), "key:" + key_id(k), "acme")
        else:
            self.assertIn("close", (rs[0].header("Connection") or "").lower(), rs[0])


class RedisOutage(AuthCase):
    """Redis stopped: a key not in the cache gets 503 (fail closed); JWTs
    need no Redis; once Redis is back the key passes (no failure was cached)."""

    @classmethod
    def start(cls):
        cls.start_redis_stack(SigningKey("EdDSA", "ed-1"), key_cache_ttl="1s")

    def test_fail_closed_then_back(self):
        k = new_key()
        redis_put_key(self.rd, k, org="acme")
        port = self.rd.port
        self.rd.kill()
        self.assertIsNotNone(self.gw.wait_log(lambda l: l.get("event") == "redis_lost", 5),
                             "no redis_lost event:\n" + self.gw.stdout_text()[-2000:])
        before = self.up.stats()["requests"]
        r = self.get("/api/v1/keys", bearer(k))
        self.assertEnvelope(r, 503, "SERVICE_UNAVAILABLE")
        self.assertRegex(r.header("Retry-After") or "", r"^[1-9][0-9]*$", r)
        self.assertIsNone(r.header("X-Upstream-Port"), r)
        self.assertEqual(self.up.stats()["requests"], before, "a key was let through unchecked")
        t = make_jwt(self.rs, claims(sub="no-redis-needed"))
        self.assertIdentity(self.passed(self.get("/api/v1/tasks", bearer(t))), "no-redis-needed")
        rd = Redis(port)
        type(self).rd = self.keep(rd)
        redis_put_key(rd, k, org="acme")
        self.assertIsNotNone(self.gw.wait_log(lambda l: l.get("event") == "redis_back", 15),
                             "no redis_back event")
        self.assertIdentity(self.passed(self.get("/api/v1/keys", bearer(k))),
                            "key:" + key_id(k), "acme")


# ====================================================================== limits by identity

class IdentityLimits(AuthCase):
    """[limits] per_token 3/1m and per_org 4/1m, [plan pro] per_token 5/1m,
    counted by verified identity (local store; the Redis subclass below)."""

    use_redis = False

    @classmethod
    def start(cls):
        cls.rs = SigningKey("RS256", "rs-1")
        cls.es = SigningKey("ES256", "es-1")
        write_file(os.path.join(cls.tmp, "jwks.json"), jwks_text(cls.rs, cls.es))
        cls.k_pro = new_key()
        cls.k_s1, cls.k_s2, cls.k_solo = new_key(), new_key(), new_key()
        cls.keys_file = None
        if not cls.use_redis:
            cls.keys_file = os.path.join(cls.tmp, "keys")
            write_file(cls.keys_file, "\n".join([
                keys_file_line(cls.k_pro, org="proorg", plan="pro"),
                keys_file_line(cls.k_s1, org="shared"),
                keys_file_line(cls.k_s2, org="shared"),
                keys_file_line(cls.k_solo, org="solo")]) + "\n")
        cls.up = cls.keep(Upstream())
        port = free_port()
        conf = auth_conf(port, cls.up.port, cls.tmp, keys_file=cls.keys_file)
        conf.set("limits", "per_token", "3/1m")
        conf.set("limits", "per_org", "4/1m")
        conf.set("plan pro", "per_token", "5/1m")
        conf.set("plan pro", "per_org", "1000/1m")
        if cls.use_redis:
            cls.rd = cls.keep(Redis())
            add_redis(conf, cls.rd)
            for k, org, plan in ((cls.k_pro, "proorg", "pro"), (cls.k_s1, "shared", ""),
                                 (cls.k_s2, "shared", ""), (cls.k_solo, "solo", "")):
                redis_put_key(cls.rd, k, org=org, plan=plan)
        cls.gw = cls.keep(Gateway(conf, port))
        if cls.use_redis:
            start_redis_gateway(cls.gw)

    def status(self, cred):
        return self.get("/api/v1/both", bearer(cred)).status

    def assert429(self, r, limit):
        body = self.assertEnvelope(r, 429, "RATE_LIMITED")
        self.assertRegex(r.header("Retry-After") or "", r"^[1-9][0-9]*$", r)
        self.assertEqual(body["error"]["details"].get("limit"), limit, body)

    def test_per_token_counts_the_subject_not_the_token(self):
        sub = "lim-alice-" + uuid.uuid4().hex[:6]
        # four different tokens (new jti/iat, two algorithms) for one subject
        toks = [make_jwt(self.rs, claims(sub=sub)), make_jwt(self.es, claims(sub=sub)),
                make_jwt(self.rs, claims(sub=sub, iat=int(time.time()) - 5)),
                make_jwt(self.es, claims(sub=sub, scope="x"))]
        self.assertEqual(len(set(toks)), 4)
        rs = [self.get("/api/v1/both", bearer(t)) for t in toks]
        self.assertEqual([r.status for r in rs], [200, 200, 200, 429], rs)
        self.assert429(rs[3], 3)
        # another subject has its own 3
        bob = "lim-bob-" + uuid.uuid4().hex[:6]
        got = [self.status(make_jwt(self.rs, claims(sub=bob))) for _ in range(4)]
        self.assertEqual(got, [200, 200, 200, 429])
        # alice stays limited whatever token she brings next
        self.assertEqual(self.status(make_jwt(self.rs, claims(sub=sub))), 429)

    def test_plan_limit_for_a_pro_key(self):
        got = [self.status(self.k_pro) for _ in range(6)]
        self.assertEqual(got, [200] * 5 + [429], "plan pro: per_token 5/1m")
        self.assert429(self.get("/api/v1/both", bearer(self.k_pro)), 5)

    def test_per_org_shared_by_keys_of_one_org(self):
        got = [self.status(self.k_s1), self.status(self.k_s2), self.status(self.k_s1),
               self.status(self.k_s2)]
        self.assertEqual(got, [200] * 4)
        # each key has made 2 of its own 3: the org's 4 are spent
        r = self.get("/api/v1/both", bearer(self.k_s1))
        self.assert429(r, 4)
        self.assertEqual(self.status(self.k_s2), 429)
        # another org is untouched
        self.assertEqual(self.status(self.k_solo), 200)


class IdentityLimitsRedis(IdentityLimits):
    """The same limits with [redis] (records and counters in Redis)."""
    use_redis = True


# ====================================================================== failed-auth brake

class AuthFailureBrake(AuthCase):
    """[limits] per_ip_auth_failures = 3/1m; no trusted proxies."""

    @classmethod
    def start(cls):
        cls.rs = SigningKey("RS256", "rs-1")
        write_file(os.path.join(cls.tmp, "jwks.json"), jwks_text(cls.rs))
        cls.up = cls.keep(Upstream())
        port = free_port()
        keys = os.path.join(cls.tmp, "keys")
        write_file(keys, "# no keys\n")
        conf = auth_conf(port, cls.up.port, cls.tmp, keys_file=keys)
        conf.set("limits", "per_ip_auth_failures", "3/1m")
        cls.gw = cls.keep(Gateway(conf, port))

    def from_ip(self, src, headers):
        """One GET /api/v1/tasks from local address SRC (a 127/8 address)."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((src, 0))
            s.settimeout(5)
            s.connect(("127.0.0.1", self.gw.port))
            hdrs = list(headers.items()) + [("Connection", "close")]
            s.sendall(request_bytes("GET", "/api/v1/tasks", hdrs))
            r, _, _ = read_one_response(s, scaled(5))
            self.assertIsNotNone(r, "no answer")
            return r
        finally:
            s.close()

    def test_failures_block_the_ip_before_any_check(self):
        good = bearer(make_jwt(self.rs, claims(sub="brake-user")))
        self.passed(self.get("/api/v1/tasks", good))
        xffs = ("203.0.113.1", "198.51.100.7", "192.0.2.200")
        for i, xff in enumerate(xffs):     # another X-Forwarded-For each time: not believed
            r = self.get("/api/v1/tasks", {"Authorization": "Bearer bad.token.%d" % i,
                                           "X-Forwarded-For": xff})
            self.assertTokenInvalid(r, "failure %d" % (i + 1))
        before = self.up.stats()["requests"]
        for h in (good, dict(good, **{"X-Forwarded-For": "203.0.113.99"}),
                  {"Authorization": "Bearer " + new_key()}, {}):
            r = self.get("/api/v1/tasks", h)
            body = self.assertEnvelope(r, 429, "RATE_LIMITED")
            self.assertRegex(r.header("Retry-After") or "", r"^[1-9][0-9]*$", r)
            self.assertIsNone(r.header("WWW-Authenticate"), r)
        self.assertEqual(self.up.stats()["requests"], before, "a blocked request went upstream")
        # routes without auth are not braked; another address is not either
        self.passed(self.get("/api/v1/open"))
        try:
            r = self.from_ip("127.0.0.2", good)
        except OSError:
            return    # no 127.0.0.2 here: the rest was checked
        self.assertIdentity(self.passed(r), "brake-user")


class RedisBrake(AuthCase):
    """per_ip_auth_failures = 5/1m with API keys in Redis: lookups in flight
    count as failures until they pass, so a burst cannot outrun the brake."""

    @classmethod
    def start(cls):
        cls.start_redis_stack(SigningKey("RS256", "rs-1"),
                              tweak=lambda c: c.set("limits", "per_ip_auth_failures", "5/1m"))

    def test_a_passing_lookups_are_given_back(self):
        # ten distinct good keys, each looked up in Redis: none spends the brake
        for _ in range(10):
            k = new_key()
            redis_put_key(self.rd, k, org="acme")
            self.passed(self.get("/api/v1/keys", bearer(k)))

    def test_b_a_burst_of_lookups_is_braked(self):
        n = 40
        socks = []
        try:
            for _ in range(n):
                s = socket.create_connection(("127.0.0.1", self.gw.port), timeout=scaled(5))
                socks.append(s)
            reqs = [request_bytes("GET", "/api/v1/keys",
                                  [("Authorization", "Bearer " + new_key()),
                                   ("Connection", "close")]) for _ in range(n)]
            for s, q in zip(socks, reqs):     # all sent before any answer can come
                s.sendall(q)
            statuses = []
            for s in socks:
                r, _, _ = read_one_response(s, scaled(5))
                self.assertIsNotNone(r, "no answer")
                statuses.append(r.status)
        finally:
            for s in socks:
                s.close()
        self.assertEqual(statuses.count(401), 5, statuses)
        self.assertEqual(statuses.count(429), n - 5, statuses)


class TwoCredentials(AuthCase):
    """[limits] token_header = X-Api-Key: a JWT may still come in Authorization,
    but not both at once, or the upstream would get one the gateway never checked."""

    @classmethod
    def start(cls):
        cls.rs = SigningKey("RS256", "rs-1")
        write_file(os.path.join(cls.tmp, "jwks.json"), jwks_text(cls.rs))
        cls.k = new_key()
        keys = os.path.join(cls.tmp, "keys")
        write_file(keys, keys_file_line(cls.k, org="acme") + "\n")
        cls.up = cls.keep(Upstream())
        port = free_port()
        conf = auth_conf(port, cls.up.port, cls.tmp, keys_file=keys)
        conf.set("limits", "token_header", "X-Api-Key")
        cls.gw = cls.keep(Gateway(conf, port))

    def test_one_credential_or_the_other(self):
        t = make_jwt(self.rs, claims(sub="two-creds"))
        self.assertIdentity(self.passed(self.get("/api/v1/both", {"X-Api-Key": self.k})),
                            "key:" + key_id(self.k), "acme")
        self.assertIdentity(self.passed(self.get("/api/v1/both", bearer(t))), "two-creds")
        before = self.up.stats()["requests"]
        for h in ({"X-Api-Key": self.k, "Authorization": "Bearer eyJhbGciOiJub25lIn0.e30."},
                  {"X-Api-Key": self.k, "Authorization": "Basic dXNlcjpwYXNz"},
                  dict(bearer(t), **{"X-Api-Key": new_key()})):
            r = self.get("/api/v1/both", h)
            self.assertEnvelope(r, 400, "BAD_REQUEST")
        self.assertEqual(self.up.stats()["requests"], before, "a request went upstream")
        # a route without auth does not care
        self.passed(self.get("/api/v1/open", {"X-Api-Key": "x", "Authorization": "Basic eA=="}))


# ====================================================================== reload and -t

class Reload(AuthCase):
    """SIGHUP with new key files: a rotated JWKS, a bad JWKS (refused, the
    old keys stay), a key added to the keys file; no HS256 configured."""

    @classmethod
    def start(cls):
        cls.old = SigningKey("RS256", "2024-old")
        cls.new = SigningKey("ES256", "2025-new")
        cls.jwks = os.path.join(cls.tmp, "jwks.json")
        write_file(cls.jwks, jwks_text(cls.old))
        cls.k1, cls.k2 = new_key(), new_key()
        cls.keys_file = os.path.join(cls.tmp, "keys")
        write_file(cls.keys_file, keys_file_line(cls.k1, org="acme") + "\n")
        cls.up = cls.keep(Upstream())
        port = free_port()
        conf = auth_conf(port, cls.up.port, cls.tmp, keys_file=cls.keys_file)
        cls.gw = cls.keep(Gateway(conf, port))

    def reload(self):
        """SIGHUP; the reload or reload_failed line that follows."""
        seen = lambda: [l for l in self.gw.logs() if l.get("event") in ("reload", "reload_failed")]
        n = len(seen())
        os.kill(self.gw.pid, signal.SIGHUP)
        got = wait_until(lambda: seen()[n:], scaled(5))
        self.assertTrue(got, "no reload line after SIGHUP:\n" + self.gw.stdout_text()[-2000:])
        return got[0]

    def tok(self, key, sub="rot-user"):
        return bearer(make_jwt(key, claims(sub=sub)))

    def test_a_jwks_rotation_then_a_bad_jwks(self):
        # (a_..., b_...: run in this order; each leaves the files as it found them)
        self.passed(self.get("/api/v1/tasks", self.tok(self.old)))
        self.assertTokenInvalid(self.get("/api/v1/tasks", self.tok(self.new)), "not yet")
        # HS256 is off without hs256_secret_file, whatever the secret
        hs = make_jwt(HS_SECRET, claims())
        self.assertTokenInvalid(self.get("/api/v1/tasks", bearer(hs)), "HS256 not configured")
        confused = make_jwt(self.old.public_pem(), claims(), alg="HS256", kid="2024-old")
        self.assertTokenInvalid(self.get("/api/v1/tasks", bearer(confused)), "alg confusion")
        old_tok = self.tok(self.old, "cached-before-rotation")
        self.passed(self.get("/api/v1/tasks", old_tok))     # now in the verified cache
        write_file(self.jwks, jwks_text(self.new))
        ev = self.reload()
        self.assertEqual(ev["event"], "reload", ev)
        self.assertIdentity(self.passed(self.get("/api/v1/tasks", self.tok(self.new, "n1"))), "n1")
        self.assertTokenInvalid(self.get("/api/v1/tasks", self.tok(self.old)), "rotated out")
        self.assertTokenInvalid(self.get("/api/v1/tasks", old_tok), "rotated out, was cached")
        # a broken set is refused; the keys in use stay
        for bad in ("{not json", json.dumps({"keys": []}),
                    json.dumps({"keys": [dict(self.new.jwk(), d="AAAA")]})):
            write_file(self.jwks, bad)
            ev = self.reload()
            self.assertEqual(ev["event"], "reload_failed", ev)
            self.assertIn(self.jwks, json.dumps(ev), ev)
            self.passed(self.get("/api/v1/tasks", self.tok(self.new)))
            self.assertTokenInvalid(self.get("/api/v1/tasks", self.tok(self.old)), "still out")
        self.assertTrue(self.gw.alive())
        write_file(self.jwks, jwks_text(self.old))
        self.assertEqual(self.reload()["event"], "reload")
        self.passed(self.get("/api/v1/tasks", self.tok(self.old)))

    def test_b_keys_file_reload(self):
        self.passed(self.get("/api/v1/keys", bearer(self.k1)))
        self.assertKeyInvalid(self.get("/api/v1/keys", bearer(self.k2)), "not in the file yet")
        write_file(self.keys_file, keys_file_line(self.k1, status="revoked", org="acme") + "\n" +
                   keys_file_line(self.k2, org="beta", scopes="tasks:write") + "\n")
        self.assertEqual(self.reload()["event"], "reload")
        echo = self.passed(self.get("/api/v1/keys", bearer(self.k2)))
        self.assertIdentity(echo, "key:" + key_id(self.k2), "beta", "tasks:write")
        self.assertKeyInvalid(self.get("/api/v1/keys", bearer(self.k1)), "revoked in the file")
        # a bad keys file is refused as a whole; the loaded keys stay
        write_file(self.keys_file, keys_file_line(self.k1, org="acme") + " scope=typo\n")
        ev = self.reload()
        self.assertEqual(ev["event"], "reload_failed", ev)
        self.assertIn(self.keys_file, json.dumps(ev), ev)
        self.passed(self.get("/api/v1/keys", bearer(self.k2)))
        self.assertKeyInvalid(self.get("/api/v1/keys", bearer(self.k1)), "bad file not taken")
        write_file(self.keys_file, keys_file_line(self.k1, org="acme") + "\n")
        self.assertEqual(self.reload()["event"], "reload")


class ConfCheck(unittest.TestCase):
    """envelopd -t with the [auth] files: a broken one fails with its path."""

    def setUp(self):
        if not HAVE_CRYPTO:
            self.skipTest("python3-cryptography not installed")
        self.tmp = tempfile.mkdtemp(prefix="envelopd-auth-t-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.jwks = os.path.join(self.tmp, "jwks.json")
        self.conf = os.path.join(self.tmp, "envelopd.conf")
        self.keys = os.path.join(self.tmp, "keys")
        write_file(self.keys, "# no keys\n")
        write_file(self.conf, auth_conf(free_port(), free_port(), self.tmp,
                                        keys_file=self.keys).text())

    def check(self):
        return run_envelopd(["-t", "-c", self.conf], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True)

    def test_good_jwks_ok(self):
        write_file(self.jwks, jwks_text(SigningKey("EdDSA", "a"), SigningKey("ES256", "b")))
        p = self.check()
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_broken_jwks_fails_with_its_path(self):
        small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        nums = small.public_key().public_numbers()
        for text in ("", "{not json", json.dumps({"keys": []}),
                     json.dumps({"keys": [{"kty": "RSA", "kid": "x", "n": b64u_int(nums.n),
                                           "e": b64u_int(nums.e)}]}),
                     json.dumps({"keys": [dict(SigningKey("EdDSA", "a").jwk(), x="AAAA")]})):
            write_file(self.jwks, text)
            p = self.check()
            self.assertNotEqual(p.returncode, 0, "accepted %r" % text)
            self.assertIn(self.jwks, p.stderr, p.stderr)
            self.assertNotIn("configuration ok", p.stdout)

    def test_missing_files_fail_with_their_path(self):
        write_file(self.jwks, jwks_text(SigningKey("EdDSA", "a")))
        os.unlink(self.jwks)
        p = self.check()
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(self.jwks, p.stderr)
        write_file(self.jwks, jwks_text(SigningKey("EdDSA", "a")))
        hs = os.path.join(self.tmp, "hs")
        write_file(hs, "too-short\n")
        c = auth_conf(free_port(), free_port(), self.tmp, hs256_secret_file=hs,
                      keys_file=self.keys)
        write_file(self.conf, c.text())
        p = self.check()
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(hs, p.stderr)


if __name__ == "__main__":
    unittest.main()
