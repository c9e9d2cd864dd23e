/*
 * TLS for scripts: OpenSSL's libssl runs here, in the client library,
 * over a connection's stream.  The broker stays a byte relay: it never
 * parses TLS and never sees keys or plaintext, and every record still
 * crosses it under the policy.
 *
 * OpenSSL because it is everywhere (Debian's libssl3), its memory BIOs
 * fit a buffered stream, it reads the system CA store
 * (SSL_CTX_set_default_verify_paths) and checks host names itself
 * (SSL_set1_host).  The engine reads records from one memory BIO, fed
 * by the session's reader as the broker pushes them, and writes records
 * into another, which the writer empties into send notifications.
 * Decrypted data lands in the stream's own buffer, so the reads of
 * client.c (lines, peeks, time-outs, select) serve TLS unchanged.
 *
 * Every SSL call runs with the session lock held; records are sent
 * without it, by the connection's one writer at a time (`writing`), so
 * that they leave in order.
 */
#include <arpa/inet.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "client.h"
#include "proto.h"
#include "tcpbroker.h"
#include "tls.h"

struct tls {
	SSL		*ssl;
	BIO		*rbio;		/* records from the peer */
	BIO		*wbio;		/* records for the peer */
	bool		 ready;		/* the handshake is done */
	bool		 failed;	/* why says why */
	bool		 peer_end;	/* the broker pushed the end */
	bool		 writing;	/* a writer (or the handshake) sends */
	bool		 notified;	/* close_notify is sent */
	char		 name[PROTO_HOST_NAME_MAX + 1];
	unsigned char	 alpn[CLIENT_TLS_ALPN_MAX];	/* wire form */
	size_t		 alpnlen;
	char		 why[TB_ERROR_MESSAGE_MAX + 1];
};

static int __attribute__((format(printf, 3, 4)))
set_error(struct tb_error *err, int code, const char *fmt, ...)
{
	va_list	ap;

	if (err != NULL) {
		err->code = code;
		va_start(ap, fmt);
		vsnprintf(err->message, sizeof(err->message), fmt, ap);
		va_end(ap);
	}
	return code;
}

static uint64_t
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A deadline ms from now, or 0 (none) for ms 0. */
static uint64_t
deadline_in(uint32_t ms)
{
	return ms == 0 ? 0 : now_ms() + ms;
}

static void __attribute__((format(printf, 2, 3)))
tls_failed(struct tls *t, const char *fmt, ...)
{
	va_list	ap;

	if (t->failed)
		return;
	t->failed = true;
	va_start(ap, fmt);
	vsnprintf(t->why, sizeof(t->why), fmt, ap);
	va_end(ap);
}

/*
 * OpenSSL's reason for the last error on this thread, or the system's
 * when a call failed on a file; then none is left.
 */
static const char *
ssl_reason(void)
{
	unsigned long	 e, last = 0, sys = 0;
	const char	*r;

	while ((e = ERR_get_error()) != 0) {
		if (ERR_SYSTEM_ERROR(e))
			sys = e;
		last = e;
	}
	if (sys != 0)
		return strerror(ERR_GET_REASON(sys));
	r = last != 0 ? ERR_reason_error_string(last) : NULL;
	return r != NULL ? r : "unknown error";
}

/* Why a handshake failed: the verification's reason, else OpenSSL's. */
static void
handshake_failed(struct tls *t)
{
	long		 v = SSL_get_verify_result(t->ssl);
	const char	*why = X509_verify_cert_error_string(v);

	ERR_clear_error();
	switch (v) {
	case X509_V_OK:
		tls_failed(t, "handshake failed: %s", ssl_reason());
		break;
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
		tls_failed(t, "certificate verification failed: %s (unknown "
		    "CA: no authority in ca_file, ca_dir or the system store "
		    "signed it)", why);
		break;
	case X509_V_ERR_HOSTNAME_MISMATCH:
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
		tls_failed(t, "certificate verification failed: %s (the "
		    "certificate is not for %s)", why, t->name);
		break;
	default:
		tls_failed(t, "certificate verification failed: %s", why);
		break;
	}
}

