#!/usr/bin/python3
"""The wire contract, proved with a msgpack client that is not ours.

Drives a real tcpbroker with Python's msgpack package (Debian's
python3-msgpack) exactly as docs/protocol.md describes: msgpack-RPC
requests [0, msgid, method, params] and responses [1, msgid, error,
result] on the Unix socket, data as bin, errors as [CODE, message].

Usage: wire_test.py /path/to/tcpbroker
"""

import os
import socket
import subprocess

import msgpack
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tbtest import TIMEOUT, Broker, Server, Session  # noqa: E402

BROKER = None
# LIMIT_SEND_WINDOW, PROTO_SEND_WINDOW_MAX and LIMIT_SESSION_WINDOW_GROWTH
WINDOW_FIRST = 131072
WINDOW_MAX = 1048576
# PROTO_RECV_WINDOW_GROWN_MAX
RECV_WINDOW_GROWN_MAX = 4194304

POLICY = """\
# the wire test's policy
tenant everyone {
    match uid *
    connect allow 127.0.0.1:1024-65535
    connect deny  127.0.0.1:40000
    listen  allow 127.0.0.1:0
}
"""


class WireTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.broker = Broker(BROKER, POLICY)

    @classmethod
    def tearDownClass(cls):
        assert cls.broker.stop() == 0

    def session(self, hello=True):
        s = Session(self.broker.socket, hello)
        self.addCleanup(s.close)
        return s

    def server(self, handler):
        srv = Server(handler)
        self.addCleanup(srv.stop)
        return srv

    def test_hello(self):
        s = self.session(hello=False)
        err, result = s.call("connect", "127.0.0.1", 9999)
        self.assertEqual(err[0], "EPROTO")
        err, result = s.call("hello", 99)
        self.assertEqual(err[0], "EVERSION")
        info = s.ok("hello", 1)
        self.assertEqual(info["version"], 1)
        self.assertEqual(info["uid"], os.getuid())
        self.assertEqual(info["pid"], os.getpid())
        self.assertGreater(info["session"], 0)
        self.assertEqual(info["data_max"], 65536)
        # The broker of these tests does not busy-poll.
        self.assertEqual(info["busy_poll_us"], 0)

    def test_hello_busy_poll(self):
        # A broker that busy-polls says for how long, for the client.
        b = Broker(BROKER, POLICY, args=("--busy-poll", "200"))
        try:
            s = Session(b.socket, False)
            self.addCleanup(s.close)
            info = s.ok("hello", 5)
        finally:
            status = b.stop()
        self.assertEqual(info["busy_poll_us"], 200)
        self.assertEqual(status, 0)

    def test_stream_functions(self):
        def handler(conn):
            conn.sendall(b"line one\r\nline two\n\x00\x01\x02|rest")
            got = b""
            while len(got) < 6:
                got += conn.recv(100)
            conn.sendall(got[::-1])
        srv = self.server(handler)
        s = self.session()
        h = s.ok("connect", "127.0.0.1", srv.port)
        self.assertIsInstance(h, int)
        self.assertEqual(s.ok("read_line", h, 1024), b"line one")
        self.assertEqual(s.ok("read_line", h, 1024), b"line two")
        self.assertEqual(s.ok("peek", h, 2), b"\x00\x01")
        self.assertEqual(s.ok("read_exact", h, 3), b"\x00\x01\x02")
        self.assertEqual(s.ok("read_until", h, ord("|"), 1024), b"|")
        self.assertEqual(s.ok("write", h, b"abc"), 3)
        self.assertEqual(s.ok("write_bytes", h, b"\x00\xff\x10"), 3)
        self.assertIsNone(s.ok("write_all", h, b""))
        # "rest", then the reversed six bytes, then the end of stream
        data = b""
        for _ in range(100):
            chunk = s.ok("read", h, 1024)
            if not chunk:
                break
            data += chunk
        self.assertEqual(data, b"rest" + b"\x10\xff\x00cba")
        self.assertEqual(s.ok("read", h, 1024), b"")
        self.assertEqual(s.call("read_line", h, 1024)[0][0], "EOF")
        self.assertTrue(s.ok("local_addr", h).startswith("127.0.0.1:"))
        self.assertEqual(s.ok("peer_addr", h), "127.0.0.1:%d" % srv.port)
        self.assertIsNone(s.ok("set_nodelay", h, True))
        self.assertIsNone(s.ok("set_keepalive", h, False))
        self.assertIsNone(s.ok("set_timeout_ms", h, 1000))
        self.assertIsNone(s.ok("shutdown", h, "both"))
        self.assertIsNone(s.ok("close", h))
        self.assertEqual(s.call("read", h, 1)[0][0], "EBADHANDLE")

    def test_responses_out_of_order(self):
        release = threading.Event()

        def handler(conn):
            release.wait(TIMEOUT)
            conn.sendall(b"late")
        srv = self.server(handler)
        s = self.session()
        h = s.ok("connect", "127.0.0.1", srv.port)
        slow = s.send("read", h, 16)
        fast = s.send("local_addr", h)
        first = s.receive()
        self.assertEqual(first[1], fast)
        release.set()
        second = s.receive()
        self.assertEqual(second[1], slow)
        self.assertEqual(second[3], b"late")

    def test_errors(self):
        s = self.session()
        err, result = s.call("connect", "127.0.0.1", 40000)
        self.assertIsNone(result)
        self.assertEqual(err[0], "EPOLICY")
        self.assertIn("policy.conf:5", err[1])
        err, _ = s.call("connect", "127.0.0.2", 8080)
        self.assertEqual(err[0], "EPOLICY")
        self.assertIn("internal range 127.0.0.0/8", err[1])
        err, _ = s.call("connect", "192.0.2.7", 8080)
        self.assertIn("internal range 192.0.2.0/24", err[1])
        self.assertEqual(s.call("no_such_method")[0][0], "ENOMETHOD")
        # A method name that is not UTF-8 is echoed as valid UTF-8: the
        # strict decoder below raises on anything else.
        s.sock.sendall(bytes([0x94, 0x00, 0xcd, 0x7f, 0xff, 0xa3, 0xff, 0xc0,
                              0x41, 0x90]))
        msg = s.receive()
        self.assertEqual(msg[2][0], "ENOMETHOD")
        self.assertIn("??A", msg[2][1])
        self.assertEqual(s.call("connect", "127.0.0.1")[0][0], "EINVAL")
        self.assertEqual(s.call("connect", "127.0.0.1", "80")[0][0], "EINVAL")
        # data must be bin, never str
        srv = self.server(lambda conn: conn.recv(10))
        h = s.ok("connect", "127.0.0.1", srv.port)
        self.assertEqual(s.call("write", h, "text")[0][0], "EINVAL")
        self.assertEqual(s.call("read", h, 65537)[0][0], "ELIMIT")
        self.assertEqual(s.call("shutdown", h, "up")[0][0], "EINVAL")
        self.assertEqual(s.call("close", 1234567)[0][0], "EBADHANDLE")
        self.assertIsNone(s.ok("close", h))

    def test_timeout(self):
        srv = self.server(lambda conn: conn.recv(10))
        s = self.session()
        h = s.ok("connect", "127.0.0.1", srv.port)
        s.ok("set_timeout_ms", h, 100)
        err, _ = s.call("read", h, 10)
        self.assertEqual(err[0], "ETIMEDOUT")
        self.assertEqual(s.ok("write", h, b"ok"), 2)

    def test_listen_accept(self):
        s = self.session()
        lh = s.ok("listen", "127.0.0.1:0")
        addr = s.ok("local_addr", lh)
        host, port = addr.rsplit(":", 1)
        self.assertEqual(host, "127.0.0.1")
        pending = s.send("accept", lh)
        c = socket.create_connection((host, int(port)), timeout=TIMEOUT)
        self.addCleanup(c.close)
        msg = s.receive()
        self.assertEqual(msg[1], pending)
        self.assertIsNone(msg[2])
        conn = msg[3]
        c.sendall(b"hi\n")
        self.assertEqual(s.ok("read_line", conn, 100), b"hi")
        s.ok("write_all", conn, b"OK\r\n")
        self.assertEqual(c.recv(4), b"OK\r\n")
        self.assertEqual(s.call("listen", "0.0.0.0:8080")[0][0], "EPOLICY")
        self.assertEqual(s.call("listen", "localhost:0")[0][0], "EINVAL")

    def test_read_line_many_connections(self):
        """Per-call read_line over 40 connections with data left over:
        the broker charges what it holds, not the longest line (issue 9)."""
        servers = [self.server(lambda c: (c.sendall(b"one\ntwo\n"),
                                          c.recv(1)))
                   for _ in range(40)]
        s = self.session()
        conns = [s.ok("connect", "127.0.0.1", srv.port) for srv in servers]
        for conn in conns:
            self.assertEqual(s.ok("read_line", conn, 65536), b"one")
        for conn in conns:
            self.assertEqual(s.ok("read_line", conn, 65536), b"two")
            s.ok("close", conn)

    def test_streaming_session(self):
        """Version 2: data pushed as notifications within the window."""
        payload = bytes(range(256)) * 1024         # 256 KiB

        def handler(conn):
            conn.sendall(payload)
            got = b""
            while len(got) < 5:
                got += conn.recv(5 - len(got))
            conn.sendall(got.upper())

        srv = self.server(handler)
        s = Session(self.broker.socket, hello=False)
        self.addCleanup(s.close)
        self.assertEqual(s.ok("hello", 2)["version"], 2)
        window = 65536
        info = s.ok("stream", window)
        self.assertEqual(info["recv_window"], window)
        self.assertGreaterEqual(info["send_window"], 65536)
        conn = s.ok("connect", "127.0.0.1", srv.port)
        got = b""
        outstanding = 0
        refused = None
        msgid = s.send("read", conn, 10)
        while len(got) < len(payload) or refused is None:
            msg = s.receive()
            if msg[0] == 1:
                # Per-call reads are refused on a streamed connection.
                self.assertEqual(msg[1], msgid)
                refused = msg[2][0]
                continue
            self.assertEqual(msg[:2], [2, "data"])
            self.assertEqual(msg[2][0], conn)
            got += msg[2][1]
            outstanding += len(msg[2][1])
            # Never more than granted.
            self.assertLessEqual(outstanding, window)
            if outstanding >= window // 2:
                s.sock.sendall(msgpack.packb([2, "credit",
                                              [conn, outstanding]]))
                outstanding = 0
        self.assertEqual(refused, "EPROTO")
        self.assertEqual(got, payload)
        self.assertEqual(s.call("write_all", conn, b"x")[0][0], "EPROTO")
        # Write behind: no response, an ack once the socket has it.
        s.sock.sendall(msgpack.packb([2, "send", [conn, b"hello"]],
                                     use_bin_type=True))
        acked = 0
        while acked < 5 or len(got) < len(payload) + 5:
            msg = s.receive()
            self.assertEqual(msg[0], 2)
            if msg[1] == "ack":
                acked += msg[2][1]
            elif msg[1] == "data":
                got += msg[2][1]
        self.assertEqual(got[len(payload):], b"HELLO")
        # A credit past the window ends the session.
        s.sock.sendall(msgpack.packb([2, "credit", [conn, window + 1]]))
        with self.assertRaises(EOFError):
            for _ in range(100):
                s.receive()

    def test_close_notification(self):
        """Version 3: a streamed connection closes with no response."""
        ended = threading.Event()

        def handler(conn):
            conn.sendall(b"banner\n")
            if conn.recv(16) == b"":
                ended.set()

        srv = self.server(handler)
        s = Session(self.broker.socket, hello=False)
        self.addCleanup(s.close)
        self.assertEqual(s.ok("hello", 3)["version"], 3)
        s.ok("stream", 65536)
        conn = s.ok("connect", "127.0.0.1", srv.port)
        close = msgpack.packb([2, "close", [conn]])
        # The banner is read first: a socket closed with unread data
        # sends a reset, not the end of stream the peer checks for.
        self.assertEqual(s.receive(), [2, "data", [conn, b"banner\n"]])
        s.sock.sendall(close)
        self.assertTrue(ended.wait(TIMEOUT))
        # Handled in order: the request after it finds the handle gone.
        self.assertEqual(s.call("local_addr", conn)[0][0], "EBADHANDLE")
        # A closed (or never opened) handle is ignored, as a credit is.
        s.sock.sendall(close + msgpack.packb([2, "close", [0x7ff]]))
        self.assertEqual(s.call("hello", 3)[0][0], "EPROTO")

        # Version 2 has no close notification: the session ends.
        old = Session(self.broker.socket, hello=False)
        self.addCleanup(old.close)
        old.ok("hello", 2)
        old.ok("stream", 65536)
        old.sock.sendall(msgpack.packb([2, "close", [0x100]]))
        with self.assertRaises(EOFError):
            for _ in range(100):
                old.receive()

    def sink_session(self, version, total):
        """A streaming session of version and a connection to a sink
        that reads total bytes; returns (session, conn, sunk, done)."""
        sunk = []
        done = threading.Event()

        def handler(conn):
            while sum(map(len, sunk)) < total:
                data = conn.recv(4096)
                if not data:
                    return
                sunk.append(data)
            done.set()

        srv = self.server(handler)
        s = Session(self.broker.socket, hello=False)
        self.addCleanup(s.close)
        s.ok("hello", version)
        s.ok("stream", 65536)
        return s, s.ok("connect", "127.0.0.1", srv.port), sunk, done

    @staticmethod
    def sends(conn, first, count):
        """send notifications of ten bytes each, numbered from first."""
        return b"".join(msgpack.packb(
            [2, "send", [conn, b"%010d" % i]], use_bin_type=True)
            for i in range(first, first + count))

    def acks(self, s, conn, total):
        """The acks, in order, until they add up to total."""
        got = []
        while sum(got) < total:
            msg = s.receive()
            if msg[:3] == [2, "end", [conn]]:
                continue    # the sink has had its bytes
            self.assertEqual(msg[:2], [2, "ack"])
            got.append(msg[2][1])
        return got

    def test_ack_waits_to_ride(self):
        """Small writes to a drained connection share one delayed ack;
        a credit takes it at once."""
        s, conn, sunk, done = self.sink_session(3, 200)
        # Ten sends in one batch, each drained into the socket: one ack
        # (LIMIT_ACK_DELAY_MS later), not one per send.
        s.sock.sendall(self.sends(conn, 0, 10))
        self.assertEqual(self.acks(s, conn, 100), [100])
        # A credit (of 0 here) asks for the ack that waits.
        s.sock.sendall(self.sends(conn, 10, 5) +
                       msgpack.packb([2, "credit", [conn, 0]]) +
                       self.sends(conn, 15, 5))
        self.assertEqual(self.acks(s, conn, 100), [50, 50])
        self.assertTrue(done.wait(TIMEOUT))
        self.assertEqual(b"".join(sunk), b"".join(b"%010d" % i
                                                  for i in range(20)))

    def test_ack_version2_at_once(self):
        """A version 2 client cannot ask for a delayed ack: none waits."""
        s, conn, _, _ = self.sink_session(2, 100)
        s.sock.sendall(self.sends(conn, 0, 10))
        self.assertEqual(self.acks(s, conn, 100), [10] * 10)

    def sink(self):
        """A server that reads everything; returns its port."""
        def handler(conn):
            while conn.recv(65536):
                pass
        return self.server(handler).port

    def pump(self, s, conn, total, stop_at=None, size=65536, lockstep=False):
        """Sends total bytes on conn in payloads of size within its send
        window (with lockstep, each once the one before is acked), taking
        acks and window notifications as they come, until all is acked or
        the window is stop_at; returns the windows the broker gave, in
        order."""
        chunk = b"x" * size
        window, windows = WINDOW_FIRST, []
        sent = acked = 0
        last = None
        while acked < sent or (sent < total and windows[-1:] != [stop_at]):
            if sent < total and windows[-1:] != [stop_at] and \
                    sent - acked + len(chunk) <= window and \
                    not (lockstep and acked < sent):
                s.sock.sendall(msgpack.packb([2, "send", [conn, chunk]],
                                             use_bin_type=True))
                sent += len(chunk)
                continue
            msg = s.receive()
            self.assertEqual(msg[0], 2)
            self.assertEqual(msg[2][0], conn)
            if msg[1] == "ack":
                acked += msg[2][1]
            else:
                # A window comes right behind the ack that grew it.
                self.assertEqual((msg[1], last), ("window", "ack"))
                self.assertGreater(msg[2][1], window)
                window = msg[2][1]
                windows.append(window)
            last = msg[1]
        return windows

    def test_send_window_grows(self):
        """A connection whose socket takes at once what it is sent has its
        send window doubled up to PROTO_SEND_WINDOW_MAX (version 4 only),
        and the growth of one session's windows stays within
        LIMIT_SESSION_WINDOW_GROWTH, given back as connections close."""
        s = self.session(hello=False)
        s.ok("hello", 4)
        s.ok("stream", 65536)
        conns = [s.ok("connect", "127.0.0.1", self.sink()) for _ in range(6)]
        # Four grow to the most, the fifth to what is left, the sixth not.
        full = [262144, 524288, WINDOW_MAX]
        for conn in conns[:4]:
            self.assertEqual(self.pump(s, conn, 8 << 20, WINDOW_MAX), full)
        self.assertEqual(self.pump(s, conns[4], 8 << 20, 655360),
                         [262144, 524288, 655360])
        self.assertEqual(self.pump(s, conns[5], 2 << 20), [])
        # A closed connection gives its growth back to the next one.
        s.sock.sendall(msgpack.packb([2, "close", [conns[0]]]))
        conn = s.ok("connect", "127.0.0.1", self.sink())
        self.assertEqual(self.pump(s, conn, 8 << 20, WINDOW_MAX), full)
        s.close()   # the sinks see their ends
        # Version 3 windows stay as they are.
        s = self.session(hello=False)
        s.ok("hello", 3)
        s.ok("stream", 65536)
        conn = s.ok("connect", "127.0.0.1", self.sink())
        self.assertEqual(self.pump(s, conn, 2 << 20), [])
        s.close()

    def test_recv_window_grows(self):
        """From version 5 a client may grow a connection's receive window
        with credit, up to PROTO_RECV_WINDOW_GROWN_MAX; credit past that,
        or past the window asked for in an older session, ends the
        session."""
        for version, most in ((5, RECV_WINDOW_GROWN_MAX), (4, 65536)):
            s = self.session(hello=False)
            s.ok("hello", version)
            s.ok("stream", 65536)
            conn = s.ok("connect", "127.0.0.1", self.sink())
            s.sock.sendall(msgpack.packb([2, "credit",
                                          [conn, most - 65536]]))
            # Taken: the session still answers.
            self.assertIn("127.0.0.1", s.ok("local_addr", conn))
            s.sock.sendall(msgpack.packb([2, "credit", [conn, 1]]))
            with self.assertRaises(EOFError):
                for _ in range(100):
                    s.receive()
            s.close()

    def test_send_window_grows_small_writes(self):
        """Small writes count too: eight of 8 KiB, each acked alone (a
        delayed ack, under a quarter window), make half the first window
        and double it."""
        s = self.session(hello=False)
        s.ok("hello", 4)
        s.ok("stream", 65536)
        conn = s.ok("connect", "127.0.0.1", self.sink())
        self.assertEqual(self.pump(s, conn, 16 * 8192, 262144, 8192, True),
                         [262144])
        s.close()

    def test_malformed_closes_only_that_session(self):
        bad = self.session()
        good = self.session()
        bad.sock.sendall(b"\xdd\xff\xff\xff\xff")  # array of 2^32-1 items
        with self.assertRaises(EOFError):
            bad.receive()
        self.assertEqual(good.call("hello", 1)[0][0], "EPROTO")
        lh = good.ok("listen", "127.0.0.1:0")
        self.assertTrue(good.ok("local_addr", lh).startswith("127.0.0.1:"))

    def test_session_source(self):
        # docs/protocol.md, "The session source", run by the launched
        # command: two sessions of its own, and garbage answered EPROTO.
        code = """if True:
            import os, socket, msgpack
            source = socket.socket(fileno=int(os.environ["TCPBROKER_FD"]))
            ids = []
            for _ in range(2):
                source.send(b"session")
                answer, fds, _, _ = socket.recv_fds(source, 512, 1)
                assert answer == b"ok" and len(fds) == 1, answer
                session = socket.socket(fileno=fds[0])
                session.setblocking(True)
                session.sendall(msgpack.packb([0, 1, "hello", [2]]))
                reply = msgpack.Unpacker()
                reply.feed(session.recv(4096))
                kind, msgid, err, result = next(reply)
                assert err is None, err
                ids.append(result["session"])
                print(result["tenant"])
            assert ids[0] != ids[1], ids
            source.send(b"sessions, please")
            answer, fds, _, _ = socket.recv_fds(source, 512, 1)
            assert answer.startswith(b"EPROTO ") and not fds, answer
            # An empty message is a bad request too, not the end.
            source.send(b"")
            answer, fds, _, _ = socket.recv_fds(source, 512, 1)
            assert answer.startswith(b"EPROTO ") and not fds, answer
            source.send(b"session")
            answer, fds, _, _ = socket.recv_fds(source, 512, 1)
            assert answer == b"ok" and len(fds) == 1, answer
            os.close(fds[0])
        """
        done = subprocess.run(
            [BROKER, "run", "--policy", self.broker.policy, "--",
             "/usr/bin/python3", "-c", code],
            capture_output=True, text=True, timeout=6 * TIMEOUT)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout, "everyone\neveryone\n")

    def test_session_source_end_is_quiet(self):
        # The end of the source (every process closed it) reads as an
        # empty message does; it must not be taken for a bad request.
        code = """if True:
            import os, socket
            source = socket.socket(fileno=int(os.environ["TCPBROKER_FD"]))
            source.send(b"session")
            answer, fds, _, _ = socket.recv_fds(source, 512, 1)
            assert answer == b"ok" and len(fds) == 1, answer
            os.close(fds[0])
        """
        done = subprocess.run(
            [BROKER, "run", "--policy", self.broker.policy,
             "--log-level", "warn", "--", "/usr/bin/python3", "-c", code],
            capture_output=True, text=True, timeout=6 * TIMEOUT)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertNotIn("session source", done.stderr)


if __name__ == "__main__":
    BROKER = sys.argv.pop(1)
    unittest.main(verbosity=2)
