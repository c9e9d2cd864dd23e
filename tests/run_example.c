/*
 * run_example [--policy FILE] [--visit | --launch] -- COMMAND ARGS...
 *
 * Runs a script (a Lua test, an example) against a real broker and
 * real loopback servers, and fails unless it exits 0 in time.  The
 * script finds them in its environment:
 *
 *	TCPBROKER_SOCKET	the broker's socket
 *	ECHO_PORT		echoes what it receives
 *	GREETING_PORT		sends "hello\r\nworld\n\nlast" and closes
 *	BINARY_PORT		sends the bytes 0..255 and closes
 *	SILENT_PORT		accepts, then neither reads nor writes
 *	HTTP_PORT		an HTTP/1.0 server: GET / a page, GET /large
 *				1 MiB, other GETs 404, POST counts its body
 *	HOLD_PORT		holds connections; MONITOR_PORT tells
 *	MONITOR_PORT		"closed" once a HOLD_PORT connection ended
 *	SMTP_PORT		a minimal SMTP server: EHLO, MAIL, RCPT (550 for
 *				<nobody@...>), DATA, RSET, NOOP, QUIT
 *	MAILBOX_PORT		sends the last mail SMTP_PORT took, as
 *				"MAIL FROM:...\nRCPT TO:...\n\n" and its
 *				un-dot-stuffed data, and closes
 *	FULL_PORT		its accept queue is full: connects hang
 *	CLOSED_PORT		nothing listens there: connects are refused
 *
 * With --visit, every listener the broker opens on 127.0.0.1 is dialled
 * once by a "visitor" that sends "hello from the runner\n" and reads one
 * line, so that examples blocked in accept are served as a real client
 * would serve them.
 *
 * With --launch, the command runs under `tcpbroker run` with the same
 * policy, as a uid of its own when the runner is root.  So that such a
 * uid can read them wherever the clone is, the arguments that are files
 * and the directories of LUA_PATH and LUA_CPATH are copied to a
 * directory of /tmp shown to the command (--bind-ro), and named there.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "harness.h"

/* How long the script may run: milliseconds. */
#define SCRIPT_MS		60000
/* Listeners the visitor dials, at most. */
#define VISITS_MAX		64
/* Largest policy file the runner passes on: bytes. */
#define POLICY_TEXT_MAX		65536

static const char	*policy_file;
static bool		 visiting, launching;
/* Where --launch copies what the command reads. */
static char		 launch_dir[64];
/* Most arguments and path entries --launch rewrites: entries. */
#define LAUNCH_ENTRIES_MAX	32
static char	       **command;

static struct test_server	echo, greeting, binary, silent, http, hold;
static struct test_server	monitor, smtp, mailbox;

/* The last mail SMTP_PORT took: envelope lines, a blank line, data. */
#define MAIL_MAX		(1024 * 1024)
/* Longest SMTP command line the server reads: bytes. */
#define SMTP_LINE_MAX		1024
static pthread_mutex_t	 mail_lock = PTHREAD_MUTEX_INITIALIZER;
static char		*mail;
static size_t		 mail_len;

static const char	greeting_text[] = "hello\r\nworld\n\nlast";
static uint8_t		binary_text[256];
static const char	page[] = "hello from loopback\n";

/* The body GET /large sends: bytes. */
#define HTTP_LARGE_BYTES	(1024 * 1024)
/* The largest body a POST may send: bytes. */
#define HTTP_POST_MAX		(4 * 1024 * 1024)

static bool
send_all(int fd, const void *p, size_t len)
{
	const char	*c = p;
	ssize_t		 n;

	while (len > 0) {
		if ((n = send(fd, c, len, MSG_NOSIGNAL)) <= 0)
			return false;
		c += n;
		len -= (size_t)n;
	}
	return true;
}

/*
 * GET / sends a page, GET /large 1 MiB of "0123456789", other GETs 404;
 * POST reads its Content-Length body and says how many bytes came.
 */
