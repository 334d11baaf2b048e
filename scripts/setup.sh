#!/usr/bin/env bash
# Set up a virtual environment in .venv with rescunet-ij and what it needs.
#   bash scripts/setup.sh            # the package (CLI + Python API)
#   bash scripts/setup.sh test       # + test tools, ImageJ 1.x (Debian libij-java), Xvfb
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
want_test=${1:-}

if [ "$want_test" = "test" ] && command -v apt-get >/dev/null 2>&1; then
    need=""
    for pkg in libij-java xvfb xauth default-jre-headless; do
        dpkg -s "$pkg" >/dev/null 2>&1 || need="$need $pkg"
    done
    # The ROI Manager is an AWT window: a full JRE (libawt_xawt) is needed, not only headless.
    if ! ls /usr/lib/jvm/*/lib/libawt_xawt.so >/dev/null 2>&1; then need="$need openjdk-17-jre"; fi
    # npm fetches the Groovy 4 jars for tests/fiji (below), when they are not there yet.
    if [ ! -f .cache/groovy4/groovy-4.0.26.jar ] && ! command -v npm >/dev/null 2>&1; then
        need="$need npm"
    fi
    if [ -n "$need" ]; then
        echo "installing system packages:$need"
        SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
        $SUDO apt-get update -q
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $need
    fi
fi

[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
# torch: the CPU wheel (CUDA users: install the torch build for your CUDA first; any torch >= 2.2 works).
python -c "import torch" 2>/dev/null || python -m pip install -q "torch==2.13.0" || python -m pip install -q "torch>=2.2"
if [ "$want_test" = "test" ]; then
    python -m pip install -q -e ".[test]"
else
    python -m pip install -q -e .
fi
if [ "$want_test" = "test" ] && [ ! -f .cache/groovy4/groovy-4.0.26.jar ]; then
    # Groovy 4 (what Fiji ships) for tests/fiji, without Maven: the npm package npm-groovy-lint
    # carries the Apache Groovy 4.0.26 jars (Apache-2.0).
    if command -v npm >/dev/null 2>&1; then
        echo "fetching the Groovy 4.0.26 jars (npm pack npm-groovy-lint@18.0.0) into .cache/groovy4/"
        mkdir -p .cache/groovy4
        tmp=$(mktemp -d)
        (cd "$tmp" && npm pack -q npm-groovy-lint@18.0.0 >/dev/null \
            && tar xzf npm-groovy-lint-18.0.0.tgz package/lib/java/groovy/lib/groovy-4.0.26.jar \
                   package/lib/java/groovy/lib/groovy-json-4.0.26.jar) \
            && cp "$tmp"/package/lib/java/groovy/lib/groovy-4.0.26.jar \
                  "$tmp"/package/lib/java/groovy/lib/groovy-json-4.0.26.jar .cache/groovy4/ \
            || echo "could not fetch the Groovy 4 jars: tests/fiji will be skipped"
        rm -rf "$tmp"
    else
        echo "npm not found: tests/fiji (the Fiji commands) will be skipped"
    fi
fi
echo "ready: . .venv/bin/activate  (then: rescunet-ij --help)"
