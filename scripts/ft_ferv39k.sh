#!/usr/bin/env bash
# FERV39K, one split: the published recipe (SDL on, no head dropout, no label smoothing, no mixup).
# As published, --sdl_update_freq 100 with 100 epochs never refreshes the SDL queues (epoch % 100 == 0
# only at epoch 0, before SDL starts at epoch 21); kept for faithfulness.
source "$(dirname "$0")/recipe_common.sh"
DATA_PATH=${DATA_PATH:-$DATA_ROOT/FERV39K/2_ClipsforFaceCrop}
LABEL_ROOT=${LABEL_ROOT:-$DATA_ROOT/FERV39K/Annotation}
if [ "$EVAL" = 1 ]; then
  evaluate_released FERV39K "$DATA_PATH" "all=$LABEL_ROOT/test.csv"
fi
require_inputs FERV39K "$DATA_PATH" "$LABEL_ROOT/train.csv" "$LABEL_ROOT/test.csv"

run_fold "$OUTPUT_ROOT/ferv39k/all_$(run_name)" \
  --data_set FERV39K --nb_classes 7 --data_path "$DATA_PATH" \
  --train_label_path "$LABEL_ROOT/train.csv" --test_label_path "$LABEL_ROOT/test.csv" \
  --sdl --sdl_update_freq 100 --dropout_ratio 0 --smoothing 0 --ban_mixup
"$PYTHON" scripts/summarize.py "$OUTPUT_ROOT/ferv39k" --pattern "*_$(run_name)"
