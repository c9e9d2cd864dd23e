/*
 * tcpbroker-bench: starts the loopback servers, the broker and the
 * SOCKS proxies, measures every figure on every path in one interleaved
 * run (each figure on each path in turn, the whole round repeated), and
 * prints the medians with their ratios, and writes them as JSON.
 *
 *   tcpbroker-bench [--quick] [--runs N] [--out FILE] [--only PREFIX]
 *                   [--busy-poll US]
 *
 * --only runs only the figures whose JSON name starts with PREFIX
 * ("read_line", "idle"), to profile one of them.  --busy-poll starts
 * the broker with that option, to measure what it buys.
 *
 * Runs as root: the broker drops privileges as it does when installed,
 * and the idle connections come from children switched to unused uids.
 */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "tb_limits.h"

/* Rounds of the whole interleaved run at most. */
#define RUNS_MAX	9
/*
 * Uids the idle connections come from: 1,250 connections in 10
 * sessions each, under the broker's per-uid caps even where a
 * descriptor limit of 20,000 lowers them (to 2,428 handles a uid).
 */
#define IDLE_UIDS	IDLE_UIDS_MAX
/* Connections each path opens before the first round, and for how long. */
#define WARM_UP_COUNT	200
#define WARM_UP_MS	500
/* Longest output of one Lua measurement: bytes. */
#define LUA_OUTPUT_MAX	256

enum column {
	COL_DIRECT, COL_TCPBROKER, COL_DANTE, COL_MICROSOCKS,
	COL_LUASOCKET, COL_LUA_TCP,
	COLUMNS
};
static const char *const column_names[COLUMNS] = {
	"direct", "tcpbroker", "dante", "microsocks", "luasocket", "lua_tcp",
};

enum metric {
	M_CONNECT, M_ECHO_P50, M_ECHO_P99, M_BULK_WRITE, M_BULK_READ,
	M_READ_LINE, M_SELECT,
	M_IDLE_MEM_SMALL, M_IDLE_MEM_LARGE, M_IDLE_P99_NONE, M_IDLE_P99_MANY,
	METRICS
};
static const struct {
	const char	*key;		/* JSON name, with its unit */
	const char	*label;		/* row of the table */
	const char	*lua;		/* bench.lua's name, or NULL */
	bool		 lower_better;
} metrics[METRICS] = {
	{ "connect_close_per_s", "connect+close /s", "connect", false },
	{ "echo_p50_us", "echo 64 B p50 us", "echo", true },
	{ "echo_p99_us", "echo 64 B p99 us", NULL, true },
	{ "bulk_write_mb_s", "write_all 64 KiB MB/s", "write", false },
	{ "bulk_read_mb_s", "read 64 KiB MB/s", "read", false },
	{ "read_line_per_s", "read_line 100 B /s", "lines", false },
	{ "select_100_vs_1", "select 100 vs 1 conn", NULL, true },
	{ "idle_bytes_per_conn_small", "bytes/idle conn", NULL, true },
	{ "idle_bytes_per_conn_large", "bytes/idle conn", NULL, true },
	{ "idle_echo_p99_none_us", "echo p99, no idle", NULL, true },
	{ "idle_echo_p99_many_us", "echo p99, idle", NULL, true },
};

struct config {
	bool		 quick;
	int		 runs;
	const char	*out;
	const char	*only;		/* figures whose key starts so */
	const char	*busy_poll;	/* the broker's --busy-poll, or NULL */
	struct budget	 budget;
	struct budget	 connect_budget;
	int		 idle_small, idle_large;
	int		 idle_uids;
};

static double	results[METRICS][COLUMNS][RUNS_MAX];
static int	runs_done;

static struct servers	servers;
static struct broker	broker;
static struct proc	dante, microsocks;
static struct path	paths[COL_LUASOCKET];
static char		workdir[64];

