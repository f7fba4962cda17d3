"""Up-front data check: decode every frame listed in annotation CSVs once, in parallel processes.

Shared by `scripts/check_data.py` and `main_finetune.py --check_data`. Frames are decoded exactly
as training decodes them, so a clip that passes cannot fail at run time. Writes a CSV of bad clips
(invalid rows and clips with undecodable or mismatched frames, with the reason and every bad
frame) and, optionally, cleaned copies of the CSVs without them.
"""
import multiprocessing
import os
import time
from pathlib import Path

from utils.files import write_csv_atomically
from utils.progress import ProgressLogger

from .annotations import Clip, scan_annotations
from .build import dataset_spec, is_image_dataset
from .frames import decode_frame

REPORT_HEADER = ("label_file", "line", "clip", "label", "reason", "bad_frames")
CONSOLE_BAD_CLIPS = 20  # bad clips named on the console; the report lists all


def check_clip(clip: Clip) -> tuple[int, str, list[str]]:
    """(frames decoded, reason the clip is bad or '', names of undecodable frames)."""
    bad, first_error, sizes = [], "", set()
    for name in clip.frame_names:
        try:
            sizes.add(decode_frame(os.path.join(clip.folder, name)).shape)
        except ValueError as error:
            bad.append(str(name))
            first_error = first_error or str(error)
    if bad:
        return len(clip.frame_names), f"{len(bad)} of {len(clip.frame_names)} frames cannot be decoded; " \
                                      f"first: {first_error}", bad
    if len(sizes) > 1:
        return len(clip.frame_names), f"frames differ in size: {sorted(sizes)}", []
    return len(clip.frame_names), "", []


def _decoded(clips, workers):
    if workers <= 1:
        yield from map(check_clip, clips)
        return
    with multiprocessing.Pool(workers) as pool:
        yield from pool.imap(check_clip, clips, chunksize=4)


def check_annotations(csv_paths, data_path, nb_classes, extensions, workers=1, report_path="bad_clips.csv",
                      clean_dir=None, print_freq=None, images=False) -> list[tuple]:
    """Check every CSV in `csv_paths` (with `images`, CSVs of image files); write `report_path` (and
    cleaned CSVs under `clean_dir`, laid out as the CSVs are under their common folder). Returns the
    report rows."""
    report, cleaned, total_frames = [], {}, 0
    start = time.perf_counter()
    for csv_path in csv_paths:
        header, clips, bad_rows = scan_annotations(str(csv_path), data_path, nb_classes, extensions, images)
        report += [(csv_path, row.line, row.clip_id, "", row.reason, "") for row in bad_rows]
        progress = ProgressLogger(f"check {csv_path}:", print_freq or max(len(clips) // 20, 1))
        good = []
        for clip, (frames, reason, bad_frames) in zip(clips, progress.log_every(_decoded(clips, workers), len(clips))):
            total_frames += frames
            if reason:
                report.append((csv_path, clip.line, clip.clip_id, clip.label, reason, " ".join(bad_frames)))
            else:
                good.append((clip.clip_id, clip.label))
        cleaned[csv_path] = (header, good)
        print(f"{csv_path}: {len(good)} good clips, {len(clips) + len(bad_rows) - len(good)} bad", flush=True)
    seconds = time.perf_counter() - start
    print(f"decoded {total_frames} frames in {seconds:.1f} s with {max(workers, 1)} process(es): "
          f"{total_frames / seconds:.0f} frames/s, {total_frames / seconds / max(workers, 1):.0f} frames/s per process")
    write_csv_atomically(report_path, REPORT_HEADER, report)
    if clean_dir is not None:
        parents = [os.path.dirname(os.path.abspath(p)) for p in csv_paths]
        common = os.path.commonpath(parents)
        for csv_path, (header, rows) in cleaned.items():
            write_csv_atomically(Path(clean_dir) / os.path.relpath(os.path.abspath(csv_path), common), header, rows)
    for label_file, line, clip_id, _, reason, _ in report[:CONSOLE_BAD_CLIPS]:
        print(f"  {label_file}:{line}: clip {clip_id!r}: {reason}")
    if len(report) > CONSOLE_BAD_CLIPS:
        print(f"  and {len(report) - CONSOLE_BAD_CLIPS} more; see the report")
    print(f"{len(report)} bad clip(s); report: {report_path}")
    return report


def check_data_of_args(args) -> list[tuple]:
    """`main_finetune.py --check_data`: check the train/val/test CSVs given, with --num_workers processes."""
    _, extensions, nb_classes = dataset_spec(args)
    csv_paths = list(dict.fromkeys(p for p in (args.train_label_path, args.val_label_path, args.test_label_path) if p))
    if not csv_paths:
        raise ValueError("--check_data needs at least one of --train_label_path, --val_label_path, --test_label_path")
    report_path = os.path.join(args.output_dir or ".", "bad_clips.csv")
    return check_annotations(csv_paths, args.data_path, nb_classes, extensions, max(args.num_workers, 1), report_path,
                             images=is_image_dataset(args.data_set))
