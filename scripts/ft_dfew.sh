#!/usr/bin/env bash
# DFEW, 5-fold cross-validation: the published recipe (SDL off, mixup and label smoothing at defaults).
source "$(dirname "$0")/recipe_common.sh"
DATA_PATH=${DATA_PATH:-$DATA_ROOT/DFEW/Clip/clip_224x224_16f}
LABEL_ROOT=${LABEL_ROOT:-$DATA_ROOT/DFEW/EmoLabel_DataSplit}
FOLDS=${FOLDS:-1 2 3 4 5}
if [ "$EVAL" = 1 ]; then
  evaluate_released DFEW "$DATA_PATH" $(for fold in $FOLDS; do
    echo "$fold=$LABEL_ROOT/test(single-labeled)/test_set_${fold}.csv"
  done)
fi
require_inputs DFEW "$DATA_PATH" $(for fold in $FOLDS; do
  echo "$LABEL_ROOT/train(single-labeled)/train_set_${fold}.csv" "$LABEL_ROOT/test(single-labeled)/test_set_${fold}.csv"
done)

for fold in $FOLDS; do
  run_fold "$OUTPUT_ROOT/dfew/split0${fold}_$(run_name)" \
    --data_set DFEW --nb_classes 7 --data_path "$DATA_PATH" \
    --train_label_path "$LABEL_ROOT/train(single-labeled)/train_set_${fold}.csv" \
    --test_label_path "$LABEL_ROOT/test(single-labeled)/test_set_${fold}.csv" \
    --sdl_update_freq 40
done
"$PYTHON" scripts/summarize.py "$OUTPUT_ROOT/dfew" --pattern "*_$(run_name)"
