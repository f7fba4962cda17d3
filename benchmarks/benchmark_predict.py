"""Throughput and peak memory of predict.py on long videos (one face), and corpus throughput, with
random-weight models.

    python benchmarks/benchmark_predict.py --model s2d_tiny_patch8_112 --minutes 1 10 30
    python benchmarks/benchmark_predict.py --model s2d_base_patch16_224 --minutes 1 --cpu_int8
    python benchmarks/benchmark_predict.py --model s2d_tiny_patch8_112 --minutes 0.5 --corpus 8 --nproc 1 2

Writes a video per length in which a real face (matplotlib's sample photograph grace_hopper.jpg) drifts
back and forth and changes size (320x240 by default, 25 fps), a random-weight checkpoint per model (16 frames, DFEW:
windows of 16 samples over 3 s every 1.5 s), and runs predict.py on each video in a fresh process with the
default MTCNN detector and the annotated video. Prints, per run, video frames per second of the whole
analysis (decoding, detection, tracking, crops, landmark network and S2D, outputs) and the process's peak
resident memory (from the kernel's rusage of that process). With --corpus N: N such videos analysed by
`predict.py --videos` in 1 process and under torchrun with 2 (CPU: gloo, one torch thread per process, as
torchrun sets), printing videos per hour and video frames per second of the whole run, start-up included.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from matplotlib import cbook

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: import models
from models import build_model, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
FPS = 25


def face_placement(index, height):
    """(x, y, scale) of the photograph at frame `index` of a video `height` pixels high: a slow drift and
    breathing size (period 8 s); the path and the face scale with the height (240 px: a face about 80 px)."""
    phase = 2 * np.pi * index / (8 * FPS)
    unit = height / 240
    return (int(unit * (60 + 50 * np.sin(phase))), int(unit * (12 + 10 * np.cos(phase))),
            unit * (0.3 + 0.05 * np.sin(phase)))


def write_long_video(path, minutes, width, height):
    photo = cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (width, height))
    for index in range(int(minutes * 60 * FPS)):
        x, y, scale = face_placement(index, height)
        frame = np.full((height, width, 3), 90, np.uint8)
        face = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        frame[y:y + face.shape[0], x:x + face.shape[1]] = face[:height - y, :width - x]
        writer.write(frame)
    writer.release()


def random_checkpoint(path, model_name):
    model = build_model(model_name, num_classes=7, num_frames=16)
    save_checkpoint({"model": model.state_dict(), "epoch": "best",
                     "args": argparse.Namespace(model=model_name, num_frames=16, data_set="DFEW")}, path)


def run_predict(video, checkpoint, output_dir, device, cpu_int8):
    """predict.py in a fresh process: (its summary, its peak RSS in MiB)."""
    command = [sys.executable, str(ROOT / "predict.py"), "--video", str(video), "--checkpoint", str(checkpoint),
               "--output_dir", str(output_dir), "--landmark_weights", "random", "--device", device,
               "--print_freq", "1500"] + ["--cpu_int8"] * cpu_int8
    process = subprocess.Popen(command, cwd=ROOT)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"predict.py failed with exit code {process.returncode}: {' '.join(command)}")
    return json.loads((output_dir / "summary.json").read_text()), usage.ru_maxrss / 1024


def run_corpus(folder, checkpoint, output_dir, device, nproc):
    """predict.py --videos over `folder` in `nproc` processes: its wall time in seconds."""
    launcher = [sys.executable] if nproc == 1 else [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                                    "--nproc_per_node", str(nproc)]
    command = launcher + [str(ROOT / "predict.py"), "--videos", str(folder), "--checkpoint", str(checkpoint),
                          "--output_dir", str(output_dir), "--landmark_weights", "random", "--device", device,
                          "--print_freq", "100000"]
    start = time.time()
    subprocess.run(command, cwd=ROOT, check=True)
    return time.time() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", default=[], help="repeatable (default: s2d_tiny_patch8_112)")
    parser.add_argument("--minutes", nargs="+", type=float, default=[1.0], help="video lengths")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240, help="the face's path and size scale with it")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cpu_int8", action="store_true", help="predict.py --cpu_int8 (int8 Linear layers)")
    parser.add_argument("--corpus", type=int, default=0, help="N videos of --minutes[0] each, as one corpus")
    parser.add_argument("--nproc", nargs="+", type=int, default=[1, 2], help="process counts for --corpus")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.corpus:
            (tmp / "corpus").mkdir()
            write_long_video(tmp / "corpus" / "video0.mp4", args.minutes[0], args.width, args.height)
            for k in range(1, args.corpus):
                os.link(tmp / "corpus" / "video0.mp4", tmp / "corpus" / f"video{k}.mp4")
        for minutes in [] if args.corpus else args.minutes:
            write_long_video(tmp / f"{minutes:g}min.mp4", minutes, args.width, args.height)
        for name in args.model or ["s2d_tiny_patch8_112"]:
            random_checkpoint(tmp / f"{name}.pth", name)
            for nproc in args.nproc if args.corpus else []:
                seconds = run_corpus(tmp / "corpus", tmp / f"{name}.pth", tmp / f"{name}-corpus-{nproc}", args.device,
                                     nproc)
                frames = args.corpus * int(args.minutes[0] * 60 * FPS)
                results.append(dict(model=name, device=args.device, corpus_videos=args.corpus,
                                    minutes_each=args.minutes[0], processes=nproc, seconds=round(seconds, 1),
                                    videos_per_hour=round(args.corpus * 3600 / seconds, 1),
                                    video_frames_per_second=round(frames / seconds, 2), machine=platform.processor()))
                print(json.dumps(results[-1]), flush=True)
            for minutes in [] if args.corpus else args.minutes:
                summary, peak_rss = run_predict(tmp / f"{minutes:g}min.mp4", tmp / f"{name}.pth",
                                                tmp / f"{name}-{minutes:g}", args.device, args.cpu_int8)
                results.append(dict(model=name, device=args.device, int8=args.cpu_int8,
                                    size=f"{args.width}x{args.height}", minutes=minutes,
                                    frames=summary["frames_decoded"], windows=summary["windows"],
                                    tracks=len(summary["tracks"]), seconds=summary["seconds"],
                                    video_frames_per_second=summary["video_frames_per_second"],
                                    peak_rss_mib=round(peak_rss, 1), torch_threads=torch.get_num_threads(),
                                    machine=platform.processor()))
                print(json.dumps(results[-1]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
