/*
 * TLS in the client library through a real broker, against Python's
 * ssl servers on loopback (tests/tls/tls_env.py, which runs this test
 * and names its servers and certificates in the environment).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static struct broker_proc	broker;
static char			ca[256], cert[256], key[256], client_cert[256],
				client_key[256], other_ca[256];

static uint16_t
port_of(const char *name)
{
	const char	*v = getenv(name);

	if (v == NULL)
		fail_msg("%s is not set: run this under tests/tls/tls_env.py",
		    name);
	return (uint16_t)atoi(v);
}

static int
setup(void **state)
{
	const char	*d = getenv("TLS_DIR");

	(void)state;
	if (d == NULL)
		fail_msg("TLS_DIR is not set: run this under tls_env.py");
	snprintf(ca, sizeof(ca), "%s/ca.pem", d);
	snprintf(other_ca, sizeof(other_ca), "%s/other-ca.pem", d);
	snprintf(cert, sizeof(cert), "%s/server.pem", d);
	snprintf(key, sizeof(key), "%s/server.key", d);
	snprintf(client_cert, sizeof(client_cert), "%s/client.pem", d);
	snprintf(client_key, sizeof(client_key), "%s/client.key", d);
	harness_broker_start(&broker, HARNESS_POLICY);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	assert_int_equal(harness_broker_stop(&broker), 0);
	return 0;
}

/* Checks that a TLS connection echoes a line and a large payload. */
static void
check_echo(tb_client *c, tb_handle h)
{
	struct tb_error	 err;
	char		 line[64];
	uint8_t		*out, *in;
	size_t		 n, i, total = 200000;

	assert_ok(tb_write_all(c, h, "hello over tls\n", 15, &err), &err);
	assert_ok(tb_read_line(c, h, line, sizeof(line), &n, &err), &err);
	assert_string_equal(line, "hello over tls");

	/* Many records both ways, past one receive window. */
	out = malloc(total);
	in = malloc(total);
	for (i = 0; i < total; i++)
		out[i] = (uint8_t)(i * 7 + i / 251);
	for (i = 0; i < total; i += 20000) {
		assert_ok(tb_write_all(c, h, out + i, 20000, &err), &err);
		assert_ok(tb_read_exact(c, h, in + i, 20000, &err), &err);
	}
	assert_memory_equal(in, out, total);
	free(out);
	free(in);
}

static void
test_handshake_and_echo(void **state)
{
	tb_client		*c = harness_client(&broker);
	struct tb_tls_options	 o = { .ca_file = ca };
	struct tb_error		 err;
	char			 alpn[TB_TLS_ALPN_STRLEN];
	tb_handle		 h;

	(void)state;
	/* The certificate's IP address is checked: the default name. */
	assert_ok(tb_tls_connect(c, "127.0.0.1", port_of("TLS_ECHO_PORT"), &o,
	    &h, &err), &err);
	check_echo(c, h);
	assert_ok(tb_tls_alpn(c, h, alpn, sizeof(alpn), &err), &err);
	assert_string_equal(alpn, "");
	assert_ok(tb_close(c, h, &err), &err);
	assert_ok(tb_close(c, h, &err), &err);	/* twice: nothing */
	tb_client_close(c);
}