static void
serve_http(struct test_server *srv, int fd)
{
	char		 req[4096], resp[256], chunk[65536], *end, *cl;
	size_t		 len = 0, body = 0, want, sent, n2;
	ssize_t		 n;
	int		 i;

	(void)srv;
	/* Read the request head, up to its blank line. */
	for (i = 0; i < 100 && len < sizeof(req) - 1; i++) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		if (poll(&pfd, 1, 5000) <= 0)
			return;
		if ((n = recv(fd, req + len, sizeof(req) - 1 - len, 0)) <= 0)
			return;
		len += (size_t)n;
		req[len] = '\0';
		if (strstr(req, "\r\n\r\n") != NULL)
			break;
	}
	if ((end = strstr(req, "\r\n\r\n")) == NULL)
		return;
	if (strncmp(req, "GET / ", 6) == 0)
		snprintf(resp, sizeof(resp), "HTTP/1.0 200 OK\r\n"
		    "Content-Type: text/plain\r\nContent-Length: %zu\r\n\r\n%s",
		    strlen(page), page);
	else if (strncmp(req, "GET /large ", 11) == 0) {
		snprintf(resp, sizeof(resp), "HTTP/1.0 200 OK\r\n"
		    "Content-Length: %d\r\n\r\n", HTTP_LARGE_BYTES);
		if (!send_all(fd, resp, strlen(resp)))
			return;
		for (i = 0; i < (int)sizeof(chunk); i++)
			chunk[i] = (char)('0' + i % 10);
		for (sent = 0; sent < HTTP_LARGE_BYTES; sent += sizeof(chunk))
			if (!send_all(fd, chunk, sizeof(chunk)))
				return;
		return;
	} else if (strncmp(req, "GET ", 4) == 0)
		snprintf(resp, sizeof(resp), "HTTP/1.0 404 Not Found\r\n"
		    "Content-Length: 0\r\n\r\n");
	else if (strncmp(req, "POST ", 5) == 0 &&
	    (cl = strcasestr(req, "\r\ncontent-length: ")) != NULL &&
	    (want = strtoul(cl + 18, NULL, 10)) <= HTTP_POST_MAX) {
		body = len - (size_t)(end + 4 - req);
		for (i = 0; i < 100000 && body < want; i++) {
			struct pollfd pfd = { fd, POLLIN, 0 };
			if (poll(&pfd, 1, 5000) <= 0)
				return;
			n2 = want - body < sizeof(chunk) ? want - body :
			    sizeof(chunk);
			if ((n = recv(fd, chunk, n2, 0)) <= 0)
				return;
			body += (size_t)n;
		}
		snprintf(chunk, 64, "got %zu bytes\n", body);
		snprintf(resp, sizeof(resp), "HTTP/1.0 200 OK\r\n"
		    "Content-Length: %zu\r\n\r\n%.64s", strlen(chunk), chunk);
	} else
		snprintf(resp, sizeof(resp), "HTTP/1.0 400 Bad Request\r\n"
		    "Content-Length: 0\r\n\r\n");
	send_all(fd, resp, strlen(resp));
}

/* Reads one CRLF line (without it) within 5 s; false at end or error. */
static bool
smtp_line(int fd, char *line, size_t cap, size_t *len)
{
	struct pollfd	pfd = { fd, POLLIN, 0 };
	char		c;

	*len = 0;
	for (;;) {
		if (poll(&pfd, 1, 5000) != 1 || recv(fd, &c, 1, 0) != 1)
			return false;
		if (c == '\n') {
			if (*len > 0 && line[*len - 1] == '\r')
				(*len)--;
			line[*len] = '\0';
			return true;
		}
		if (*len + 1 < cap)
			line[(*len)++] = c;
	}
}

static bool
smtp_reply(int fd, const char *text)
{
	return send_all(fd, text, strlen(text));
}

/* Adds len bytes to the mail being taken, within MAIL_MAX. */
static void
mail_add(char *buf, size_t *len, const char *p, size_t n)
{
	if (*len + n <= MAIL_MAX) {
		memcpy(buf + *len, p, n);
		*len += n;
	}
}

/*
 * SMTP, as much as LuaSocket's socket.smtp speaks: one mail per
 * connection is kept, envelope and data, for MAILBOX_PORT to show.
 */
