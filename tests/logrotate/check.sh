#!/bin/sh
# The shipped logrotate file, run for real by logrotate against a live
# broker: the files are renamed, the broker gets SIGUSR1 (here by its
# pid, in place of the unit's `systemctl kill`) and writes on in new
# files; the second rotation compresses the first (delaycompress).
#   check.sh BROKER LOGROTATE_FILE
set -eu
broker=$1 shipped=$2
tmp=$(mktemp -d /tmp/tcpbroker-logrotate-XXXXXX)
pid=
cleanup() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "logrotate: $*" >&2; exit 1; }

# Waits (at most 10 s) until file holds text.
wait_for() {
	i=0
	until grep -q "$2" "$1" 2>/dev/null; do
		i=$((i + 1))
		[ "$i" -le 200 ] || fail "$1 never held \"$2\""
		sleep 0.05
	done
}

printf 'tenant all {\n    match uid *\n    connect allow 127.0.0.1:*\n}\n' > "$tmp/policy.conf"
"$broker" --policy "$tmp/policy.conf" --socket "$tmp/broker.sock" \
    --log "$tmp/broker.log" --decision-log "$tmp/decisions.json" \
    --user nobody &
pid=$!
wait_for "$tmp/broker.log" "info: serving"

# The shipped file, with this directory and the signal sent by pid.
sed -e "s#/var/log/tcpbroker/#$tmp/#g" \
    -e "s#systemctl kill .*#kill -USR1 $pid#" "$shipped" > "$tmp/logrotate.conf"
grep -q "kill -USR1 $pid" "$tmp/logrotate.conf" || fail "no postrotate line"
echo '{"event":"x"}' >> "$tmp/decisions.json"	# notifempty

logrotate --force --state "$tmp/state" "$tmp/logrotate.conf" ||
    fail "the first rotation failed"
[ -f "$tmp/broker.log.1" ] || fail "broker.log was not rotated"
grep -q "info: serving" "$tmp/broker.log.1" || fail "broker.log.1 lacks the old lines"
wait_for "$tmp/broker.log" "log files reopened"
grep -q "log files reopened" "$tmp/broker.log.1" &&
    fail "the broker went on writing to the rotated file"
[ -f "$tmp/decisions.json" ] || fail "the decision log was not created again"

# Again: the first rotated file is compressed now.
kill -HUP "$pid"	# a line in the new log, so that it is not empty
wait_for "$tmp/broker.log" "policy reloaded"
logrotate --force --state "$tmp/state" "$tmp/logrotate.conf" ||
    fail "the second rotation failed"
[ -f "$tmp/broker.log.2.gz" ] || fail "broker.log.1 was not compressed"
[ -f "$tmp/broker.log.1" ] || fail "broker.log was not rotated again"
wait_for "$tmp/broker.log" "log files reopened"
kill -0 "$pid" || fail "the broker is gone"
echo "logrotate: ok"
