#!/usr/bin/env bash
# CPU demo of training on one's own labelled recordings (docs/OWN_DATA.md), in the order a user works:
#   1. raw recordings with a labels CSV: drawn people (P1, P2, P3), each in several videos showing expressions one
#      after another; labels.csv names each expression's segment (video,start_s,end_s,label,person) with the
#      user's own class names (joy, sorrow, anger, astonishment);
#   2. scripts/extract_clips.py turns them into a FRAMES data set: the crops predict.py would make, 4 frames spread
#      over each segment, classes.txt, a split testing on the held-out person P3 (P1 and P2 train);
#   3. main_finetune.py fine-tunes the video model from the demo's static checkpoint on it (class names and clip
#      sampling go into the checkpoint), then tests it on P3: the UAR on the held-out person;
#   4. predict.py analyses one of P3's videos with that checkpoint alone: the user's class names, windows as long
#      as the training clips, features.npy; the script prints each labelled segment next to the prediction.
# The drawn faces are not faces to MTCNN: extraction and analysis take the whole frame as the face (--no_detect);
# the tests cover detection and cropping on real photographs. Both stages use the fixed-seed random landmark
# network, as scripts/demo.sh (no weights are downloaded). Data loading in the main process (2 cores).
# Every value can be overridden from the environment, e.g. EPOCHS=4 bash scripts/demo_own_data.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

OUTPUT=${OUTPUT:-output/own_demo}
DATA=${DATA:-data/own_demo}
STATIC=${STATIC:-ckpts/demo/s2d_image_tiny_patch8_64_synthetic.pth}
RECORDINGS=${RECORDINGS:-20}
EPOCHS=${EPOCHS:-2}
LR=${LR:-1e-3}
PYTHON=(env CUDA_VISIBLE_DEVICES="" .venv/bin/python)
START=$(date +%s)

echo "== 1. raw recordings of 3 drawn people and their labels CSV"
"${PYTHON[@]}" scripts/make_synthetic_recordings.py --out "$DATA/raw" --people 3 --recordings "$RECORDINGS" \
  --repeats 2 --size 64 --fps 8
head -4 "$DATA/raw/labels.csv"

echo "== 2. clips: crops as predict.py makes them, 4 frames spread over each segment; test split: person P3"
"${PYTHON[@]}" scripts/extract_clips.py --labels "$DATA/raw/labels.csv" --output "$DATA/frames" --frames 4 --spread \
  --short_side_size 64 --no_detect --group_column person --test_groups P3 --class_names joy,sorrow,anger,astonishment \
  --device cpu --print_freq 100

echo "== 3. fine-tuning s2d_tiny_patch8_64 from the static checkpoint on P1 and P2, test on the held-out P3"
mkdir -p "$OUTPUT"
"${PYTHON[@]}" main_finetune.py --model s2d_tiny_patch8_64 --finetune "$STATIC" --data_set FRAMES \
  --data_path "$DATA/frames" --train_label_path "$DATA/frames/splits/train_set_1.csv" \
  --test_label_path "$DATA/frames/splits/test_set_1.csv" --input_size 64 --short_side_size 64 --num_frames 4 \
  --test_num_segment 2 --test_num_crop 2 --landmark_weights random --device cpu --num_workers 0 --batch_size 8 \
  --num_sample 1 --epochs "$EPOCHS" --warmup_epochs 1 --lr "$LR" --ban_mixup --save_ckpt_freq 1000 \
  --output_dir "$OUTPUT" --no_auto_resume 2>&1 | tee "$OUTPUT/train.log" | grep -v "^Epoch \|^Test \|^arguments: \|Missing keys"

echo "== 4. analysis of a held-out video of P3 with the checkpoint alone (names and windows come from it)"
"${PYTHON[@]}" predict.py --no_detect --checkpoint "$OUTPUT/checkpoint.pth" --landmark_weights random \
  --device cpu --video "$DATA/raw/videos/P3_01.mp4" --output_dir "$OUTPUT/P3_01" --stride_seconds 0.25 --features

"${PYTHON[@]}" - "$OUTPUT" "$DATA/raw/labels.csv" "$START" <<'PY'
import csv, json, sys, time
import numpy as np
output, labels, start = sys.argv[1], sys.argv[2], float(sys.argv[3])
final = json.loads(open(f"{output}/log.txt").read().splitlines()[-1])
summary = json.load(open(f"{output}/P3_01/summary.json"))
names = summary["class_names"]
rows = list(csv.DictReader(open(f"{output}/P3_01/predictions.csv")))
centres = np.array([(float(r["start_s"]) + float(r["end_s"])) / 2 for r in rows])
probabilities = np.array([[float(r[n]) for n in names] for r in rows])
print(f"\n== held-out person P3 ({final['final_last_num_clips']} test clips, {len(names)} classes, chance 25%): "
      f"UAR {final['final_last_uar']:.2f}%  WAR {final['final_last_war']:.2f}%")
print(f"== P3_01.mp4: classes {', '.join(names)} (stored in the checkpoint); {summary['window_policy']['source']}")
for segment in (s for s in csv.DictReader(open(labels)) if s["video"].endswith("P3_01.mp4")):
    inside = (centres >= float(segment["start_s"])) & (centres < float(segment["end_s"]))
    predicted = names[int(probabilities[inside].mean(0).argmax())]
    print(f"   {float(segment['start_s']):5.2f}-{float(segment['end_s']):5.2f} s  labelled {segment['label']:<13}"
          f" predicted {predicted:<13} ({inside.sum()} windows)")
features = np.load(f"{output}/P3_01/features.npy")
print(f"== features.npy: {features.shape[0]} rows (one per predictions.csv row) of {features.shape[1]} floats")
print(f"== done in {time.time() - start:.0f} s; outputs in {output}: log.txt, train.log, checkpoint.pth, P3_01/")
PY
