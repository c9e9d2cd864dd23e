/*
 * The client stub: every function of the `tcp` plugin becomes one
 * msgpack-RPC call to the broker over the session's Unix socket.
 *
 * Several threads may call at once.  Each registers its msgid, sends
 * its whole request under send_lock, then waits; whichever waiting
 * thread finds nobody reading becomes the reader and hands every
 * response it reads to the thread that waits for it.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"
#include "tcpbroker.h"

_Static_assert(TB_DATA_MAX == PROTO_DATA_MAX, "data limit");
_Static_assert(TB_LINE_MAX == PROTO_LINE_MAX, "line limit");
_Static_assert(TB_ADDR_STRLEN >= PROTO_ADDR_STRLEN, "address length");
_Static_assert(TB_ERROR_MESSAGE_MAX >= PROTO_ERROR_MESSAGE_MAX, "messages");

struct waiter {
	uint32_t	 msgid;
	bool		 done;
	uint8_t		*response;	/* the whole response message */
	size_t		 len;
	struct waiter	*next;
};

struct tb_client {
	int		 fd;
	uint64_t	 session;
	pthread_mutex_t	 lock;		/* guards all below but in/inlen */
	pthread_cond_t	 cond;
	pthread_mutex_t	 send_lock;
	bool		 reading;
	int		 broken;	/* 0, or why the session is unusable */
	uint32_t	 next_msgid;
	struct waiter	*waiters;
	uint8_t		*in;		/* the reader's, PROTO_MESSAGE_MAX */
	size_t		 inlen;
};

/* A decoded response, kept while its result is read. */
struct response {
	uint8_t			*raw;
	msgpack_unpacked	 unpacked;
	struct proto_msg	 msg;
};

