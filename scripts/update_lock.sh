#!/usr/bin/env bash
# Rewrite requirements-lock.txt from what .venv holds (pip freeze): the exact versions scripts/setup.sh installs by
# default. Run it after `S2D_REQUIREMENTS=latest bash scripts/setup.sh` and a passing test suite. The CUDA libraries
# that PyTorch's Linux wheels pull in get PyTorch's own marker, so that the lock installs on other systems too.
set -euo pipefail
cd "$(dirname "$0")/.."
python_version=$(.venv/bin/python -c 'import platform; print(platform.python_version())')
{
  echo "# Exact versions of every package, as CI ran them (Python $python_version, $(uname -s) $(uname -m)); installed"
  echo "# with --no-deps by scripts/setup.sh; made by scripts/update_lock.sh (pip freeze)."
  .venv/bin/python -m pip freeze --all --exclude-editable --disable-pip-version-check | grep -v '^pip==' |
    sed -E 's/^((nvidia-|cuda-|triton).*)$/\1 ; platform_system == "Linux"/'
} > requirements-lock.txt.tmp
mv requirements-lock.txt.tmp requirements-lock.txt
echo "wrote requirements-lock.txt ($(grep -c '==' requirements-lock.txt) packages)"
