/*
 * Runs a fuzz target over the files given (or the files of the
 * directories given), for compilers without libFuzzer: the corpus of
 * each target runs this way in the test suite.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional, as with libFuzzer: runs once before the inputs. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* Largest input read: bytes. */
#define DRIVER_INPUT_MAX	(2 * 1024 * 1024)

static int
run_file(const char *path)
{
	static uint8_t	 buf[DRIVER_INPUT_MAX];
	FILE		*f = fopen(path, "rb");
	size_t		 n;

	if (f == NULL) {
		perror(path);
		return 1;
	}
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	LLVMFuzzerTestOneInput(buf, n);
	return 0;
}

int
main(int argc, char *argv[])
{
	struct dirent	*d;
	struct stat	 st;
	char		 path[4096];
	DIR		*dir;
	int		 i, n = 0, rc = 0;

	if (LLVMFuzzerInitialize != NULL)
		LLVMFuzzerInitialize(&argc, &argv);
	for (i = 1; i < argc; i++) {
		if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
			if ((dir = opendir(argv[i])) == NULL)
				return 1;
			while ((d = readdir(dir)) != NULL) {
				if (d->d_name[0] == '.')
					continue;
				snprintf(path, sizeof(path), "%s/%s", argv[i],
				    d->d_name);
				rc |= run_file(path);
				n++;
			}
			closedir(dir);
		} else {
			rc |= run_file(argv[i]);
			n++;
		}
	}
	printf("%d inputs\n", n);
	return rc != 0 || n == 0;
}
