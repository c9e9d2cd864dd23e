#!/bin/sh
# Runs integration tests with the broker under valgrind's memcheck, in a
# build made with -DTB_VALGRIND=ON (its filters also allow what valgrind
# calls), and passes when valgrind found nothing: no error in any
# process and no definite leak in a broker that exited.  The resolver
# processes end by SIGKILL when the broker does, so only their errors
# count, not their leaks.
#   tests/valgrind.sh BUILD_DIR [TEST...]
# The default tests are the integration tests that cover the data path,
# its faults, the 1 GiB nothing-lost run and the 1000-session flood, in
# about two minutes under valgrind; it_memory is left out (it sets an
# address space limit, which valgrind's own mappings would hit).
set -eu
build=$1
shift
[ $# -gt 0 ] || set -- it_connect it_io it_stream it_listen it_abuse it_faults \
    it_lossless it_flood
command -v valgrind >/dev/null || { echo "valgrind is not installed"; exit 1; }
dir=$(mktemp -d /tmp/tcpbroker-valgrind-XXXXXX)
# The broker writes its report after it switched users.
chmod 1777 "$dir"
status=0
for t in "$@"; do
	echo "== $t under valgrind"
	TB_VALGRIND_DIR=$dir "$build/tests/$t" || status=1
done
brokers=0
for log in "$dir"/vg.*.log; do
	[ -e "$log" ] || continue
	# Errors as valgrind names them; the seccomp(2) warning is expected
	# (libseccomp falls back to prctl).
	if grep -E '^==[0-9]+== +(Invalid|Conditional|Use of uninit|Syscall param|Mismatched|Source and destination|Argument|[0-9,]+ bytes in [0-9,]+ blocks are definitely)' "$log" >/dev/null ||
	    grep -E 'ERROR SUMMARY: [1-9]' "$log" >/dev/null; then
		echo "valgrind found errors:"; cat "$log"; status=1
	fi
	if grep -q 'ERROR SUMMARY: 0 errors' "$log"; then
		brokers=$((brokers + 1))
	fi
done
echo "valgrind: $(ls "$dir" | wc -l) processes, $brokers brokers checked for leaks at exit"
[ "$brokers" -gt 0 ] || { echo "no broker reached its end under valgrind"; status=1; }
[ "$status" -ne 0 ] || rm -rf "$dir"
exit $status