/* A request being packed. */
struct request {
	struct proto_buf	buf;
	msgpack_packer		pk;
	uint32_t		msgid;
	const char		*name;
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

const char *
tb_err_name(int code)
{
	return proto_err_name(code);
}

const char *
tb_strerror(int code)
{
	return proto_err_text(code);
}

uint64_t
tb_client_session_id(const tb_client *client)
{
	return client->session;
}

/* Marks the session unusable and wakes every waiting thread. */
static void
client_break(tb_client *c, int code)
{
	pthread_mutex_lock(&c->lock);
	if (c->broken == 0)
		c->broken = code;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

static int
send_all(tb_client *c, const uint8_t *p, size_t len)
{
	ssize_t	n;

	pthread_mutex_lock(&c->send_lock);
	while (len > 0) {
		n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		p += n;
		len -= (size_t)n;
	}
	pthread_mutex_unlock(&c->send_lock);
	return len == 0 ? 0 : -1;
}

/* Hands one response to its waiter. */
static void
deliver(tb_client *c, const uint8_t *msg, size_t len)
{
	msgpack_unpacked	 unpacked;
	struct proto_msg	 m;
	struct waiter		*w;
	const char		*why;
	uint8_t			*copy;

	msgpack_unpacked_init(&unpacked);
	if (proto_decode(&unpacked, msg, len, &m, &why) != 0 ||
	    m.type != PROTO_RESPONSE) {
		msgpack_unpacked_destroy(&unpacked);
		client_break(c, TB_EPROTO);
		return;
	}
	msgpack_unpacked_destroy(&unpacked);
	copy = malloc(len);
	pthread_mutex_lock(&c->lock);
	for (w = c->waiters; w != NULL; w = w->next)
		if (w->msgid == m.msgid && !w->done)
			break;
	if (w != NULL && copy != NULL) {
		memcpy(copy, msg, len);
		w->response = copy;
		w->len = len;
		w->done = true;
		copy = NULL;
		pthread_cond_broadcast(&c->cond);
	} else if (w != NULL && c->broken == 0) {
		c->broken = TB_ENOMEM;
		pthread_cond_broadcast(&c->cond);
	}
	pthread_mutex_unlock(&c->lock);
	free(copy);
}

/* Reads responses until self's has come or the session breaks. */
static void
read_responses(tb_client *c, struct waiter *self)
{
	const char	*why;
	size_t		 len, off;
	ssize_t		 n;
	bool		 done = false;

	while (!done) {
		n = recv(c->fd, c->in + c->inlen, PROTO_MESSAGE_MAX - c->inlen,
		    0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			client_break(c, TB_EBROKER);
			return;
		}
		c->inlen += (size_t)n;
		off = 0;
		for (;;) {
			enum proto_scan r = proto_scan(c->in + off,
			    c->inlen - off, &len, &why);
			if (r == PROTO_SCAN_MORE)
				break;
			if (r == PROTO_SCAN_BAD) {
				client_break(c, TB_EPROTO);
				return;
			}
			deliver(c, c->in + off, len);
			off += len;
		}
		memmove(c->in, c->in + off, c->inlen - off);
		c->inlen -= off;
		pthread_mutex_lock(&c->lock);
		done = self->done || c->broken != 0;
		pthread_mutex_unlock(&c->lock);
	}
}

static void
request_begin(tb_client *c, struct request *req, enum proto_method method,
    uint32_t nparams)
{
	pthread_mutex_lock(&c->lock);
	req->msgid = ++c->next_msgid;
	pthread_mutex_unlock(&c->lock);
	req->name = proto_methods[method].name;
	proto_buf_init(&req->buf, PROTO_MESSAGE_MAX);
	proto_packer_init(&req->pk, &req->buf);
	proto_pack_request(&req->pk, req->msgid, method, nparams);
}

static void
response_free(struct response *resp)
{
	msgpack_unpacked_destroy(&resp->unpacked);
	free(resp->raw);
	resp->raw = NULL;
}

/*
 * Sends the request and waits for its response.  On success resp holds
 * the result until response_free(); on failure err is filled.
 */
static int
request_call(tb_client *c, struct request *req, struct response *resp,
    struct tb_error *err)
{
	struct waiter	  self = { req->msgid, false, NULL, 0, NULL };
	struct waiter	**wp;
	char		  message[TB_ERROR_MESSAGE_MAX + 1];
	const char	 *why;
	int		  code, broken;

	memset(resp, 0, sizeof(*resp));
	msgpack_unpacked_init(&resp->unpacked);
	if (req->buf.failed) {
		proto_buf_free(&req->buf);
		return set_error(err, TB_ENOMEM, "%s: request too large",
		    req->name);
	}

	pthread_mutex_lock(&c->lock);
	if (c->broken != 0) {
		broken = c->broken;
		pthread_mutex_unlock(&c->lock);
		proto_buf_free(&req->buf);
		return set_error(err, broken, "%s: the broker session is "
		    "unusable: %s", req->name, proto_err_text(broken));
	}
	self.next = c->waiters;
	c->waiters = &self;
	pthread_mutex_unlock(&c->lock);

	if (send_all(c, req->buf.data, req->buf.len) != 0)
		client_break(c, TB_EBROKER);
	proto_buf_free(&req->buf);

	pthread_mutex_lock(&c->lock);
	while (!self.done && c->broken == 0) {
		if (c->reading) {
			pthread_cond_wait(&c->cond, &c->lock);
			continue;
		}
		c->reading = true;
		pthread_mutex_unlock(&c->lock);
		read_responses(c, &self);
		pthread_mutex_lock(&c->lock);
		c->reading = false;
		pthread_cond_broadcast(&c->cond);
	}
	for (wp = &c->waiters; *wp != &self; wp = &(*wp)->next)
		;
	*wp = self.next;
	broken = c->broken;
	pthread_mutex_unlock(&c->lock);

	if (!self.done)
		return set_error(err, broken, "%s: the broker session failed: "
		    "%s", req->name, proto_err_text(broken));
	resp->raw = self.response;
	if (proto_decode(&resp->unpacked, resp->raw, self.len, &resp->msg,
	    &why) != 0) {
		response_free(resp);
		return set_error(err, TB_EPROTO, "%s: %s", req->name, why);
	}
	code = proto_read_error(resp->msg.error, message, sizeof(message));
	if (code != 0) {
		response_free(resp);
		return set_error(err, code, "%s", message);
	}
	return 0;
}

/* Result readers: each checks the type the method table promises. */

static int
result_nil(struct response *resp, const char *name, struct tb_error *err)
{
	int	ok = resp->msg.result->type == MSGPACK_OBJECT_NIL;

	response_free(resp);
	return ok ? set_error(err, 0, "ok") :
	    set_error(err, TB_EPROTO, "%s: expected no result", name);
}

static int
result_uint(struct response *resp, const char *name, uint64_t max,
    uint64_t *out, struct tb_error *err)
{
	const msgpack_object	*o = resp->msg.result;
	int			 ok = o->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
				    o->via.u64 <= max;

	/* Always written, so that no caller reads an unset value. */
	*out = ok ? o->via.u64 : 0;
	response_free(resp);
	return ok ? set_error(err, 0, "ok") :
	    set_error(err, TB_EPROTO, "%s: expected an integer result", name);
}

static int
result_bytes(struct response *resp, const char *name, msgpack_object_type type,
    void *buf, size_t cap, size_t *len, struct tb_error *err)
{
	const msgpack_object	*o = resp->msg.result;
	const char		*ptr;
	size_t			 n;

	if (o->type != type) {
		response_free(resp);
		return set_error(err, TB_EPROTO, "%s: unexpected result type",
		    name);
	}
	ptr = type == MSGPACK_OBJECT_BIN ? o->via.bin.ptr : o->via.str.ptr;
	n = type == MSGPACK_OBJECT_BIN ? o->via.bin.size : o->via.str.size;
	if (n > cap) {
		response_free(resp);
		return set_error(err, TB_EPROTO, "%s: %zu bytes returned for "
		    "a buffer of %zu", name, n, cap);
	}
	if (n > 0)
		memcpy(buf, ptr, n);
	*len = n;
	response_free(resp);
	return set_error(err, 0, "ok");
}

/* Opening and closing. */

static int
hello(tb_client *c, struct tb_error *err)
{
	struct request		 req;
	struct response		 resp;
	const msgpack_object_kv	*kv;
	uint32_t		 i;
	int			 rc;

	request_begin(c, &req, PROTO_METHOD_HELLO, 1);
	msgpack_pack_uint32(&req.pk, PROTO_VERSION);
	if ((rc = request_call(c, &req, &resp, err)) != 0)
		return rc;
	if (resp.msg.result->type != MSGPACK_OBJECT_MAP) {
		response_free(&resp);
		return set_error(err, TB_EPROTO, "hello: expected a map");
	}
	for (i = 0; i < resp.msg.result->via.map.size; i++) {
		kv = &resp.msg.result->via.map.ptr[i];
		if (kv->key.type == MSGPACK_OBJECT_STR &&
		    kv->key.via.str.size == 7 &&
		    memcmp(kv->key.via.str.ptr, "session", 7) == 0 &&
		    kv->val.type == MSGPACK_OBJECT_POSITIVE_INTEGER)
			c->session = kv->val.via.u64;
	}
	response_free(&resp);
	return set_error(err, 0, "ok");
}

int
tb_client_open_fd(tb_client **out, int fd, struct tb_error *err)
{
	tb_client	*c;
	int		 type, rc;
	socklen_t	 len = sizeof(type);

	*out = NULL;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == -1 ||
	    type != SOCK_STREAM) {
		close(fd);
		return set_error(err, TB_EBROKER, "descriptor %d is not a "
		    "stream socket", fd);
	}
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->in = malloc(PROTO_MESSAGE_MAX)) == NULL) {
		free(c);
		close(fd);
		return set_error(err, TB_ENOMEM, "out of memory");
	}
	c->fd = fd;
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->send_lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	if ((rc = hello(c, err)) != 0) {
		tb_client_close(c);
		return rc;
	}
	*out = c;
	return 0;
}

