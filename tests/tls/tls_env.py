#!/usr/bin/python3
"""tls_env.py -- COMMAND ARGS...

Makes a CA and certificates with the openssl command line in a new
temporary directory, starts TLS servers on 127.0.0.1 in threads of this
process (listening before COMMAND starts: no waiting), runs COMMAND with
what follows in its environment, and exits with its status.

  TLS_DIR            ca.pem; server.pem/.key for localhost and 127.0.0.1
                     signed by it; client.pem/.key, a client certificate
                     signed by it; other-ca.pem, another CA
  TLS_ECHO_PORT      server.pem; echoes; ALPN: prefers "x-echo", then
                     "http/1.1"
  TLS_EXPIRED_PORT   a certificate of the CA that expired in 2020
  TLS_UNKNOWN_PORT   a certificate for localhost by the other CA
  TLS_STARTTLS_PORT  sends "220 ready\\r\\n", wants "STARTTLS\\r\\n",
                     sends "220 go ahead\\r\\n", then TLS and echoes
  TLS_HALFWAY_PORT   reads the ClientHello, then closes
  TLS_HTTPS_PORT     HTTPS/1.0: GET / is a small page, GET /large 1 MiB
                     of the bytes 0..255 over and over, else 404
  TLS_MTLS_PORT      as TLS_ECHO_PORT, but wants a client certificate
                     of the CA
  TLS_DIAL_PORT      takes "PORT [ALPN]\\n", dials 127.0.0.1:PORT with
                     TLS (the CA, name localhost), sends "ping\\n", reads
                     a line and answers "ok LINE ALPN\\n" or
                     "error WHY\\n"
"""
import datetime
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading

CONFIG = """
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = placeholder
[ ca ]
default_ca = test_ca
[ test_ca ]
dir = {dir}
database = {dir}/index-{name}.txt
new_certs_dir = {dir}/new
serial = {dir}/serial-{name}
default_md = sha256
policy = policy_any
unique_subject = no
[ policy_any ]
commonName = supplied
[ v3_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ v3_leaf ]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
"""

IO_TIMEOUT = 30  # seconds a server waits for its peer
COMMAND_TIMEOUT = 600  # seconds COMMAND may run


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stamp(when):
    return when.strftime("%Y%m%d%H%M%SZ")


def make_ca(d, name, cn):
    with open(f"{d}/{name}.cnf", "w") as f:
        f.write(CONFIG.format(dir=d, name=name))
    open(f"{d}/index-{name}.txt", "w").close()
    with open(f"{d}/serial-{name}", "w") as f:
        f.write("1000\n")
    openssl("req", "-config", f"{d}/{name}.cnf", "-x509", "-new",
            "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{d}/{name}.key", "-out", f"{d}/{name}.pem",
            "-subj", f"/CN={cn}", "-days", "30", "-extensions", "v3_ca")


def make_leaf(d, ca, name, start, end):
    openssl("req", "-config", f"{d}/{ca}.cnf", "-new", "-newkey", "ec",
            "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{d}/{name}.key", "-out", f"{d}/{name}.csr",
            "-subj", "/CN=localhost")
    openssl("ca", "-config", f"{d}/{ca}.cnf", "-batch", "-notext",
            "-cert", f"{d}/{ca}.pem", "-keyfile", f"{d}/{ca}.key",
            "-in", f"{d}/{name}.csr", "-out", f"{d}/{name}.pem",
            "-startdate", stamp(start), "-enddate", stamp(end),
            "-extensions", "v3_leaf")


def make_certificates(d):
    os.mkdir(f"{d}/new")
    now = datetime.datetime.now(datetime.timezone.utc)
    day = datetime.timedelta(days=1)
    make_ca(d, "ca", "tcpbroker test CA")
    make_ca(d, "other-ca", "an unknown CA")
    make_leaf(d, "ca", "server", now - day, now + 30 * day)
    make_leaf(d, "ca", "client", now - day, now + 30 * day)
    make_leaf(d, "ca", "expired",
              datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc),
              datetime.datetime(2020, 2, 1, tzinfo=datetime.timezone.utc))
    make_leaf(d, "other-ca", "unknown", now - day, now + 30 * day)