static void
serve_smtp(struct test_server *srv, int fd)
{
	char	line[SMTP_LINE_MAX], *buf;
	size_t	len, n = 0;
	int	i;

	(void)srv;
	if ((buf = malloc(MAIL_MAX)) == NULL ||
	    !smtp_reply(fd, "220 loopback ESMTP ready\r\n"))
		goto done;
	for (i = 0; i < 1000 && smtp_line(fd, line, sizeof(line), &len); i++) {
		if (strncasecmp(line, "EHLO ", 5) == 0 ||
		    strncasecmp(line, "HELO ", 5) == 0)
			smtp_reply(fd, "250-loopback\r\n250 8BITMIME\r\n");
		else if (strncasecmp(line, "MAIL FROM:", 10) == 0) {
			n = 0;
			mail_add(buf, &n, line, len);
			mail_add(buf, &n, "\n", 1);
			smtp_reply(fd, "250 sender ok\r\n");
		} else if (strncasecmp(line, "RCPT TO:", 8) == 0) {
			if (strstr(line, "<nobody@") != NULL) {
				smtp_reply(fd, "550 no such user here\r\n");
				continue;
			}
			mail_add(buf, &n, line, len);
			mail_add(buf, &n, "\n", 1);
			smtp_reply(fd, "250 recipient ok\r\n");
		} else if (strcasecmp(line, "DATA") == 0) {
			smtp_reply(fd, "354 end with <CRLF>.<CRLF>\r\n");
			mail_add(buf, &n, "\n", 1);
			while (smtp_line(fd, line, sizeof(line), &len) &&
			    strcmp(line, ".") != 0) {
				/* RFC 5321 4.5.2: a leading dot was doubled. */
				mail_add(buf, &n, line + (line[0] == '.'),
				    len - (line[0] == '.'));
				mail_add(buf, &n, "\r\n", 2);
			}
			pthread_mutex_lock(&mail_lock);
			free(mail);
			mail = buf;
			mail_len = n;
			pthread_mutex_unlock(&mail_lock);
			if ((buf = malloc(MAIL_MAX)) == NULL)
				goto done;
			n = 0;
			smtp_reply(fd, "250 queued\r\n");
		} else if (strcasecmp(line, "RSET") == 0 ||
		    strcasecmp(line, "NOOP") == 0) {
			n = 0;
			smtp_reply(fd, "250 ok\r\n");
		} else if (strcasecmp(line, "QUIT") == 0) {
			smtp_reply(fd, "221 bye\r\n");
			break;
		} else
			smtp_reply(fd, "502 not implemented\r\n");
	}
 done:
	free(buf);
}

static void
serve_mailbox(struct test_server *srv, int fd)
{
	(void)srv;
	pthread_mutex_lock(&mail_lock);
	if (mail != NULL)
		send_all(fd, mail, mail_len);
	pthread_mutex_unlock(&mail_lock);
}

/* Says whether a connection to HOLD_PORT has ended, within 5 s. */
static void
serve_monitor(struct test_server *srv, int fd)
{
	bool	closed = server_wait(&hold.eofs, 1, 5000);

	(void)srv;
	(void)!send(fd, closed ? "closed\n" : "open\n", closed ? 7 : 5,
	    MSG_NOSIGNAL);
}

static uint16_t
listen_port(int fd)
{
	struct sockaddr_in	sin;
	socklen_t		len = sizeof(sin);

	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	return ntohs(sin.sin_port);
}

static int
loopback_socket(void)
{
	struct sockaddr_in	sin = { .sin_family = AF_INET };
	int			fd;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd != -1);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

static void
set_port(const char *name, uint16_t port)
{
	char	value[8];

	snprintf(value, sizeof(value), "%u", port);
	setenv(name, value, 1);
}

struct visitor {
	struct broker_proc	*broker;
	atomic_bool		 stop;
	pthread_t		 thread;
	int			 visits;
};

static void
visit(uint16_t port)
{
	struct sockaddr_in	sin = { .sin_family = AF_INET };
	struct timeval		tv = { 5, 0 };
	char			buf[256];
	int			fd;

	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    send(fd, "hello from the runner\n", 22, MSG_NOSIGNAL) == 22)
		(void)!recv(fd, buf, sizeof(buf), 0);
	close(fd);
}

/* Dials every listener the broker's log reports, once. */
static void *
visitor_main(void *p)
{
	struct visitor	*v = p;
	char		 line[1024];
	const char	*at;
	unsigned	 port;
	long		 off = 0;
	FILE		*f;

	while (!atomic_load(&v->stop) && v->visits < VISITS_MAX) {
		if ((f = fopen(v->broker->log, "r")) == NULL) {
			harness_sleep_ms(20);
			continue;
		}
		fseek(f, off, SEEK_SET);
		while (fgets(line, sizeof(line), f) != NULL &&
		    line[strlen(line) - 1] == '\n') {
			off = ftell(f);
			if ((at = strstr(line, " on 127.0.0.1:")) != NULL &&
			    strstr(line, ": listener ") != NULL &&
			    sscanf(at, " on 127.0.0.1:%u", &port) == 1 &&
			    v->visits < VISITS_MAX) {
				v->visits++;
				visit((uint16_t)port);
			}
		}
		fclose(f);
		harness_sleep_ms(20);
	}
	return NULL;
}

