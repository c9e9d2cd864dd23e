#!/bin/sh
# The README's C snippet with no broker to reach: it must fail with the
# broker's error, status 1, and not crash.
#   readme_nobroker.sh PROGRAM
set -u
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
status=0
TCPBROKER_SOCKET="$dir/no-broker.sock" "$1" >"$dir/out" 2>"$dir/err" ||
    status=$?
if [ "$status" != 1 ] || ! grep -q "^EBROKER: cannot reach the broker" \
    "$dir/err"; then
	echo "status $status, stderr:"
	cat "$dir/err"
	exit 1
fi
cat "$dir/err"
