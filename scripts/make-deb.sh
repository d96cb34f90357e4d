#!/bin/sh
# make deb: the Debian packages of a source tree, built with dpkg-buildpackage from a copy of
# its files (tracked and new, as they are on disk) so the tree itself gets no build litter.
# The version is the project's plus the count of commits up to HEAD (0.1.0+git343), so that a
# package built from a later commit is newer. Then lintian, which must find no error.
#   scripts/make-deb.sh SOURCE_TREE OUT_DIR [COMMIT]
# With COMMIT, the files of that commit (git archive) instead of the working tree's, and its
# count. Leaves OUT_DIR/*.deb, *.changes, *.buildinfo and lintian.txt; the copy in OUT_DIR/src.
set -eu

src=$(cd "$1" && pwd)
mkdir -p "$2"
out=$(cd "$2" && pwd)

rev=${3:-}
if [ -n "$rev" ]; then
    project=$(git -C "$src" show "$rev:CMakeLists.txt" |
        sed -n 's/^project(hearth VERSION \([0-9.]*\).*/\1/p')
    count=$(git -C "$src" rev-list --count "$rev")
else
    project=$(sed -n 's/^project(hearth VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
    count=$(git -C "$src" rev-list --count HEAD)
fi
version="$project+git$count"
[ -n "$project" ] || { echo "make-deb: no project version in $src/CMakeLists.txt" >&2; exit 1; }

if ! command -v dpkg-buildpackage >/dev/null || ! command -v dh >/dev/null; then
    echo "make-deb: dpkg-buildpackage and debhelper are needed: sh scripts/install-deps.sh --package" >&2
    exit 1
fi

stage="$out/src"
rm -rf "$stage"
mkdir -p "$stage/hearth-$version"
rm -f "$out"/*.deb "$out"/*.changes "$out"/*.buildinfo "$out"/lintian.txt
if [ -n "$rev" ]; then
    git -C "$src" archive "$rev" | tar -xf - -C "$stage/hearth-$version"
else
    # Tracked and untracked files that exist (not ignored, not the npm tree of the web tests).
    (cd "$src" && git ls-files -z --cached --others --exclude-standard |
        tr '\0' '\n' | grep -v '^tests/web/node_modules' |
        while IFS= read -r f; do [ -e "$f" ] && printf '%s\n' "$f"; done |
        tar -cf - --no-recursion -T -) | tar -xf - -C "$stage/hearth-$version"
fi
[ -f "$stage/hearth-$version/debian/control" ] || {
    echo "make-deb: no debian/ in ${rev:-the tree}: nothing to package" >&2
    exit 1
}

cd "$stage/hearth-$version"
sed -i "1s/^hearth ([^)]*)/hearth ($version)/" debian/changelog
echo "make-deb: building hearth $version in $stage"
DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-parallel=2}" \
    dpkg-buildpackage -us -uc -b >"$out/build.log" 2>&1 || {
    tail -n 60 "$out/build.log" >&2
    echo "make-deb: dpkg-buildpackage failed; the whole log is $out/build.log" >&2
    exit 1
}
mv "$stage"/*.deb "$stage"/*.changes "$stage"/*.buildinfo "$out"/
cd "$out"
rm -rf "$stage"
ls "$out"/*.deb

if [ "${HEARTH_DEB_LINTIAN:-yes}" = no ]; then
    echo "make-deb: lintian skipped (HEARTH_DEB_LINTIAN=no)"
elif command -v lintian >/dev/null; then
    # --fail-on error: warnings are reported, errors fail the build.
    if ! lintian --fail-on error --info "$out"/*.changes >"$out/lintian.txt" 2>&1; then
        cat "$out/lintian.txt" >&2
        echo "make-deb: lintian found errors" >&2
        exit 1
    fi
    cat "$out/lintian.txt"
else
    echo "make-deb: lintian is not installed: not checked" >&2
fi