int
tb_client_open_path(tb_client **out, const char *path, struct tb_error *err)
{
	struct sockaddr_un	sun;
	int			fd;

	*out = NULL;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		return set_error(err, TB_EINVAL, "socket path too long: %s",
		    path);
	strcpy(sun.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return set_error(err, TB_EBROKER, "socket: %s",
		    strerror(errno));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		int error = errno;
		close(fd);
		return set_error(err, TB_EBROKER, "cannot reach the broker at "
		    "%s: %s", path, strerror(error));
	}
	return tb_client_open_fd(out, fd, err);
}

int
tb_client_open(tb_client **out, struct tb_error *err)
{
	const char	*env;
	char		*end;
	long		 fd;

	if ((env = getenv("TCPBROKER_FD")) != NULL && *env != '\0') {
		errno = 0;
		fd = strtol(env, &end, 10);
		if (errno != 0 || *end != '\0' || fd < 0 || fd > 65535) {
			*out = NULL;
			return set_error(err, TB_EBROKER, "TCPBROKER_FD=%s is "
			    "not a descriptor number", env);
		}
		return tb_client_open_fd(out, (int)fd, err);
	}
	if ((env = getenv("TCPBROKER_SOCKET")) != NULL && *env != '\0')
		return tb_client_open_path(out, env, err);
	return tb_client_open_path(out, TB_DEFAULT_SOCKET, err);
}

