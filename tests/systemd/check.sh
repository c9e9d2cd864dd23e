#!/bin/sh
# The systemd units, without a running systemd: `systemd-analyze verify`
# finds nothing to say, the service's SystemCallFilter= holds every call
# the broker's and the resolver's own filters allow (or set-up would be
# refused before the broker confines itself), and the exposure that
# `systemd-analyze security` reports stays where docs/security.md says.
#   check.sh BROKER UNIT_DIR
set -eu
broker=$1 units=$2
tmp=$(mktemp -d /tmp/tcpbroker-units-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "units: $*" >&2; exit 1; }

# The units name the installed broker; point them at this one.
for u in tcpbroker.service tcpbroker.socket tcpbroker-metrics.service \
    tcpbroker-metrics.timer; do
	sed -E "s#=[^ =]*/tcpbroker #=$broker #" "$units/$u" > "$tmp/$u"
done
out=$(cd "$tmp" && systemd-analyze verify --man=no ./tcpbroker.socket \
    ./tcpbroker.service ./tcpbroker-metrics.service \
    ./tcpbroker-metrics.timer 2>&1) || fail "verify: $out"
[ -z "$out" ] || fail "verify: $out"

# Every group of the filter, expanded, with the calls named beside it.
filter=$(sed -n 's/^SystemCallFilter=//p' "$tmp/tcpbroker.service")
expand() {
	for item in "$@"; do
		case $item in
		@*) systemd-analyze syscall-filter --no-pager "$item" | tail -n +2 |
			sed -e 's/#.*//' -e 's/^ *//' | grep -v '^$' |
			while read -r name; do expand "$name"; done ;;
		*) echo "$item" ;;
		esac
	done
}
# shellcheck disable=SC2086
expand $filter | sort -u > "$tmp/allowed"
# The broker's and the resolver's tables (not the launched command's).
"$broker" --list-syscalls | awk '/^command run by/ { exit }
    /^  / { print $1 }' | sort -u > "$tmp/needed"
missing=$(comm -23 "$tmp/needed" "$tmp/allowed")
[ -z "$missing" ] || fail "SystemCallFilter= lacks:" $missing

exposure=$(cd "$tmp" && systemd-analyze security --offline=true \
    ./tcpbroker.service 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
[ -n "$exposure" ] || fail "no exposure level"
echo "systemd-analyze security: exposure $exposure"
awk -v e="$exposure" 'BEGIN { exit !(e <= 2.5) }' ||
    fail "exposure $exposure is above 2.5"
echo "units: ok"
