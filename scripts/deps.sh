#!/bin/sh
# Make sure the Debian packages liveup needs are installed.
#   scripts/deps.sh [check|demo|bench]
# As root: installs what is missing with apt-get. Otherwise: prints the
# exact apt-get line and exits 1.
set -eu

pkgs="meson ninja-build pkg-config gcc libc6-dev libelf-dev libdw-dev libcapstone-dev libjson-c-dev python3"
# patch, make: liveup build --diff applies the diff with patch(1); the
# tests' projects build with make.
pkgs="$pkgs patch make"
# dpkg-dev: dpkg-source (and patch, make), for scripts/fetch-lua.sh, which
# unpacks the Lua source package of tests/realworld and bench-build.
case "${1:-check}" in
bench) pkgs="$pkgs wrk dpkg-dev" ;;
check) pkgs="$pkgs wrk clang dpkg-dev" ;; # clang: the libFuzzer run in .ci/run
esac

missing=""
for p in $pkgs; do
        st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
        case "$st" in
        ii*) ;;
        *) missing="$missing $p" ;;
        esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
        echo "liveup: missing Debian packages; install them with:" >&2
        echo "  sudo apt-get install -y$missing" >&2
        exit 1
fi
echo "liveup: installing missing Debian packages:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y --no-install-recommends $missing >&2; then
        apt-get update >&2
        apt-get install -y --no-install-recommends $missing >&2
fi
