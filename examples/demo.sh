#!/bin/sh
# The main job: build tcpbroker, start a web server on loopback, and run
# a Lua script under `tcpbroker run` with the example policy: it does
# allowed and denied work through its own confined broker.  Then show the
# broker's decisions.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/tests/deps.sh"
tb_install_deps

build="$top/build"
echo "== building"
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null

run=$(mktemp -d /tmp/tcpbroker-demo-XXXXXX)
web_pid=
cleanup() {
	for pid in $web_pid; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits (at most 5 s) until the command in "$@" succeeds.
wait_for() {
	i=0
	until "$@"; do
		i=$((i + 1))
		[ $i -le 500 ] || return 1
		sleep 0.01
	done
}

echo "== a web server on 127.0.0.1"
mkdir "$run/www"
echo "hello from a loopback web server" >"$run/www/index.html"
/usr/bin/python3 -u -m http.server 0 --bind 127.0.0.1 \
    --directory "$run/www" >"$run/web.log" 2>&1 &
web_pid=$!
wait_for grep -q 'port [0-9]' "$run/web.log" || {
	cat "$run/web.log"
	exit 1
}
http_port=$(sed -n 's/.* port \([0-9]*\).*/\1/p' "$run/web.log" | head -n 1)
echo "   port $http_port"

echo "== lua5.4 examples/demo.lua under tcpbroker run, with examples/policy.conf"
echo "   (the script gets a broker of its own and cannot open a socket itself)"
"$build/broker/tcpbroker" --check "$top/examples/policy.conf"
# Started as root, the launcher runs the script as a uid of its own, in a
# mount namespace where /tmp is empty: give it copies it can read, shown
# to it read-only with --bind-ro.
cp "$build/client-stub/lua/tcp.so" "$top/examples/demo.lua" "$run/"
chmod 0755 "$run"
chmod 0644 "$run/tcp.so" "$run/demo.lua"
status=0
LUA_CPATH="$run/?.so" HTTP_PORT="$http_port" \
    "$build/broker/tcpbroker" run --policy "$top/examples/policy.conf" \
    --bind-ro "$run" \
    --log "$run/broker.log" --decision-log "$run/decisions.json" \
    -- lua5.4 "$run/demo.lua" || status=$?

echo
echo "== the broker's decisions ($run/decisions.json, one JSON object a line)"
/usr/bin/python3 - "$run/decisions.json" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    d = json.loads(line)
    if d["event"] == "decision":
        print("  %-7s %-6s %-26s -> %-5s %s%s" % (
            d["action"], "uid %d" % d["uid"],
            "%s:%d" % (d["host"], d["port"]) if d["action"] != "listen"
            else d["host"], d["verdict"], d["rule"] or d["reason"],
            " (report)" if d["report"] else ""))
    elif d["event"] == "close":
        print("  closed  %-26s %d bytes in, %d out, %d ms" % (
            d["peer"], d["bytes_in"], d["bytes_out"], d["duration_ms"]))
PY
echo
echo "== the broker's own log"
grep -E 'sandbox|running as|opened|closed:' "$run/broker.log" | sed 's/^[^ ]* //'
exit $status