static void
usage(void)
{
	fprintf(stderr, "usage: tcpbroker-bench [--quick] [--runs N] "
	    "[--out FILE] [--only PREFIX]\n"
	    "                       [--busy-poll US]\n");
	exit(2);
}

static void
on_signal(int sig)
{
	(void)sig;
	proc_stop_all();
	_exit(1);
}

static void
write_text(const char *path, const char *text)
{
	FILE	*f;

	if ((f = fopen(path, "w")) == NULL || fputs(text, f) < 0 ||
	    fclose(f) != 0)
		die("%s: %s", path, strerror(errno));
}

/* The Dante configuration of bench/, with its port and log filled in. */
static void
dante_start(uint16_t port)
{
	char	 conf[128], log[128], tmpl[4096], text[sizeof(tmpl) + 8], *at;
	char	*argv[] = { "/usr/sbin/danted", "-f", conf, NULL };
	FILE	*f;
	size_t	 n;

	if (access(argv[0], X_OK) != 0) {
		warnx_("%s is not installed: no Dante column", argv[0]);
		return;
	}
	if ((f = fopen(TB_BENCH_DIR "/danted.conf", "r")) == NULL)
		die("%s/danted.conf: %s", TB_BENCH_DIR, strerror(errno));
	n = fread(tmpl, 1, sizeof(tmpl) - 1, f);
	fclose(f);
	tmpl[n] = '\0';
	if ((at = strstr(tmpl, "@PORT@")) == NULL)
		die("danted.conf has no @PORT@");
	*at = '\0';
	snprintf(text, sizeof(text), "%s%u%s", tmpl, port, at + 6);
	snprintf(conf, sizeof(conf), "%s/danted.conf", workdir);
	snprintf(log, sizeof(log), "%s/danted.log", workdir);
	write_text(conf, text);
	proc_spawn(&dante, "danted", argv, log);
	proc_wait_tcp(&dante, port);
}

static void
microsocks_start(uint16_t port)
{
	char	 portstr[8], log[128];
	char	*argv[] = { "/usr/bin/microsocks", "-i", "127.0.0.1",
		    "-p", portstr, "-b", "127.0.0.1", NULL };

	if (access(argv[0], X_OK) != 0) {
		warnx_("%s is not installed: no microsocks column", argv[0]);
		return;
	}
	snprintf(portstr, sizeof(portstr), "%u", port);
	snprintf(log, sizeof(log), "%s/microsocks.log", workdir);
	proc_spawn(&microsocks, "microsocks", argv, log);
	proc_wait_tcp(&microsocks, port);
}

/*
 * The servers hold every idle connection, and the broker inherits the
 * limit: raise it as far as allowed, and fail if that is too little.
 */
static void
raise_nofile(const struct config *cfg)
{
	struct rlimit	rl;
	rlim_t		need = (rlim_t)cfg->idle_large + BENCH_NOFILE_SPARE;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		die("getrlimit: %s", strerror(errno));
	if (rl.rlim_max < need) {
		rl.rlim_max = need;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1 &&
		    getrlimit(RLIMIT_NOFILE, &rl) == -1)
			die("getrlimit: %s", strerror(errno));
	}
	rl.rlim_cur = rl.rlim_max;
	if (rl.rlim_cur < need || setrlimit(RLIMIT_NOFILE, &rl) == -1)
		die("RLIMIT_NOFILE: %llu descriptors needed, %llu allowed",
		    (unsigned long long)need, (unsigned long long)rl.rlim_max);
}

/* Dante forks its pool of processes as the first clients come. */
static void
warm_up(void)
{
	static const struct budget	b = { WARM_UP_MS, WARM_UP_COUNT };
	int				col;

	for (col = COL_DIRECT; col <= COL_MICROSOCKS; col++)
		if (paths[col].ops != NULL &&
		    isnan(measure_connect_close(&paths[col], &servers, &b)))
			die("%s: cannot connect through it", paths[col].name);
}

