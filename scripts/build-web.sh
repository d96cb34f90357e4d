#!/bin/sh
# Lays out the web chat that hearthd serves at /chat/: web/chat/ (page and configuration) plus
# the dist files of the pinned converse.js package (tests/web/node_modules, installed by
# scripts/install-deps.sh). Run by the CMake build (target web_chat) as
#   build-web.sh SOURCE_DIR OUTPUT_DIR      e.g. build-web.sh . build/web/chat
# Copies only what changed; quiet when there is nothing to do. Without node_modules it says so
# and lays out nothing (hearthd then has no /chat/ to serve), and the build goes on.
set -eu

src=${1:?usage: build-web.sh SOURCE_DIR OUTPUT_DIR}
out=${2:?usage: build-web.sh SOURCE_DIR OUTPUT_DIR}
dist="$src/tests/web/node_modules/converse.js/dist"
pkg="$src/tests/web/node_modules/converse.js/package.json"

if [ ! -f "$pkg" ]; then
    echo "build-web: $src/tests/web/node_modules has no converse.js (run 'make deps'); /chat/ not built" >&2
    exit 0
fi
version=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$pkg")

mkdir -p "$out"
# A different converse.js version: start dist/ afresh so that no file of the old one stays.
if [ "$(cat "$out/.converse-version" 2>/dev/null || true)" != "$version" ]; then
    rm -rf "$out/dist"
fi

# What the page loads: the minified bundle and stylesheet, their fonts, images and sounds, and
# the chunks loaded on demand (translations, emoji data, OMEMO). Left out: source maps, the
# unminified bundle, the project website's stylesheet.
mkdir -p "$out/dist"
(cd "$dist" && find converse.min.js converse.min.css emoji.json libomemo.esm.min.js \
    curve25519_compiled.wasm shared-connection-worker.js manifest.json webfonts images sounds \
    chunkjs -type f ! -name '*.map' -print0 2>/dev/null | xargs -0 cp -u --parents -t "$out/dist")
cp -u "$src/web/chat/index.html" "$src/web/chat/hearth-chat.js" "$out/"
cp -u "$src/tests/web/node_modules/converse.js/LICENSE" "$out/dist/LICENSE.converse" 2>/dev/null || true
echo "$version" > "$out/.converse-version"