static void
test_server_name_and_alpn(void **state)
{
	tb_client		*c = harness_client(&broker);
	const char		*protocols[] = { "h2", "x-echo", NULL };
	struct tb_tls_options	 o = { .ca_file = ca,
				    .server_name = "localhost",
				    .alpn = protocols };
	struct tb_error		 err;
	char			 alpn[TB_TLS_ALPN_STRLEN], buf[16];
	bool			 ready;
	size_t			 n;
	tb_handle		 h;

	(void)state;
	assert_ok(tb_tls_connect(c, "127.0.0.1", port_of("TLS_ECHO_PORT"), &o,
	    &h, &err), &err);
	assert_ok(tb_tls_alpn(c, h, alpn, sizeof(alpn), &err), &err);
	assert_string_equal(alpn, "x-echo");
	/* select sees decrypted data; peek keeps it. */
	assert_ok(tb_write_all(c, h, "abc", 3, &err), &err);
	assert_ok(tb_select(c, &h, 1, &ready, 10000, &n, &err), &err);
	assert_true(ready);
	assert_ok(tb_read_exact(c, h, buf, 1, &err), &err);
	assert_ok(tb_peek(c, h, buf, sizeof(buf), &n, &err), &err);
	assert_ok(tb_read_until(c, h, 'c', buf, sizeof(buf), &n, &err), &err);
	assert_int_equal(n, 2);
	assert_memory_equal(buf, "bc", 2);
	/* A read time-out leaves the connection usable. */
	assert_ok(tb_set_timeout_ms(c, h, 200, &err), &err);
	assert_rc(tb_read(c, h, buf, sizeof(buf), &n, &err), TB_ETIMEDOUT,
	    &err);
	assert_ok(tb_write_all(c, h, "z", 1, &err), &err);
	assert_ok(tb_read(c, h, buf, sizeof(buf), &n, &err), &err);
	assert_int_equal(n, 1);
	/* close_notify on shutdown: the server ends, so does our read. */
	assert_ok(tb_write_all(c, h, "last", 4, &err), &err);
	assert_ok(tb_shutdown(c, h, TB_SHUTDOWN_WRITE, &err), &err);
	assert_rc(tb_write_all(c, h, "x", 1, &err), TB_EPIPE, &err);
	assert_ok(tb_set_timeout_ms(c, h, 10000, &err), &err);
	assert_ok(tb_read_all(c, h, buf, sizeof(buf), &n, &err), &err);
	assert_int_equal(n, 4);
	assert_memory_equal(buf, "last", 4);
	assert_ok(tb_close(c, h, &err), &err);
	tb_client_close(c);
}

/* A handshake that must fail with TB_ETLS saying why. */
static void
expect_tls_failure(const char *port, const struct tb_tls_options *o,
    const char *why)
{
	tb_client	*c = harness_client(&broker);
	struct tb_error	 err;
	tb_handle	 h = 0;

	assert_rc(tb_tls_connect(c, "127.0.0.1", port_of(port), o, &h, &err),
	    TB_ETLS, &err);
	print_message("%s\n", err.message);
	if (strstr(err.message, why) == NULL)
		fail_msg("\"%s\" does not say \"%s\"", err.message, why);
	assert_int_equal(h, 0);
	tb_client_close(c);
}

static void
test_wrong_name(void **state)
{
	struct tb_tls_options	o = { .ca_file = ca,
				    .server_name = "wrong.example" };

	(void)state;
	expect_tls_failure("TLS_ECHO_PORT", &o, "name mismatch");
}

static void
test_unknown_ca(void **state)
{
	struct tb_tls_options	o = { .ca_file = ca };
	struct tb_tls_options	system = { .server_name = "localhost" };
	struct tb_tls_options	other = { .ca_file = other_ca };

	(void)state;
	expect_tls_failure("TLS_UNKNOWN_PORT", &o, "unknown CA");
	/* Verification is on by default, with the system's CAs. */
	expect_tls_failure("TLS_ECHO_PORT", &system, "unknown CA");
	expect_tls_failure("TLS_ECHO_PORT", &other, "unknown CA");
}

static void
test_expired(void **state)
{
	struct tb_tls_options	o = { .ca_file = ca };

	(void)state;
	expect_tls_failure("TLS_EXPIRED_PORT", &o, "certificate has expired");
}

static void
test_insecure_no_verify(void **state)
{
	tb_client		*c = harness_client(&broker);
	struct tb_tls_options	 o = { .insecure_no_verify = true };
	struct tb_error		 err;
	tb_handle		 h;

	(void)state;
	assert_ok(tb_tls_connect(c, "127.0.0.1", port_of("TLS_UNKNOWN_PORT"),
	    &o, &h, &err), &err);
	check_echo(c, h);
	assert_ok(tb_close(c, h, &err), &err);
	tb_client_close(c);
}

