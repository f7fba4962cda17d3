#!/usr/bin/env bash
# Shared part of the static-stage recipes (sourced by pt_affectnet.sh, pt_rafdb.sh): the image model
# s2d_image_base_patch16_224 initialised from MAE weights, every parameter trained (landmark network
# frozen). S2D's own static settings are not published; these are the nearest public ones, MAE-SFER's
# fine-tuning of an MAE ViT-B: total batch 32 (16 per step x accumulation 2), base lr 5e-4 per 256
# images, layer decay 0.65, weight decay 0.05, drop path 0.1, RandAugment rand-m9-mstd0.5-inc1, random
# erasing 0.25, mixup 0.8, cutmix 1.0, label smoothing 0.1, 100 epochs, 5 warmup epochs.
# Every value can be overridden from the environment, e.g. NUM_GPUS=2 bash scripts/pt_rafdb.sh
source "$(dirname "${BASH_SOURCE[0]}")/recipe_common.sh"
MAE_WEIGHTS=${MAE_WEIGHTS:-ckpts/vit-base-checkpoint-300.pth}
ACCUMULATION=${ACCUMULATION:-2}
# main_finetune.py scales --lr by the total batch / 8 (the video recipes' rule): 5e-4 x 32 / 256 = 6.25e-5
# is MAE-SFER's absolute lr, i.e. --lr 1.5625e-5 at a total batch of 32; min lr 1e-6 likewise.
PT_LR=${PT_LR:-1.5625e-5}
PT_MIN_LR=${PT_MIN_LR:-8e-6}
PT_EPOCHS=${PT_EPOCHS:-100}
PT_OUTPUT_ROOT=${PT_OUTPUT_ROOT:-saved/model/pretraining}

COMMON_FLAGS=(
  --model s2d_image_base_patch16_224
  --finetune "$MAE_WEIGHTS"
  --landmark_weights "$LANDMARK_WEIGHTS"
  --batch_size "$BATCH_SIZE"
  --update_freq "$ACCUMULATION"
  --num_sample 1
  --input_size 224
  --short_side_size 224
  --save_ckpt_freq 1000
  --lr "$PT_LR"
  --min_lr "$PT_MIN_LR"
  --warmup_epochs 5
  --layer_decay 0.65
  --weight_decay 0.05
  --drop_path 0.1
  --aa rand-m9-mstd0.5-inc1
  --reprob 0.25
  --mixup 0.8
  --cutmix 1.0
  --smoothing 0.1
  --epochs "$PT_EPOCHS"
  --dist_eval
  --num_workers 8
)
