#!/usr/bin/env bash
# test_package: `cmake --install` and the .deb. The install tree has the
# programs, man pages that groff reads without a warning, the documents and
# the example config; the package built by cpack depends only on Debian
# packages that are installed here, apt-get resolves and would configure it
# (simulated: the test never touches the system), and its programs run from
# an extracted copy. Arguments: the build folder.
set -euo pipefail
build=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "test_package: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$work/prefix" >/dev/null
for f in bin/stemfarm bin/stemfarm-node bin/stemfarm-gen share/man/man1/stemfarm.1 share/man/man1/stemfarm-node.1 \
  share/man/man5/stemfarm-session.5 share/doc/stemfarm/CATALOGUE-FORMAT.md \
  share/doc/stemfarm/batch-events.schema.json share/doc/stemfarm/examples/node.example.yaml; do
  [ -e "$work/prefix/$f" ] || fail "cmake --install did not install $f"
done
for page in "$work"/prefix/share/man/man*/*; do
  warnings=$(LC_ALL=C.UTF-8 groff -man -ww -z -Tutf8 "$page" 2>&1)
  [ -z "$warnings" ] || fail "$(basename "$page"): $warnings"
  grep -q '@[A-Z_]*@' "$page" && fail "$(basename "$page") has an unreplaced @VARIABLE@"
done
"$work/prefix/bin/stemfarm" --version | grep -q '^stemfarm [0-9]' || fail "the installed stemfarm does not run"

(cd "$work" && cpack -G DEB -B "$work/deb" --config "$build/CPackConfig.cmake" >/dev/null)
deb=$(ls "$work"/deb/stemfarm_*.deb)
depends=$(dpkg-deb -f "$deb" Depends)
[ -n "$depends" ] || fail "the package declares no dependencies"
echo "$depends" | tr ',' '\n' | sed 's/ *(.*//; s/^ *//' | while read -r pkg; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
    fail "dependency '$pkg' is not an installed Debian package"
done
contents=$(dpkg-deb -c "$deb")
grep -q './usr/bin/stemfarm-node$' <<<"$contents" || fail "no /usr/bin/stemfarm-node in the package"
grep -q './usr/share/man/man5/stemfarm-session.5' <<<"$contents" || fail "no man page in the package"
# what `apt-get install ./stemfarm_*.deb` would do, without doing it: resolve and configure
sim=$(apt-get install -s "$deb" 2>&1) || fail "apt-get cannot install the package: $sim"
grep -q '^Inst stemfarm ' <<<"$sim" && grep -q '^Conf stemfarm ' <<<"$sim" || fail "apt-get would not install it: $sim"
dpkg-deb -x "$deb" "$work/extracted"
"$work/extracted/usr/bin/stemfarm-node" --version | grep -q 'stemfarm' || fail "the packaged node does not run"
echo "test_package: ok: $(basename "$deb"), Depends: $depends"
