/*
 * The daemon's log: levels, printf-checked formats, one fatal path.
 * Lines go to stderr, which is --log's file when given.  When stderr is
 * systemd's journal (JOURNAL_STREAM names it), each line starts with
 * its priority as "<N>", sd-daemon(3)'s convention, and has no time
 * stamp or pid of its own: the journal records both.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"

static enum log_level	log_level = LOG_LEVEL_INFO;
static pid_t		log_pid;
static const char	*log_path;	/* --log, or NULL for stderr */
static bool		 log_journal;	/* stderr is the journal */

/* The syslog priorities of the levels, for the journal. */
static const int	level_priorities[] = {
	[LOG_LEVEL_ERROR] = 3,
	[LOG_LEVEL_WARN] = 4,
	[LOG_LEVEL_INFO] = 6,
	[LOG_LEVEL_DEBUG] = 7,
};

static const char *const level_names[] = {
	[LOG_LEVEL_ERROR] = "error",
	[LOG_LEVEL_WARN] = "warn",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

/* Whether JOURNAL_STREAM ("device:inode") names our stderr. */
static bool
stderr_is_journal(void)
{
	const char		*env = getenv("JOURNAL_STREAM");
	unsigned long long	 dev, ino;
	struct stat		 st;
	char			 end;

	if (env == NULL || sscanf(env, "%llu:%llu%c", &dev, &ino, &end) != 2)
		return false;
	if (fstat(STDERR_FILENO, &st) == -1)
		return false;
	return (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

void
log_init(enum log_level level)
{
	log_level = level;
	log_pid = getpid();
	log_journal = stderr_is_journal();
	/*
	 * gmtime_r() reads the time zone file the first time; do it now,
	 * before the sandbox, which has no lseek for it.
	 */
	tzset();
}

void
log_open(const char *path)
{
	int	fd;

	if ((fd = open(path, LOG_FILE_FLAGS, LOG_FILE_MODE)) == -1)
		fatal("--log %s", path);
	if (dup3(fd, STDERR_FILENO, 0) == -1)
		fatal("dup3");
	close(fd);
	log_path = path;
	log_journal = false;
}

bool
log_file_moved(int old_fd, int fd)
{
	struct stat	old_st, st;

	if (fstat(old_fd, &old_st) == -1 || fstat(fd, &st) == -1)
		return true;
	return old_st.st_dev != st.st_dev || old_st.st_ino != st.st_ino;
}

int
log_reopen(int fd)
{
	if (fd == -1)
		return 0;
	if (log_path == NULL || !log_file_moved(STDERR_FILENO, fd)) {
		close(fd);
		return 0;
	}
	/* The same descriptor: whatever writes to stderr follows. */
	if (dup3(fd, STDERR_FILENO, 0) == -1) {
		log_warnx("cannot reopen the log %s: dup3: %s", log_path,
		    strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 1;
}

int
log_level_parse(const char *name, enum log_level *level)
{
	size_t	i;

	for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*level = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

bool
log_enabled(enum log_level level)
{
	return level <= log_level;
}

static void __attribute__((format(printf, 2, 0)))
log_vmsg(enum log_level level, const char *fmt, va_list ap, const char *err)
{
	char		line[BROKER_LOG_LINE_MAX], stamp[32];
	struct timespec	ts;
	struct tm	tm;
	int		n;

	if (log_journal)
		n = snprintf(line, sizeof(line), "<%d>%s: ",
		    level_priorities[level], level_names[level]);
	else {
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
		n = snprintf(line, sizeof(line), "%s.%03ldZ tcpbroker[%d] %s: ",
		    stamp, ts.tv_nsec / 1000000,
		    (int)(log_pid ? log_pid : getpid()), level_names[level]);
	}
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	if (err != NULL)
		fprintf(stderr, "%s: %s\n", line, err);
	else
		fprintf(stderr, "%s\n", line);
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	va_list	ap;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	log_vmsg(level, fmt, ap, NULL);
	va_end(ap);
}

void
textf(char *buf, size_t cap, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(buf, cap, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	const char	*err = strerror(errno);
	va_list		 ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LEVEL_ERROR, fmt, ap, err);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LEVEL_ERROR, fmt, ap, NULL);
	va_end(ap);
	exit(1);
}
