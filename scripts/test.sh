#!/usr/bin/env bash
# The test command: installs what the tests need (apt: ImageJ 1.x, Xvfb; pip: the package + test tools),
# checks the code with ruff, checks the wheel and sdist (scripts/check_dist.sh; SKIP_CHECK_DIST=1
# skips it), and runs the whole suite, the real-ImageJ tests included (under Xvfb via pytest-xvfb).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
. .venv/bin/activate
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
# Lint and format first (seconds): pyflakes, pycodestyle, import order, numpy docstrings, bugbear.
ruff check .
ruff format --check .
# The distributions (about a minute on 2 cores): sdist + wheel, twine check, the wheel's files
# (Fiji commands as package data), a wheel from the sdist, and a fresh venv that installs the
# wheel and runs --help, version, a 2-epoch demo and install-fiji --dry-run.
[ "${SKIP_CHECK_DIST:-0}" = 1 ] || bash scripts/check_dist.sh
python -m pytest -ra --timeout=900 --durations=15 "$@"