/* A server's ALPN choice: its first protocol the client offers too. */
static int
alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned int inlen, void *arg)
{
	struct tls	*t = arg;
	unsigned char	*chosen;

	(void)ssl;
	if (SSL_select_next_proto(&chosen, outlen, t->alpn,
	    (unsigned int)t->alpnlen, in, inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = chosen;
	return SSL_TLSEXT_ERR_OK;
}

/* Checks the options and packs the ALPN list into t. */
static int
tls_check(struct tls *t, const struct tb_tls_options *o, const char *name,
    struct tb_error *err)
{
	size_t	i, n;

	if (o->server && (o->certificate == NULL || o->key == NULL))
		return set_error(err, TB_EINVAL, "tls: a server needs a "
		    "certificate and its key");
	if ((o->certificate == NULL) != (o->key == NULL))
		return set_error(err, TB_EINVAL, "tls: certificate and key go "
		    "together");
	if (!o->server && !o->insecure_no_verify &&
	    (name == NULL || name[0] == '\0'))
		return set_error(err, TB_EINVAL, "tls: server_name is needed "
		    "to verify the server (or the unsafe insecure_no_verify)");
	if (name != NULL) {
		if (strlen(name) >= sizeof(t->name))
			return set_error(err, TB_EINVAL, "tls: server_name is "
			    "longer than %d bytes", PROTO_HOST_NAME_MAX);
		strcpy(t->name, name);
	}
	for (i = 0; o->alpn != NULL && o->alpn[i] != NULL; i++) {
		n = strlen(o->alpn[i]);
		if (n == 0 || n > 255)
			return set_error(err, TB_EINVAL, "tls: an ALPN "
			    "protocol must be 1 to 255 bytes");
		if (t->alpnlen + 1 + n > sizeof(t->alpn))
			return set_error(err, TB_EINVAL, "tls: the ALPN list "
			    "is longer than %d bytes", CLIENT_TLS_ALPN_MAX);
		t->alpn[t->alpnlen++] = (unsigned char)n;
		memcpy(t->alpn + t->alpnlen, o->alpn[i], n);
		t->alpnlen += n;
	}
	return 0;
}

/* The context of one connection, from its options. */
static int
tls_context(struct tls *t, const struct tb_tls_options *o, SSL_CTX **out,
    struct tb_error *err)
{
	SSL_CTX	*ctx;
	bool	 ca = o->ca_file != NULL || o->ca_dir != NULL;
	int	 mode = SSL_VERIFY_NONE;

	*out = NULL;
	ERR_clear_error();
	if ((ctx = SSL_CTX_new(o->server ? TLS_server_method() :
	    TLS_client_method())) == NULL)
		return set_error(err, TB_ENOMEM, "tls: %s", ssl_reason());
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_max_cert_list(ctx, CLIENT_TLS_CERT_LIST_MAX);
	if (o->server)
		SSL_CTX_set_num_tickets(ctx, 0);	/* no resumption */
	if (ca && SSL_CTX_load_verify_locations(ctx, o->ca_file,
	    o->ca_dir) != 1) {
		SSL_CTX_free(ctx);
		return set_error(err, TB_EINVAL, "tls: cannot load the CAs of "
		    "%s%s%s: %s", o->ca_file != NULL ? o->ca_file : "",
		    o->ca_file != NULL && o->ca_dir != NULL ? " and " : "",
		    o->ca_dir != NULL ? o->ca_dir : "", ssl_reason());
	}
	if (!ca && !o->server && SSL_CTX_set_default_verify_paths(ctx) != 1) {
		SSL_CTX_free(ctx);
		return set_error(err, TB_ETLS, "tls: cannot use the system CA "
		    "store: %s", ssl_reason());
	}
	if (o->certificate != NULL &&
	    (SSL_CTX_use_certificate_chain_file(ctx, o->certificate) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, o->key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1)) {
		SSL_CTX_free(ctx);
		return set_error(err, TB_EINVAL, "tls: cannot use the "
		    "certificate %s with the key %s: %s", o->certificate,
		    o->key, ssl_reason());
	}
	if (!o->insecure_no_verify && (!o->server || ca))
		mode = SSL_VERIFY_PEER | (o->server ?
		    SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0);
	SSL_CTX_set_verify(ctx, mode, NULL);
	if (o->server && t->alpnlen > 0)
		SSL_CTX_set_alpn_select_cb(ctx, alpn_select, t);
	*out = ctx;
	return 0;
}

/* A new TLS state for a connection, before its handshake. */
static int
tls_new(const struct tb_tls_options *o, const char *host, struct tls **out,
    struct tb_error *err)
{
	static const struct tb_tls_options defaults;
	struct tls	*t;
	SSL_CTX		*ctx;
	unsigned char	 ip[16];
	const char	*name;
	int		 rc;

	*out = NULL;
	if (o == NULL)
		o = &defaults;		/* a client, verifying */
	name = o->server_name != NULL ? o->server_name : host;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return set_error(err, TB_ENOMEM, "tls: out of memory");
	if ((rc = tls_check(t, o, o->server ? NULL : name, err)) != 0 ||
	    (rc = tls_context(t, o, &ctx, err)) != 0) {
		free(t);
		return rc;
	}
	t->ssl = SSL_new(ctx);
	SSL_CTX_free(ctx);		/* the SSL keeps a reference */
	t->rbio = BIO_new(BIO_s_mem());
	t->wbio = BIO_new(BIO_s_mem());
	if (t->ssl == NULL || t->rbio == NULL || t->wbio == NULL) {
		BIO_free(t->rbio);
		BIO_free(t->wbio);
		SSL_free(t->ssl);
		free(t);
		return set_error(err, TB_ENOMEM, "tls: %s", ssl_reason());
	}
	SSL_set_bio(t->ssl, t->rbio, t->wbio);
	if (o->server) {
		SSL_set_accept_state(t->ssl);
		*out = t;
		return 0;
	}
	SSL_set_connect_state(t->ssl);
	rc = 1;
	if (t->alpnlen > 0)	/* this one returns 0 on success */
		rc = SSL_set_alpn_protos(t->ssl, t->alpn,
		    (unsigned int)t->alpnlen) == 0;
	if (t->name[0] != '\0' && (inet_pton(AF_INET, t->name, ip) == 1 ||
	    inet_pton(AF_INET6, t->name, ip) == 1))
		rc = rc && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl),
		    t->name) == 1;
	else if (t->name[0] != '\0')	/* SNI never names an address */
		rc = rc && SSL_set_tlsext_host_name(t->ssl, t->name) == 1 &&
		    SSL_set1_host(t->ssl, t->name) == 1;
	if (!rc) {
		tls_free(t);
		return set_error(err, TB_EINVAL, "tls: cannot use server_name "
		    "%s or the ALPN list: %s", t->name, ssl_reason());
	}
	*out = t;
	return 0;
}

