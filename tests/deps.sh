# Installs the Debian packages tcpbroker needs, when they are missing.
# Sourced by tests/run.sh, bench/run.sh and examples/demo.sh.  The last
# line is what the benchmark compares against; the tests run its
# --quick pass.
#   tb_install_deps [EXTRA_PACKAGE...]

TB_PACKAGES="cmake make gcc libc6-dev pkg-config libmsgpack-dev
libcmocka-dev libseccomp-dev liblua5.4-dev lua5.4 python3 python3-msgpack
dante-server microsocks lua-socket libssl-dev"
# What the test suite needs besides: mandoc lints the man pages, man-db
# renders them, logrotate runs the shipped logrotate file, debhelper
# and lintian build and check the Debian packages, openssl makes the TLS
# tests' certificates, valgrind runs integration tests with the broker
# under memcheck.
TB_TEST_PACKAGES="mandoc man-db logrotate debhelper lintian openssl valgrind"

tb_install_deps() {
	missing=
	for p in $TB_PACKAGES "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
		    grep -q '^install ok installed$' || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" != 0 ]; then
		echo "missing Debian packages:$missing (run as root to install)" >&2
		exit 1
	fi
	echo "installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $missing
}

# clang with its libFuzzer and sanitizer runtimes, for the fuzz targets
# (clang only recommends the runtimes' package).
tb_install_fuzz_deps() {
	tb_install_deps clang libclang-rt-dev
}