def server_context(d, name, alpn=None, client_ca=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(f"{d}/{name}.pem", f"{d}/{name}.key")
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if client_ca:
        ctx.load_verify_locations(client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def read_line(conn):
    line = b""
    while not line.endswith(b"\n") and len(line) < 4096:
        b = conn.recv(1)
        if not b:
            break
        line += b
    return line


def echo(conn):
    while True:
        data = conn.recv(65536)
        if not data:
            break
        conn.sendall(data)


def serve_tls_echo(ctx):
    def handle(sock):
        with ctx.wrap_socket(sock, server_side=True) as conn:
            echo(conn)
    return handle


def serve_starttls(ctx):
    def handle(sock):
        sock.sendall(b"220 ready\r\n")
        if read_line(sock) != b"STARTTLS\r\n":
            sock.sendall(b"500 say STARTTLS\r\n")
            sock.close()
            return
        sock.sendall(b"220 go ahead\r\n")
        with ctx.wrap_socket(sock, server_side=True) as conn:
            echo(conn)
    return handle


def serve_halfway(sock):
    sock.recv(4096)
    sock.close()


PAGE = (b"<html><head><title>tcpbroker</title></head>"
        b"<body><p>Hello over TLS through the broker.</p></body></html>\n")


# 1 MiB: many records, past the receive window and the plaintext room.
LARGE = bytes(range(256)) * 4096


def serve_https(ctx):
    def handle(sock):
        with ctx.wrap_socket(sock, server_side=True) as conn:
            request = read_line(conn).split()
            while read_line(conn).strip():
                pass
            if len(request) >= 2 and request[0] == b"GET" and \
                    request[1] == b"/":
                head = b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n"
                body = PAGE
            elif len(request) >= 2 and request[0] == b"GET" and \
                    request[1] == b"/large":
                head = b"HTTP/1.0 200 OK\r\n"
                body = LARGE
            else:
                head = b"HTTP/1.0 404 Not Found\r\n"
                body = b"not found\n"
            conn.sendall(head + b"Content-Length: %d\r\n\r\n" % len(body) +
                         body)
            conn.unwrap()
    return handle


def serve_dial(d):
    def handle(sock):
        words = read_line(sock).decode().split()
        try:
            ctx = ssl.create_default_context(cafile=f"{d}/ca.pem")
            if len(words) > 1:
                ctx.set_alpn_protocols(words[1:])
            raw = socket.create_connection(("127.0.0.1", int(words[0])),
                                           timeout=IO_TIMEOUT)
            with ctx.wrap_socket(raw, server_hostname="localhost") as conn:
                conn.sendall(b"ping\n")
                line = read_line(conn).decode().strip()
                alpn = conn.selected_alpn_protocol() or "-"
            sock.sendall(f"ok {line} {alpn}\n".encode())
        except Exception as e:  # the test reads why
            sock.sendall(f"error {e}\n".encode())
        sock.close()
    return handle


def listen(handler):
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(64)

    def run(sock):
        sock.settimeout(IO_TIMEOUT)
        try:
            handler(sock)
        except (OSError, ssl.SSLError):
            pass  # the tests make handshakes fail on purpose
        finally:
            sock.close()

    def accept():
        while True:
            sock, _ = lsock.accept()
            threading.Thread(target=run, args=(sock,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return str(lsock.getsockname()[1])


def main():
    if len(sys.argv) < 3 or sys.argv[1] != "--":
        sys.exit("usage: tls_env.py -- COMMAND ARGS...")
    d = tempfile.mkdtemp(prefix="tb-tls-")
    try:
        make_certificates(d)
        env = dict(os.environ)
        env["TLS_DIR"] = d
        env["TLS_ECHO_PORT"] = listen(serve_tls_echo(
            server_context(d, "server", alpn=["x-echo", "http/1.1"])))
        env["TLS_EXPIRED_PORT"] = listen(serve_tls_echo(
            server_context(d, "expired")))
        env["TLS_UNKNOWN_PORT"] = listen(serve_tls_echo(
            server_context(d, "unknown")))
        env["TLS_STARTTLS_PORT"] = listen(serve_starttls(
            server_context(d, "server")))
        env["TLS_HALFWAY_PORT"] = listen(serve_halfway)
        env["TLS_HTTPS_PORT"] = listen(serve_https(
            server_context(d, "server")))
        env["TLS_MTLS_PORT"] = listen(serve_tls_echo(
            server_context(d, "server", client_ca=f"{d}/ca.pem")))
        env["TLS_DIAL_PORT"] = listen(serve_dial(d))
        sys.stdout.flush()
        rc = subprocess.run(sys.argv[2:], env=env,
                            timeout=COMMAND_TIMEOUT).returncode
    finally:
        shutil.rmtree(d, ignore_errors=True)
    sys.exit(rc if rc >= 0 else 128 - rc)


if __name__ == "__main__":
    main()