void
tls_free(struct tls *t)
{
	if (t == NULL)
		return;
	SSL_free(t->ssl);		/* and its BIOs */
	free(t);
}

/* Hooks of client.c, with the session lock. */

int
tls_recv(struct stream *e, const uint8_t *data, size_t n)
{
	struct tls	*t = e->tls;

	if (e->read_shut)
		return 0;		/* dropped, as shut down */
	/* Records not yet decrypted count against the window. */
	if (BIO_ctrl_pending(t->rbio) + e->owed + n > e->recv_window)
		return -1;
	if (n > 0 && BIO_write(t->rbio, data, (int)n) != (int)n) {
		tls_failed(t, "out of memory for received records");
		e->eof = true;
	}
	return 0;
}

void
tls_end(struct stream *e)
{
	e->tls->peer_end = true;
}

int
tls_pump(struct stream *e, const char *name, struct tb_error *err)
{
	struct tls	*t = e->tls;
	size_t		 before, got;
	int		 r;

	/*
	 * Plaintext within the first window: one upgraded after its window
	 * grew keeps the larger window for its records (the broker's credit).
	 */
	while (t->ready && !t->failed && !e->eof && !e->read_shut &&
	    e->len + CLIENT_TLS_RECORD_PLAIN <= CLIENT_RECV_WINDOW) {
		if (stream_reserve(e, CLIENT_TLS_RECORD_PLAIN) != 0) {
			tls_failed(t, "out of memory for plaintext");
			break;
		}
		ERR_clear_error();
		before = BIO_ctrl_pending(t->rbio);
		r = SSL_read_ex(t->ssl, e->buf + e->off + e->len,
		    CLIENT_TLS_RECORD_PLAIN, &got);
		/* What the engine took is credit for the broker. */
		e->owed += before - BIO_ctrl_pending(t->rbio);
		if (r == 1) {
			e->len += got;
			continue;
		}
		switch (SSL_get_error(t->ssl, r)) {
		case SSL_ERROR_WANT_READ:
			break;
		case SSL_ERROR_ZERO_RETURN:	/* close_notify */
			e->eof = true;
			break;
		default:
			tls_failed(t, "%s", ssl_reason());
			break;
		}
		break;
	}
	/* An end without close_notify is the end, as on a plain stream. */
	if (t->ready && t->peer_end && BIO_ctrl_pending(t->rbio) == 0)
		e->eof = true;
	if (t->failed) {
		e->eof = true;
		if (e->len == 0)
			return set_error(err, TB_ETLS, "%s: %s", name, t->why);
	}
	return 0;
}

