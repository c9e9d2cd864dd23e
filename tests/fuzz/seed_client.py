#!/usr/bin/python3
"""Writes the seed inputs of fuzz_client into corpus/client/ (see
fuzz_client.c for the layout: call count, calls, then the broker's
chunks, each ended by 0xc1)."""
import os
import sys

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))
END = b"\xc1"
OPS = {"connect": 0, "connect_timeout": 1, "write": 2, "write_all": 3,
       "write_bytes": 4, "read": 5, "peek": 6, "read_exact": 7,
       "read_line": 8, "read_until": 9, "read_all": 10, "listen": 11,
       "accept": 12, "local_addr": 13, "peer_addr": 14,
       "set_timeout_ms": 15, "set_nodelay": 16, "set_keepalive": 17,
       "shut_write": 18, "shut_read": 19, "close": 20, "select": 21,
       "select_wait": 22}


def pack(*v):
    return msgpack.packb(list(v), use_bin_type=True)


def ok(msgid, result=None):
    return pack(1, msgid, None, result)


def err(msgid, name, text):
    return pack(1, msgid, [name, text], None)


def note(name, *params):
    return pack(2, name, list(params))


HELLO = (ok(1, {"tenant": "t", "version": 2, "session": 7, "uid": 0,
                "gid": 0, "pid": 1, "data_max": 65536,
                "line_max": 65536, "busy_poll_us": 0}) +
         ok(2, {"recv_window": 262144, "send_window": 131072}))


def seed(name, calls, chunks):
    data = bytes([len(calls)] + [OPS[c] for c in calls])
    data += END.join(chunks)
    with open(os.path.join(HERE, "corpus", "client", name), "wb") as f:
        f.write(data)


def main():
    seed("s00_hello", [], [HELLO])
    seed("s01_connect_read", ["connect", "write", "read", "read_line",
                              "close"],
         [HELLO, ok(3, 5), note("ack", 5, 300),
          note("data", 5, b"hello\nworld\n") + note("end", 5), ok(4)])
    seed("s02_listen_accept", ["listen", "local_addr", "accept",
                               "peer_addr", "read_exact", "close"],
         [HELLO, ok(3, 9), ok(4, "127.0.0.1:4000"),
          note("acceptable", 9), ok(5, 10), ok(6, "127.0.0.1:5000"),
          note("data", 10, b"0123456789"), ok(7)])
    seed("s03_errors", ["connect", "connect_timeout", "read", "close"],
         [HELLO, err(3, "EPOLICY", "denied"), ok(4, 5),
          note("error", 5, ["ECONNRESET", "reset"]), ok(5)])
    seed("s04_options", ["connect", "set_timeout_ms", "set_nodelay",
                         "set_keepalive", "shut_write", "shut_read",
                         "select", "peek", "read_until", "read_all"],
         [HELLO, ok(3, 5), ok(4), ok(5), ok(6), ok(7), ok(8),
          note("data", 5, b"ab:cd"), note("end", 5)])
    seed("s05_write_all", ["connect", "write_all", "write_bytes",
                           "select_wait", "close"],
         [HELLO, ok(3, 5), note("ack", 5, 16), note("ack", 5, 1),
          note("data", 5, b"x"), ok(4)])
    seed("s06_split", ["connect", "read"],
         [HELLO[:7], HELLO[7:], ok(3, 5)[:3], ok(3, 5)[3:],
          note("data", 5, b"z" * 200)])
    seed("s07_old_broker", ["connect"],
         [ok(1, {"version": 1}) + err(2, "EPROTO", "no stream")])
    # Windows that grow, then one that shrinks: the session breaks.
    seed("s08_window", ["connect", "write_all", "write_all", "close"],
         [HELLO, ok(3, 5) + note("window", 5, 262144),
          note("ack", 5, 16) + note("window", 5, 1048576),
          note("ack", 5, 16) + note("window", 5, 65536)])


if __name__ == "__main__":
    sys.exit(main())