static void
test_peer_closes_mid_handshake(void **state)
{
	struct tb_tls_options	o = { .ca_file = ca };

	(void)state;
	expect_tls_failure("TLS_HALFWAY_PORT", &o,
	    "the peer closed the connection during the handshake");
}

static void
test_starttls(void **state)
{
	tb_client		*c = harness_client(&broker);
	struct tb_tls_options	 o = { .ca_file = ca };
	struct tb_error		 err;
	char			 line[64];
	size_t			 n;
	tb_handle		 h;

	(void)state;
	assert_ok(tb_connect(c, "127.0.0.1", port_of("TLS_STARTTLS_PORT"), &h,
	    &err), &err);
	assert_ok(tb_read_line(c, h, line, sizeof(line), &n, &err), &err);
	assert_string_equal(line, "220 ready");
	/* A client upgrade must know the name to verify. */
	assert_rc(tb_tls_upgrade(c, h, &o, &err), TB_EINVAL, &err);
	assert_ok(tb_write_all(c, h, "STARTTLS\r\n", 10, &err), &err);
	assert_ok(tb_read_line(c, h, line, sizeof(line), &n, &err), &err);
	assert_string_equal(line, "220 go ahead");
	o.server_name = "localhost";
	assert_ok(tb_tls_upgrade(c, h, &o, &err), &err);
	check_echo(c, h);
	assert_rc(tb_tls_upgrade(c, h, &o, &err), TB_EINVAL, &err);
	assert_ok(tb_close(c, h, &err), &err);
	tb_client_close(c);
}

/* Asks the dialer to connect to port with TLS; returns its answer. */
static tb_handle
dial(tb_client *c, uint16_t port, const char *alpn)
{
	struct tb_error	err;
	char		req[64];
	tb_handle	d;

	assert_ok(tb_connect(c, "127.0.0.1", port_of("TLS_DIAL_PORT"), &d,
	    &err), &err);
	snprintf(req, sizeof(req), "%u %s\n", port, alpn);
	assert_ok(tb_write_all(c, d, req, strlen(req), &err), &err);
	return d;
}

static void
test_listener(void **state)
{
	tb_client		*c = harness_client(&broker);
	const char		*protocols[] = { "x-test", "http/1.1", NULL };
	struct tb_tls_options	 o = { .server = true, .certificate = cert,
				    .key = key, .alpn = protocols };
	struct tb_error		 err;
	char			 addr[TB_ADDR_STRLEN], host[TB_ADDR_STRLEN];
	char			 line[128], alpn[TB_TLS_ALPN_STRLEN];
	uint16_t		 port;
	size_t			 n;
	tb_handle		 l, h, d;

	(void)state;
	assert_ok(tb_listen(c, "127.0.0.1:0", &l, &err), &err);
	assert_ok(tb_local_addr(c, l, addr, sizeof(addr), &err), &err);
	assert_ok(tb_addr_split(addr, host, sizeof(host), &port, &err), &err);
	d = dial(c, port, "x-test");
	assert_ok(tb_tls_accept(c, l, &o, &h, &err), &err);
	assert_ok(tb_tls_alpn(c, h, alpn, sizeof(alpn), &err), &err);
	assert_string_equal(alpn, "x-test");
	assert_ok(tb_read_line(c, h, line, sizeof(line), &n, &err), &err);
	assert_string_equal(line, "ping");
	assert_ok(tb_write_all(c, h, "pong\n", 5, &err), &err);
	assert_ok(tb_read_line(c, d, line, sizeof(line), &n, &err), &err);
	assert_string_equal(line, "ok pong x-test");
	assert_ok(tb_close(c, h, &err), &err);
	assert_ok(tb_close(c, d, &err), &err);

	/* A server option needs its certificate and key. */
	o.key = NULL;
	assert_rc(tb_tls_accept(c, l, &o, &h, &err), TB_EINVAL, &err);
	assert_ok(tb_close(c, l, &err), &err);
	tb_client_close(c);
}