void
tls_fit(struct tls *t, size_t *chunk, size_t *room)
{
	size_t	need = BIO_ctrl_pending(t->wbio) + CLIENT_TLS_RECORD_OVERHEAD;

	if (*chunk > CLIENT_TLS_RECORD_PLAIN)
		*chunk = CLIENT_TLS_RECORD_PLAIN;
	*room = *room > need ? *room - need : 0;
}

/* Takes up to cap records the engine wrote. */
static size_t
tls_take(struct tls *t, uint8_t *buf, size_t cap)
{
	size_t	n = BIO_ctrl_pending(t->wbio);
	int	r;

	if (n > cap)
		n = cap;
	if (n == 0 || (r = BIO_read(t->wbio, buf, (int)n)) <= 0)
		return 0;
	return (size_t)r;
}

int
tls_seal(struct stream *e, const char *name, const uint8_t **data,
    size_t *len, uint8_t *sealed, struct tb_error *err)
{
	struct tls	*t = e->tls;
	size_t		 n;

	if (t->failed)
		return set_error(err, TB_ETLS, "%s: %s", name, t->why);
	ERR_clear_error();
	if (*len > 0 && SSL_write_ex(t->ssl, *data, *len, &n) != 1) {
		tls_failed(t, "%s", ssl_reason());
		return set_error(err, TB_ETLS, "%s: %s", name, t->why);
	}
	*len = tls_take(t, sealed, CLIENT_TLS_SEALED_MAX);
	*data = sealed;
	return 0;
}

int
tls_write_begin(tb_client *c, tb_handle h, const char *name,
    uint64_t deadline, bool interruptible, struct tb_error *err)
{
	struct stream	*e;
	uint64_t	 look;

	for (;;) {
		if ((e = stream_of(c, h)) == NULL || e->tls == NULL)
			return set_error(err, TB_ECLOSED, "%s: the connection "
			    "was closed", name);
		if (e->tls->failed)
			return set_error(err, TB_ETLS, "%s: %s", name,
			    e->tls->why);
		if (!e->tls->writing) {
			e->tls->writing = true;
			return 0;
		}
		if (c->broken != 0)
			return set_error(err, c->broken, "%s: the broker "
			    "session failed: %s", name,
			    proto_err_text(c->broken));
		if (deadline != 0 && now_ms() >= deadline)
			return set_error(err, TB_ETIMEDOUT, "%s: timed out "
			    "waiting for another thread's write", name);
		/* The reader may wait on the socket: look again soon. */
		look = deadline_in(CLIENT_TLS_WRITER_POLL_MS);
		if (client_wait(c, deadline != 0 && deadline < look ?
		    deadline : look, interruptible))
			return set_error(err, TB_EINTR, "%s: interrupted by a "
			    "signal; the session is still usable", name);
	}
}

void
tls_write_end(tb_client *c, tb_handle h)
{
	struct stream	*e;

	if ((e = stream_of(c, h)) != NULL && e->tls != NULL) {
		e->tls->writing = false;
		pthread_cond_broadcast(&c->cond);
	}
}

/*
 * Sends every record the engine wrote, within the send window; the
 * caller is the connection's writer.  The lock is let go while sending.
 */
static int
tls_flush(tb_client *c, tb_handle h, const char *name, uint64_t deadline,
    bool interruptible, struct tb_error *err)
{
	struct stream	*e;
	uint8_t		 buf[CLIENT_TLS_SEALED_MAX];
	size_t		 n;
	int		 rc;

	for (;;) {
		if ((e = stream_of(c, h)) == NULL || e->tls == NULL)
			return set_error(err, TB_ECLOSED, "%s: the connection "
			    "was closed", name);
		if ((n = BIO_ctrl_pending(e->tls->wbio)) == 0)
			return 0;
		if (n > sizeof(buf))
			n = sizeof(buf);
		if (e->error != 0)
			return set_error(err, e->error, "%s: %s", name,
			    proto_err_text(e->error));
		if (e->send_window - e->wout < n) {
			if (c->broken != 0)
				return set_error(err, c->broken, "%s: the "
				    "broker session failed: %s", name,
				    proto_err_text(c->broken));
			if (deadline != 0 && now_ms() >= deadline)
				return set_error(err, TB_ETIMEDOUT, "%s: timed "
				    "out sending", name);
			if (client_wait(c, deadline, interruptible))
				return set_error(err, TB_EINTR, "%s: "
				    "interrupted by a signal", name);
			continue;
		}
		n = tls_take(e->tls, buf, n);
		e->wout += n;
		pthread_mutex_unlock(&c->lock);
		rc = send_behind(c, h, buf, n);
		pthread_mutex_lock(&c->lock);
		if (rc != 0)
			return set_error(err, TB_EBROKER, "%s: the broker "
			    "session failed", name);
	}
}

