#!/usr/bin/env bash
# Lays out the Fiji files of this version as a Fiji update site publishes them:
#   OUTDIR/scripts/Plugins/ReSCU-Net/*.groovy   the menu commands (Plugins > ReSCU-Net)
#   OUTDIR/lib/rescunet-ij/RescunetClient.groovy their library
#   OUTDIR/macros/ReSCU-Net/*.ijm               the macros
# It runs `rescunet-ij install-fiji` into a throw-away Fiji.app skeleton (with its own
# IJ_Prefs.txt, so no real ImageJ preferences are written) and copies out the folders above: the
# update site gets exactly what install-fiji installs, from the same place (the checkout's
# fiji_scripts/, or an installed wheel's rescunet_ij/fiji/).
#
# Usage: bash scripts/make_update_site.sh OUTDIR     (OUTDIR must not exist, or be empty)
#   PYTHON=/path/to/python picks the environment (default: the checkout's .venv, else python3).
# Then, in a Fiji.app of the maintainer: copy OUTDIR's folders into it, Help > Update...,
# Manage Update Sites > (your site) , Advanced Mode, select these files, Apply Changes (Upload).
# Each user still runs `rescunet-ij install-fiji` (or the settings macro it prints) once, for the
# preferences that say where rescunet-ij is.
set -euo pipefail
if [ $# -ne 1 ]; then
    echo "usage: bash scripts/make_update_site.sh OUTDIR" >&2
    exit 2
fi
OUT=$1
if [ -e "$OUT" ] && [ -n "$(ls -A "$OUT")" ]; then
    echo "make_update_site: $OUT exists and is not empty; give a new or empty folder" >&2
    exit 2
fi
REPO=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${PYTHON:-}" ]; then
    PY=$PYTHON
elif [ -x "$REPO/.venv/bin/python" ]; then
    PY=$REPO/.venv/bin/python
else
    PY=python3
fi

SKEL=$(mktemp -d "${TMPDIR:-/tmp}/rescunet-update-site.XXXXXX")
trap 'rm -rf "$SKEL"' EXIT
FIJI=$SKEL/Fiji.app
mkdir -p "$FIJI/jars" "$FIJI/scripts/Plugins" "$FIJI/macros" "$FIJI/lib"
: >"$FIJI/ImageJ-linux64"
: >"$FIJI/IJ_Prefs.txt"  # install-fiji writes this Fiji's own preferences, not ~/.imagej's
"$PY" -m rescunet_ij install-fiji "$FIJI" >"$SKEL/install.log" 2>&1 || {
    cat "$SKEL/install.log" >&2
    echo "make_update_site: rescunet-ij install-fiji failed (above)" >&2
    exit 1
}

mkdir -p "$OUT"
n=0
for dir in scripts/Plugins/ReSCU-Net lib/rescunet-ij macros/ReSCU-Net; do
    [ -d "$FIJI/$dir" ] || { echo "make_update_site: install-fiji made no $dir" >&2; exit 1; }
    mkdir -p "$OUT/$dir"
    cp -p "$FIJI/$dir"/* "$OUT/$dir/"
    n=$((n + $(ls "$FIJI/$dir" | wc -l)))
done
version=$("$PY" -m rescunet_ij version)
echo "make_update_site: rescunet-ij $version: $n files in $OUT"
(cd "$OUT" && find . -type f | sort | sed 's|^\./|  |')
