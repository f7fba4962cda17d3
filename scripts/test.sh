#!/usr/bin/env bash
# Set up (idempotent) and run the test suite on CPU; --quick: without the tests marked slow, other arguments go
# to pytest. The tests that load OpenVINO and ONNX Runtime into the test process run in a pytest process of their
# own: after them, the long run of the other tests ended in a segmentation fault (2026-12-03, cause not found yet).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
selection=()
if [[ "${1:-}" == "--quick" ]]; then
  shift
  selection=(-m "not slow")
fi
runtimes=(tests/test_agreement.py tests/test_backends.py)
pytest=(env CUDA_VISIBLE_DEVICES="" .venv/bin/python -m pytest -q "${selection[@]}" "$@")
status=0
"${pytest[@]}" tests "${runtimes[@]/#/--ignore=}" || status=$?
"${pytest[@]}" "${runtimes[@]}" || { code=$?; [ "$code" -eq 5 ] || status=$code; }  # 5: all deselected
exit "$status"
