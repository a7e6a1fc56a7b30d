#!/usr/bin/env python3
"""Scriptable fixture upstream for the envelopd integration tests.

Run as its own process:  python3 upstream.py --port N [--default JSON]

Raw sockets and one thread per connection (not http.server) so every byte
it sends is under the test's control. HTTP/1.1 keep-alive; requests framed
by Content-Length or chunked (decoded; the raw body bytes are kept too).

How a response is chosen, first match wins:
  1. request header  X-Test-Script: <base64url(JSON script)>
  2. the next script of the queue   (POST /__queue  with a JSON list)
  3. the default script             (POST /__default with a JSON script,
                                     or --default on the command line)
  4. {"echo": true}

A script is a JSON object; every key is optional:
  status      int, default 200          reason   reason phrase
  headers     [[name, value], ...]      extra response headers, as given
  body        str (sent as UTF-8)       body_b64 raw body bytes, base64
  body_size   N: a body of N bytes "x"  json     any JSON value -> body +
                                                 Content-Type: application/json
  gzip        true: gzip the body and add Content-Encoding: gzip
  echo        true: the body is JSON {method, target, version, headers,
              body (latin-1 text), body_len, body_b64, chunked, conn_id,
              port}; Content-Type: application/json
  framing     "cl" (default) | "chunked" | "close" (no length, body ends at
              close) | "cl+te" (both headers, chunked body) | "none" (no
              length header, no body)
  chunk_size  bytes per chunk for chunked framings (default 7)
  delay       seconds to wait before sending anything
  trickle     seconds between single bytes of the status line and headers
              (a slow-headers upstream); the body follows at once
  close       true: add "Connection: close" and close after the response
  action      what to do instead of (or around) a normal answer:
                "close"      close (FIN) without answering
                "reset"      close with RST (SO_LINGER 0) without answering
                "hang"       never answer; wait until the peer closes (<= 60 s)
                "garbage"    send a garbage status line, then wait for the
                             peer to close (<= 10 s)
                "huge_headers"  a valid status line then header_bytes
                             (default 512k) of headers, then a short body
                "die_mid_body"  headers with the full Content-Length (or
                             chunked when framing=chunked), half the body,
                             then close
                "raw"        send raw_b64 bytes verbatim, then close
                             (or keep open when keep_open is true)
                "upgrade"    switch protocols: 101 with Upgrade (the
                             request's, or upgrade_header: a value, or false
                             for none), Connection: Upgrade, the WebSocket
                             Sec-WebSocket-Accept when a key was sent, and
                             the script's headers; then greeting_b64 bytes in
                             the same write (or greeting_size bytes of the
                             pattern 0..255 repeated), then the tunnel:
                  tunnel "echo" (default)  every byte back, as it comes;
                                 at the peer's FIN, on_eof_b64 bytes, then close
                  tunnel "ws"    WebSocket text/binary frames answered with
                                 an unmasked text frame "echo:" + payload;
                                 ping -> pong; close -> close, then close
                  tunnel "close" FIN right after the greeting; then read
                                 until the peer closes (so no reset)
                  tunnel "reset" close with RST right after the greeting
Every normal response carries X-Upstream-Port: <port> so a test can see
which server answered. HEAD responses never carry a body.

Control endpoints (paths starting with /__, never counted as requests):
  GET  /__ping     200 "pong"
  GET  /__stats    JSON {accepted, connections, open, requests, last, log}
                   accepted:    TCP connections accepted (all, incl. control)
                   connections: connections that carried >= 1 test request
                   open:        connections open right now
                   requests:    test requests received (answered or not)
                   last:        the last test request as received
                   log:         the last 200 test requests (same shape)
  POST /__reset    zero counters, forget queue/default/log
  POST /__default  set the default script (JSON body; {} or null clears it)
  POST /__queue    append scripts (JSON list) used one per request
"""

import argparse
import base64
import collections
import gzip
import hashlib
import json
import socket
import sys
import threading
import time

MAX_HEAD = 1 << 20


