"""Clips per second of one data-loader worker (items read in a loop, one torch thread) in the
train and test modes of the published recipe (16 frames, 224 px, 2 x 2 test views).

Without --data_path it writes temporary 224x224 16-frame JPEG clips and reads those.
"""
import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: import datasets
from datasets import VideoClsDataset
from datasets.build import DATASETS


def write_benchmark_clips(root: Path, num_clips: int, num_frames: int = 16, size: int = 224) -> Path:
    """Smooth random-colour JPEG clips (face-crop-like file sizes) and their CSV; returns the CSV."""
    rng = np.random.default_rng(0)
    rows = ["video_name,label"]
    for clip in range(num_clips):
        clip_id = f"{clip:05d}"
        (root / clip_id).mkdir(parents=True)
        coarse = Image.fromarray(rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8))
        for frame in range(num_frames):
            shifted = coarse.rotate(frame, resample=Image.BILINEAR)
            shifted.resize((size, size), Image.BICUBIC).save(root / clip_id / f"{frame:05d}.jpg", quality=90)
        rows.append(f"{clip_id},{clip % 7}")
    csv_path = root / "clips.csv"
    csv_path.write_text("\n".join(rows) + "\n")
    return csv_path


def _items_per_second(dataset: VideoClsDataset, num_items: int) -> float:
    dataset[0]  # warm-up
    start = time.perf_counter()
    for i in range(num_items):
        dataset[i % len(dataset)]
    return num_items / (time.perf_counter() - start)


def benchmark_loader(args: argparse.Namespace) -> dict:
    """{'train_clips_per_s', 'test_views_per_s', 'test_clips_per_s', ...} for one worker."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a DataLoader worker
    try:
        return _benchmark_one_thread(args)
    finally:
        torch.set_num_threads(threads)


def _benchmark_one_thread(args: argparse.Namespace) -> dict:
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    with tempfile.TemporaryDirectory() as scratch:
        if args.data_path is None:
            data_path, label_path = scratch, write_benchmark_clips(Path(scratch), args.num_clips)
        elif args.label_path is None:
            raise ValueError("--label_path is required with --data_path")
        else:
            data_path, label_path = args.data_path, args.label_path
        class_names, extensions = DATASETS[args.data_set]
        common = dict(anno_path=str(label_path), data_path=str(data_path),
                      nb_classes=len(class_names) if class_names else args.nb_classes,
                      frame_extensions=extensions, clip_len=16, input_size=224, short_side_size=224,
                      test_num_segment=2, test_num_crop=2)
        train_rate = _items_per_second(VideoClsDataset(mode="train", **common), args.num_items)
        test_rate = _items_per_second(VideoClsDataset(mode="test", **common), args.num_items)
    return dict(train_clips_per_s=round(train_rate, 2), test_views_per_s=round(test_rate, 2),
                test_clips_per_s=round(test_rate / 4, 2), num_items=args.num_items,
                data=args.data_path or f"{args.num_clips} temporary 224x224 16-frame JPEG clips")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_path", default=None, help="root of the clip folders (default: temporary clips)")
    parser.add_argument("--label_path", default=None, help="annotation CSV under --data_path")
    parser.add_argument("--data_set", default="DFEW", choices=sorted(DATASETS))
    parser.add_argument("--nb_classes", type=int, default=7, help="class count for --data_set FRAMES")
    parser.add_argument("--num_clips", type=int, default=8, help="temporary clips to write")
    parser.add_argument("--num_items", type=int, default=64, help="items timed per mode")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    results = benchmark_loader(args)
    print(json.dumps(results, indent=2))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