/* Both ends ours: a TLS listener echoing, in a thread of its own session. */
struct echo_server {
	tb_client			*c;
	tb_handle			 l;
	const struct tb_tls_options	*o;
	struct tb_error			 err;
	int				 rc;
};

static void *
tls_echo_server(void *arg)
{
	struct echo_server	*s = arg;
	uint8_t			 buf[8192];
	size_t			 n;
	tb_handle		 h;

	if ((s->rc = tb_tls_accept(s->c, s->l, s->o, &h, &s->err)) != 0)
		return NULL;
	while ((s->rc = tb_read(s->c, h, buf, sizeof(buf), &n,
	    &s->err)) == 0 && n > 0)
		if ((s->rc = tb_write_all(s->c, h, buf, n, &s->err)) != 0)
			break;
	if (s->rc == 0)
		s->rc = tb_close(s->c, h, &s->err);
	return NULL;
}

static void
test_both_ends_ours(void **state)
{
	tb_client		*c = harness_client(&broker);
	struct tb_tls_options	 so = { .server = true, .certificate = cert,
				    .key = key };
	struct tb_tls_options	 co = { .ca_file = ca,
				    .server_name = "localhost" };
	struct echo_server	 s = { harness_client(&broker), 0, &so,
				    { 0, "" }, -1 };
	struct tb_error		 err;
	char			 addr[TB_ADDR_STRLEN], host[TB_ADDR_STRLEN];
	uint8_t			 buf[4];
	uint16_t		 port;
	pthread_t		 t;
	size_t			 n;
	tb_handle		 h;

	(void)state;
	assert_ok(tb_listen(s.c, "127.0.0.1:0", &s.l, &err), &err);
	assert_ok(tb_local_addr(s.c, s.l, addr, sizeof(addr), &err), &err);
	assert_ok(tb_addr_split(addr, host, sizeof(host), &port, &err), &err);
	assert_int_equal(pthread_create(&t, NULL, tls_echo_server, &s), 0);
	assert_ok(tb_tls_connect(c, "127.0.0.1", port, &co, &h, &err), &err);
	check_echo(c, h);
	/* close_notify ends the server's reads; it closes, we see the end. */
	assert_ok(tb_shutdown(c, h, TB_SHUTDOWN_WRITE, &err), &err);
	assert_ok(tb_read_all(c, h, buf, sizeof(buf), &n, &err), &err);
	assert_int_equal(n, 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_rc(s.rc, 0, &s.err);
	assert_ok(tb_close(c, h, &err), &err);
	assert_ok(tb_close(s.c, s.l, &err), &err);
	tb_client_close(s.c);
	tb_client_close(c);
}

struct writer {
	tb_client	*c;
	tb_handle	 h;
	char		 byte;
	int		 rc;
};

static void *
write_many(void *arg)
{
	struct writer	*w = arg;
	struct tb_error	 err;
	char		 buf[1000];
	int		 i;

	memset(buf, w->byte, sizeof(buf));
	for (i = 0; i < 100 && w->rc == 0; i++)
		w->rc = tb_write_all(w->c, w->h, buf, sizeof(buf), &err);
	return NULL;
}

/* Two threads write one TLS connection: records still go out in order. */
static void
test_threads_write(void **state)
{
	tb_client		*c = harness_client(&broker);
	struct tb_tls_options	 o = { .ca_file = ca };
	struct tb_error		 err;
	struct writer		 w[2];
	pthread_t		 t[2];
	char			*in = malloc(200000);
	size_t			 i, a = 0;
	tb_handle		 h;

	(void)state;
	assert_ok(tb_tls_connect(c, "127.0.0.1", port_of("TLS_ECHO_PORT"), &o,
	    &h, &err), &err);
	for (i = 0; i < 2; i++) {
		w[i] = (struct writer){ c, h, i == 0 ? 'a' : 'b', 0 };
		assert_int_equal(pthread_create(&t[i], NULL, write_many, &w[i]),
		    0);
	}
	assert_ok(tb_read_exact(c, h, in, 200000, &err), &err);
	for (i = 0; i < 2; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(w[i].rc, 0);
	}
	for (i = 0; i < 200000; i++)
		a += in[i] == 'a';
	assert_int_equal(a, 100000);
	free(in);
	assert_ok(tb_close(c, h, &err), &err);
	tb_client_close(c);
}

static void
test_client_certificate(void **state)
{
	tb_client		*c = harness_client(&broker);
	struct tb_tls_options	 o = { .ca_file = ca,
				    .certificate = client_cert,
				    .key = client_key };
	struct tb_tls_options	 none = { .ca_file = ca };
	struct tb_error		 err, cerr;
	char			 buf[8];
	size_t			 n;
	int			 rc;
	tb_handle		 h;

	(void)state;
	assert_ok(tb_tls_connect(c, "127.0.0.1", port_of("TLS_MTLS_PORT"), &o,
	    &h, &err), &err);
	check_echo(c, h);
	assert_ok(tb_close(c, h, &err), &err);
	/*
	 * Without one, TLS 1.3 fails after the client's handshake: the
	 * server's alert comes with the first read.
	 */
	rc = tb_tls_connect(c, "127.0.0.1", port_of("TLS_MTLS_PORT"), &none,
	    &h, &err);
	if (rc == 0) {
		assert_ok(tb_set_timeout_ms(c, h, 10000, &err), &err);
		rc = tb_read(c, h, buf, sizeof(buf), &n, &err);
		assert_ok(tb_close(c, h, &cerr), &cerr);
	}
	assert_int_equal(rc, TB_ETLS);
	if (strstr(err.message, "certificate required") == NULL)
		fail_msg("\"%s\" does not say why", err.message);
	tb_client_close(c);
}

static void
test_bad_options(void **state)
{
	tb_client		*c = harness_client(&broker);
	struct tb_tls_options	 missing = { .ca_file = "/nonexistent/ca.pem" };
	struct tb_tls_options	 nokey = { .ca_file = ca, .certificate = cert };
	struct tb_tls_options	 noname = { .ca_file = ca, .server_name = "" };
	const char		*empty[] = { "", NULL };
	struct tb_tls_options	 badalpn = { .ca_file = ca, .alpn = empty };
	struct tb_error		 err;
	tb_handle		 h;
	uint16_t		 port = port_of("TLS_ECHO_PORT");

	(void)state;
	assert_rc(tb_tls_connect(c, "127.0.0.1", port, &missing, &h, &err),
	    TB_EINVAL, &err);
	if (strstr(err.message, "No such file or directory") == NULL)
		fail_msg("\"%s\" does not say why", err.message);
	assert_rc(tb_tls_connect(c, "127.0.0.1", port, &nokey, &h, &err),
	    TB_EINVAL, &err);
	assert_rc(tb_tls_connect(c, "127.0.0.1", port, &noname, &h, &err),
	    TB_EINVAL, &err);
	assert_rc(tb_tls_connect(c, "127.0.0.1", port, &badalpn, &h, &err),
	    TB_EINVAL, &err);
	/* No options: the defaults, which verify (with the system's CAs). */
	assert_rc(tb_tls_connect(c, "127.0.0.1", port, NULL, &h, &err),
	    TB_ETLS, &err);
	assert_rc(tb_tls_accept(c, 1, NULL, &h, &err), TB_EINVAL, &err);
	assert_string_equal(tb_err_name(TB_ETLS), "ETLS");
	tb_client_close(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handshake_and_echo),
		cmocka_unit_test(test_server_name_and_alpn),
		cmocka_unit_test(test_wrong_name),
		cmocka_unit_test(test_unknown_ca),
		cmocka_unit_test(test_expired),
		cmocka_unit_test(test_insecure_no_verify),
		cmocka_unit_test(test_peer_closes_mid_handshake),
		cmocka_unit_test(test_starttls),
		cmocka_unit_test(test_listener),
		cmocka_unit_test(test_both_ends_ours),
		cmocka_unit_test(test_threads_write),
		cmocka_unit_test(test_client_certificate),
		cmocka_unit_test(test_bad_options),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
