#!/usr/bin/env bash
# Set up (idempotent) and run the test suite on CPU; --quick: without the tests marked slow, other arguments go
# to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
selection=()
if [[ "${1:-}" == "--quick" ]]; then
  shift
  selection=(-m "not slow")
fi
exec env CUDA_VISIBLE_DEVICES="" .venv/bin/python -m pytest -q "${selection[@]}" "$@" tests
