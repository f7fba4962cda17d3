#!/usr/bin/env bash
# Idempotent set-up of .venv beside the repository root.
#   bash scripts/setup.sh                             # the exact versions CI ran with (requirements-lock.txt)
#   S2D_REQUIREMENTS=latest bash scripts/setup.sh     # the newest versions requirements.txt allows (then
#                                                     # requirements-no-deps.txt without dependencies)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
MODE=${S2D_REQUIREMENTS:-lock}
case "$MODE" in
  lock) files=(requirements-lock.txt) ;;
  latest) files=(requirements.txt requirements-no-deps.txt) ;;
  *) echo "error: S2D_REQUIREMENTS=$MODE: expected lock (default) or latest" >&2; exit 2 ;;
esac
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements.sha256
want=$( (echo "$MODE"; cat "${files[@]}") | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  pip=(.venv/bin/python -m pip install --disable-pip-version-check -q)
  if [ "$MODE" = lock ]; then
    "${pip[@]}" --no-deps -r requirements-lock.txt  # complete: every package is listed
  else
    "${pip[@]}" --upgrade -r requirements.txt
    "${pip[@]}" --no-deps -r requirements-no-deps.txt
  fi
  echo "$want" > "$stamp"
fi
