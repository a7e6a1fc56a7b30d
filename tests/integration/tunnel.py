"""A TCP relay fixture for fault tests, in the spirit of varnishtest's `tunnel`.

    t = Tunnel(("127.0.0.1", redis_port))   # listens on a free loopback port
    conf: address = t.addr                  # point envelopd at the tunnel
    t.pause(UP)        # stop forwarding envelopd -> target (bytes queue in the kernel)
    t.pause(DOWN)      # stop forwarding target -> envelopd
    t.resume()         # both directions at full speed again
    t.meter(DOWN, 1, 0.002)   # deliver one byte every 2 ms
    t.cut()            # reset (RST, SO_LINGER 0) both sides of every open connection
    t.bytes(DOWN)      # bytes delivered so far in that direction
    t.close()          # stop the thread, close every socket (addCleanup(t.close))

UP is the direction from the side that connected to the tunnel (envelopd)
towards the target; DOWN is the way back. Settings apply to every relayed
connection, current and future, until changed.

One thread runs everything: a poll() loop over non-blocking sockets. Every
control call is executed by that thread and returns only once it is in
effect: when pause() returns, not one more byte is forwarded in that
direction; when cut() returns, the resets have been sent. A paused direction
does not read from its source either, so the sender meets real backpressure
(its kernel buffers fill), and an end of stream (FIN) waits behind the bytes
that precede it. A reset received on one side is passed on as a reset on the
other, so the tunnel is as transparent as a wire. The tunnel connects to
its target when it accepts a connection (synchronously: meant for loopback
targets); a refused target gets the accepted connection reset.

Python standard library only.
"""

import queue
import select
import socket
import struct
import threading
import time

UP = "up"        # connecting side (e.g. envelopd) -> target
DOWN = "down"    # target -> connecting side
BOTH = (UP, DOWN)

_BUF_MAX = 256 * 1024
_LINGER0 = struct.pack("ii", 1, 0)


def _dirs(direction):
    if direction in (None, "both"):
        return BOTH
    if direction in BOTH:
        return (direction,)
    raise ValueError("direction must be %r, %r or 'both', not %r" % (UP, DOWN, direction))


