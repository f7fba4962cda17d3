"""Decode every frame of the clips listed in annotation CSVs, in parallel, and report the bad clips.

    .venv/bin/python scripts/check_data.py --data_set DFEW --data_path data/DFEW/Clip/clip_224x224_16f \
        --label_path "data/DFEW/EmoLabel_DataSplit/train(single-labeled)/train_set_1.csv" \
                     "data/DFEW/EmoLabel_DataSplit/test(single-labeled)/test_set_1.csv" \
        --workers 8 --report output/bad_clips.csv --clean_dir data/DFEW/clean_split

Writes the report (label_file, line, clip, label, reason, bad_frames) and, with --clean_dir,
copies of the CSVs without the bad clips. Exit status 1 when a bad clip was found.
"""
import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: import datasets
from datasets.build import DATASETS, dataset_spec, is_image_dataset
from datasets.check import check_annotations


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_path", required=True, help="data root the CSV clip paths are relative to")
    p.add_argument("--label_path", required=True, nargs="+", help="annotation CSV(s)")
    p.add_argument("--data_set", default="DFEW", choices=sorted(DATASETS) + ["FERV39k"],
                   help="decides the frame extensions and class count")
    p.add_argument("--nb_classes", default=None, type=int, help="class count (needed for FRAMES)")
    p.add_argument("--workers", default=os.cpu_count(), type=int, help="decoding processes")
    p.add_argument("--report", default="bad_clips.csv", help="CSV of bad clips to write")
    p.add_argument("--clean_dir", default=None, help="also write the CSVs without the bad clips here")
    p.add_argument("--print_freq", default=None, type=int, help="progress line every N clips (default: 5%%)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        _, extensions, nb_classes = dataset_spec(args)
        report = check_annotations(args.label_path, args.data_path, nb_classes, extensions, args.workers,
                                   args.report, args.clean_dir, args.print_freq, images=is_image_dataset(args.data_set))
    except ValueError as error:
        sys.exit(f"error: {error}")
    return 1 if report else 0


if __name__ == "__main__":
    sys.exit(main())
