#!/usr/bin/python3
"""The policy end to end, through a real broker.

Tenants chosen by the client's uid (clients run as other uids in forked
children), names from a hosts file of our own that point at loopback,
quotas, report mode, accept rules, reloads, and the decision log, read
back and parsed as JSON.  Also tcpbroker --check and --explain.

Usage: policy_e2e.py /path/to/tcpbroker
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tbtest import TIMEOUT, Broker, Session  # noqa: E402

# Where the broker's resolver sends DNS queries: a loopback address where
# nothing answers unless a test binds it.
DNS_SILENT = ("127.0.0.77", 53)

BROKER = None


class Echo:
    """An echo server on 127.0.0.1, a thread per connection."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.threads = []
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            t = threading.Thread(target=self.serve, args=(conn,), daemon=True)
            t.start()
            self.threads.append(t)

    def serve(self, conn):
        conn.settimeout(0.1)
        with conn:
            while not self.stopping:
                try:
                    data = conn.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    return
                if not data:
                    return
                conn.sendall(data)

    def stop(self):
        self.stopping = True
        self.thread.join(TIMEOUT)
        for t in self.threads:
            t.join(TIMEOUT)
        self.sock.close()


def as_uid(uid, fn, groups=()):
    """Runs fn() in a child process running as uid and gid uid, with the
    supplementary groups given; returns what it returned (JSON), or
    raises what went wrong."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            os.setgroups(list(groups))
            os.setgid(uid)
            os.setuid(uid)
            result = {"ok": fn()}
        except BaseException as e:  # reported to the parent
            result = {"error": repr(e)}
        os.write(w, json.dumps(result).encode())
        os._exit(0)
    os.close(w)
    data = b""
    deadline = time.monotonic() + 2 * TIMEOUT
    while time.monotonic() < deadline:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    result = json.loads(data)
    if "error" in result:
        raise AssertionError("as uid %d: %s" % (uid, result["error"]))
    return result["ok"]


def code(reply):
    """The error code of a (error, result) pair, or None."""
    err, _ = reply
    return None if err is None else err[0]


class PolicyTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.echo = Echo()
        cls.tmp = tempfile.mkdtemp(prefix="tcpbroker-e2e-")
        cls.hosts = os.path.join(cls.tmp, "hosts")
        with open(cls.hosts, "w") as f:
            f.write("127.0.0.1 localhost\n127.0.0.1 looptest.test\n")
        os.chmod(cls.hosts, 0o644)
        # DNS goes to loopback, where nothing answers: names that are
        # not in the hosts file fail at once, and nothing leaves.  A test
        # may bind DNS_SILENT to make lookups hang instead.
        cls.resolv = os.path.join(cls.tmp, "resolv.conf")
        with open(cls.resolv, "w") as f:
            f.write("nameserver %s\noptions timeout:1 attempts:1\n" %
                    DNS_SILENT[0])
        os.chmod(cls.resolv, 0o644)
        os.chmod(cls.tmp, 0o755)
        cls.decisions_path = os.path.join(cls.tmp, "decisions.json")
        cls.policy_text = cls.policy()
        # The broker reads our hosts file as its /etc/hosts, in a mount
        # namespace of its own.
        wrap = ["unshare", "--mount", "sh", "-c",
                "mount --make-rprivate / && mount --bind %s /etc/hosts "
                "&& mount --bind %s /etc/resolv.conf "
                "&& exec \"$0\" \"$@\"" % (cls.hosts, cls.resolv)]
        cls.wrap = wrap
        cls.broker = Broker(BROKER, cls.policy_text, wrap=wrap,
                            args=["--socket-mode", "0666", "--decision-log",
                                  cls.decisions_path])

    @classmethod
    def tearDownClass(cls):
        cls.echo.stop()
        status = cls.broker.stop()
        if os.environ.get("TB_KEEP_LOGS") is None:
            shutil.rmtree(cls.tmp)
        assert status == 0

    @classmethod
    def policy(cls, alpha_extra=""):
        p = cls.echo.port
        return """\
