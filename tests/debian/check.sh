#!/bin/sh
# The Debian packages, built from the tree as a packager would
# (dpkg-buildpackage -us -uc -b), lintian clean, and what they hold
# runs: the packaged broker, and the packaged Lua module loaded by
# lua5.4.  Nothing is installed on this machine.
#   check.sh SOURCE_DIR
set -eu
src=$1
tmp=$(mktemp -d /tmp/tcpbroker-deb-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "debian: $*" >&2; exit 1; }

# The tracked files only, as in a fresh clone.
mkdir "$tmp/tcpbroker"
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
	git -C "$src" ls-files -z | (cd "$src" && xargs -0 cp --parents \
	    -t "$tmp/tcpbroker")
else
	(cd "$src" && tar --exclude='./build*' --exclude=./.git -cf - .) |
	    tar -C "$tmp/tcpbroker" -xf -
fi
(cd "$tmp/tcpbroker" && DEB_BUILD_OPTIONS="parallel=2 nocheck" \
    dpkg-buildpackage -us -uc -b > "$tmp/build.log" 2>&1) ||
    { tail -40 "$tmp/build.log" >&2; fail "dpkg-buildpackage failed"; }

changes=$(ls "$tmp"/tcpbroker_*_*.changes)
lintian --fail-on error,warning "$changes" > "$tmp/lintian.log" 2>&1 ||
    fail "lintian: $(cat "$tmp/lintian.log")"
out=$(grep -v '^running with root privileges' "$tmp/lintian.log" || true)
[ -z "$out" ] || fail "lintian: $out"

for p in tcpbroker libtcpbroker-client0 libtcpbroker-client-dev \
    lua-tcpbroker; do
	ls "$tmp"/${p}_*.deb >/dev/null 2>&1 || fail "no package $p"
	dpkg-deb -x "$tmp"/${p}_*.deb "$tmp/root"
done
root=$tmp/root
"$root/usr/sbin/tcpbroker" --version | grep -q '^tcpbroker ' ||
    fail "the packaged broker does not run"
for f in lib/systemd/system/tcpbroker.service \
    lib/systemd/system/tcpbroker.socket usr/lib/sysusers.d/tcpbroker.conf \
    etc/logrotate.d/tcpbroker etc/tcpbroker/policy.conf.example \
    usr/include/tcpbroker.h usr/share/man/man8/tcpbroker.8.gz; do
	[ -f "$root/$f" ] || fail "$f is in no package"
done
grep -q systemd-sysusers "$tmp/tcpbroker/debian/tcpbroker.postinst.debhelper" ||
    fail "the user is not made on installation"
mod=$(ls "$root"/usr/lib/*/lua/5.4/tcp.so)
LD_LIBRARY_PATH=$(dirname "$(ls "$root"/usr/lib/*/libtcpbroker-client.so.0)") \
    lua5.4 -e "package.cpath = '$(dirname "$mod")/?.so'
    local tcp = require 'tcp'
    assert(tcp.TcpClient ~= nil and type(tcp.select) == 'function')
    assert(require 'tcp.socket')" || fail "the packaged Lua module does not load"
echo "debian: ok"
