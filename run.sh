#!/usr/bin/env bash
# Reproduce the paper's video results: DFEW (5 folds), FERV39K, MAFW (5 folds).
# Set OVERSAMPLE=1 for the "w/ oversampling" column. See README.md for data and checkpoints.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/ft_dfew.sh
bash scripts/ft_ferv39k.sh
bash scripts/ft_mafw.sh
