#!/bin/sh
# Runs the fuzz targets long, one after another (one job: the machine
# is shared), each from a copy of its committed corpus, and prints each
# run's executions and coverage.  The copy keeps what the run found:
# merge it back with `fuzz_T -merge=1 tests/fuzz/corpus/T DIR/T`.
#   tests/fuzz/run.sh [-r RUNS] [-t SECONDS] [-s SEED] [TARGET...]
# Defaults: 10,000,000 executions each, every target, a seed from the
# clock.  Builds with clang in build-fuzz (libFuzzer, ASan, UBSan).
# tests/run.sh runs each target for 20,000 inputs with a fixed seed:
# from a fresh clone the same inputs each time, and a finding's input is printed (libFuzzer's
# Base64 line) with the log's end.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/deps.sh"
runs=10000000
secs=0
seed=0
while getopts r:t:s: opt; do
	case $opt in
	r) runs=$OPTARG ;;
	t) secs=$OPTARG ;;
	s) seed=$OPTARG ;;
	*) echo "usage: $0 [-r runs] [-t seconds] [-s seed] [target...]" >&2
	   exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || set -- scan policy host resolver client session
tb_install_fuzz_deps
build=$top/build-fuzz
work=$build/work
CC=clang cmake -S "$top" -B "$build" -DTB_FUZZ=ON -DTB_SANITIZE=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
for t in "$@"; do
	cmake --build "$build" -j2 --target "fuzz_$t" >/dev/null
	mkdir -p "$work/$t" "$work/artifacts"
	cp -n "$top/tests/fuzz/corpus/$t/"* "$work/$t/" 2>/dev/null || true
	dict=
	[ -f "$top/tests/fuzz/$t.dict" ] && dict=-dict=$top/tests/fuzz/$t.dict
	limit=
	[ "$secs" = 0 ] || limit=", at most $secs s"
	echo "== fuzz_$t: $runs runs$limit"
	"$build/tests/fuzz/fuzz_$t" $dict -runs="$runs" -seed="$seed" \
	    -max_total_time="$secs" -print_final_stats=1 \
	    -artifact_prefix="$work/artifacts/$t-" "$work/$t" \
	    2>"$work/$t.log" || { tail -40 "$work/$t.log"; exit 1; }
	grep -E '^#[0-9]+[[:space:]]+(DONE|INITED)|stat::number_of_executed_units|average_exec' \
	    "$work/$t.log"
done
