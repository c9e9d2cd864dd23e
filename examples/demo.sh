#!/bin/sh
# The main job: build tcpbroker, start a broker with the example policy,
# and show a client doing allowed and denied work through it.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/tests/deps.sh"
tb_install_deps

build="$top/build"
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null

run=$(mktemp -d /tmp/tcpbroker-demo-XXXXXX)
broker_pid=
cleanup() {
	if [ -n "$broker_pid" ]; then
		kill "$broker_pid" 2>/dev/null || true
		wait "$broker_pid" 2>/dev/null || true
	fi
	rm -rf "$run"
}
trap cleanup EXIT INT TERM

echo "== starting the broker with examples/policy.conf"
"$build/broker/tcpbroker" --check "$top/examples/policy.conf"
"$build/broker/tcpbroker" --policy "$top/examples/policy.conf" \
    --socket "$run/broker.sock" 2>"$run/broker.log" &
broker_pid=$!
i=0
while [ ! -S "$run/broker.sock" ]; do
	i=$((i + 1))
	if [ $i -gt 500 ] || ! kill -0 "$broker_pid" 2>/dev/null; then
		cat "$run/broker.log"
		echo "the broker did not start" >&2
		exit 1
	fi
	sleep 0.01
done

echo "== a client of the broker (it holds no TCP socket of its own)"
status=0
TCPBROKER_SOCKET="$run/broker.sock" "$build/examples/tcpbroker-demo" ||
    status=$?

kill "$broker_pid"
wait "$broker_pid" || true
broker_pid=
echo
echo "== the broker's log of its decisions"
grep -E 'allowed|denied|session' "$run/broker.log" | sed 's/^[^ ]* //'
exit $status
