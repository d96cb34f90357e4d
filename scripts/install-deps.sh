#!/bin/sh
# Installs the Debian packages that building and testing Hearth needs, only those missing.
set -eu

PKGS="build-essential cmake pkg-config
libuv1-dev libexpat1-dev libssl-dev libgsasl-dev libidn-dev libsqlite3-dev libinih-dev
libwslay-dev libhttp-parser-dev
libcmocka-dev openssl clang libclang-rt-14-dev
python3 python3-slixmpp go-sendxmpp profanity tmux"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

echo "install-deps: installing:$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