static void
launch_copy(const char *from, const char *to)
{
	char	cmd[1024];

	snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && cp -R '%s' '%s' && "
	    "chmod -R a+rX '%s'", to, from, to, to);
	assert_int_equal(system(cmd), 0);
}

/*
 * A Lua path ("DIR/?.lua;DIR2/?.so;;") with each directory's files of
 * the template's extension copied into launch_dir, and named there.
 */
static void
launch_lua_path(const char *name, unsigned *copies)
{
	static char	 out[2][4096];
	const char	*path = getenv(name), *entry, *end, *mark;
	char		 dir[1024], sub[128], files[1100];
	char		*o = out[strcmp(name, "LUA_PATH") == 0];
	size_t		 len = 0;

	if (path == NULL)
		return;
	o[0] = '\0';
	for (entry = path; ; entry = end + 1) {
		if ((end = strchr(entry, ';')) == NULL)
			end = entry + strlen(entry);
		mark = memchr(entry, '?', (size_t)(end - entry));
		if (mark != NULL && mark > entry && mark[-1] == '/' &&
		    *copies < LAUNCH_ENTRIES_MAX) {
			snprintf(dir, sizeof(dir), "%.*s", (int)(mark - entry - 1),
			    entry);
			snprintf(sub, sizeof(sub), "%s/%u", launch_dir,
			    (*copies)++);
			snprintf(files, sizeof(files), "%s/.", dir);
			launch_copy(files, sub);
			len += (size_t)snprintf(o + len, sizeof(out[0]) - len,
			    "%s/%.*s", sub, (int)(end - mark), mark);
		} else
			len += (size_t)snprintf(o + len, sizeof(out[0]) - len,
			    "%.*s", (int)(end - entry), entry);
		assert_true(len < sizeof(out[0]) - 1);
		if (*end == '\0')
			break;
		o[len++] = ';';
		o[len] = '\0';
	}
	setenv(name, o, 1);
}