void
tb_client_close(tb_client *c)
{
	if (c == NULL)
		return;
	close(c->fd);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->send_lock);
	pthread_mutex_destroy(&c->lock);
	free(c->in);
	free(c);
}

/* The plugin's functions. */

static int
call_handle(tb_client *c, enum proto_method method, tb_handle h,
    struct request *req)
{
	request_begin(c, req, method, (uint32_t)strlen(
	    proto_methods[method].params));
	return msgpack_pack_uint32(&req->pk, h);
}

static int
do_connect(tb_client *c, const char *host, uint16_t port, uint32_t ms,
    bool timed, tb_handle *out, struct tb_error *err)
{
	struct request	req;
	struct response	resp;
	uint64_t	h;
	size_t		len = host != NULL ? strlen(host) : 0;
	int		rc;

	if (len == 0 || len > PROTO_STRING_MAX)
		return set_error(err, TB_EINVAL, "connect: the host must be 1 "
		    "to %d bytes", PROTO_STRING_MAX);
	request_begin(c, &req, timed ? PROTO_METHOD_CONNECT_TIMEOUT :
	    PROTO_METHOD_CONNECT, timed ? 3 : 2);
	msgpack_pack_str_with_body(&req.pk, host, len);
	msgpack_pack_uint16(&req.pk, port);
	if (timed)
		msgpack_pack_uint32(&req.pk, ms);
	if ((rc = request_call(c, &req, &resp, err)) != 0)
		return rc;
	if ((rc = result_uint(&resp, req.name, UINT32_MAX, &h, err)) == 0)
		*out = (tb_handle)h;
	return rc;
}

int
tb_connect(tb_client *c, const char *host, uint16_t port, tb_handle *out,
    struct tb_error *err)
{
	return do_connect(c, host, port, 0, false, out, err);
}

int
tb_connect_timeout(tb_client *c, const char *host, uint16_t port,
    uint32_t ms, tb_handle *out, struct tb_error *err)
{
	return do_connect(c, host, port, ms, true, out, err);
}

/* One write call of at most TB_DATA_MAX bytes. */
static int
write_chunk(tb_client *c, enum proto_method method, tb_handle h,
    const uint8_t *data, size_t len, size_t *written, struct tb_error *err)
{
	struct request	req;
	struct response	resp;
	uint64_t	n = len;
	int		rc;

	call_handle(c, method, h, &req);
	msgpack_pack_bin_with_body(&req.pk, data, len);
	if ((rc = request_call(c, &req, &resp, err)) != 0)
		return rc;
	if (method == PROTO_METHOD_WRITE_ALL)
		rc = result_nil(&resp, req.name, err);
	else
		rc = result_uint(&resp, req.name, len, &n, err);
	*written = (size_t)n;
	return rc;
}

/* Writes in chunks; a short chunk (a timeout part way) ends the call. */
static int
write_data(tb_client *c, enum proto_method method, tb_handle h,
    const void *data, size_t len, size_t *written, struct tb_error *err)
{
	const uint8_t	*p = data;
	size_t		 done = 0, chunk, n;
	int		 rc;

	if (written != NULL)
		*written = 0;
	if (len > 0 && data == NULL)
		return set_error(err, TB_EINVAL, "write: no data");
	do {
		chunk = len - done > TB_DATA_MAX ? TB_DATA_MAX : len - done;
		rc = write_chunk(c, method, h, p + done, chunk, &n, err);
		if (rc != 0) {
			if (done > 0 && method != PROTO_METHOD_WRITE_ALL)
				break;	/* report what did get through */
			return rc;
		}
		done += n;
	} while (n == chunk && done < len);
	if (written != NULL)
		*written = done;
	return set_error(err, 0, "ok");
}

int
tb_write(tb_client *c, tb_handle conn, const void *data, size_t len,
    size_t *written, struct tb_error *err)
{
	return write_data(c, PROTO_METHOD_WRITE, conn, data, len, written,
	    err);
}

