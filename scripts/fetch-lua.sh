#!/bin/sh
# Fetch, once, the source of Debian bookworm's lua5.4 for the real-world
# live-patching test (tests/realworld) and bench/build.c, and leave a
# pristine tree that `make linux` builds into one PIE executable, src/lua:
#
#   scripts/fetch-lua.sh DEST
#
# DEST/lua5.4-src is the upstream tree of the source package unpacked with
# `dpkg-source -x --skip-patches` (Debian's build-system patches turn Lua
# into a libtool shared library; they are left out), plus the Debian
# patches whose name says "cve" (0004-cve-2022-28805, 0005-cve-2022-33099
# in 5.4.4-3+deb12u1), applied with patch -p1. DEST/lua5.4-src.info says
# which version and patches. When DEST/lua5.4-src exists, nothing is done.
#
# apt runs with private options only, everything under DEST/apt: its own
# sources file (deb-src, bookworm main on deb.debian.org, Signed-By the
# Debian archive keyring), lists and cache; /etc/apt is read for its
# ordinary settings (a proxy) but nothing under /etc or /var is written.
#
# Authenticity: apt checks the InRelease signature against the archive
# keyring, the Sources index against InRelease, and the downloaded .dsc
# and tarballs against the Sources index. The .dsc's own signature (the
# uploader's key) would need the debian-keyring package; dpkg-source's
# warning about it is expected and is not shown. dpkg-source still checks
# the tarballs against the .dsc.
#
# Exit status: 0 the tree is there; 77 it cannot be fetched (no network,
# no apt, no dpkg-source), with one line on stderr saying why (tests SKIP
# on 77); 1 anything else (a patch does not apply...).
set -eu

me=fetch-lua
if [ $# -ne 1 ]; then
        echo "usage: scripts/fetch-lua.sh DEST" >&2
        exit 2
fi
mkdir -p "$1"
dest=$(cd "$1" && pwd)
tree=$dest/lua5.4-src
[ -d "$tree" ] && exit 0

# One fetch at a time (the test and the bench may share DEST).
if command -v flock > /dev/null 2>&1; then
        exec 9> "$dest/.fetch-lua.lock"
        flock 9
        [ -d "$tree" ] && exit 0
fi

for tool in apt-get dpkg-source patch; do
        if ! command -v "$tool" > /dev/null 2>&1; then
                case $tool in
                dpkg-source) pkg=dpkg-dev ;;
                apt-get) pkg=apt ;;
                *) pkg=$tool ;;
                esac
                echo "$me: cannot fetch the lua5.4 source: $tool is not installed (Debian package $pkg)" >&2
                exit 77
        fi
done
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
if [ ! -r "$keyring" ]; then
        echo "$me: cannot fetch the lua5.4 source: no $keyring (Debian package debian-archive-keyring)" >&2
        exit 77
fi

w=$dest/apt
rm -rf "$w"
mkdir -p "$w/lists/partial" "$w/cache/archives/partial" "$w/dl"
cat > "$w/bookworm-src.sources" <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: $keyring
SRC

# Private sources, lists and cache (no binary cache files at all); as
# root, downloads stay root's (the _apt user may not reach DEST).
set -- -q -o Dir::Etc::sourcelist="$w/bookworm-src.sources" \
        -o Dir::Etc::sourceparts=- \
        -o Dir::State::Lists="$w/lists" \
        -o Dir::Cache="$w/cache" \
        -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= \
        -o APT::Update::Error-Mode=any \
        -o Acquire::Retries=2 -o Acquire::http::Timeout=30
[ "$(id -u)" = 0 ] && set -- "$@" -o APT::Sandbox::User=root

# A failed apt run: one line naming the cause (apt's first "E:" line).
# Data that fails verification (signature, hash) is an error, exit 1;
# anything else (no network, no proxy, server down) is exit 77.
apt_failed() {
        r=$(grep -E '^E:' "$2" | head -n 1 | cut -c 1-240)
        echo "$me: $1: ${r:-see $2}" >&2
        if grep -qE 'GPG error|NO_PUBKEY|is not signed|Hash Sum mismatch|Hashes of expected file' "$2"; then
                exit 1
        fi
        exit 77
}

apt-get "$@" update > "$w/update.log" 2>&1 ||
        apt_failed "cannot fetch the bookworm source index from deb.debian.org" "$w/update.log"
(cd "$w/dl" && apt-get "$@" source --download-only lua5.4) > "$w/source.log" 2>&1 ||
        apt_failed "cannot download the lua5.4 source package" "$w/source.log"
dsc=$(ls "$w/dl"/lua5.4_*.dsc 2> /dev/null | tail -n 1)
if [ -z "$dsc" ]; then
        echo "$me: apt-get source left no lua5.4_*.dsc in $w/dl" >&2
        exit 1
fi
version=$(sed -n 's/^Version: //p' "$dsc")

# dpkg-source checks the tarballs against the .dsc; its "cannot verify
# signature" warning is expected (see above). No network from here on.
# (Unpacked beside the .dsc, so that it leaves no copy of the orig
# tarball in DEST.)
if ! (cd "$w/dl" && dpkg-source --skip-patches -x "$dsc" "$w/dl/src") > "$w/unpack.log" 2>&1; then
        echo "$me: dpkg-source -x $dsc failed: $(grep -E 'error' "$w/unpack.log" | tail -n 1)" >&2
        exit 1
fi
patches=""
for p in $(sed -e 's/[[:space:]].*//' -e '/^#/d' "$w/dl/src/debian/patches/series" | grep -i cve); do
        if ! patch -d "$w/dl/src" -p1 --quiet --no-backup-if-mismatch < "$w/dl/src/debian/patches/$p" \
                > "$w/patch.log" 2>&1; then
                echo "$me: Debian patch $p does not apply to lua5.4 $version: $(head -n 1 "$w/patch.log")" >&2
                exit 1
        fi
        patches="$patches $p"
done
if [ -z "$patches" ]; then
        echo "$me: lua5.4 $version lists no CVE patch in debian/patches/series (expected 0004, 0005)" >&2
        exit 1
fi
if [ ! -f "$w/dl/src/Makefile" ] || [ ! -f "$w/dl/src/src/lutf8lib.c" ]; then
        echo "$me: lua5.4 $version unpacked without Makefile or src/lutf8lib.c" >&2
        exit 1
fi
printf 'lua5.4 %s (Debian bookworm), upstream tree with the Debian patches:%s\n' \
        "$version" "$patches" > "$dest/lua5.4-src.info"
mv "$w/dl/src" "$tree"
# Keep the downloaded package (small), drop the indexes (large).
rm -rf "$w/lists" "$w/cache"
cat "$dest/lua5.4-src.info" >&2
