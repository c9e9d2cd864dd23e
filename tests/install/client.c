/*
 * Built against an installed tcpbroker with pkg-config: the public
 * header, the library, and a broker socket that is not there.
 */
#include <stdio.h>
#include <string.h>

#include <tcpbroker.h>

int
main(int argc, char *argv[])
{
	tb_client	*c = NULL;
	struct tb_error	 err;
	int		 rc;

	if (argc != 2)
		return 2;
	if (strcmp(tb_err_name(TB_EPOLICY), "EPOLICY") != 0)
		return 1;
	rc = tb_client_open_path(&c, argv[1], &err);
	if (rc != TB_EBROKER || err.code != TB_EBROKER || c != NULL) {
		fprintf(stderr, "expected EBROKER, got %s: %s\n",
		    tb_err_name(rc), err.message);
		return 1;
	}
	printf("%s: %s\n", tb_err_name(err.code), err.message);
	return 0;
}
