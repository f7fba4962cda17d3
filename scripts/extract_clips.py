"""Make a training data set (the FRAMES layout) from raw labelled videos, with face crops made exactly as
predict.py makes them when it analyses a video (docs/OWN_DATA.md).

    python scripts/extract_clips.py --labels labels.csv --output data/mine --frames 16 --spread
    python scripts/extract_clips.py --labels labels.csv --output data/mine --fps 25 --test_groups P07 P08
    torchrun --standalone --nproc_per_node 4 scripts/extract_clips.py --labels labels.csv --output data/mine --fps 25

labels.csv: a header, then one labelled clip per row. Columns: `video` (relative to --video_root, default the
CSV's folder), `label` (a class name), optionally `start_s` and `end_s` (a segment of a longer recording: the
frames from start_s up to, not including, end_s; empty: the whole video) and the group column (--group_column,
default `group`: the person or session, so that folds keep groups apart).

Each clip's video is decoded, its faces detected, tracked and cropped by the `inference` package as in an
analysis; the clip keeps its main face track (the most detections, then the largest face) and its crops are
sampled with --frames N --spread (N frames spread over the track, as DFEW's clip_224x224_16f) or --fps R (every
frame, resampled to R per second, as FERV39K and MAFW). Writes into --output: clips/<clip>/00001.png ...,
classes.txt, splits/train_set_K.csv and test_set_K.csv, clips.csv, report.csv (every clip skipped, or cut from a
video showing several people, with the reason), dataset.json. A bad video is skipped and reported. Resumable:
run the same command again and the finished clips are skipped.
"""
import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: import the project's packages
from inference.extraction import ExtractionError, extract_data_set
from inference.face_flags import add_face_arguments
from inference.faces import DetectorError
from utils.distributed import is_distributed
from utils.stop import EXIT_STOPPED, stop_on_signals

EXIT_BAD_INPUT, EXIT_BAD_DETECTOR = 2, 5  # as predict.py's


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--labels", required=True, help="the labels CSV (see above)")
    p.add_argument("--video_root", default=None, help="folder the CSV's video paths are relative to (default: "
                                                      "the CSV's folder)")
    p.add_argument("--output", required=True, help="the data set folder (FRAMES --data_path)")
    p.add_argument("--group_column", default="group", help="the CSV column naming each clip's person or session")
    p.add_argument("--class_names", default=None,
                   help="the class names in label order: a classes file (one name per line) or the names separated "
                        "by commas (default: the CSV's labels, sorted)")
    g = p.add_argument_group("sampling (--frames N --spread, or --fps R)")
    g.add_argument("--frames", type=int, default=None, help="with --spread: frames per clip")
    g.add_argument("--spread", action="store_true",
                   help="the --frames spread uniformly over the clip's face track, first to last (DFEW: 16)")
    g.add_argument("--fps", type=float, default=None,
                   help="every frame of the clip's face track, resampled to this rate (FERV39K, MAFW: the videos' "
                        "own rate, e.g. 25)")
    p.add_argument("--short_side_size", default=224, type=int,
                   help="crop side in pixels: the --short_side_size the model trains with (224 for s2d_base)")
    add_face_arguments(p)
    p.add_argument("--several_people", choices=("keep", "skip"), default="keep",
                   help="a clip showing several faces: keep the main one (the most detections, then the largest) "
                        "and report it, or skip the clip")
    g = p.add_argument_group("splits (the extracted clips)")
    g.add_argument("--folds", default=5, type=int,
                   help="k folds stratified by label, kept apart by group when the CSV has the group column")
    g.add_argument("--test_groups", nargs="+", default=None,
                   help="instead of folds: one split testing on the clips of these groups")
    g.add_argument("--seed", default=0, type=int, help="of the folds' shuffling")
    g = p.add_argument_group("run")
    g.add_argument("--device", default=None, help="of the face detector: cuda or cpu (default: cuda when available)")
    g.add_argument("--overwrite", action="store_true", help="redo the clips extracted before")
    g.add_argument("--print_freq", default=10, type=int, help="progress line every N clips")
    args = p.parse_args(argv)
    if (args.frames is not None) == (args.fps is not None) or (args.frames is not None) != args.spread:
        p.error("choose the sampling: --frames N --spread (N frames spread over each clip) or --fps R")
    if args.frames is not None and args.frames < 2 or args.fps is not None and not args.fps > 0:
        p.error("--frames must be at least 2, --fps positive")
    if args.short_side_size < 8 or args.folds < 2 or args.print_freq < 1:
        p.error("--short_side_size must be at least 8, --folds at least 2, --print_freq positive")
    args.sampling = dict(mode="spread", frames=args.frames) if args.spread else dict(mode="fps", fps=args.fps)
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        with stop_on_signals():  # Ctrl-C or SIGTERM: honoured between frames; a clip folder appears only complete
            return extract_data_set(args)
    except KeyboardInterrupt:
        print("interrupted: nothing half-written is left", file=sys.stderr)
        return EXIT_STOPPED
    except DetectorError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_DETECTOR
    except (ExtractionError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        if is_distributed():
            torch.distributed.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