static void
set_up(const struct config *cfg)
{
	struct tb_error	err;
	uint16_t	port;

	if (geteuid() != 0)
		die("run as root: the broker drops privileges, and idle "
		    "connections come from other uids");
	raise_nofile(cfg);
	net_isolate();
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	snprintf(workdir, sizeof(workdir), "/tmp/tcpbroker-bench-XXXXXX");
	if (mkdtemp(workdir) == NULL)
		die("mkdtemp: %s", strerror(errno));

	servers_start(&servers);
	broker_start(&broker, TB_BENCH_DIR "/policy.conf", cfg->busy_poll);
	paths[COL_DIRECT] = (struct path){ "direct", &path_direct_ops, 0,
	    NULL };
	paths[COL_TCPBROKER] = (struct path){ "tcpbroker",
	    &path_tcpbroker_ops, 0, NULL };
	if (tb_client_open_path(&paths[COL_TCPBROKER].client, broker.socket,
	    &err) != 0)
		die("session: %s", err.message);
	port = free_port();
	dante_start(port);
	paths[COL_DANTE] = (struct path){ "dante", dante.pid > 0 ?
	    &path_socks_ops : NULL, port, NULL };
	port = free_port();
	microsocks_start(port);
	paths[COL_MICROSOCKS] = (struct path){ "microsocks",
	    microsocks.pid > 0 ? &path_socks_ops : NULL, port, NULL };

	warm_up();
	setenv("LUA_CPATH", TB_LUA_MODULE_DIR "/?.so;;", 1);
	setenv("TCPBROKER_SOCKET", broker.socket, 1);
}

static void
tear_down(void)
{
	static const char *const files[] = {
		"danted.conf", "danted.log", "microsocks.log",
	};
	char	path[128];
	size_t	i;

	tb_client_close(paths[COL_TCPBROKER].client);
	proc_stop(&microsocks);
	proc_stop(&dante);
	broker_stop(&broker);
	proc_stop_all();
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", workdir, files[i]);
		unlink(path);
	}
	rmdir(workdir);
}

/*
 * One Lua measurement in its own interpreter: prints one or two numbers.
 * Bounded by BENCH_CHILD_MS; killed by PID past it.
 */
static int
lua_measure(const char *backend, const char *metric, uint16_t port,
    const struct budget *b, double *v1, double *v2)
{
	char		 ms[16], count[16], portstr[8], out[LUA_OUTPUT_MAX];
	char		*argv[] = { TB_LUA, TB_BENCH_DIR "/bench.lua",
			    (char *)backend, (char *)metric, portstr, ms,
			    count, NULL };
	uint64_t	 deadline = now_ms() + BENCH_CHILD_MS;
	struct pollfd	 pfd;
	size_t		 len = 0;
	ssize_t		 n;
	pid_t		 pid;
	int		 fd[2], status = -1;

	snprintf(ms, sizeof(ms), "%u", b->ms);
	snprintf(count, sizeof(count), "%u", b->count);
	snprintf(portstr, sizeof(portstr), "%u", port);
	*v1 = *v2 = NAN;
	if (pipe2(fd, O_CLOEXEC) == -1 || (pid = fork()) == -1)
		die("lua: %s", strerror(errno));
	if (pid == 0) {
		if (dup2(fd[1], 1) == -1)
			_exit(127);
		execv(argv[0], argv);
		_exit(127);
	}
	proc_track(pid, "lua");
	close(fd[1]);
	pfd.fd = fd[0];
	pfd.events = POLLIN;
	while (len < sizeof(out) - 1 && now_ms() < deadline) {
		if (poll(&pfd, 1, (int)(deadline - now_ms())) != 1 ||
		    (n = read(fd[0], out + len, sizeof(out) - 1 - len)) <= 0)
			break;
		len += (size_t)n;
	}
	close(fd[0]);
	if (now_ms() >= deadline)
		kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	proc_untrack(pid);
	out[len] = '\0';
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
	    sscanf(out, "%lf %lf", v1, v2) < 1) {
		warnx_("lua %s %s failed", backend, metric);
		*v1 = *v2 = NAN;
		return -1;
	}
	return 0;
}

