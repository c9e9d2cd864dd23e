#!/bin/sh
# Runs the whole test suite: unit, integration and wire tests, first in
# a normal build and then under AddressSanitizer and UBSan.
#   tests/run.sh            both builds
#   tests/run.sh --fast     the normal build only
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/tests/deps.sh"
tb_install_deps

suite() {
	build=$1
	shift
	echo "== $build $*"
	cmake -S "$top" -B "$top/$build" "$@" >/dev/null
	cmake --build "$top/$build" -j"$(nproc)"
	(cd "$top/$build" && ctest --output-on-failure -j2 --timeout 300)
}

suite build -DCMAKE_BUILD_TYPE=RelWithDebInfo
if [ "${1:-}" != --fast ]; then
	suite build-asan -DCMAKE_BUILD_TYPE=Debug -DTB_SANITIZE=ON
fi
echo "== all tests passed"
