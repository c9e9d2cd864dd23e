#!/bin/sh
# Runs the whole test suite: unit, integration and wire tests, first in
# a normal build and then under AddressSanitizer and UBSan, then part
# of it with the broker under valgrind; then builds
# (without running) a Release build with gcc and a build with clang,
# where optimisers and another compiler find other warnings, and last
# runs each fuzz target for a few seconds.  Every build but the fuzz
# build treats warnings as errors.
#   tests/run.sh            all of that
#   tests/run.sh --fast     the normal build only
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/tests/deps.sh"
fast=false
[ "${1:-}" = --fast ] && fast=true
if $fast; then
	tb_install_deps $TB_TEST_PACKAGES
else
	tb_install_deps $TB_TEST_PACKAGES clang
fi

configure() {
	build=$1
	shift
	echo "== $build $*"
	cmake -S "$top" -B "$top/$build" -DTB_WERROR=ON "$@" >/dev/null
	cmake --build "$top/$build" -j2
}

suite() {
	configure "$@"
	(cd "$top/$1" && ctest --output-on-failure -j2 --timeout 300)
}

suite build -DCMAKE_BUILD_TYPE=RelWithDebInfo
if ! $fast; then
	suite build-asan -DCMAKE_BUILD_TYPE=Debug -DTB_SANITIZE=ON
	# The broker under memcheck: a subset of the integration tests
	# (tests/valgrind.sh says which), about two minutes.
	configure build-valgrind -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DTB_VALGRIND=ON -DTB_BUILD_BENCH=OFF
	(cd "$top/build-valgrind" && ctest --output-on-failure \
	    -R valgrind_integration --timeout 600)
	configure build-release -DCMAKE_BUILD_TYPE=Release
	(CC=clang && export CC && configure build-clang -DCMAKE_BUILD_TYPE=Release)
	# Each fuzz target from its corpus for 20,000 inputs with a fixed
	# seed (at most 60 s), beyond the replay of the corpora above;
	# tests/fuzz/run.sh runs them long.
	sh "$top/tests/fuzz/run.sh" -r 20000 -t 60 -s 1
fi
echo "== all tests passed"
