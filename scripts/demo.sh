#!/usr/bin/env bash
# The main job on bundled sample data: install, then train and propagate on a synthetic movie.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
rescunet-ij demo -o rescunet_demo --overwrite "$@"