# the end-to-end policy
tenant "alpha" {
    match uid 2000-2999
    connect allow 127.0.0.1:%(p)d
    connect allow looptest.test:%(p)d
    connect allow *.looptest.test:%(p)d
%(extra)s}
tenant "beta" {
    match uid 3000
    connect allow looptest.test:%(p)d
    limit listeners 1
    listen allow 127.0.0.1:0
}
tenant "theta" {
    match uid 3500
    connect allow 127.0.0.1:%(p)d
    limit connections 2
}
tenant "gamma" {
    match uid 3100
    connect allow 127.0.0.1:%(p)d
    limit rate 5/s
}
tenant "delta" {
    match uid 3200
    mode report
    connect allow 127.0.0.0/8:*
    connect deny 127.0.0.0/8:1024-65535
    listen deny 127.0.0.0/8:*
}
tenant "lambda" {
    match gid 4242
    connect allow 127.0.0.1:%(p)d
}
tenant "kappa" {
    match uid 3800
    listen allow 127.0.0.1:1024-65535
}
tenant "eta" {
    match uid 3600
    listen allow 127.0.0.0/8:0
    listen deny  127.0.0.5:*
}
tenant "iota" {
    match uid 3700
    connect allow 127.0.0.1:%(p)d
    limit connections 1
    limit rate 5/s
}
tenant "epsilon" {
    match uid 3300
    connect allow 127.0.0.1:%(p)d
    limit bandwidth 64KiB/s
}
tenant "zeta" {
    match uid 3400
    listen allow 127.0.0.1:0
    accept allow 127.0.0.2:*
}
tenant "root" {
    match uid 0
    connect allow 127.0.0.1:1024-65535
    connect allow localhost:1024-65535
    listen allow 127.0.0.1:0
}
""" % {"p": p, "extra": alpha_extra}

    def session_as(self, uid, fn):
        path = self.broker.socket

        def run():
            s = Session(path, hello=False)
            try:
                return fn(s)
            finally:
                s.close()
        return as_uid(uid, run)

    def decisions(self):
        lines = []
        with open(self.decisions_path) as f:
            for line in f:
                lines.append(json.loads(line))
        return lines

    def line_of(self, text):
        """The line of the policy file that holds text."""
        for n, line in enumerate(self.policy_text.splitlines(), 1):
            if text in line:
                return n
        self.fail("no %r in the policy" % text)

    def last_decision(self, **match):
        for d in reversed(self.decisions()):
            if all(d.get(k) == v for k, v in match.items()):
                return d
        self.fail("no decision with %r" % match)

    # Tenants by uid.

    def test_tenants_get_different_decisions(self):
        port = self.echo.port

        def alpha(s):
            s.ok("hello", 1)
            return [code(s.call("connect", "127.0.0.1", port)),
                    code(s.call("connect", "looptest.test", port))]

        def beta(s):
            info = s.ok("hello", 1)
            return [info["tenant"], code(s.call("connect", "127.0.0.1", port)),
                    code(s.call("connect", "looptest.test", port))]

        self.assertEqual(self.session_as(2500, alpha), [None, None])
        tenant, by_addr, by_name = self.session_as(3000, beta)
        self.assertEqual(tenant, "beta")
        # beta may name looptest.test, but it resolves to loopback and no
        # address rule of beta opens loopback.
        self.assertEqual(by_addr, "EPOLICY")
        self.assertEqual(by_name, "EPOLICY")
        d = self.last_decision(tenant="beta", host="looptest.test")
        self.assertEqual(d["verdict"], "deny")
        self.assertEqual(d["reason"], "internal")
        self.assertEqual(d["addresses"], ["127.0.0.1"])
        self.assertIsNone(d["address"])
        self.assertEqual(d["uid"], 3000)
        d = self.last_decision(tenant="alpha", host="looptest.test")
        self.assertEqual(d["verdict"], "allow")
        self.assertEqual(d["address"], "127.0.0.1")
        self.assertTrue(d["rule"].endswith("policy.conf:4"))

    def test_client_in_no_tenant(self):
        def stranger(s):
            err, _ = s.call("hello", 1)
            # The broker ends the session right after its answer.
            try:
                s.send("connect", "127.0.0.1", 80)
                after = code(s.call("hello", 1))
            except (EOFError, OSError):
                after = "closed"
            return [err[0], err[1], after]

        hello, message, after = self.session_as(4000, stranger)
        self.assertEqual(hello, "EPOLICY")
        self.assertIn("no tenant", message)
        self.assertEqual(after, "closed")
        d = self.last_decision(uid=4000)
        self.assertEqual(d["action"], "hello")
        self.assertEqual(d["reason"], "no-tenant")

    # Quotas.

    def test_connection_and_listener_quotas(self):
        port = self.echo.port

        def beta(s):
            s.ok("hello", 1)
            l1 = s.ok("listen", "127.0.0.1:0")
            over = code(s.call("listen", "127.0.0.1:0"))
            s.ok("close", l1)
            l2 = s.ok("listen", "127.0.0.1:0")
            return [over, s.ok("local_addr", l2).startswith("127.0.0.1:")]

        def theta(s):
            s.ok("hello", 1)
            h1 = s.ok("connect", "127.0.0.1", port)
            s.ok("connect", "127.0.0.1", port)
            over = code(s.call("connect", "127.0.0.1", port))
            s.ok("close", h1)
            return [over, code(s.call("connect", "127.0.0.1", port))]

        self.assertEqual(self.session_as(3000, beta), ["EQUOTA", True])
        self.assertEqual(self.session_as(3500, theta), ["EQUOTA", None])
        # Refused by a quota: logged as a denial, with the reason.
        d = self.last_decision(tenant="theta", verdict="deny")
        self.assertEqual(d["reason"], "quota")
        self.assertIsNone(d["address"])

    def test_rate_quota_recovers(self):
        port = self.echo.port

        def gamma(s):
            s.ok("hello", 1)
            codes = []
            for _ in range(8):
                err, h = s.call("connect", "127.0.0.1", port)
                codes.append(None if err is None else err[0])
                if err is None:
                    s.ok("close", h)
            time.sleep(1.2)
            err, h = s.call("connect", "127.0.0.1", port)
            return codes, None if err is None else err[0]

        codes, later = self.session_as(3100, gamma)
        self.assertEqual(codes[:5], [None] * 5)
        self.assertIn("EQUOTA", codes[5:])
        self.assertIsNone(later)

    def test_bandwidth_is_throttled(self):
        port = self.echo.port

        def epsilon(s):
            s.ok("hello", 1)
            h = s.ok("connect", "127.0.0.1", port)
            start = time.monotonic()
            for _ in range(3):
                s.ok("write_all", h, b"x" * 65536)
            return time.monotonic() - start

        # 192 KiB at 64 KiB/s with a one-second burst: at least a second
        # and more (a lower bound only; how fast is not the point).
        self.assertGreater(self.session_as(3300, epsilon), 1.5)

    # Report mode, accept rules.

    def test_report_mode_allows_and_logs(self):
        port = self.echo.port

        def delta(s):
            s.ok("hello", 1)
            h = s.ok("connect", "127.0.0.1", port)
            s.ok("write_all", h, b"hi\n")
            return s.ok("read_line", h, 100).decode()

        self.assertEqual(self.session_as(3200, delta), "hi")
        d = self.last_decision(tenant="delta", action="connect")
        self.assertEqual(d["verdict"], "allow")
        self.assertTrue(d["report"])
        self.assertEqual(d["reason"], "rule")

        # Report mode reports the rules; it never opens an internal
        # address that no address rule opens (::1 here).
        def delta_internal(s):
            s.ok("hello", 1)
            return code(s.call("connect", "::1", port))

        self.assertEqual(self.session_as(3200, delta_internal), "EPOLICY")
        d = self.last_decision(tenant="delta", action="connect")
        self.assertEqual(d["verdict"], "deny")
        self.assertFalse(d["report"])
        self.assertEqual(d["reason"], "internal")

        # No listen rule allows it, and a deny rule covers the port the
        # system chooses: report mode lets delta listen all the same, and
        # the broker's filter was built for that.
        def delta_listens(s):
            s.ok("hello", 1)
            lh = s.ok("listen", "127.0.0.1:0")
            return s.ok("local_addr", lh)

        self.assertTrue(self.session_as(3200, delta_listens)
                        .startswith("127.0.0.1:"))
        d = self.last_decision(tenant="delta", action="listen")
        self.assertEqual(d["verdict"], "allow")
        self.assertTrue(d["report"])
        self.assertEqual(d["reason"], "rule")
        self.assertTrue(d["rule"].endswith("policy.conf:%d" % self.line_of(
            "listen deny 127.0.0.0/8:*")))
        self.assertGreater(d["port"], 0)

    def test_port_zero_listener_meets_deny_rules(self):
        def eta(s):
            s.ok("hello", 1)
            denied = s.call("listen", "127.0.0.5:0")
            lh = s.ok("listen", "127.0.0.6:0")
            return [denied[0], s.ok("local_addr", lh)]

        err, addr = self.session_as(3600, eta)
        self.assertEqual(err[0], "EPOLICY")
        self.assertIn("policy.conf", err[1])
        self.assertTrue(addr.startswith("127.0.0.6:"))
        d = self.last_decision(tenant="eta", host="127.0.0.5:0")
        self.assertEqual(d["verdict"], "deny")
        self.assertEqual(d["reason"], "rule")
        self.assertGreater(d["port"], 0)
        # The log names the port the system chose.
        d = self.last_decision(tenant="eta", host="127.0.0.6:0")
        self.assertEqual(d["verdict"], "allow")
        self.assertEqual(d["port"], int(addr.rsplit(":", 1)[1]))
        self.assertTrue(d["rule"].endswith("policy.conf:%d" % self.line_of(
            "listen allow 127.0.0.0/8:0")))

    def test_match_gid_takes_supplementary_groups(self):
        port = self.echo.port

        def hello(s):
            err, info = s.call("hello", 1)
            if err is not None:
                return err[0]
            return [info["tenant"],
                    code(s.call("connect", "127.0.0.1", port))]

        # Primary gid 3900, in group 4242 only as a supplementary group.
        path = self.broker.socket
        self.assertEqual(as_uid(3900, lambda: hello(Session(path, False)),
                                groups=[4242]), ["lambda", None])
        # Without the group, no tenant matches.
        self.assertEqual(as_uid(3900, lambda: hello(Session(path, False))),
                         "EPOLICY")

    def test_failed_listen_is_logged_as_failed(self):
        port = self.echo.port

        def kappa(s):
            s.ok("hello", 1)
            return s.call("listen", "127.0.0.1:%d" % port)[0]

        err = self.session_as(3800, kappa)
        self.assertEqual(err[0], "EADDRINUSE")
        d = self.last_decision(tenant="kappa", action="listen")
        self.assertEqual(d["verdict"], "deny")
        self.assertEqual(d["reason"], "error")
        self.assertIsNone(d["address"])

    def test_refused_connects_spend_no_rate(self):
        port = self.echo.port

        def iota(s):
            s.ok("hello", 1)
            time.sleep(1.1)     # whatever the bucket held, it is full now
            h = s.ok("connect", "127.0.0.1", port)
            refused = [code(s.call("connect", "127.0.0.1", port))
                       for _ in range(10)]
            s.ok("close", h)
            later = []
            for _ in range(4):
                err, h = s.call("connect", "127.0.0.1", port)
                later.append(None if err is None else err[0])
                if err is None:
                    s.ok("close", h)
            return refused, later

        refused, later = self.session_as(3700, iota)
        # Over the connections limit: refused, and no rate spent on it,
        # so four of the five connections a second are still there.
        self.assertEqual(refused, ["EQUOTA"] * 10)
        self.assertEqual(later, [None] * 4)

    def test_failed_lookup_is_logged(self):
        port = self.echo.port

        def alpha(s):
            s.ok("hello", 1)
            return s.call("connect", "missing.looptest.test", port)[0]

        err = self.session_as(2500, alpha)
        self.assertIn(err[0], ("ENOTFOUND", "ERESOLVE"))
        d = self.last_decision(tenant="alpha", host="missing.looptest.test")
        self.assertEqual(d["verdict"], "deny")
        self.assertEqual(d["reason"], "dns")

    def test_timeout_while_resolving_is_logged(self):
        port = self.echo.port
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            silent.bind(DNS_SILENT)     # takes queries, answers none

            def alpha(s):
                s.ok("hello", 1)
                return s.call("connect_timeout", "slow.looptest.test",
                              port, 200)[0]

            err = self.session_as(2600, alpha)
        finally:
            silent.close()
        self.assertEqual(err[0], "ETIMEDOUT")
        d = self.last_decision(tenant="alpha", host="slow.looptest.test")
        self.assertEqual(d["verdict"], "deny")
        self.assertEqual(d["reason"], "timeout")
        self.assertIsNone(d["address"])

    def test_accept_rules_filter_peers(self):
        def zeta(s):
            s.ok("hello", 1)
            lh = s.ok("listen", "127.0.0.1:0")
            port = int(s.ok("local_addr", lh).rsplit(":", 1)[1])
            s.ok("set_timeout_ms", lh, 3000)
            pending = s.send("accept", lh)
            # From 127.0.0.1: refused, closed by the broker.
            bad = socket.create_connection(("127.0.0.1", port), TIMEOUT)
            bad.settimeout(TIMEOUT)
            closed = bad.recv(10) == b""
            bad.close()
            # From 127.0.0.2: handed over.
            good = socket.socket()
            good.bind(("127.0.0.2", 0))
            good.settimeout(TIMEOUT)
            good.connect(("127.0.0.1", port))
            reply = s.receive()
            good.close()
            return [closed, reply[1] == pending, reply[2]]

        closed, same, err = self.session_as(3400, zeta)
        self.assertTrue(closed)
        self.assertTrue(same)
        self.assertIsNone(err)
        d = self.last_decision(tenant="zeta", action="accept",
                               host="127.0.0.1")
        self.assertEqual(d["verdict"], "deny")
        d = self.last_decision(tenant="zeta", action="accept",
                               host="127.0.0.2")
        self.assertEqual(d["verdict"], "allow")

    # Reload.

    def reload(self, text):
        """Sends SIGHUP; True if the broker took the policy."""
        def counts():
            with open(self.broker.log) as f:
                log = f.read()
            return log.count("policy reloaded"), log.count("reload refused")
        before = counts()
        self.broker.write_policy(text)
        os.kill(self.broker.proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            now = counts()
            if now[0] > before[0]:
                return True
            if now[1] > before[1]:
                return False
            time.sleep(0.01)
        self.fail("the broker did not answer SIGHUP")

    def test_reload_changes_new_decisions_keeps_connections(self):
        port = self.echo.port
        s = Session(self.broker.socket)
        self.addCleanup(s.close)
        h = s.ok("connect", "127.0.0.1", port)
        try:
            # root loses loopback: new connects are denied...
            self.assertTrue(self.reload(self.policy_text.replace(
                "connect allow 127.0.0.1:1024-65535",
                "connect deny 127.0.0.1:1024-65535")))
            self.assertEqual(code(s.call("connect", "127.0.0.1", port)),
                             "EPOLICY")
            # ...and the open connection goes on working.
            s.ok("write_all", h, b"still\n")
            self.assertEqual(s.ok("read_line", h, 100), b"still")
            # A broken file keeps the policy that runs.
            self.assertFalse(self.reload("tenant broken {\n"))
            self.assertEqual(code(s.call("connect", "127.0.0.1", port)),
                             "EPOLICY")
        finally:
            self.assertTrue(self.reload(self.policy_text))
        self.assertIsNone(code(s.call("connect", "127.0.0.1", port)))

    # The decision log.

    def test_decision_log_fields(self):
        port = self.echo.port
        s = Session(self.broker.socket)
        h = s.ok("connect", "localhost", port)
        s.ok("write_all", h, b"12345\n")
        s.ok("read_line", h, 100)
        s.ok("close", h)
        s.close()
        d = self.last_decision(event="decision", host="localhost",
                               tenant="root")
        for key in ("time", "tenant", "uid", "pid", "session", "action",
                    "host", "port", "addresses", "address", "verdict",
                    "report", "rule", "reason"):
            self.assertIn(key, d)
        self.assertEqual(d["pid"], os.getpid())
        self.assertEqual(d["port"], port)
        self.assertEqual(d["action"], "connect")
        self.assertRegex(d["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        closed = self.last_decision(event="close", tenant="root")
        self.assertEqual(closed["bytes_out"], 6)
        self.assertEqual(closed["bytes_in"], 6)
        self.assertGreaterEqual(closed["duration_ms"], 0)
        self.assertEqual(closed["peer"], "127.0.0.1:%d" % port)

    # The administrator's tools.

    def test_check_and_explain(self):
        policy = os.path.join(self.broker.dir, "check.conf")
        with open(policy, "w") as f:
            f.write("tenant t {\n"
                    "    match uid 100\n"
                    "    connect allow 10.0.0.0/8:443\n"
                    "    connect deny  10.0.0.0/8:*\n"
                    "    connect allow api.example.test:443\n"
                    "}\n")
        out = subprocess.run([BROKER, "--check", policy], capture_output=True,
                             text=True, timeout=TIMEOUT)
        self.assertEqual(out.returncode, 0)
        self.assertIn("check.conf:3:5: warning:", out.stderr)
        self.assertIn("deny rule at line 4", out.stderr)
        out = subprocess.run([BROKER, "--explain", policy, "--uid", "100",
                              "connect", "10.1.2.3:443"],
                             capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(out.returncode, 1)
        self.assertIn('tenant "t"', out.stdout)
        self.assertIn("check.conf:4", out.stdout)
        out = subprocess.run([BROKER, "--explain", policy, "--uid", "101",
                              "connect", "10.1.2.3:443"],
                             capture_output=True, text=True, timeout=TIMEOUT)
        self.assertIn("no tenant matches", out.stdout)
        # Whose request it is must be said, as a number.
        for uid_args in ([], ["--uid", "abc"], ["--uid", "-1"]):
            out = subprocess.run([BROKER, "--explain", policy] + uid_args +
                                 ["connect", "10.1.2.3:443"],
                                 capture_output=True, text=True,
                                 timeout=TIMEOUT)
            self.assertEqual(out.returncode, 2, uid_args)
        # A name is resolved and decided as the broker does it: here in
        # the broker's mount namespace, with its /etc/hosts.
        port = self.echo.port
        out = subprocess.run(self.wrap + [BROKER, "--explain",
                             self.broker.policy, "--uid", "2000", "connect",
                             "looptest.test:%d" % port],
                             capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("127.0.0.1: allow", out.stdout)
        out = subprocess.run(self.wrap + [BROKER, "--explain",
                             self.broker.policy, "--uid", "3000", "connect",
                             "looptest.test:%d" % port],
                             capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        self.assertIn("127.0.0.1: deny by the internal range 127.0.0.0/8",
                      out.stdout)
        broken = os.path.join(self.broker.dir, "broken.conf")
        with open(broken, "w") as f:
            f.write("tenant t {\n    match uid 1\n    connect allow example.test\n}\n")
        out = subprocess.run([BROKER, "--check", broken], capture_output=True,
                             text=True, timeout=TIMEOUT)
        self.assertEqual(out.returncode, 1)
        self.assertIn("broken.conf:3:", out.stderr)
        self.assertIn("needs a port", out.stderr)


if __name__ == "__main__":
    BROKER = sys.argv.pop(1)
    unittest.main(verbosity=2)
