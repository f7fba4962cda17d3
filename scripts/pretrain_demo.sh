#!/usr/bin/env bash
# Regenerates the demo's static checkpoint ckpts/demo/s2d_image_tiny_patch8_64_synthetic.pth: the image
# model s2d_image_tiny_patch8_64 trained from scratch on synthetic still faces (the static stage of S2D,
# on a toy scale), with the fixed-seed random landmark network that the demo uses too.
# Runs on CUDA when available (a few minutes on one GPU), else on the CPU (hours on 2 cores).
# Every value can be overridden from the environment, e.g. EPOCHS=10 bash scripts/pretrain_demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

DATA=${DATA:-data/synthetic_images}
OUTPUT=${OUTPUT:-output/pretrain_demo}
DEST=${DEST:-ckpts/demo}
IMAGES_PER_CLASS=${IMAGES_PER_CLASS:-2000}
EPOCHS=${EPOCHS:-60}
BATCH_SIZE=${BATCH_SIZE:-128}
LR=${LR:-5e-5}              # scaled by batch / 8 as in every recipe: 8e-4 at batch 128
NUM_WORKERS=${NUM_WORKERS:-$(nproc)}

.venv/bin/python scripts/make_synthetic_data.py --kind images --out "$DATA" \
  --images_per_class "$IMAGES_PER_CLASS" --size 64

mkdir -p "$OUTPUT" "$DEST"
.venv/bin/python main_finetune.py \
  --model s2d_image_tiny_patch8_64 --landmark_weights random \
  --data_set IMAGES --nb_classes 7 --data_path "$DATA" \
  --train_label_path "$DATA/splits/train.csv" --test_label_path "$DATA/splits/test.csv" \
  --input_size 64 --short_side_size 64 --num_sample 1 \
  --batch_size "$BATCH_SIZE" --epochs "$EPOCHS" --warmup_epochs 2 --lr "$LR" --min_lr 1e-6 \
  --ban_mixup --smoothing 0.1 --drop_path 0.1 --num_workers "$NUM_WORKERS" --save_ckpt_freq 1000 \
  --amp_dtype bfloat16 --output_dir "$OUTPUT" --no_auto_resume 2>&1 | tee "$OUTPUT/train.log"

# Keep the last epoch's weights only (no optimizer state), in the original checkpoint layout.
.venv/bin/python - "$OUTPUT" "$DEST" <<'PY'
import json, sys
from models import safe_load, save_checkpoint
output, dest = sys.argv[1:]
checkpoint = safe_load(f'{output}/checkpoint.pth')
save_checkpoint({key: checkpoint[key] for key in ('model', 'epoch', 'args')},
                f'{dest}/s2d_image_tiny_patch8_64_synthetic.pth')
final = json.loads(open(f'{output}/log.txt').read().splitlines()[-1])
result = (f"static test split ({final['final_last_num_clips']} images), last epoch: "
          f"UAR {final['final_last_uar']:.2f}%  WAR {final['final_last_war']:.2f}%")
open(f'{dest}/pretrain_result.txt', 'w').write(result + '\n')
print(f'wrote {dest}/s2d_image_tiny_patch8_64_synthetic.pth; {result}')
PY
cp "$OUTPUT/log.txt" "$DEST/pretrain_log.txt"
cp "$OUTPUT/train.log" "$DEST/pretrain_train.log"
