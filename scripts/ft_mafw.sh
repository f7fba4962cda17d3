#!/usr/bin/env bash
# MAFW (11 classes, PNG frames), 5-fold cross-validation: the published recipe (SDL off).
source "$(dirname "$0")/recipe_common.sh"
DATA_PATH=${DATA_PATH:-$DATA_ROOT/MAFW/data/frames/frames_crop_align_224}
LABEL_ROOT=${LABEL_ROOT:-$DATA_ROOT/MAFW/anno/single/no_caption}
FOLDS=${FOLDS:-1 2 3 4 5}
if [ "$EVAL" = 1 ]; then
  evaluate_released MAFW "$DATA_PATH" $(for fold in $FOLDS; do echo "$fold=$LABEL_ROOT/set_${fold}/test.csv"; done)
fi
require_inputs MAFW "$DATA_PATH" $(for fold in $FOLDS; do
  echo "$LABEL_ROOT/set_${fold}/train.csv" "$LABEL_ROOT/set_${fold}/test.csv"
done)

for fold in $FOLDS; do
  run_fold "$OUTPUT_ROOT/mafw/split0${fold}_$(run_name)" \
    --data_set MAFW --nb_classes 11 --data_path "$DATA_PATH" \
    --train_label_path "$LABEL_ROOT/set_${fold}/train.csv" \
    --test_label_path "$LABEL_ROOT/set_${fold}/test.csv" \
    --sdl_update_freq 40
done
"$PYTHON" scripts/summarize.py "$OUTPUT_ROOT/mafw" --pattern "*_$(run_name)"
