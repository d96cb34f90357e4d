#!/bin/sh
# Installs what building and testing Hearth needs, only what is missing: Debian packages, then
# the pinned npm packages of tests/web (npm ci) for the web tests and the /chat/ build.
# With --package: what `make deb` needs (debian/control's Build-Depends, debhelper, lintian)
# and nothing of npm.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)

# The library packages, shared by both lists (debian/control's Build-Depends names them too).
LIBS="libuv1-dev libexpat1-dev libssl-dev libgsasl-dev libidn-dev libsqlite3-dev libpq-dev libinih-dev
libwslay-dev libhttp-parser-dev libedit-dev libjansson-dev"
package=0
if [ "${1:-}" = "--package" ]; then
    package=1
    PKGS="build-essential cmake pkg-config python3 $LIBS dpkg-dev debhelper lintian man-db groff-base"
else
    PKGS="build-essential cmake pkg-config $LIBS
libcmocka-dev openssl clang libclang-rt-14-dev postgresql
python3 python3-slixmpp python3-aiohttp go-sendxmpp profanity tmux valgrind man-db groff-base
prosody ejabberd"
fi

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done
# The web tests (tests/interop/test_xmppjs.py, tests/browser/) need node, npm and Debian's
# chromium. Commands, not packages, are checked: a Node.js that came with the machine (such as
# NodeSource's nodejs, which carries its own npm and conflicts with Debian's npm) is kept.
if [ "$package" -eq 0 ]; then
    command -v node >/dev/null 2>&1 || missing="$missing nodejs"
    command -v npm >/dev/null 2>&1 || missing="$missing npm"
    [ -x /usr/bin/chromium ] || missing="$missing chromium"
fi

if [ -n "$missing" ]; then
    echo "install-deps: installing:$missing"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -q --no-install-recommends $missing
    # Prosody and ejabberd are there for the tests that import their exports (each starts a
    # private instance on loopback): Debian starts their system services at installation, which
    # would hold 5222 and 5269 (the package test's hearthd needs them). Stopped, as after an
    # installation only.
    for s in prosody ejabberd; do
        case " $(echo $missing) " in
        *" $s "*) $SUDO service "$s" stop >/dev/null 2>&1 || true ;;
        esac
    done
fi

[ "$package" -eq 0 ] || exit 0

# tests/web/node_modules from the committed lockfile, when it is missing or older than the
# lockfile or package.json (npm ci writes node_modules/.package-lock.json last). Install
# scripts are not run: none of the pinned packages needs one.
web="$root/tests/web"
stamp="$web/node_modules/.package-lock.json"
if [ ! -f "$stamp" ] || [ "$web/package-lock.json" -nt "$stamp" ] || [ "$web/package.json" -nt "$stamp" ]; then
    echo "install-deps: npm ci in tests/web"
    (cd "$web" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
