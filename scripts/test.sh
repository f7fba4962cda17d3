#!/usr/bin/env bash
# Set up (idempotent) and run the test suite on CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
CUDA_VISIBLE_DEVICES="" .venv/bin/python -m pytest -q tests "$@"