class State:
    def __init__(self, port, default):
        self.lock = threading.Lock()
        self.port = port
        self.default = default
        self.open = 0
        self.reset()

    def reset(self):
        with self.lock:
            self.accepted = 0
            self.connections = 0
            self.requests = 0
            self.last = None
            self.log = collections.deque(maxlen=200)
            self.queue = collections.deque()
            self.next_conn_id = 1

    def snapshot(self):
        with self.lock:
            return {
                "accepted": self.accepted,
                "connections": self.connections,
                "open": self.open,
                "requests": self.requests,
                "last": self.last,
                "log": list(self.log),
                "port": self.port,
            }


STATE = None


class PeerClosed(Exception):
    pass


class BadRequest(Exception):
    pass


class Conn:
    def __init__(self, sock, conn_id):
        self.sock = sock
        self.buf = b""
        self.conn_id = conn_id
        self.used = False

    def fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise PeerClosed()
        self.buf += data

    def read_until(self, sep, limit):
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                out = self.buf[:i]
                self.buf = self.buf[i + len(sep):]
                return out
            if len(self.buf) > limit:
                raise BadRequest("head too large")
            self.fill()

    def read_exact(self, n):
        while len(self.buf) < n:
            self.fill()
        out = self.buf[:n]
        self.buf = self.buf[n:]
        return out

    def read_request(self):
        head = self.read_until(b"\r\n\r\n", MAX_HEAD)
        lines = head.split(b"\r\n")
        parts = lines[0].decode("latin-1").split(" ")
        if len(parts) != 3:
            raise BadRequest("bad request line %r" % lines[0])
        method, target, version = parts
        headers = []
        for line in lines[1:]:
            if b":" not in line:
                raise BadRequest("bad header line %r" % line)
            k, v = line.split(b":", 1)
            headers.append([k.decode("latin-1"), v.decode("latin-1").strip(" \t")])
        req = {"method": method, "target": target, "version": version,
               "headers": headers, "chunked": False}
        te = hget(headers, "transfer-encoding")
        cl = hget(headers, "content-length")
        exp = hget(headers, "expect")
        if exp is not None and exp.lower() == "100-continue" and (te or cl not in (None, "0")):
            req["sent_100"] = True
            self.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        raw = b""
        if te is not None and "chunked" in te.lower():
            req["chunked"] = True
            body = b""
            while True:
                line = self.read_until(b"\r\n", 4096)
                raw += line + b"\r\n"
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while True:  # trailers up to the empty line
                        t = self.read_until(b"\r\n", MAX_HEAD)
                        raw += t + b"\r\n"
                        if t == b"":
                            break
                    break
                data = self.read_exact(size + 2)
                raw += data
                body += data[:-2]
        elif cl is not None:
            body = self.read_exact(int(cl))
            raw = body
        else:
            body = b""
        req["body_bytes"] = body
        req["raw_body_len"] = len(raw)
        return req


def hget(headers, name):
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def describe(req, conn_id):
    body = req["body_bytes"]
    return {
        "method": req["method"],
        "target": req["target"],
        "version": req["version"],
        "headers": req["headers"],
        "body": body.decode("latin-1"),
        "body_b64": base64.b64encode(body).decode("ascii"),
        "body_len": len(body),
        "chunked": req["chunked"],
        "conn_id": conn_id,
        "port": STATE.port,
        "t": time.time(),
    }


def send(sock, data):
    try:
        sock.sendall(data)
        return True
    except OSError:
        return False


def wait_peer_close(conn, limit):
    conn.sock.settimeout(0.2)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if not conn.sock.recv(65536):
                return
        except socket.timeout:
            continue
        except OSError:
            return


WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def ws_frame(opcode, payload):
    """A server (unmasked) WebSocket frame."""
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, n])
    elif n < 65536:
        head = bytes([0x80 | opcode, 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 127]) + n.to_bytes(8, "big")
    return head + payload


def ws_read_frame(conn):
    """One client frame: (opcode, unmasked payload)."""
    b0, b1 = conn.read_exact(2)
    n = b1 & 0x7F
    if n == 126:
        n = int.from_bytes(conn.read_exact(2), "big")
    elif n == 127:
        n = int.from_bytes(conn.read_exact(8), "big")
    mask = conn.read_exact(4) if b1 & 0x80 else b"\0\0\0\0"
    data = conn.read_exact(n)
    return b0 & 0x0F, bytes(c ^ mask[i % 4] for i, c in enumerate(data))


