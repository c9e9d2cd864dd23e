#!/bin/sh
# Installs the build into a temporary prefix, as a packager or an
# administrator would, and uses what was installed: every file in its
# place, a client built with the installed pkg-config file, the
# installed broker and Lua module.  Nothing outside the prefix is
# touched.
#   check.sh BUILD_DIR SOURCE_DIR C_COMPILER
set -eu
build=$1 src=$2 cc=$3
prefix=$(mktemp -d /tmp/tcpbroker-install-XXXXXX)
trap 'rm -rf "$prefix"' EXIT
# A prefix that moves after configuration: the pkg-config file must
# follow it.
cmake --install "$build" --prefix "$prefix/usr" >/dev/null
root=$prefix/usr

fail() { echo "install: $*" >&2; exit 1; }
libdir=$(cd "$root" && ls -d lib/*/pkgconfig lib/pkgconfig 2>/dev/null |
    head -n 1 | sed 's|/pkgconfig$||')
[ -n "$libdir" ] || fail "no pkgconfig directory"
for f in sbin/tcpbroker include/tcpbroker.h "$libdir/libtcpbroker-client.so" \
    "$libdir/pkgconfig/tcpbroker-client.pc" \
    share/man/man8/tcpbroker.8 share/man/man5/tcpbroker.conf.5 \
    share/man/man3/libtcpbroker-client.3 share/man/man3/tcpbroker-lua.3 \
    etc/tcpbroker/policy.conf.example etc/logrotate.d/tcpbroker \
    lib/systemd/system/tcpbroker.service lib/systemd/system/tcpbroker.socket \
    lib/sysusers.d/tcpbroker.conf; do
	[ -e "$root/$f" ] || fail "missing $f"
done
[ ! -e "$root/etc/tcpbroker/policy.conf" ] || fail "policy.conf installed"
# Only the one public header.
[ "$(ls "$root/include")" = tcpbroker.h ] || fail "headers: $(ls "$root/include")"

export PKG_CONFIG_PATH="$root/$libdir/pkgconfig"
cflags=$(pkg-config --cflags tcpbroker-client)
libs=$(pkg-config --libs tcpbroker-client)
# The directories it names are the prefix's, however it spells them.
same() { [ "$(cd "$1" && pwd -P)" = "$(cd "$2" && pwd -P)" ]; }
inc=$(echo $cflags)
same "${inc#-I}" "$root/include" || fail "cflags: $cflags"
same "$(pkg-config --variable=libdir tcpbroker-client)" "$root/$libdir" ||
    fail "libdir: $(pkg-config --variable=libdir tcpbroker-client)"
case $(pkg-config --static --libs tcpbroker-client) in
*-lmsgpackc*) ;; *) fail "--static --libs lacks msgpack" ;; esac
# shellcheck disable=SC2086
"$cc" -o "$prefix/client" "$src/tests/install/client.c" $cflags $libs
LD_LIBRARY_PATH="$root/$libdir" "$prefix/client" "$prefix/no-broker.sock"

"$root/sbin/tcpbroker" --version
"$root/sbin/tcpbroker" --check "$root/etc/tcpbroker/policy.conf.example"
grep -q "ExecStart=.*/sbin/tcpbroker" "$root/lib/systemd/system/tcpbroker.service" ||
    fail "the service does not start the broker"

if [ -d "$root/$libdir/lua/5.4" ] && command -v lua5.4 >/dev/null; then
	[ -e "$root/$libdir/lua/5.4/tcp.so" ] || fail "no tcp.so"
	TCPBROKER_SOCKET="$prefix/no-broker.sock" \
	LUA_CPATH="$root/$libdir/lua/5.4/?.so" lua5.4 -e '
	    local tcp = require "tcp"
	    local ok, e = pcall(tcp.TcpClient, "127.0.0.1", 1)
	    assert(not ok and e.code == "EBROKER", tostring(e))
	    print("lua: " .. tostring(e))'
fi
echo "install: ok in $root"
