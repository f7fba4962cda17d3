#!/usr/bin/env bash
# Static stage on RAF-DB basic (7 classes): the image model from MAE weights. Its checkpoint.pth is a
# PRETRAINED checkpoint for scripts/ft_*.sh, e.g.
#   PRETRAINED=saved/model/pretraining/rafdb/checkpoint.pth bash scripts/ft_dfew.sh
# Make the CSVs first: python scripts/convert_rafdb.py --input data/RAF-DB/basic --output data/RAF-DB/basic/splits
source "$(dirname "$0")/pretrain_common.sh"
DATA_PATH=${DATA_PATH:-data/RAF-DB/basic}
LABEL_ROOT=${LABEL_ROOT:-$DATA_PATH/splits}

run_fold "$PT_OUTPUT_ROOT/rafdb" \
  --data_set RAFDB --data_path "$DATA_PATH" \
  --train_label_path "$LABEL_ROOT/train.csv" --test_label_path "$LABEL_ROOT/test.csv"
"$PYTHON" scripts/summarize.py "$PT_OUTPUT_ROOT" --pattern rafdb