def tunnel(conn, req, script):
    """After our 101: the scripted protocol on the raw connection."""
    sock = conn.sock
    mode = script.get("tunnel", "echo")
    if mode == "close":
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            return
        wait_peer_close(conn, 30)
        return
    if mode == "reset":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        return
    if mode == "ws":
        while True:
            try:
                op, data = ws_read_frame(conn)
            except (PeerClosed, OSError):
                return
            if op == 8:
                send(sock, ws_frame(8, data[:2]))
                return
            if op == 9:
                send(sock, ws_frame(10, data))
            elif op in (1, 2):
                send(sock, ws_frame(1, b"echo:" + data))
    if conn.buf:
        send(sock, conn.buf)
        conn.buf = b""
    while True:
        try:
            data = sock.recv(65536)
        except OSError:
            return
        if not data:
            send(sock, base64.b64decode(script.get("on_eof_b64", "")))
            return
        if not send(sock, data):
            return


def upgrade(conn, req, script):
    asked = hget(req["headers"], "upgrade")
    value = script.get("upgrade_header", asked or "websocket")
    head = b"HTTP/1.1 101 Switching Protocols\r\n"
    if value is not False:
        head += b"Upgrade: " + value.encode("latin-1") + b"\r\n"
    head += b"Connection: Upgrade\r\n"
    key = hget(req["headers"], "sec-websocket-key")
    if key:
        accept = base64.b64encode(hashlib.sha1(key.encode("latin-1") + WS_GUID).digest())
        head += b"Sec-WebSocket-Accept: " + accept + b"\r\n"
    for name, val in script.get("headers", []):
        head += ("%s: %s\r\n" % (name, val)).encode("latin-1")
    head += b"X-Upstream-Port: %d\r\n\r\n" % STATE.port
    greeting = base64.b64decode(script.get("greeting_b64", ""))
    if script.get("greeting_size"):
        n = int(script["greeting_size"])
        greeting = (bytes(range(256)) * (n // 256 + 1))[:n]
    if not send(conn.sock, head + greeting):
        return
    tunnel(conn, req, script)


def chunked(body, size):
    out = b""
    for i in range(0, len(body), size):
        part = body[i:i + size]
        out += b"%x\r\n" % len(part) + part + b"\r\n"
    return out + b"0\r\n\r\n"


def control(conn, req):
    path = req["target"].split("?")[0]
    status, body = 200, b""
    if path == "/__ping":
        body = b"pong"
    elif path == "/__stats":
        body = json.dumps(STATE.snapshot()).encode()
    elif path == "/__reset":
        STATE.reset()
        body = b"{}"
    elif path == "/__default":
        s = json.loads(req["body_bytes"] or b"null")
        with STATE.lock:
            STATE.default = s or None
        body = b"{}"
    elif path == "/__queue":
        lst = json.loads(req["body_bytes"] or b"[]")
        with STATE.lock:
            STATE.queue.extend(lst)
        body = b"{}"
    else:
        status, body = 404, b"no such control endpoint"
    send(conn.sock, b"HTTP/1.1 %d X\r\nContent-Length: %d\r\nContent-Type: application/json\r\n\r\n"
         % (status, len(body)) + body)
    return True


def choose_script(req):
    h = hget(req["headers"], "x-test-script")
    if h is not None:
        pad = "=" * (-len(h) % 4)
        return json.loads(base64.urlsafe_b64decode(h + pad))
    with STATE.lock:
        if STATE.queue:
            return STATE.queue.popleft()
        if STATE.default:
            return STATE.default
    return {"echo": True}


def answer(conn, req, script):
    """Send the scripted answer. Returns True to keep the connection open."""
    sock = conn.sock
    if script.get("delay"):
        time.sleep(float(script["delay"]))
    action = script.get("action")
    if action == "close":
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        return False
    if action == "reset":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        return False
    if action == "hang":
        wait_peer_close(conn, 60)
        return False
    if action == "garbage":
        send(sock, b"GARBAGE\x01 not http at all\r\nfoo bar\r\n\r\n")
        wait_peer_close(conn, 10)
        return False
    if action == "upgrade":
        upgrade(conn, req, script)
        return False
    if action == "raw":
        send(sock, base64.b64decode(script.get("raw_b64", "")))
        if script.get("keep_open"):
            wait_peer_close(conn, 10)
        return False

    status = int(script.get("status", 200))
    reason = script.get("reason", "Scripted")
    headers = [list(h) for h in script.get("headers", [])]
    if script.get("echo"):
        body = json.dumps(describe(req, conn.conn_id)).encode()
        headers.append(["Content-Type", "application/json"])
    elif "json" in script:
        body = json.dumps(script["json"]).encode()
        headers.append(["Content-Type", "application/json"])
    elif "body_b64" in script:
        body = base64.b64decode(script["body_b64"])
    elif "body_size" in script:
        body = b"x" * int(script["body_size"])
    else:
        body = script.get("body", "").encode("utf-8")
    if script.get("gzip"):
        body = gzip.compress(body)
        headers.append(["Content-Encoding", "gzip"])
    headers.append(["X-Upstream-Port", str(STATE.port)])
    framing = script.get("framing", "cl")
    csize = int(script.get("chunk_size", 7))
    is_head = req["method"] == "HEAD"
    if framing == "cl":
        headers.append(["Content-Length", str(len(body))])
        wire = body
    elif framing == "chunked":
        headers.append(["Transfer-Encoding", "chunked"])
        wire = chunked(body, csize)
    elif framing == "cl+te":
        headers.append(["Content-Length", str(len(body))])
        headers.append(["Transfer-Encoding", "chunked"])
        wire = chunked(body, csize)
    elif framing == "close":
        wire = body
    else:  # none
        wire = b""
    close = bool(script.get("close")) or framing == "close"
    if close:
        headers.append(["Connection", "close"])
    if action == "huge_headers":
        n = int(script.get("header_bytes", 512 * 1024))
        i = 0
        while n > 0:
            headers.append(["X-Huge-%d" % i, "h" * min(4000, n)])
            n -= 4000
            i += 1
    head = "HTTP/1.1 %d %s\r\n" % (status, reason)
    head += "".join("%s: %s\r\n" % (k, v) for k, v in headers) + "\r\n"
    head = head.encode("latin-1")
    if is_head:
        wire = b""
    if action == "die_mid_body":
        send(sock, head + wire[: max(1, len(wire) // 2)])
        time.sleep(0.05)
        return False
    if script.get("trickle"):
        for i in range(len(head)):
            if not send(sock, head[i:i + 1]):
                return False
            time.sleep(float(script["trickle"]))
        head = b""
    if not send(sock, head + wire):
        return False
    return not close


def serve(sock):
    with STATE.lock:
        STATE.accepted += 1
        STATE.open += 1
        conn_id = STATE.next_conn_id
        STATE.next_conn_id += 1
    conn = Conn(sock, conn_id)
    sock.settimeout(120)
    try:
        while True:
            try:
                req = conn.read_request()
            except (PeerClosed, OSError, ValueError, BadRequest):
                return
            if req["target"].startswith("/__"):
                control(conn, req)
                if (hget(req["headers"], "connection") or "").lower() == "close":
                    return
                continue
            d = describe(req, conn_id)
            with STATE.lock:
                STATE.requests += 1
                if not conn.used:
                    conn.used = True
                    STATE.connections += 1
                STATE.last = d
                STATE.log.append(d)
            try:
                script = choose_script(req)
                if not answer(conn, req, script):
                    return
            except OSError:
                return
            if (hget(req["headers"], "connection") or "").lower() == "close":
                return
    finally:
        with STATE.lock:
            STATE.open -= 1
        try:
            sock.close()
        except OSError:
            pass


def main():
    global STATE
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--default", default=None, help="default script as JSON")
    args = ap.parse_args()
    STATE = State(args.port, json.loads(args.default) if args.default else None)
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((args.host, args.port))
    ls.listen(128)
    print("listening %d" % args.port, flush=True)
    while True:
        try:
            s, _ = ls.accept()
        except InterruptedError:
            continue
        t = threading.Thread(target=serve, args=(s,), daemon=True)
        t.start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
