#!/usr/bin/env bash
# Shared part of the published fine-tuning recipes (sourced by ft_dfew.sh, ft_ferv39k.sh, ft_mafw.sh).
# Every value can be overridden from the environment, e.g. NUM_GPUS=4 PRETRAINED=... bash scripts/ft_dfew.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
NUM_GPUS=${NUM_GPUS:-$("$PYTHON" -c "import torch; print(max(torch.cuda.device_count(), 1))")}
PRETRAINED=${PRETRAINED:-ckpts/pretrain-AffectNet-7.pth}
LANDMARK_WEIGHTS=${LANDMARK_WEIGHTS:-ckpts/mobilefacenet_model_best.pth.tar}
TOTAL_BATCH=${TOTAL_BATCH:-16}   # published: 2 GPUs x 8 clips; kept whatever the GPU count, so the lr scaling matches
EVAL_BATCH=${EVAL_BATCH:-8}      # EVAL=1: clips per GPU and step, the published recipe's (the metrics do not depend on it)
LR=${LR:-1e-5}
EPOCHS=${EPOCHS:-100}
INPUT_SIZE=${INPUT_SIZE:-224}
SAMPLING_RATE=${SAMPLING_RATE:-1}
OVERSAMPLE=${OVERSAMPLE:-0}      # 1: class-balanced oversampling (--use_bds), the "w/ oversampling" column
OUTPUT_ROOT=${OUTPUT_ROOT:-saved/model/finetuning}
DATA_ROOT=${DATA_ROOT:-data}     # the data sets' default folders are under it
CKPTS_DIR=${CKPTS_DIR:-ckpts}    # EVAL=1: released checkpoints found here are used, the others come from Hugging Face
MODEL=${MODEL:-s2d_base_patch16_224}
NUM_FRAMES=${NUM_FRAMES:-16}
NUM_WORKERS=${NUM_WORKERS:-8}
EVAL=${EVAL:-0}                  # 1: evaluate the released checkpoints with the published protocol instead of training

if (( TOTAL_BATCH % NUM_GPUS )); then
  echo "TOTAL_BATCH=$TOTAL_BATCH is not divisible by NUM_GPUS=$NUM_GPUS" >&2
  exit 1
fi
BATCH_SIZE=$(( TOTAL_BATCH / NUM_GPUS ))

COMMON_FLAGS=(
  --model "$MODEL"
  --finetune "$PRETRAINED"
  --landmark_weights "$LANDMARK_WEIGHTS"
  --batch_size "$BATCH_SIZE"
  --num_sample 1
  --input_size "$INPUT_SIZE"
  --short_side_size "$INPUT_SIZE"
  --save_ckpt_freq 1000
  --num_frames "$NUM_FRAMES"
  --sampling_rate "$SAMPLING_RATE"
  --opt adamw
  --lr "$LR"
  --opt_betas 0.9 0.999
  --weight_decay 0.05
  --epochs "$EPOCHS"
  --dist_eval
  --test_num_segment 2
  --test_num_crop 2
  --num_workers "$NUM_WORKERS"
  --K 2
  --qs 16
)
if [ "$OVERSAMPLE" = 1 ]; then
  COMMON_FLAGS+=(--use_bds)
fi

# require_inputs NAME DATA_PATH LABEL_FILE...: stop with one message naming every input of the recipe that is missing
# and where to get it, before anything starts (CHECK_ONLY=1: check, then exit; run.sh checks every recipe first).
require_inputs() {
  local name=$1 data_path=$2 missing=() label
  shift 2
  [ -d "$data_path" ] || missing+=("frame folder $data_path (DATA_PATH): the dataset's face frames, see docs/DATA.md")
  for label in "$@"; do
    [ -f "$label" ] || missing+=("annotation file $label (LABEL_ROOT): docs/DATA.md, scripts/convert_*.py")
  done
  [ -f "$PRETRAINED" ] || missing+=("static checkpoint $PRETRAINED (PRETRAINED): from the Hugging Face repository \
cyinen/S2D with scripts/download_checkpoints.py (--list shows its files), see ckpts/README.md")
  [ "$LANDMARK_WEIGHTS" = random ] || [ -f "$LANDMARK_WEIGHTS" ] || missing+=("MobileFaceNet weights \
$LANDMARK_WEIGHTS (LANDMARK_WEIGHTS): landmark/mobilefacenet_model_best.pth.tar of the original S2D repository \
(github.com/MSA-LMC/S2D), see ckpts/README.md")
  if (( ${#missing[@]} )); then
    { echo "error: the $name recipe cannot start; missing:"; printf '  - %s\n' "${missing[@]}"; } >&2
    exit 1
  fi
  if [ "${CHECK_ONLY:-0}" = 1 ]; then
    exit 0
  fi
}

# evaluate_released DATA_SET DATA_PATH FOLD=TEST_LABEL_FILE...: EVAL=1, the released checkpoints evaluated with the
# recipe's protocol (scripts/evaluate_released.py; CHECK_ONLY=1: name what is missing, then exit); ends the script.
evaluate_released() {
  local data_set=$1 data_path=$2 label
  shift 2
  local flags=(--data_set "$data_set" --data_path "$data_path" --output_root "$OUTPUT_ROOT/released"
    --ckpts_dir "$CKPTS_DIR" --landmark_weights "$LANDMARK_WEIGHTS" --nproc "$NUM_GPUS" --batch_size "$EVAL_BATCH" --model "$MODEL"
    --input_size "$INPUT_SIZE" --num_frames "$NUM_FRAMES" --sampling_rate "$SAMPLING_RATE" --num_workers "$NUM_WORKERS")
  for label in "$@"; do
    flags+=(--test_label "$label")
  done
  [ "$OVERSAMPLE" = 1 ] && flags+=(--oversample)
  [ "${CHECK_ONLY:-0}" = 1 ] && flags+=(--check_only)
  exec "$PYTHON" scripts/evaluate_released.py "${flags[@]}"
}

# run_fold OUTPUT_DIR FLAGS...: one training run (skipped when it already finished) with torchrun on NUM_GPUS.
run_fold() {
  local output_dir=$1; shift
  mkdir -p "$output_dir"
  if grep -q '"final_last_uar"' "$output_dir/log.txt" 2>/dev/null; then
    echo "done already: $output_dir"
    return
  fi
  echo "==> $output_dir"
  "$PYTHON" -m torch.distributed.run --standalone --nproc_per_node "$NUM_GPUS" main_finetune.py \
    "${COMMON_FLAGS[@]}" "$@" --output_dir "$output_dir" --log_dir "$output_dir" 2>&1 | tee -a "$output_dir/train.log"
}

run_name() {  # folder name of a run, from its settings
  local sampling=""
  [ "$OVERSAMPLE" = 1 ] && sampling="_bds"
  echo "lr_${LR}_epoch_${EPOCHS}_size${INPUT_SIZE}_sr${SAMPLING_RATE}${sampling}"
}
