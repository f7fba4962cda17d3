#!/usr/bin/env bash
# CPU demo of the S2D recipe on synthetic data, in the order a real user works:
#   1. synthetic DFEW-layout video clips (drawn faces whose expression unfolds over the clip);
#   2. the static image model's own result on the test clips (ckpts/demo: s2d_image_tiny_patch8_64,
#      trained on synthetic still faces by scripts/pretrain_demo.sh; frame logits averaged per clip);
#   3. the video stage: --finetune of the video model s2d_tiny_patch8_64 from that static checkpoint
#      with the paper's freezing (only prompts, temporal adapters, temporal embedding, ln_post and the
#      head train), then the test: UAR/WAR and confusion matrix, next to the static result;
#   4. predict.py on a synthetic video of expressions in a row: the emotion timeline (CSV, plot, video).
# Reduced for 2 CPU cores: 64 px, FRAMES frames, CLIPS_PER_CLASS clips per class, EPOCHS epochs, no
# mixup; the published 2 x 2 test views, which on these square 4-frame clips are one distinct view
# (computed once); data loading in the main process (a loader worker beside 2 compute threads
# oversubscribes 2 cores: with one core busy, a training step took 7.4 s with 2 threads, 0.9 s with 1).
# Both stages use the fixed-seed RANDOM landmark network (no MobileFaceNet weights are downloaded), so
# the landmark branch here carries no real landmark information.
# Measured (2026-12-01, 2-core AMD EPYC, idle, clean clone of commit 43caa7f, set-up already done): 2 min 49 s
# in all; synthetic test clips UAR/WAR 79.29%/79.29% for the static model, 82.86%/82.86% for the video model
# (with the original's clip-level erasing and validation windows; final_last_* in log.txt).
# Every value can be overridden from the environment, e.g. EPOCHS=5 bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

OUTPUT=${OUTPUT:-output/demo}
STATIC=${STATIC:-ckpts/demo/s2d_image_tiny_patch8_64_synthetic.pth}
CLIPS_PER_CLASS=${CLIPS_PER_CLASS:-100}
FRAMES=${FRAMES:-4}
EPOCHS=${EPOCHS:-2}
BATCH_SIZE=${BATCH_SIZE:-8}
DATA=${DATA:-data/synthetic_dfew_64px_${CLIPS_PER_CLASS}x${FRAMES}f}
LR=${LR:-1e-3}
PYTHON=(env CUDA_VISIBLE_DEVICES="" .venv/bin/python)

"${PYTHON[@]}" scripts/make_synthetic_data.py --out "$DATA" \
  --clips_per_class "$CLIPS_PER_CLASS" --num_frames "$FRAMES" --size 64

DATA_FLAGS=(--data_set DFEW --data_path "$DATA/clips" --train_label_path "$DATA/splits/train_set_1.csv"
            --test_label_path "$DATA/splits/test_set_1.csv" --input_size 64 --short_side_size 64
            --num_frames "$FRAMES" --test_num_segment 2 --test_num_crop 2 --landmark_weights random
            --device cpu --num_workers 0 --batch_size "$BATCH_SIZE")
mkdir -p "$OUTPUT/static"

echo "== static image model on the test clips (frame logits averaged per clip): $STATIC"
"${PYTHON[@]}" main_finetune.py --eval --finetune "$STATIC" --model s2d_image_tiny_patch8_64 "${DATA_FLAGS[@]}" \
  --output_dir "$OUTPUT/static" 2>&1 | tee "$OUTPUT/static/eval.log"

echo "== video stage: fine-tuning s2d_tiny_patch8_64 from the static checkpoint (backbone frozen)"
"${PYTHON[@]}" main_finetune.py --model s2d_tiny_patch8_64 --finetune "$STATIC" "${DATA_FLAGS[@]}" \
  --num_sample 1 --epochs "$EPOCHS" --warmup_epochs 1 --lr "$LR" --ban_mixup --save_ckpt_freq 1000 \
  --output_dir "$OUTPUT" --no_auto_resume 2>&1 | tee "$OUTPUT/train.log"

"${PYTHON[@]}" - "$OUTPUT" <<'PY'
import json, sys
output = sys.argv[1]
static = json.loads(open(f'{output}/static/log.txt').read().splitlines()[-1])
video = json.loads(open(f'{output}/log.txt').read().splitlines()[-1])
print(f"\n== synthetic test clips ({video['final_last_num_clips']}):")
print(f"   static image model (frames averaged): UAR {static['final_uar']:.2f}%  WAR {static['final_war']:.2f}%")
print(f"   video model (S2D, fine-tuned):        UAR {video['final_last_uar']:.2f}%  WAR {video['final_last_war']:.2f}%")
PY

echo "== emotion timeline of a synthetic video (expressions in a row) with the model just trained"
"${PYTHON[@]}" scripts/make_synthetic_video.py --out "$OUTPUT/synthetic.mp4" --size 64 \
  --expressions happy,sad,angry,surprise,fear
# the windows are those the checkpoint stores from its training clips' dataset.json (datasets/synthetic.py): 4 samples
# from a frame to the one 1.875 s later (the first and last of one 16-frame expression of the 8 fps video), every
# 0.5 s; it also stores the random landmark network it was trained with
"${PYTHON[@]}" predict.py --no_detect --checkpoint "$OUTPUT/checkpoint.pth" \
  --device cpu --video "$OUTPUT/synthetic.mp4" --output_dir "$OUTPUT/timeline"

echo
echo "demo outputs in $OUTPUT: log.txt (per-epoch and final metrics), train.log, confusion_matrix_{last,best}.{txt,png},"
echo "pred.csv, pred_best.csv, checkpoint.pth, checkpoint-best.pth; the static model's test in $OUTPUT/static;"
echo "the timeline of $OUTPUT/synthetic.mp4 (onsets in synthetic.mp4.json): $OUTPUT/timeline/timeline.png"