void
tls_close_notify(tb_client *c, tb_handle h)
{
	struct stream	*e = stream_of(c, h);
	uint64_t	 deadline;

	if (e == NULL || e->tls == NULL || !e->tls->ready || e->tls->failed ||
	    e->tls->notified || e->write_shut || e->error != 0)
		return;
	deadline = deadline_in(e->timeout_ms != 0 ? e->timeout_ms :
	    LIMIT_CLOSE_LINGER_MS);
	/* As a close hands over what was written behind: uninterrupted. */
	if (tls_write_begin(c, h, "close", deadline, WAIT_UNINTERRUPTED,
	    NULL) != 0)
		return;
	e = stream_of(c, h);
	e->tls->notified = true;
	ERR_clear_error();
	SSL_shutdown(e->tls->ssl);	/* 0: theirs has not come; fine */
	ERR_clear_error();
	tls_flush(c, h, "close", deadline, WAIT_UNINTERRUPTED, NULL);
	tls_write_end(c, h);
}

/*
 * Runs the handshake of the connection h, which has t attached and is
 * its writer; with the lock.
 */
static int
tls_handshake(tb_client *c, tb_handle h, struct tb_error *err)
{
	struct stream	*e = stream_of(c, h);
	struct tls	*t;
	uint64_t	 deadline;
	size_t		 before;
	int		 r, code, rc;

	deadline = deadline_in(e->timeout_ms != 0 ? e->timeout_ms :
	    CLIENT_TLS_HANDSHAKE_MS);
	for (;;) {
		t = e->tls;
		ERR_clear_error();
		before = BIO_ctrl_pending(t->rbio);
		r = SSL_do_handshake(t->ssl);
		e->owed += before - BIO_ctrl_pending(t->rbio);
		code = r == 1 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, r);
		if (code != SSL_ERROR_NONE && code != SSL_ERROR_WANT_READ)
			handshake_failed(t);
		/* What it wrote goes out, a failure's alert too. */
		if ((rc = tls_flush(c, h, "tls", deadline, WAIT_INTERRUPTIBLE,
		    err)) != 0) {
			if ((e = stream_of(c, h)) != NULL && e->tls != NULL)
				tls_failed(e->tls, "%s", err != NULL ?
				    err->message : "the handshake failed");
			return rc;
		}
		e = stream_of(c, h);
		if (t->failed)
			break;
		if (r == 1) {
			t->ready = true;
			return set_error(err, 0, "ok");
		}
		if (e->error != 0)
			tls_failed(t, "the connection failed during the "
			    "handshake: %s", proto_err_text(e->error));
		else if (t->peer_end)
			tls_failed(t, "the peer closed the connection during "
			    "the handshake");
		else if (deadline != 0 && now_ms() >= deadline)
			tls_failed(t, "the handshake timed out");
		else if (c->broken != 0)
			tls_failed(t, "the broker session failed: %s",
			    proto_err_text(c->broken));
		if (t->failed)
			break;
		if (stream_grant(c, e, true)) {
			/* The lock was let go: look again before waiting. */
			if ((e = stream_of(c, h)) == NULL)
				return set_error(err, TB_ECLOSED, "tls: the "
				    "connection was closed during the "
				    "handshake");
			continue;
		}
		if (client_wait(c, deadline, WAIT_INTERRUPTIBLE)) {
			if ((e = stream_of(c, h)) != NULL)
				tls_failed(e->tls, "interrupted by a signal "
				    "during the handshake");
			return set_error(err, TB_EINTR, "tls: interrupted by a "
			    "signal during the handshake; only close is left");
		}
		if ((e = stream_of(c, h)) == NULL)
			return set_error(err, TB_ECLOSED, "tls: the connection "
			    "was closed during the handshake");
	}
	return set_error(err, TB_ETLS, "tls: %s", t->why);
}

/* The public calls. */