int
tb_write_bytes(tb_client *c, tb_handle conn, const void *data, size_t len,
    size_t *written, struct tb_error *err)
{
	return write_data(c, PROTO_METHOD_WRITE_BYTES, conn, data, len,
	    written, err);
}

int
tb_write_all(tb_client *c, tb_handle conn, const void *data, size_t len,
    struct tb_error *err)
{
	return write_data(c, PROTO_METHOD_WRITE_ALL, conn, data, len, NULL,
	    err);
}

/* A read-family call whose result is at most cap bytes of bin. */
static int
read_call(tb_client *c, enum proto_method method, tb_handle h, int delim,
    size_t count, void *buf, size_t cap, size_t *len, struct tb_error *err)
{
	struct request	req;
	struct response	resp;
	int		rc;

	call_handle(c, method, h, &req);
	if (delim >= 0)
		msgpack_pack_uint8(&req.pk, (uint8_t)delim);
	msgpack_pack_uint32(&req.pk, (uint32_t)count);
	if ((rc = request_call(c, &req, &resp, err)) != 0)
		return rc;
	return result_bytes(&resp, req.name, MSGPACK_OBJECT_BIN, buf, cap, len,
	    err);
}

int
tb_read(tb_client *c, tb_handle conn, void *buf, size_t max, size_t *len,
    struct tb_error *err)
{
	if (max > TB_DATA_MAX)
		max = TB_DATA_MAX;
	return read_call(c, PROTO_METHOD_READ, conn, -1, max, buf, max, len,
	    err);
}

int
tb_peek(tb_client *c, tb_handle conn, void *buf, size_t max, size_t *len,
    struct tb_error *err)
{
	if (max > TB_DATA_MAX)
		max = TB_DATA_MAX;
	return read_call(c, PROTO_METHOD_PEEK, conn, -1, max, buf, max, len,
	    err);
}

int
tb_read_exact(tb_client *c, tb_handle conn, void *buf, size_t n,
    struct tb_error *err)
{
	uint8_t	*p = buf;
	size_t	 done = 0, chunk, got;
	int	 rc;

	while (done < n) {
		chunk = n - done > TB_DATA_MAX ? TB_DATA_MAX : n - done;
		rc = read_call(c, PROTO_METHOD_READ_EXACT, conn, -1, chunk,
		    p + done, chunk, &got, err);
		if (rc != 0 && done > 0 && err != NULL) {
			size_t len = strlen(err->message);
			snprintf(err->message + len, sizeof(err->message) - len,
			    " (%zu bytes before it were read and are lost)",
			    done);
		}
		if (rc != 0)
			return rc;
		if (got != chunk)
			return set_error(err, TB_EPROTO, "read_exact: %zu "
			    "bytes returned, %zu asked", got, chunk);
		done += got;
	}
	return set_error(err, 0, "ok");
}

int
tb_read_line(tb_client *c, tb_handle conn, char *buf, size_t cap,
    size_t *len, struct tb_error *err)
{
	size_t	max = cap > TB_LINE_MAX ? TB_LINE_MAX : cap;
	int	rc;

	*len = 0;
	if (buf == NULL || cap < 1)
		return set_error(err, TB_EINVAL, "read_line: no buffer");
	/* The line with its "\n" fits in max, so the line and a NUL fit. */
	rc = read_call(c, PROTO_METHOD_READ_LINE, conn, -1, max, buf, max - 1,
	    len, err);
	buf[rc == 0 ? *len : 0] = '\0';
	return rc;
}

int
tb_read_until(tb_client *c, tb_handle conn, uint8_t delim, void *buf,
    size_t cap, size_t *len, struct tb_error *err)
{
	size_t	max = cap > TB_LINE_MAX ? TB_LINE_MAX : cap;

	*len = 0;
	if (buf == NULL || cap < 1)
		return set_error(err, TB_EINVAL, "read_until: no buffer");
	return read_call(c, PROTO_METHOD_READ_UNTIL, conn, delim, max, buf, max,
	    len, err);
}

static int
simple_call(tb_client *c, struct request *req, struct tb_error *err)
{
	struct response	resp;
	int		rc;

	if ((rc = request_call(c, req, &resp, err)) != 0)
		return rc;
	return result_nil(&resp, req->name, err);
}

int
tb_set_timeout_ms(tb_client *c, tb_handle h, uint32_t ms,
    struct tb_error *err)
{
	struct request	req;

