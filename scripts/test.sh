#!/usr/bin/env bash
# The test command: installs what the tests need (apt: ImageJ 1.x, Xvfb; pip: the package + test tools),
# checks the code with ruff, and runs the whole suite, the real-ImageJ tests included (under Xvfb
# via pytest-xvfb).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
. .venv/bin/activate
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
# Lint and format first (seconds): pyflakes, pycodestyle, import order, numpy docstrings, bugbear.
ruff check .
ruff format --check .
python -m pytest -ra --timeout=900 --durations=15 "$@"
