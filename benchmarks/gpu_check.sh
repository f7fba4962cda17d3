#!/usr/bin/env bash
# The prepared GPU check (docs/BENCHMARKS.md, "GPU efficiency: S2D vs plain ViT-B/16"), one run of at most
# about 8 minutes on an H100: profile of S2D base (inference and training step, per module group), the opt-in
# speed-ups side by side with eager S2D and a plain ViT-B/16 (batch 8 and 32, eager and compiled, CUDA graphs,
# peak memory, largest training batch), a DFEW-shaped epoch taken apart (1,000 clips), the test pass with and
# without view de-duplication, the CUDA test of tests/test_speedups.py, and predict.py on a 720p video.
#
#   OUT=/path/to/folder bash benchmarks/gpu_check.sh     # on the GPU machine (default OUT: output/gpu_check)
#   bash benchmarks/gpu_check.sh --smoke                 # on a CPU: tiny model, a few clips, aot_eager compilation
#
# Every part runs under its own time limit (a slow or hanging part leaves the others their time) and writes
# $OUT/<part>.log and, when it finishes, $OUT/<part>.json; $OUT/parts.txt lists exit codes and durations; the
# compact summary printed at the end (benchmarks/gpu_check_summary.py) is also in $OUT/summary.txt.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
OUT=${OUT:-output/gpu_check}
mkdir -p "$OUT"
: > "$OUT/parts.txt"

if [ "${1:-}" = --smoke ]; then
  export OMP_NUM_THREADS=1  # small operators on a shared CPU run much faster on one thread
  TINY=s2d_tiny_patch8_64
  PROFILE=(--device cpu --model $TINY --batch_size 2 --num_frames 2)
  BENCH=(--device cpu --model $TINY --frames 2 --batches 1,2 --iters 1 --warmup 0 --compile_backend aot_eager
         --compiled_batches 1)
  EPOCH=(--device cpu --model $TINY --size 64 --frames 4 --clips 8 --distinct 2 --batch_size 2 --workers 1
         --warmup 1)
  TEST=(--device cpu --model $TINY --frames 2 --test_clips 2 --test_workers 0)
  PREDICT=(--device cpu --model s2d_tiny_patch8_112 --minutes 0.02 --width 1280 --height 720)
  LIMITS=(env=30 profile=120 benchmark=300 epoch=120 test_pass=120 pytest=120 predict=120)
else
  PROFILE=(--device cuda)  # S2D base, bf16 autocast, batch 8 x 16 frames
  BENCH=(--device cuda)    # batches 8 and 32; compiled variants at batch 8
  EPOCH=(--device cuda --clips 1000)
  TEST=(--device cuda --test_clips 64)
  PREDICT=(--device cuda --model s2d_base_patch16_224 --minutes 0.27 --width 1280 --height 720)
  LIMITS=(env=10 profile=50 benchmark=240 epoch=65 test_pass=30 pytest=25 predict=35)
fi

limit() {
  local entry
  for entry in "${LIMITS[@]}"; do [ "${entry%%=*}" = "$1" ] && echo "${entry#*=}"; done
}

part() {  # part NAME COMMAND...: the command under NAME's time limit, its output in $OUT/NAME.log
  local name=$1 start=$SECONDS status
  shift
  timeout --kill-after 10 "$(limit "$name")" "$@" > "$OUT/$name.log" 2>&1
  status=$?
  echo "$name: exit $status after $((SECONDS - start)) s (limit $(limit "$name") s)" | tee -a "$OUT/parts.txt"
}

part env bash -c "nvidia-smi; $PYTHON -c 'import platform, torch, timm, einops; print(platform.python_version(),
  torch.__version__, timm.__version__, einops.__version__, torch.cuda.is_available() and torch.cuda.get_device_name())'"
part profile "$PYTHON" benchmarks/profile_s2d.py "${PROFILE[@]}" --json "$OUT/profile.json"
part benchmark "$PYTHON" benchmarks/benchmark_gpu.py "${BENCH[@]}" --json "$OUT/benchmark.json"
part epoch "$PYTHON" benchmarks/benchmark_epoch.py "${EPOCH[@]}" --json "$OUT/epoch.json"
part test_pass "$PYTHON" benchmarks/benchmark_gpu.py "${TEST[@]}" --variants none --max_batch '' \
  --json "$OUT/test_pass.json"
part pytest "$PYTHON" -m pytest -q -p no:cacheprovider tests/test_speedups.py -k cuda_graph
# predict.py's default detector runs MTCNN with the facenet-pytorch wheel's weight files; the GPU machine reaches
# no package registry, so fetch the wheel beforehand (pip download --no-deps facenet-pytorch==2.6.0 -d .wheels)
# and carry .wheels to it
if ! "$PYTHON" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('facenet_pytorch') is None)"; then
  "$PYTHON" -m pip install -q --no-deps --no-index .wheels/facenet_pytorch-*.whl
fi
part predict "$PYTHON" benchmarks/benchmark_predict.py "${PREDICT[@]}" --json "$OUT/predict.json"

echo "== summary ($OUT)"
cat "$OUT/env.log" 2>/dev/null | tail -n 3
"$PYTHON" benchmarks/gpu_check_summary.py "$OUT" | tee "$OUT/summary.txt"
cat "$OUT/parts.txt"