static uint16_t
metric_port(enum metric m)
{
	switch (m) {
	case M_BULK_WRITE:
		return servers.port[SERVER_SINK];
	case M_BULK_READ:
		return servers.port[SERVER_SOURCE];
	case M_READ_LINE:
		return servers.port[SERVER_LINES];
	default:
		return servers.port[SERVER_ECHO];
	}
}

static void
measure_c(enum metric m, struct path *p, const struct config *cfg, int run,
    int col)
{
	double	*v = &results[m][col][run];

	if (p->ops == NULL)
		return;
	switch (m) {
	case M_CONNECT:
		*v = measure_connect_close(p, &servers, &cfg->connect_budget);
		break;
	case M_ECHO_P50:
		measure_echo(p, servers.port[SERVER_ECHO], &cfg->budget, v,
		    &results[M_ECHO_P99][col][run]);
		break;
	case M_BULK_WRITE:
		*v = measure_bulk_write(p, &servers, &cfg->budget);
		break;
	case M_BULK_READ:
		*v = measure_bulk_read(p, &servers, &cfg->budget);
		break;
	case M_READ_LINE:
		*v = measure_read_line(p, &servers, &cfg->budget);
		break;
	case M_SELECT:
		*v = measure_select_ratio(p, &servers, &cfg->budget);
		break;
	default:
		break;
	}
}

/*
 * Broker memory per idle connection and the echo tail with them open,
 * on a broker of its own started for this round, so that each round
 * starts from the same heap.
 */
static void
measure_idle(const struct config *cfg, const uid_t *uids, int run)
{
	struct broker		 b;
	struct idle_group	 small, large;
	struct tb_error		 err;
	struct path		 p = { "tcpbroker", &path_tcpbroker_ops, 0,
				    NULL };
	uint64_t		 rss0, rss;
	double			 p50;
	uint16_t		 port = servers.port[SERVER_IDLE];
	uint16_t		 echo = servers.port[SERVER_ECHO];

	broker_start(&b, TB_BENCH_DIR "/policy.conf", cfg->busy_poll);
	if (tb_client_open_path(&p.client, b.socket, &err) != 0)
		die("session: %s", err.message);
	measure_echo(&p, echo, &cfg->budget, &p50,
	    &results[M_IDLE_P99_NONE][COL_TCPBROKER][run]);
	rss0 = proc_rss(b.proc.pid);
	if (idle_open(&small, b.socket, port, uids, cfg->idle_uids,
	    cfg->idle_small) == 0) {
		rss = proc_rss(b.proc.pid);
		results[M_IDLE_MEM_SMALL][COL_TCPBROKER][run] =
		    ((double)rss - (double)rss0) / cfg->idle_small;
		if (idle_open(&large, b.socket, port, uids, cfg->idle_uids,
		    cfg->idle_large - cfg->idle_small) == 0) {
			rss = proc_rss(b.proc.pid);
			results[M_IDLE_MEM_LARGE][COL_TCPBROKER][run] =
			    ((double)rss - (double)rss0) / cfg->idle_large;
			measure_echo(&p, echo, &cfg->budget, &p50,
			    &results[M_IDLE_P99_MANY][COL_TCPBROKER][run]);
		}
		idle_close(&large);
	}
	idle_close(&small);
	tb_client_close(p.client);
	broker_stop(&b);
}

static bool
selected(const struct config *cfg, enum metric m)
{
	return cfg->only == NULL ||
	    strncmp(metrics[m].key, cfg->only, strlen(cfg->only)) == 0;
}