/* Starts t on the connection conn; t is the stream's or freed. */
static int
tls_start(tb_client *c, tb_handle conn, struct tls *t, struct tb_error *err)
{
	struct stream	*e;
	int		 rc = 0;

	pthread_mutex_lock(&c->lock);
	if ((e = stream_of(c, conn)) == NULL || e->listener)
		rc = set_error(err, TB_EBADHANDLE, "tls: %u is not an open "
		    "connection of this session", conn);
	else if (e->tls != NULL)
		rc = set_error(err, TB_EINVAL, "tls: the connection has TLS "
		    "already");
	else if (e->read_shut || e->write_shut)
		rc = set_error(err, TB_EINVAL, "tls: the connection is shut "
		    "down");
	if (rc != 0) {
		pthread_mutex_unlock(&c->lock);
		tls_free(t);
		return rc;
	}
	/* What came and was not read is the peer's first records. */
	if (e->len > 0 && BIO_write(t->rbio, e->buf + e->off,
	    (int)e->len) != (int)e->len)
		tls_failed(t, "out of memory for received records");
	/* A buffer grown with the window is not kept for the plaintext. */
	free(e->buf);
	e->buf = NULL;
	e->off = e->len = e->cap = 0;
	t->peer_end = e->eof;
	e->eof = false;
	e->tls = t;
	t->writing = true;
	rc = t->failed ? set_error(err, TB_ETLS, "tls: %s", t->why) :
	    tls_handshake(c, conn, err);
	tls_write_end(c, conn);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int
tb_tls_upgrade(tb_client *c, tb_handle conn, const struct tb_tls_options *o,
    struct tb_error *err)
{
	struct tls	*t;
	int		 rc;

	/* Outside the lock: loading the CA store takes a while. */
	if ((rc = tls_new(o, NULL, &t, err)) != 0)
		return rc;
	return tls_start(c, conn, t, err);
}

/* The options are checked before connecting or accepting. */
int
tb_tls_connect(tb_client *c, const char *host, uint16_t port,
    const struct tb_tls_options *o, tb_handle *out, struct tb_error *err)
{
	struct tb_error	 cerr;
	struct tls	*t;
	tb_handle	 h;
	int		 rc;

	if (o != NULL && o->server)
		return set_error(err, TB_EINVAL, "tls: tb_tls_connect is a "
		    "client");
	if ((rc = tls_new(o, host, &t, err)) != 0)
		return rc;
	if ((rc = tb_connect(c, host, port, &h, err)) != 0) {
		tls_free(t);
		return rc;
	}
	if ((rc = tls_start(c, h, t, err)) != 0) {
		tb_close(c, h, &cerr);
		return rc;
	}
	*out = h;
	return 0;
}

int
tb_tls_accept(tb_client *c, tb_handle listener,
    const struct tb_tls_options *o, tb_handle *out, struct tb_error *err)
{
	struct tb_error	 cerr;
	struct tls	*t;
	tb_handle	 h;
	int		 rc;

	if (o == NULL || !o->server)
		return set_error(err, TB_EINVAL, "tls: tb_tls_accept needs "
		    "server options");
	if ((rc = tls_new(o, NULL, &t, err)) != 0)
		return rc;
	if ((rc = tb_accept(c, listener, &h, err)) != 0) {
		tls_free(t);
		return rc;
	}
	if ((rc = tls_start(c, h, t, err)) != 0) {
		tb_close(c, h, &cerr);
		return rc;
	}
	*out = h;
	return 0;
}

int
tb_tls_alpn(tb_client *c, tb_handle conn, char *buf, size_t cap,
    struct tb_error *err)
{
	struct stream		*e;
	const unsigned char	*p = NULL;
	unsigned int		 n = 0;
	int			 rc = 0;

	if (buf == NULL || cap < TB_TLS_ALPN_STRLEN)
		return set_error(err, TB_EINVAL, "alpn: a buffer of %d bytes "
		    "is needed", TB_TLS_ALPN_STRLEN);
	buf[0] = '\0';
	pthread_mutex_lock(&c->lock);
	if ((e = stream_of(c, conn)) == NULL || e->listener)
		rc = set_error(err, TB_EBADHANDLE, "alpn: %u is not an open "
		    "connection of this session", conn);
	else if (e->tls == NULL || !e->tls->ready)
		rc = set_error(err, TB_EINVAL, "alpn: the connection has no "
		    "TLS");
	else {
		SSL_get0_alpn_selected(e->tls->ssl, &p, &n);
		if (n > 0)
			memcpy(buf, p, n);
		buf[n] = '\0';
	}
	pthread_mutex_unlock(&c->lock);
	return rc != 0 ? rc : set_error(err, 0, "ok");
}
