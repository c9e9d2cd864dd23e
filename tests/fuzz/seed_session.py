#!/usr/bin/python3
"""Writes the seed inputs of fuzz_session into corpus/session/ (see
fuzz_session.c: a byte that picks the uid, then the client's bytes in
chunks, each ended by 0xc1)."""
import os
import sys

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))
END = b"\xc1"
# The first handles of a session: slot 0, 1, 2 of generation 1.
H0, H1, H2 = 0x100, 0x101, 0x102


class Session:
    def __init__(self):
        self.msgid = 0

    def call(self, method, *params):
        self.msgid += 1
        return msgpack.packb([0, self.msgid, method, list(params)],
                             use_bin_type=True)


def note(name, *params):
    return msgpack.packb([2, name, list(params)], use_bin_type=True)


def seed(name, uid, chunks):
    with open(os.path.join(HERE, "corpus", "session", name), "wb") as f:
        f.write(bytes([uid]) + END.join(chunks))


def main():
    s = Session()
    seed("s00_stream_pair", 0, [
        s.call("hello", 2) + s.call("stream", 262144),
        s.call("listen", "127.0.0.1:4000"),
        s.call("connect", "127.0.0.1", 4000),
        s.call("accept", H0),
        note("send", H1, b"hello\n") + note("send", H2, b"world\n"),
        note("credit", H1, 6) + note("credit", H2, 6),
        s.call("local_addr", H1) + s.call("peer_addr", H2),
        s.call("shutdown", H1, "write"),
        s.call("close", H2) + s.call("close", H1) + s.call("close", H0)])
    s = Session()
    seed("s01_v1_calls", 0, [
        s.call("hello", 1),
        s.call("listen", "127.0.0.1:4001"),
        s.call("connect_timeout", "127.0.0.1", 4001, 500),
        s.call("accept", H0),
        s.call("write", H1, b"line one\r\nline two\nabc:def") +
        s.call("write_all", H1, b"x" * 100) +
        s.call("write_bytes", H1, b"y"),
        s.call("read_line", H2, 100) + s.call("peek", H2, 4) +
        s.call("read_until", H2, 58, 100) + s.call("read", H2, 10) +
        s.call("read_exact", H2, 20),
        s.call("set_timeout_ms", H2, 10) + s.call("set_nodelay", H1, True) +
        s.call("set_keepalive", H1, False),
        s.call("shutdown", H1, "both") + s.call("read", H2, 100),
        s.call("close", H1) + s.call("close", H2)])
    s = Session()
    seed("s02_denied", 0, [
        s.call("hello", 2) + s.call("stream", 65536),
        s.call("connect", "127.0.0.1", 4003) +
        s.call("connect", "example.test", 443) +
        s.call("connect", "10.0.0.1", 80) +
        s.call("listen", "0.0.0.0:4000") +
        s.call("connect", "[::1]", 4002) +
        s.call("connect", "127.1", 4000)])
    s = Session()
    seed("s03_tight", 1, [
        s.call("hello", 2) + s.call("stream", 65536),
        s.call("listen", "127.0.0.1:4001") + s.call("listen",
                                                     "127.0.0.1:4001"),
        s.call("connect", "127.0.0.1", 4001) +
        s.call("connect", "127.0.0.1", 4001) +
        s.call("connect", "127.0.0.1", 4001),
        s.call("accept", H0) + s.call("accept", H0),
        note("send", H1, b"z" * 3000)])
    s = Session()
    seed("s04_no_tenant", 2, [s.call("hello", 2), s.call("listen",
                                                         "127.0.0.1:4000")])
    s = Session()
    seed("s05_ipv6", 0, [
        s.call("hello", 2) + s.call("stream", 1048576),
        s.call("listen", "[::1]:4000"),
        s.call("connect", "::1", 4000),
        s.call("accept", H0),
        note("send", H1, b"ping") + note("credit", H2, 65536),
        s.call("close", H0)])
    s = Session()
    seed("s07_close_note", 0, [
        s.call("hello", 3) + s.call("stream", 65536),
        s.call("listen", "127.0.0.1:4002"),
        s.call("connect", "127.0.0.1", 4002),
        s.call("accept", H0),
        note("send", H1, b"bye\n") + note("close", H1),
        note("credit", H2, 4) + note("close", H2) + note("close", H2),
        note("close", H0) + s.call("close", H0)])
    s = Session()
    # Half a window taken at once: the window grows (the smallest input
    # that does; it sets libFuzzer's default -max_len for this target).
    seed("s08_window", 0, [
        s.call("hello", 4) + s.call("stream", 65536),
        s.call("listen", "127.0.0.1:4003"),
        s.call("connect", "127.0.0.1", 4003),
        s.call("accept", H0),
        note("send", H1, b"w" * 32768) + note("send", H1, b"w" * 32768),
        note("credit", H2, 65536) + note("send", H1, b"w" * 100),
        note("close", H1) + note("close", H2) + s.call("close", H0)])
    s = Session()
    seed("s06_garbage", 0, [
        s.call("hello", 2), b"\x94\x00\x05\xa4read\x92\xcd\x01\x00",
        b"\x05"])


if __name__ == "__main__":
    sys.exit(main())