static void
run_round(const struct config *cfg, const uid_t *uids, int run)
{
	double	unused;
	int	m, col;

	for (m = 0; m < METRICS; m++)
		for (col = 0; col < COLUMNS; col++)
			results[m][col][run] = NAN;
	for (m = M_CONNECT; m <= M_SELECT; m++) {
		if (m == M_ECHO_P99 || !selected(cfg, m))
			continue;	/* p99 is measured with the median */
		for (col = COL_DIRECT; col <= COL_MICROSOCKS; col++)
			measure_c((enum metric)m, &paths[col], cfg, run, col);
		if (metrics[m].lua == NULL)
			continue;
		lua_measure("socket", metrics[m].lua, metric_port(m),
		    m == M_CONNECT ? &cfg->connect_budget : &cfg->budget,
		    &results[m][COL_LUASOCKET][run],
		    m == M_ECHO_P50 ? &results[M_ECHO_P99][COL_LUASOCKET][run] :
		    &unused);
		lua_measure("tcp", metrics[m].lua, metric_port(m),
		    m == M_CONNECT ? &cfg->connect_budget : &cfg->budget,
		    &results[m][COL_LUA_TCP][run],
		    m == M_ECHO_P50 ? &results[M_ECHO_P99][COL_LUA_TCP][run] :
		    &unused);
	}
	if (selected(cfg, M_IDLE_MEM_SMALL))
		measure_idle(cfg, uids, run);
}

