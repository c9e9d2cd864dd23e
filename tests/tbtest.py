"""Test helpers shared by the Python tests: a broker process of our own
and a msgpack-RPC client written from docs/protocol.md alone."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import msgpack

TIMEOUT = 5.0  # seconds any single wait may take


class Broker:
    """A broker process of our own, stopped by PID."""

    def __init__(self, binary, policy, args=(), wrap=()):
        self.dir = tempfile.mkdtemp(prefix="tcpbroker-py-")
        os.chmod(self.dir, 0o755)
        self.socket = os.path.join(self.dir, "broker.sock")
        self.policy = os.path.join(self.dir, "policy.conf")
        self.log = os.path.join(self.dir, "broker.log")
        self.write_policy(policy)
        self.logf = open(self.log, "w")
        self.proc = subprocess.Popen(
            list(wrap) + [binary, "--policy", self.policy,
                          "--socket", self.socket, "--log-level", "debug"]
            + list(args), stderr=self.logf)
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(self.socket)
                s.close()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("broker did not start; see " + self.log)
                time.sleep(0.01)

    def write_policy(self, text):
        tmp = self.policy + ".new"
        with open(tmp, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.rename(tmp, self.policy)

    def stop(self):
        self.proc.terminate()
        try:
            status = self.proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            status = self.proc.wait(TIMEOUT)
        self.logf.close()
        if status == 0:
            shutil.rmtree(self.dir)
        else:
            print("broker log kept in", self.log, file=sys.stderr)
        return status


class Session:
    """A msgpack-RPC client on the broker's Unix socket."""

    def __init__(self, path, hello=True):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(path)
        self.unpacker = msgpack.Unpacker(raw=False)
        self.msgid = 0
        if hello:
            err, result = self.call("hello", 1)
            assert err is None, err
            self.info = result

    def send(self, method, *params):
        self.msgid += 1
        self.sock.sendall(msgpack.packb([0, self.msgid, method, list(params)],
                                        use_bin_type=True))
        return self.msgid

    def receive(self):
        """The next response, whatever its msgid."""
        for _ in range(10000):
            for msg in self.unpacker:
                return msg
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("the broker closed the session")
            self.unpacker.feed(data)
        raise RuntimeError("no complete response")

    def call(self, method, *params):
        msgid = self.send(method, *params)
        msg = self.receive()
        assert msg[0] == 1 and msg[1] == msgid, msg
        return msg[2], msg[3]

    def ok(self, method, *params):
        err, result = self.call(method, *params)
        assert err is None, (method, params, err)
        return result

    def close(self):
        self.sock.close()


class Server:
    """A TCP server on 127.0.0.1 that runs handler(conn) per connection."""

    def __init__(self, handler):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(TIMEOUT)
        self.port = self.sock.getsockname()[1]
        self.handler = handler
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        conn.settimeout(TIMEOUT)
        try:
            self.handler(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def write_policy(self, text):
        tmp = self.policy + ".new"
        with open(tmp, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.rename(tmp, self.policy)

    def stop(self):
        self.sock.close()
        self.thread.join(TIMEOUT)


