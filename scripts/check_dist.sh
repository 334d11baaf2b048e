#!/usr/bin/env bash
# Checks the distributions a release would publish, end to end (about 1-3 minutes):
#   1. python -m build: sdist + wheel; twine check (metadata, README rendering);
#   2. the wheel's file list: package data (py.typed, notebook cells, the Fiji commands, library
#      and macros under rescunet_ij/fiji/), the license; no tests/, no .cache;
#   3. a wheel built FROM the sdist has the same files (the sdist is complete);
#   4. a fresh venv (torch==2.13.0 first, then the wheel, no checkout on the path) runs
#      rescunet-ij --help, version (= __version__), demo (writes RoiSet.zip) and
#      install-fiji --dry-run on a fake Fiji.app (lists the Groovy commands).
# Usage: bash scripts/check_dist.sh        (from any folder; uses .venv's python when present)
#   KEEP_DIST=1 keeps the temporary folder (printed) for a look.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=${PYTHON:-python3}; fi
PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/rescunet-check-dist.XXXXXX")
cleanup() {
    if [ "${KEEP_DIST:-0}" = 1 ]; then echo "check_dist: kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
fail() { echo "check_dist: FAILED: $*" >&2; exit 1; }
T0=$SECONDS
step_name=""
step_start=$SECONDS
step() {  # step NAME: closes the previous step with its time, then names the next one
    [ -z "$step_name" ] || echo "check_dist:    ok: $step_name ($((SECONDS - step_start)) s)"
    step_name=$1
    step_start=$SECONDS
    [ "$1" = end ] || echo "check_dist: -- $1"
}

VERSION=$("$PY" -c "
import ast, pathlib
tree = ast.parse(pathlib.Path('rescunet_ij/__init__.py').read_text())
print(next(n.value.value for n in tree.body if isinstance(n, ast.Assign)
           and getattr(n.targets[0], 'id', '') == '__version__'))")
echo "check_dist: rescunet-ij $VERSION, work folder $WORK"

# ---------------------------------------------------------------- 1. build + twine check
step "python -m build (sdist + wheel) from a clean copy of the working tree"
# A copy of the files git knows or would add (tracked + untracked, not ignored): no stale
# rescunet_ij.egg-info/SOURCES.txt (setuptools would put every file it lists into the sdist,
# hiding a missing MANIFEST.in line), no build/, .venv/ or .cache/.
SRC="$WORK/src"
mkdir -p "$SRC"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
        [ -e "$f" ] && printf '%s\0' "$f"  # (files deleted in the working tree are skipped)
    done | tar --null -T - -cf - | tar -xf - -C "$SRC"
else
    tar --exclude=.venv --exclude=.git --exclude=.cache --exclude=build --exclude='*.egg-info' \
        -cf - . | tar -xf - -C "$SRC"
fi
"$PY" -m build --outdir "$WORK/dist" "$SRC" >"$WORK/build.log" 2>&1 || {
    tail -40 "$WORK/build.log"; fail "python -m build (log above)"; }
WHEEL=$(ls "$WORK"/dist/rescunet_ij-"$VERSION"-py3-none-any.whl) || fail "no wheel for $VERSION"
SDIST=$(ls "$WORK"/dist/rescunet_ij-"$VERSION".tar.gz) || fail "no sdist for $VERSION"
echo "check_dist: built $(basename "$WHEEL") ($(du -k "$WHEEL" | cut -f1) kB), $(basename "$SDIST") ($(du -k "$SDIST" | cut -f1) kB)"
step "twine check"
"$PY" -m twine check --strict "$WHEEL" "$SDIST" || fail "twine check"

# ---------------------------------------------------------------- 2./3. file lists
check_wheel() {  # check_wheel WHEEL LABEL: the files a wheel must (not) hold
    "$PY" - "$1" "$2" "$VERSION" "$REPO" <<'PYEOF'
import fnmatch, pathlib, sys, zipfile

wheel, label, version, repo = sys.argv[1], sys.argv[2], sys.argv[3], pathlib.Path(sys.argv[4])
names = zipfile.ZipFile(wheel).namelist()
problems = []
fiji = repo / "fiji_scripts"
expected = {
    "rescunet_ij/py.typed",
    *(f"rescunet_ij/notebook_cells/{p.name}" for p in (repo / "rescunet_ij/notebook_cells").glob("*.py")),
    *(f"rescunet_ij/fiji/{p.relative_to(fiji).as_posix()}"
      for pat in ("*.groovy", "*.ijm") for p in fiji.rglob(pat)),
    f"rescunet_ij-{version}.dist-info/licenses/LICENSE",
    f"rescunet_ij-{version}.dist-info/entry_points.txt",
}
for pattern, least in [
    ("rescunet_ij/notebook_cells/*.py", 1),
    ("rescunet_ij/fiji/Plugins/ReSCU-Net/*.groovy", 1),
    ("rescunet_ij/fiji/lib/rescunet-ij/RescunetClient.groovy", 1),
    ("rescunet_ij/fiji/macros/*.ijm", 1),
]:
    if len(fnmatch.filter(names, pattern)) < least:
        problems.append(f"nothing matches {pattern}")
problems += [f"missing {n}" for n in sorted(expected - set(names))]
bad = [n for n in names if n.startswith(("tests/", "fiji_scripts/", "benchmarks/", "examples/"))
       or "/.cache/" in n or n.startswith(".cache/") or "__pycache__" in n or n.endswith(".pyc")]
problems += [f"should not ship: {n}" for n in bad]
tops = sorted({n.split("/")[0] for n in names})
if tops != ["rescunet_ij", f"rescunet_ij-{version}.dist-info"]:
    problems.append(f"unexpected top-level entries: {tops}")
meta = zipfile.ZipFile(wheel).read(f"rescunet_ij-{version}.dist-info/METADATA").decode()
for line in (f"Version: {version}", "License-Expression: BSD-3-Clause", "License-File: LICENSE"):
    if line not in meta.splitlines():
        problems.append(f"METADATA lacks '{line}'")
if problems:
    print(f"check_dist: {label}: " + "\n  ".join(["wrong file list:", *problems]), file=sys.stderr)
    sys.exit(1)
n_fiji = len(fnmatch.filter(names, "rescunet_ij/fiji/*"))
print(f"check_dist: {label}: {len(names)} files, {n_fiji} Fiji files, license, metadata: ok")
PYEOF
}
step "wheel file list"
check_wheel "$WHEEL" "wheel" || fail "wheel file list"
SDIST_FILES=$(tar tzf "$SDIST")  # (not piped into grep -q: pipefail would see tar's SIGPIPE)
grep -q "^rescunet_ij-$VERSION/fiji_scripts/Plugins/ReSCU-Net/.*\.groovy$" <<<"$SDIST_FILES" \
    || fail "the sdist lacks fiji_scripts/"
for f in LICENSE CHANGELOG.md README.md setup.py pyproject.toml MANIFEST.in; do
    grep -qx "rescunet_ij-$VERSION/$f" <<<"$SDIST_FILES" || fail "the sdist lacks $f"
done
if grep -E "/(tests|\.cache|\.ci|\.venv|build)/" <<<"$SDIST_FILES"; then
    fail "the sdist holds the files above"
fi

step "wheel from the sdist"
mkdir -p "$WORK/from_sdist" "$WORK/sdist_src"
tar xzf "$SDIST" -C "$WORK/sdist_src"
"$PY" -m build --wheel --outdir "$WORK/from_sdist" "$WORK/sdist_src/rescunet_ij-$VERSION" \
    >"$WORK/build_sdist.log" 2>&1 || { tail -40 "$WORK/build_sdist.log"; fail "wheel from the sdist"; }
check_wheel "$(ls "$WORK"/from_sdist/*.whl)" "wheel from sdist" || fail "wheel from the sdist: file list"
"$PY" - "$WHEEL" "$(ls "$WORK"/from_sdist/*.whl)" <<'PYEOF' || fail "the two wheels differ"
import sys, zipfile
a, b = (zipfile.ZipFile(p) for p in sys.argv[1:3])
skip = lambda n: n.endswith("RECORD")
diff = sorted(n for n in set(a.namelist()) ^ set(b.namelist()))
diff += [n for n in a.namelist() if n in b.namelist() and not skip(n) and a.read(n) != b.read(n)]
if diff:
    print("check_dist: wheel vs wheel from sdist differ in:", *diff, file=sys.stderr)
    sys.exit(1)
print("check_dist: wheel and wheel from sdist hold the same files")
PYEOF

# ---------------------------------------------------------------- 4. a fresh install
step "fresh venv: torch==2.13.0, then the wheel"
"$PY" -m venv "$WORK/venv"
VPY="$WORK/venv/bin/python"
"$VPY" -m pip install -q "torch==2.13.0" >"$WORK/pip.log" 2>&1 \
    || { tail -30 "$WORK/pip.log"; fail "pip install torch==2.13.0 in the fresh venv"; }
"$VPY" -m pip install -q "$WHEEL" >>"$WORK/pip.log" 2>&1 \
    || { tail -30 "$WORK/pip.log"; fail "pip install the wheel in the fresh venv"; }
RIJ="$WORK/venv/bin/rescunet-ij"
RUN="$WORK/run"  # run outside the checkout, so the package comes from the venv
mkdir -p "$RUN"
cd "$RUN"
where=$("$VPY" -c "import rescunet_ij, pathlib; print(pathlib.Path(rescunet_ij.__file__).parent)")
case "$where" in "$WORK/venv/"*) ;; *) fail "rescunet_ij imported from $where, not the fresh venv";; esac