def _reset(sock):
    """Close SOCK with a RST (SO_LINGER 0)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER0)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class _Flow:
    """One direction of one relayed connection."""

    def __init__(self, src, dst):
        self.src = src
        self.dst = dst
        self.buf = bytearray()
        self.eof = False          # src sent its FIN
        self.shut = False         # FIN passed on to dst
        self.next_send = 0.0      # metering: monotonic time of the next allowed send


class _Pair:
    def __init__(self, a, b):
        self.a = a                # accepted (envelopd's) side
        self.b = b                # target side
        self.flows = {UP: _Flow(a, b), DOWN: _Flow(b, a)}
        self.closed = False


class Tunnel:
    def __init__(self, target, host="127.0.0.1", port=0, name="tunnel", connect_timeout=2.0):
        self.target = tuple(target)
        self.name = name
        self.connect_timeout = connect_timeout
        self._paused = {UP: False, DOWN: False}
        self._meter = {UP: None, DOWN: None}     # (nbytes, interval) or None
        self._bytes = {UP: 0, DOWN: 0}
        self._accepted = 0
        self._failed_connects = 0
        self._cuts = 0
        self._pairs = []
        self._cmds = queue.Queue()
        self._stop = False
        self._error = None
        self._ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._ls.bind((host, port))
        self._ls.listen(64)
        self._ls.setblocking(False)
        self.host, self.port = self._ls.getsockname()[:2]
        self._wr, self._ww = socket.socketpair()
        self._wr.setblocking(False)
        self._thread = threading.Thread(target=self._run, name="tunnel:%s:%d" % (name, self.port),
                                        daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ public API

    @property
    def addr(self):
        return "%s:%d" % (self.host, self.port)

    def pause(self, direction="both"):
        """Stop forwarding (and reading) in DIRECTION until resume()."""
        def f():
            for d in _dirs(direction):
                self._paused[d] = True
        self._call(f)

    def resume(self, direction="both"):
        """Forward again in DIRECTION, at the metered pace if one is set."""
        def f():
            for d in _dirs(direction):
                self._paused[d] = False
        self._call(f)

    def meter(self, direction, nbytes, interval):
        """Forward at most NBYTES every INTERVAL seconds in DIRECTION
        (meter(d, 1, x): one byte at a time). nbytes=None: full speed."""
        if nbytes is not None and (nbytes < 1 or interval < 0):
            raise ValueError("meter needs nbytes >= 1 and interval >= 0")

        def f():
            for d in _dirs(direction):
                self._meter[d] = None if nbytes is None else (int(nbytes), float(interval))
        self._call(f)

    def unmeter(self, direction="both"):
        self.meter(direction, None, 0)

    def cut(self):
        """Reset both sides of every open relayed connection (RST, no FIN).
        The tunnel keeps listening: new connections are relayed as before.
        Returns how many connections were cut."""
        def f():
            n = 0
            for p in list(self._pairs):
                if not p.closed:
                    self._close_pair(p, reset=True)
                    n += 1
            self._cuts += n
            return n
        return self._call(f)

    def bytes(self, direction):
        """Bytes delivered so far in DIRECTION (to the destination socket)."""
        return self._bytes[direction]

    def stats(self):
        """A snapshot: accepted, open, failed_connects, cuts, up, down, paused, meter."""
        def f():
            return {"accepted": self._accepted,
                    "open": sum(1 for p in self._pairs if not p.closed),
                    "failed_connects": self._failed_connects,
                    "cuts": self._cuts,
                    UP: self._bytes[UP], DOWN: self._bytes[DOWN],
                    "paused": dict(self._paused), "meter": dict(self._meter)}
        return self._call(f)

    def open_connections(self):
        return self.stats()["open"]

    def wait_bytes(self, direction, n, timeout):
        """Wait until at least N bytes went in DIRECTION; True if they did."""
        deadline = time.monotonic() + timeout
        while self._bytes[direction] < n:
            if time.monotonic() >= deadline or not self._thread.is_alive():
                return False
            time.sleep(0.005)
        return True

    def alive(self):
        return self._thread.is_alive()

    def close(self, timeout=5):
        """Stop the loop thread and close every socket. Idempotent."""
        if self._thread.is_alive():
            self._stop = True
            self._wake()
            self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError("%s: the relay thread did not stop" % self.name)
        for s in (self._ls, self._wr, self._ww):
            try:
                s.close()
            except OSError:
                pass
        if self._error is not None:
            err, self._error = self._error, None
            raise RuntimeError("%s: the relay thread failed: %r" % (self.name, err))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "<Tunnel %s -> %s:%d>" % (self.addr, self.target[0], self.target[1])

    # ------------------------------------------------------------ loop side

    def _wake(self):
        try:
            self._ww.send(b"x")
        except OSError:
            pass

    def _call(self, fn, timeout=5):
        """Run FN on the loop thread and return its result."""
        if threading.current_thread() is self._thread:
            return fn()
        if not self._thread.is_alive():
            raise RuntimeError("%s is closed" % self.name)
        box = {}
        done = threading.Event()
        self._cmds.put((fn, box, done))
        self._wake()
        if not done.wait(timeout):
            raise RuntimeError("%s: the relay thread did not answer" % self.name)
        if "error" in box:
            raise box["error"]
        return box.get("value")

    def _run_cmds(self):
        while True:
            try:
                fn, box, done = self._cmds.get_nowait()
            except queue.Empty:
                return
            try:
                box["value"] = fn()
            except Exception as e:  # handed to the caller
                box["error"] = e
            done.set()

    def _accept(self):
        while True:
            try:
                a, _ = self._ls.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            self._accepted += 1
            try:
                b = socket.create_connection(self.target, timeout=self.connect_timeout)
            except OSError:
                self._failed_connects += 1
                _reset(a)
                continue
            for s in (a, b):
                s.setblocking(False)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._pairs.append(_Pair(a, b))

    def _close_pair(self, p, reset):
        if p.closed:
            return
        p.closed = True
        for s in (p.a, p.b):
            if reset:
                _reset(s)
            else:
                try:
                    s.close()
                except OSError:
                    pass

    def _read(self, p, d):
        fl = p.flows[d]
        want = _BUF_MAX - len(fl.buf)
        if want <= 0:
            return
        try:
            data = fl.src.recv(want)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            # a reset (or worse) on one side becomes a reset on the other
            self._close_pair(p, reset=True)
            return
        if not data:
            fl.eof = True
        else:
            fl.buf += data

    def _write(self, p, d, now):
        fl = p.flows[d]
        if self._paused[d]:
            return
        if fl.buf:
            m = self._meter[d]
            if m is not None and now < fl.next_send:
                return
            chunk = fl.buf if m is None else fl.buf[:m[0]]
            try:
                n = fl.dst.send(chunk)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._close_pair(p, reset=True)
                return
            del fl.buf[:n]
            self._bytes[d] += n
            if m is not None:
                fl.next_send = now + m[1]
        if not fl.buf and fl.eof and not fl.shut:
            fl.shut = True
            try:
                fl.dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        if p.flows[UP].shut and p.flows[DOWN].shut:
            self._close_pair(p, reset=False)

    def _run(self):
        try:
            self._loop()
        except Exception as e:  # reported by close()
            self._error = e
        finally:
            for p in self._pairs:
                self._close_pair(p, reset=False)
            self._pairs = []
            # unblock callers still waiting on a command
            while True:
                try:
                    _, box, done = self._cmds.get_nowait()
                except queue.Empty:
                    break
                box["error"] = RuntimeError("%s is closed" % self.name)
                done.set()

    def _loop(self):
        RD = select.POLLIN | select.POLLPRI
        WR = select.POLLOUT
        while not self._stop:
            now = time.monotonic()
            self._pairs = [p for p in self._pairs if not p.closed]
            poller = select.poll()
            poller.register(self._ls.fileno(), RD)
            poller.register(self._wr.fileno(), RD)
            owners = {}
            timeout = 0.5
            for p in self._pairs:
                ev = {p.a.fileno(): 0, p.b.fileno(): 0}
                for d, fl in p.flows.items():
                    if self._paused[d]:
                        continue
                    if not fl.eof and len(fl.buf) < _BUF_MAX:
                        ev[fl.src.fileno()] |= RD
                    if fl.buf:
                        m = self._meter[d]
                        if m is not None and now < fl.next_send:
                            timeout = min(timeout, fl.next_send - now)
                        else:
                            ev[fl.dst.fileno()] |= WR
                    elif fl.eof and not fl.shut:
                        timeout = 0
                for fd, mask in ev.items():
                    if mask:
                        poller.register(fd, mask | select.POLLERR | select.POLLHUP)
                        owners[fd] = p
            try:
                ready = poller.poll(max(0, timeout) * 1000)
            except InterruptedError:
                continue
            now = time.monotonic()
            for fd, mask in ready:
                if fd == self._wr.fileno():
                    try:
                        while self._wr.recv(4096):
                            pass
                    except (BlockingIOError, InterruptedError):
                        pass
                elif fd == self._ls.fileno():
                    self._accept()
            self._run_cmds()
            for fd, mask in ready:
                p = owners.get(fd)
                if p is None or p.closed:
                    continue
                for d, fl in p.flows.items():
                    if p.closed:
                        break
                    if fl.src.fileno() == fd and mask & (RD | select.POLLERR | select.POLLHUP) \
                            and not self._paused[d] and not fl.eof:
                        self._read(p, d)
            # flush whatever may go now (metered flows whose time came, FINs)
            for p in list(self._pairs):
                for d in BOTH:
                    if not p.closed:
                        self._write(p, d, now)