static int
cmp_double(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median of the runs that gave a figure; NAN if none did. */
static double
median(enum metric m, enum column col)
{
	double	v[RUNS_MAX];
	int	n = 0, i;

	for (i = 0; i < runs_done; i++)
		if (!isnan(results[m][col][i]))
			v[n++] = results[m][col][i];
	if (n == 0)
		return NAN;
	qsort(v, (size_t)n, sizeof(v[0]), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Whether path col is meant to give figure m in this run. */
static bool
expected(const struct config *cfg, enum metric m, enum column col)
{
	if (!selected(cfg, m == M_ECHO_P99 ? M_ECHO_P50 : m))
		return false;
	if (m >= M_IDLE_MEM_SMALL)
		return col == COL_TCPBROKER && selected(cfg, M_IDLE_MEM_SMALL);
	if (col >= COL_LUASOCKET)
		return m <= M_READ_LINE;
	if (paths[col].ops == NULL)
		return false;	/* that proxy is not installed */
	return m != M_SELECT || paths[col].ops->select != NULL;
}

/*
 * The figures that no round gave, each named: a path that broke fails
 * the run, --quick included, without any figure being judged.
 */
static int
missing_figures(const struct config *cfg)
{
	int	m, col, missing = 0;

	for (m = 0; m < METRICS; m++)
		for (col = 0; col < COLUMNS; col++)
			if (expected(cfg, m, col) && isnan(median(m, col))) {
				warnx_("no figure for %s on %s", metrics[m].key,
				    column_names[col]);
				missing++;
			}
	return missing;
}

static void
cell(char *buf, size_t cap, double v)
{
	if (isnan(v))
		snprintf(buf, cap, "n/a");
	else if (v >= 100)
		snprintf(buf, cap, "%.0f", v);
	else
		snprintf(buf, cap, "%.3g", v);
}

static void
ratio(char *buf, size_t cap, double a, double b)
{
	if (isnan(a) || isnan(b) || b == 0)
		snprintf(buf, cap, "n/a");
	else if (a / b < 0.1)
		snprintf(buf, cap, "%.2gx", a / b);
	else
		snprintf(buf, cap, "%.2fx", a / b);
}

static void
print_table(const struct config *cfg)
{
	char	c[8][24];
	double	tb;
	int	m;

	printf("\nmedians of %d interleaved run%s%s; ratio = tcpbroker / "
	    "other (for us and select, lower is better)\n\n", runs_done,
	    runs_done == 1 ? "" : "s", cfg->quick ? " (--quick: figures "
	    "mean nothing)" : "");
	printf("%-22s %10s %10s %10s %10s %8s %10s %8s\n", "C client",
	    "direct", "tcpbroker", "vs direct", "dante", "vs dante",
	    "microsocks", "vs micro");
	for (m = M_CONNECT; m <= M_SELECT; m++) {
		tb = median(m, COL_TCPBROKER);
		cell(c[0], sizeof(c[0]), median(m, COL_DIRECT));
		cell(c[1], sizeof(c[1]), tb);
		ratio(c[2], sizeof(c[2]), tb, median(m, COL_DIRECT));
		cell(c[3], sizeof(c[3]), median(m, COL_DANTE));
		ratio(c[4], sizeof(c[4]), tb, median(m, COL_DANTE));
		cell(c[5], sizeof(c[5]), median(m, COL_MICROSOCKS));
		ratio(c[6], sizeof(c[6]), tb, median(m, COL_MICROSOCKS));
		printf("%-22s %10s %10s %10s %10s %8s %10s %8s\n",
		    metrics[m].label, c[0], c[1], c[2], c[3], c[4], c[5],
		    c[6]);
	}
	printf("\n%-22s %10s %10s %10s\n", "Lua", "LuaSocket", "tcp module",
	    "ratio");
	for (m = M_CONNECT; m <= M_READ_LINE; m++) {
		tb = median(m, COL_LUA_TCP);
		cell(c[0], sizeof(c[0]), median(m, COL_LUASOCKET));
		cell(c[1], sizeof(c[1]), tb);
		ratio(c[2], sizeof(c[2]), tb, median(m, COL_LUASOCKET));
		printf("%-22s %10s %10s %10s\n", metrics[m].label, c[0], c[1],
		    c[2]);
	}
	printf("\nbroker, idle connections from %d uids:\n", cfg->idle_uids);
	cell(c[0], sizeof(c[0]), median(M_IDLE_MEM_SMALL, COL_TCPBROKER));
	cell(c[1], sizeof(c[1]), median(M_IDLE_MEM_LARGE, COL_TCPBROKER));
	printf("  RSS per idle connection: %s bytes at %d, %s bytes at %d\n",
	    c[0], cfg->idle_small, c[1], cfg->idle_large);
	cell(c[0], sizeof(c[0]), median(M_IDLE_P99_NONE, COL_TCPBROKER));
	cell(c[1], sizeof(c[1]), median(M_IDLE_P99_MANY, COL_TCPBROKER));
	ratio(c[2], sizeof(c[2]), median(M_IDLE_P99_MANY, COL_TCPBROKER),
	    median(M_IDLE_P99_NONE, COL_TCPBROKER));
	printf("  echo p99: %s us with none, %s us with %d: %s\n", c[0], c[1],
	    cfg->idle_large, c[2]);
}

static void
json_number(FILE *f, double v)
{
	if (isnan(v))
		fprintf(f, "null");
	else
		fprintf(f, "%.6g", v);
}

static void
machine(char *cpu, size_t cap)
{
	char	line[256], *p;
	FILE	*f = fopen("/proc/cpuinfo", "r");

	snprintf(cpu, cap, "unknown");
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "model name", 10) == 0 &&
		    (p = strchr(line, ':')) != NULL) {
			p += strspn(p + 1, " \t") + 1;
			p[strcspn(p, "\n\"\\")] = '\0';
			snprintf(cpu, cap, "%s", p);
			break;
		}
	fclose(f);
}

static void
write_json(const struct config *cfg)
{
	struct utsname	u;
	char		cpu[128];
	FILE		*f;
	int		m, col, i;

	if ((f = fopen(cfg->out, "w")) == NULL)
		die("%s: %s", cfg->out, strerror(errno));
	uname(&u);
	machine(cpu, sizeof(cpu));
	fprintf(f, "{\n  \"quick\": %s,\n  \"runs\": %d,\n"
	    "  \"busy_poll_us\": %lu,\n", cfg->quick ? "true" : "false",
	    runs_done, cfg->busy_poll != NULL ?
	    strtoul(cfg->busy_poll, NULL, 10) : 0UL);
	fprintf(f, "  \"machine\": { \"nproc\": %ld, \"cpu\": \"%s\", "
	    "\"kernel\": \"%s\" },\n", sysconf(_SC_NPROCESSORS_ONLN), cpu,
	    u.release);
	fprintf(f, "  \"idle_connections\": [%d, %d],\n  \"figures\": {",
	    cfg->idle_small, cfg->idle_large);
	for (m = 0; m < METRICS; m++) {
		fprintf(f, "%s\n    \"%s\": {\n      \"lower_is_better\": %s",
		    m ? "," : "", metrics[m].key,
		    metrics[m].lower_better ? "true" : "false");
		for (col = 0; col < COLUMNS; col++) {
			if (isnan(median(m, col)))
				continue;
			fprintf(f, ",\n      \"%s\": { \"median\": ",
			    column_names[col]);
			json_number(f, median(m, col));
			fprintf(f, ", \"runs\": [");
			for (i = 0; i < runs_done; i++) {
				fprintf(f, "%s", i ? ", " : "");
				json_number(f, results[m][col][i]);
			}
			fprintf(f, "] }");
		}
		fprintf(f, "\n    }");
	}
	fprintf(f, "\n  }\n}\n");
	if (fclose(f) != 0)
		die("%s: %s", cfg->out, strerror(errno));
}

int
main(int argc, char *argv[])
{
	static const struct option	options[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "runs", required_argument, NULL, 'r' },
		{ "out", required_argument, NULL, 'o' },
		{ "only", required_argument, NULL, 'O' },
		{ "busy-poll", required_argument, NULL, 'B' },
		{ NULL, 0, NULL, 0 }
	};
	struct config	cfg = { .runs = 3 };
	uid_t		uids[IDLE_UIDS];
	int		ch, run;

	while ((ch = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (ch) {
		case 'q':
			cfg.quick = true;
			break;
		case 'r':
			cfg.runs = atoi(optarg);
			if (cfg.runs < 1 || cfg.runs > RUNS_MAX)
				die("--runs: 1 to %d", RUNS_MAX);
			break;
		case 'o':
			cfg.out = optarg;
			break;
		case 'O':
			cfg.only = optarg;
			break;
		case 'B':
			if (strspn(optarg, "0123456789") != strlen(optarg) ||
			    strlen(optarg) == 0 || strlen(optarg) > 4 ||
			    atoi(optarg) > LIMIT_BUSY_POLL_US_MAX)
				die("--busy-poll: 0 to %d microseconds",
				    LIMIT_BUSY_POLL_US_MAX);
			cfg.busy_poll = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if (cfg.quick) {
		/* Every path and figure once, briefly: that it works. */
		cfg.runs = 1;
		cfg.budget = (struct budget){ 50, 2000 };
		cfg.connect_budget = (struct budget){ 50, 200 };
		cfg.idle_small = 200;
		cfg.idle_large = 400;
		cfg.idle_uids = 2;
	} else {
		cfg.budget = (struct budget){ 1000, 1000000 };
		/* Loopback ports left in TIME_WAIT bound connect+close. */
		cfg.connect_budget = (struct budget){ 1000, 20000 };
		cfg.idle_small = 2000;
		cfg.idle_large = 10000;
		cfg.idle_uids = IDLE_UIDS;
	}
	if (idle_pick_uids(uids, cfg.idle_uids) == -1)
		die("no %d unused uids from 61000", cfg.idle_uids);

	set_up(&cfg);
	for (run = 0; run < cfg.runs; run++) {
		fprintf(stderr, "round %d of %d\n", run + 1, cfg.runs);
		run_round(&cfg, uids, run);
		runs_done = run + 1;
	}
	tear_down();
	print_table(&cfg);
	if (cfg.out != NULL)
		write_json(&cfg);
	return missing_figures(&cfg) == 0 ? 0 : 1;
}