	call_handle(c, PROTO_METHOD_SET_TIMEOUT_MS, h, &req);
	msgpack_pack_uint32(&req.pk, ms);
	return simple_call(c, &req, err);
}

int
tb_set_nodelay(tb_client *c, tb_handle conn, bool on, struct tb_error *err)
{
	struct request	req;

	call_handle(c, PROTO_METHOD_SET_NODELAY, conn, &req);
	on ? msgpack_pack_true(&req.pk) : msgpack_pack_false(&req.pk);
	return simple_call(c, &req, err);
}

int
tb_set_keepalive(tb_client *c, tb_handle conn, bool on, struct tb_error *err)
{
	struct request	req;

	call_handle(c, PROTO_METHOD_SET_KEEPALIVE, conn, &req);
	on ? msgpack_pack_true(&req.pk) : msgpack_pack_false(&req.pk);
	return simple_call(c, &req, err);
}

int
tb_shutdown(tb_client *c, tb_handle conn, tb_shutdown_how how,
    struct tb_error *err)
{
	static const char *const names[] = {
		[TB_SHUTDOWN_READ] = "read",
		[TB_SHUTDOWN_WRITE] = "write",
		[TB_SHUTDOWN_BOTH] = "both",
	};
	struct request	req;

	if ((unsigned)how > TB_SHUTDOWN_BOTH)
		return set_error(err, TB_EINVAL, "shutdown: bad mode");
	call_handle(c, PROTO_METHOD_SHUTDOWN, conn, &req);
	msgpack_pack_str_with_body(&req.pk, names[how], strlen(names[how]));
	return simple_call(c, &req, err);
}

int
tb_close(tb_client *c, tb_handle h, struct tb_error *err)
{
	struct request	req;

	call_handle(c, PROTO_METHOD_CLOSE, h, &req);
	return simple_call(c, &req, err);
}

int
tb_listen(tb_client *c, const char *addr, tb_handle *out,
    struct tb_error *err)
{
	struct request	req;
	struct response	resp;
	uint64_t	h;
	size_t		len = addr != NULL ? strlen(addr) : 0;
	int		rc;

	if (len == 0 || len > PROTO_STRING_MAX)
		return set_error(err, TB_EINVAL, "listen: the address must be "
		    "1 to %d bytes", PROTO_STRING_MAX);
	request_begin(c, &req, PROTO_METHOD_LISTEN, 1);
	msgpack_pack_str_with_body(&req.pk, addr, len);
	if ((rc = request_call(c, &req, &resp, err)) != 0)
		return rc;
	if ((rc = result_uint(&resp, req.name, UINT32_MAX, &h, err)) == 0)
		*out = (tb_handle)h;
	return rc;
}

int
tb_accept(tb_client *c, tb_handle listener, tb_handle *out,
    struct tb_error *err)
{
	struct request	req;
	struct response	resp;
	uint64_t	h;
	int		rc;

	call_handle(c, PROTO_METHOD_ACCEPT, listener, &req);
	if ((rc = request_call(c, &req, &resp, err)) != 0)
		return rc;
	if ((rc = result_uint(&resp, req.name, UINT32_MAX, &h, err)) == 0)
		*out = (tb_handle)h;
	return rc;
}

static int
addr_call(tb_client *c, enum proto_method method, tb_handle h, char *buf,
    size_t cap, struct tb_error *err)
{
	struct request	req;
	struct response	resp;
	size_t		len;
	int		rc;

	if (buf == NULL || cap < 1)
		return set_error(err, TB_EINVAL, "no buffer");
	buf[0] = '\0';
	call_handle(c, method, h, &req);
	if ((rc = request_call(c, &req, &resp, err)) != 0)
		return rc;
	rc = result_bytes(&resp, req.name, MSGPACK_OBJECT_STR, buf, cap - 1,
	    &len, err);
	if (rc == 0)
		buf[len] = '\0';
	return rc;
}

int
tb_local_addr(tb_client *c, tb_handle h, char *buf, size_t cap,
    struct tb_error *err)
{
	return addr_call(c, PROTO_METHOD_LOCAL_ADDR, h, buf, cap, err);
}

int
tb_peer_addr(tb_client *c, tb_handle conn, char *buf, size_t cap,
    struct tb_error *err)
{
	return addr_call(c, PROTO_METHOD_PEER_ADDR, conn, buf, cap, err);
}