/* In the child: runs the command under tcpbroker run. */
static void __attribute__((noreturn))
launch(const struct broker_proc *b)
{
	static char	 copies[LAUNCH_ENTRIES_MAX][256];
	char		*argv[LAUNCH_ENTRIES_MAX + 16], sub[128];
	const char	*base;
	struct stat	 st;
	unsigned	 n = 0, c = 0, i;

	argv[n++] = TB_BROKER_BIN;
	argv[n++] = "run";
	argv[n++] = "--policy";
	argv[n++] = (char *)b->policy;
	argv[n++] = "--bind-ro";
	argv[n++] = launch_dir;
	argv[n++] = "--";
	launch_lua_path("LUA_PATH", &c);
	launch_lua_path("LUA_CPATH", &c);
	for (i = 0; command[i] != NULL; i++) {
		assert_true(n < LAUNCH_ENTRIES_MAX + 15);
		if (i == 0 || stat(command[i], &st) != 0 ||
		    !S_ISREG(st.st_mode) || c >= LAUNCH_ENTRIES_MAX) {
			argv[n++] = command[i];
			continue;
		}
		snprintf(sub, sizeof(sub), "%s/%u", launch_dir, c);
		launch_copy(command[i], sub);
		base = strrchr(command[i], '/');
		snprintf(copies[c], sizeof(copies[c]), "%s/%s", sub,
		    base != NULL ? base + 1 : command[i]);
		argv[n++] = copies[c++];
	}
	argv[n] = NULL;
	/* A confined command cannot be ptraced: no LeakSanitizer there. */
	setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
	execv(argv[0], argv);
	fprintf(stderr, "run_example: %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

static char *
read_policy(const char *path)
{
	static char	text[POLICY_TEXT_MAX];
	FILE		*f = fopen(path, "r");
	size_t		 n;

	assert_non_null(f);
	n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = '\0';
	fclose(f);
	return text;
}

static void
test_script(void **state)
{
	struct broker_proc	broker;
	struct visitor		v = { .broker = &broker };
	uint64_t		deadline;
	pid_t			pid;
	int			status, full, closed, fill[8], i;

	(void)state;
	harness_broker_start(&broker, policy_file != NULL ?
	    read_policy(policy_file) : HARNESS_POLICY);
	for (i = 0; i < 256; i++)
		binary_text[i] = (uint8_t)i;
	server_start(&echo, AF_INET, serve_echo, NULL, 0);
	server_start(&greeting, AF_INET, serve_send, greeting_text,
	    strlen(greeting_text));
	server_start(&binary, AF_INET, serve_send, binary_text, 256);
	server_start(&silent, AF_INET, serve_silent, NULL, 0);
	server_start(&http, AF_INET, serve_http, NULL, 0);
	server_start(&hold, AF_INET, serve_hold, NULL, 0);
	server_start(&monitor, AF_INET, serve_monitor, NULL, 0);
	server_start(&smtp, AF_INET, serve_smtp, NULL, 0);
	server_start(&mailbox, AF_INET, serve_mailbox, NULL, 0);

	/* A listener whose accept queue is full drops new SYNs. */
	full = loopback_socket();
	assert_int_equal(listen(full, 0), 0);
	for (i = 0; i < 8; i++) {
		struct sockaddr_in sin = { .sin_family = AF_INET };
		sin.sin_port = htons(listen_port(full));
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0);
		connect(fill[i], (struct sockaddr *)&sin, sizeof(sin));
	}
	closed = loopback_socket();

	setenv("TCPBROKER_SOCKET", broker.socket, 1);
	set_port("ECHO_PORT", echo.port);
	set_port("GREETING_PORT", greeting.port);
	set_port("BINARY_PORT", binary.port);
	set_port("SILENT_PORT", silent.port);
	set_port("HTTP_PORT", http.port);
	set_port("HOLD_PORT", hold.port);
	set_port("MONITOR_PORT", monitor.port);
	set_port("SMTP_PORT", smtp.port);
	set_port("MAILBOX_PORT", mailbox.port);
	set_port("FULL_PORT", listen_port(full));
	set_port("CLOSED_PORT", listen_port(closed));
	close(closed);
	if (visiting)
		assert_int_equal(pthread_create(&v.thread, NULL, visitor_main,
		    &v), 0);

	if (launching) {
		snprintf(launch_dir, sizeof(launch_dir),
		    "/tmp/tcpbroker-launch-XXXXXX");
		assert_non_null(mkdtemp(launch_dir));
		assert_int_equal(chmod(launch_dir, 0755), 0);
	}
	pid = fork();
	assert_true(pid != -1);
	if (pid == 0 && launching)
		launch(&broker);
	if (pid == 0) {
		execvp(command[0], command);
		fprintf(stderr, "run_example: %s: %s\n", command[0],
		    strerror(errno));
		_exit(127);
	}
	deadline = harness_now_ms() + SCRIPT_MS;
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (harness_now_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			fail_msg("%s: still running after %d ms", command[0],
			    SCRIPT_MS);
		}
		harness_sleep_ms(10);
	}

	if (visiting) {
		atomic_store(&v.stop, true);
		pthread_join(v.thread, NULL);
	}
	for (i = 0; i < 8; i++)
		close(fill[i]);
	close(full);
	server_stop(&echo);
	server_stop(&greeting);
	server_stop(&binary);
	server_stop(&silent);
	server_stop(&http);
	server_stop(&hold);
	server_stop(&monitor);
	server_stop(&smtp);
	server_stop(&mailbox);
	free(mail);
	assert_int_equal(harness_broker_stop(&broker), 0);
	if (launching) {
		char	cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", launch_dir);
		assert_int_equal(system(cmd), 0);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("%s exited with status %d", command[0],
		    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

int
main(int argc, char *argv[])
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_script),
	};
	int	i = 1;

	for (; i < argc; i++) {
		if (i + 1 < argc && strcmp(argv[i], "--policy") == 0)
			policy_file = argv[++i];
		else if (strcmp(argv[i], "--visit") == 0)
			visiting = true;
		else if (strcmp(argv[i], "--launch") == 0)
			launching = true;
		else
			break;
	}
	if (i < argc && strcmp(argv[i], "--") == 0)
		i++;
	if (i >= argc || (visiting && launching)) {
		fprintf(stderr, "usage: run_example [--policy FILE] "
		    "[--visit | --launch] -- COMMAND ARGS...\n");
		return 2;
	}
	command = argv + i;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