step "rescunet-ij --help / version"
"$RIJ" --help >"$WORK/help.txt" || { cat "$WORK/help.txt"; fail "rescunet-ij --help"; }
grep -q "install-fiji" "$WORK/help.txt" || fail "rescunet-ij --help does not list install-fiji"
got=$("$RIJ" version) || fail "rescunet-ij version"
[ "$got" = "$VERSION" ] || fail "rescunet-ij version says '$got', __version__ is '$VERSION'"

step "rescunet-ij demo --epochs 2 --device cpu"
OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} "$RIJ" demo -o "$RUN/demo" --epochs 2 --device cpu \
    >"$WORK/demo.log" 2>&1 || { tail -30 "$WORK/demo.log"; fail "rescunet-ij demo"; }
[ -s "$RUN/demo/RoiSet.zip" ] || { tail -30 "$WORK/demo.log"; fail "the demo wrote no RoiSet.zip"; }

step "rescunet-ij install-fiji --dry-run on a fake Fiji.app"
FIJI="$RUN/Fiji.app"
mkdir -p "$FIJI/jars" "$FIJI/scripts/Plugins" "$FIJI/macros" "$FIJI/lib"
: >"$FIJI/ImageJ-linux64"
HOME="$RUN/home" "$RIJ" install-fiji "$FIJI" --dry-run >"$WORK/install.txt" 2>&1 \
    || { cat "$WORK/install.txt"; fail "rescunet-ij install-fiji --dry-run"; }
grep -q "Fiji files from $WORK/venv/.*/rescunet_ij/fiji into" "$WORK/install.txt" \
    || { cat "$WORK/install.txt"; fail "install-fiji did not take the wheel's rescunet_ij/fiji/"; }
for f in "$REPO"/fiji_scripts/Plugins/ReSCU-Net/*.groovy; do
    grep -q "copy    scripts/Plugins/ReSCU-Net/$(basename "$f")" "$WORK/install.txt" \
        || { cat "$WORK/install.txt"; fail "install-fiji --dry-run does not list $(basename "$f")"; }
done
grep -q "copy    lib/rescunet-ij/RescunetClient.groovy" "$WORK/install.txt" \
    || fail "install-fiji --dry-run does not list the library"
[ -z "$(find "$FIJI" -type f ! -name ImageJ-linux64)" ] || fail "--dry-run wrote into Fiji.app"
[ ! -e "$RUN/home/.imagej" ] || fail "--dry-run wrote preferences"
cd "$REPO"

step "end"
echo "check_dist: all checks passed in $((SECONDS - T0)) s"
