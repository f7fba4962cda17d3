"""Throughput of predict.py (video frames per second, one face) with random-weight models.

    python scripts/benchmark_predict.py --model s2d_tiny_patch8_112 --model s2d_base_patch16_224
    python scripts/benchmark_predict.py --model s2d_base_patch16_224 --cpu_int8

Writes a video in which a real face (matplotlib's sample photograph grace_hopper.jpg) moves and
grows, a random-weight checkpoint per model (num_frames 16, the default window), and runs predict.py
on it with the Haar detector and --no_video; the figure is the detection + model pass (decoding,
detection, tracking, crops, landmark network and S2D), without model loading and output writing.
"""
import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch
from matplotlib import cbook

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: import predict, models
import predict
from inference.faces import HaarDetector
from models import build_model, save_checkpoint


def write_face_video(path, placements, fps, width, height):
    """One frame per placement: the photograph at (x, y) scaled by `scale`, or no face for None.
    Returns {frame index: the face's box there} (the photo's own Haar box, moved and scaled)."""
    photo = cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    (photo_box,) = HaarDetector(min_face=40)(photo).boxes
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    boxes = {}
    for index, placement in enumerate(placements):
        frame = np.full((height, width, 3), 90, np.uint8)
        if placement is not None:
            x, y, scale = placement
            face = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            frame[y:y + face.shape[0], x:x + face.shape[1]] = face[:height - y, :width - x]
            boxes[index] = photo_box * scale + [x, y, 0, 0]
        writer.write(frame)
    writer.release()
    return boxes


def random_checkpoint(path, model_name, num_frames):
    model = build_model(model_name, num_classes=7, num_frames=num_frames)
    save_checkpoint({"model": model.state_dict(), "epoch": "best",
                     "args": argparse.Namespace(model=model_name, num_frames=num_frames, data_set="DFEW")}, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", default=[], help="repeatable (default: the tiny model)")
    parser.add_argument("--frames", type=int, default=64, help="video length in frames (25 fps, 640x480)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cpu_int8", action="store_true", help="predict.py --cpu_int8 (int8 Linear layers)")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        placements = [(int(100 + 300 * t), int(40 * t), 0.5 + 0.2 * t)
                      for t in np.linspace(0, 1, args.frames)]
        write_face_video(tmp / "face.mp4", placements, 25, 640, 480)
        for name in args.model or ["s2d_tiny_patch8_112"]:
            random_checkpoint(tmp / f"{name}.pth", name, 16)
            summary = predict.main(predict.get_args_parser().parse_args(
                ["--video", str(tmp / "face.mp4"), "--checkpoint", str(tmp / f"{name}.pth"), "--output_dir",
                 str(tmp / name), "--landmark_weights", "random", "--device", args.device, "--no_video"]
                + ["--cpu_int8"] * args.cpu_int8))
            results.append(dict(model=name, device=args.device, int8=args.cpu_int8,
                                frames=summary["frames_processed"], tracks=len(summary["tracks"]),
                                seconds=summary["seconds"],
                                video_frames_per_second=summary["video_frames_per_second"],
                                torch_threads=torch.get_num_threads(), machine=platform.processor()))
            print(json.dumps(results[-1]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
