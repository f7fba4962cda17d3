#!/usr/bin/env bash
# Static stage on AffectNet (7 classes by default, CLASSES=8 with contempt): the image model from MAE
# weights. Its checkpoint.pth is a PRETRAINED checkpoint for scripts/ft_*.sh, e.g.
#   PRETRAINED=saved/model/pretraining/affectnet7/checkpoint.pth bash scripts/ft_dfew.sh
# Make the CSVs first: python scripts/convert_affectnet.py --input <folder with training.csv and
# validation.csv> --output data/AffectNet/splits7 --num_classes 7
source "$(dirname "$0")/pretrain_common.sh"
CLASSES=${CLASSES:-7}
DATA_PATH=${DATA_PATH:-data/AffectNet/Manually_Annotated_Images}
LABEL_ROOT=${LABEL_ROOT:-data/AffectNet/splits$CLASSES}

run_fold "$PT_OUTPUT_ROOT/affectnet$CLASSES" \
  --data_set "AffectNet$CLASSES" --data_path "$DATA_PATH" \
  --train_label_path "$LABEL_ROOT/train.csv" --test_label_path "$LABEL_ROOT/test.csv"
"$PYTHON" scripts/summarize.py "$PT_OUTPUT_ROOT" --pattern "affectnet$CLASSES"
