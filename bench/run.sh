#!/bin/sh
# The benchmark of docs/performance.md: tcpbroker against plain sockets,
# Dante, microsocks and LuaSocket, on loopback in a network namespace of
# its own, medians of three interleaved runs.  Takes about two minutes;
# run it as root on a quiet machine.
#   sh bench/run.sh                  the full run; JSON to bench/results/
#   sh bench/run.sh --quick          every path once, briefly (CI)
#   sh bench/run.sh --runs 5 --out FILE
# It is not part of tests/run.sh, which runs only the --quick pass.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/tests/deps.sh"
tb_install_deps

out="$top/bench/results/latest.json"
for arg in "$@"; do
	case $arg in --out|--out=*) out= ;; esac
done
cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$top/build" -j2 --target tcpbroker-bench
if [ -n "$out" ]; then
	mkdir -p "$(dirname "$out")"
	exec "$top/build/bench/tcpbroker-bench" --out "$out" "$@"
fi
exec "$top/build/bench/tcpbroker-bench" "$@"
