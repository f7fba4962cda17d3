#!/usr/bin/env bash
# Idempotent set-up: creates .venv beside the repository root and installs requirements.txt (and, without their
# dependencies, requirements-no-deps.txt) into it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements.sha256
want=$(cat requirements.txt requirements-no-deps.txt | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install --disable-pip-version-check -q -r requirements.txt
  .venv/bin/python -m pip install --disable-pip-version-check -q --no-deps -r requirements-no-deps.txt
  echo "$want" > "$stamp"
fi
