"""Training data sets (the FRAMES layout) from raw labelled videos, with the face crops an analysis makes
(scripts/extract_clips.py is the command line; docs/OWN_DATA.md).

Each labelled clip is a segment of a video; its faces are detected, tracked and cropped by
inference.segment.SegmentFaces, as in an analysis; the clip keeps its main face track (the most detections, then
the largest face), sampled with `sampling` {"mode": "spread", "frames": N} (N crops spread over the track, as
DFEW's clip_224x224_16f) or {"mode": "fps", "fps": R} (every frame, resampled to R per second, as FERV39K and
MAFW). Writes into the output folder: clips/<clip>/00001.png ..., classes.txt, splits/train_set_K.csv and
test_set_K.csv, clips.csv, report.csv (every clip skipped, or cut from a video showing several people, with the
reason), dataset.json, and extraction.json and records/ (a rerun skips the clips done before).
"""
import csv
import functools
import hashlib
import json
import math
import os
import re
import shutil
import statistics
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from datasets.annotations import csv_rows
from datasets.description import CLASSES_FILE, DESCRIPTION_FILE, parse_class_names
from utils.device import DeviceError, choose_device
from utils.distributed import barrier, get_rank, get_world_size, init_distributed_mode
from utils.files import (
    changed_settings,
    record_settings,
    remove_staged_folders,
    staged_folder,
    write_csv_atomically,
    write_json_atomically,
    write_text_atomically,
)
from utils.progress import ProgressLogger

from .corpus import shares
from .decode import VideoError, VideoReader, probe_video
from .detectors import build_detector
from .face_flags import detector_name
from .pipeline import Options
from .segment import SegmentFaces
from .windows import Sample, TrackWindows, WindowPolicy

SETTINGS_FILE = "extraction.json"
CLIP_COLUMNS = ("clip", "video", "start_s", "end_s", "label", "group", "frames", "seconds", "face_tracks")
REPORT_COLUMNS = ("line", "video", "start_s", "end_s", "label", "group", "clip", "status", "reason")


class ExtractionError(ValueError):
    """Bad input (labels CSV, options); the one-line message names the file and line or the value."""


@dataclass(frozen=True)
class LabelledClip:
    line: int
    video: str  # absolute path
    label: str
    start: float  # seconds
    end: float  # math.inf: to the video's end
    group: str | None
    clip_id: str = ""

    def row(self):
        whole = self.end == math.inf
        return dict(video=self.video, start_s="" if whole else self.start, end_s="" if whole else self.end,
                    label=self.label, group=self.group or "")


def _seconds(text, name, where):
    try:
        value = float(text)
    except ValueError:
        raise ExtractionError(f"{where}: {name} {text!r} is not a number of seconds") from None
    if not (math.isfinite(value) and value >= 0):
        raise ExtractionError(f"{where}: {name} {text!r} must be a finite number of seconds >= 0")
    return value


def read_labels(path, video_root, group_column):
    """The labelled clips of a labels CSV, each with its clip id; ExtractionError naming file:line."""
    if not os.path.isfile(path):
        raise ExtractionError(f"labels file not found: {path}")
    try:
        rows = csv_rows(path)
    except (UnicodeDecodeError, csv.Error) as error:
        raise ExtractionError(f"{path}: not a CSV text file (UTF-8): {error}") from None
    if not rows:
        raise ExtractionError(f"{path}: empty; expected a header (video,label[,start_s,end_s][,{group_column}]) "
                              "and a row per clip")
    header_line, header = rows[0]
    known = ("video", "label", "start_s", "end_s", group_column)
    unknown = [name for name in header if name not in known]
    if unknown or "video" not in header or "label" not in header or len(set(header)) != len(header):
        raise ExtractionError(f"{path}:{header_line}: header {','.join(header)!r}: expected the columns video, "
                              f"label and optionally start_s, end_s, {group_column} (--group_column), each once")
    if ("start_s" in header) != ("end_s" in header):
        raise ExtractionError(f"{path}:{header_line}: give both start_s and end_s, or neither")
    clips = []
    for line, fields in rows[1:]:
        where = f"{path}:{line}"
        if len(fields) > len(header):
            raise ExtractionError(f"{where}: {len(fields)} fields for the {len(header)} columns of the header")
        row = dict(zip(header, fields + [""] * (len(header) - len(fields))))
        if not row["video"] or not row["label"]:
            raise ExtractionError(f"{where}: the video and the label must not be empty")
        start, end = 0.0, math.inf
        if row.get("start_s") or row.get("end_s"):
            start, end = _seconds(row["start_s"], "start_s", where), _seconds(row["end_s"], "end_s", where)
            if end <= start:
                raise ExtractionError(f"{where}: end_s {row['end_s']} must be after start_s {row['start_s']}")
        if group_column in header and not row[group_column]:
            raise ExtractionError(f"{where}: empty {group_column} (every clip needs its group)")
        video = os.path.abspath(os.path.join(video_root, row["video"]))
        clips.append(LabelledClip(line, video, row["label"], start, end, row.get(group_column)))
    if not clips:
        raise ExtractionError(f"{path}: a header but no clip rows")
    return _with_clip_ids(path, clips)


def _with_clip_ids(path, clips):
    """Clip ids: the video's file name (with a hash of its path when two videos share it), and the segment in ms."""
    def base(clip):
        return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(clip.video).stem).strip(".") or "video"

    paths_of_base = {}
    for clip in clips:
        paths_of_base.setdefault(base(clip), set()).add(clip.video)
    named, first_line = [], {}
    for clip in clips:
        name = base(clip)
        if len(paths_of_base[name]) > 1:
            name += "-" + hashlib.sha1(clip.video.encode()).hexdigest()[:8]
        if clip.end != math.inf:
            name += f"_{round(clip.start * 1000)}-{round(clip.end * 1000)}ms"
        if name in first_line:
            raise ExtractionError(f"{path}:{clip.line}: the same clip (video and segment) as line {first_line[name]}")
        first_line[name] = clip.line
        named.append(LabelledClip(**{**asdict(clip), "clip_id": name}))
    return named


def class_names(path, clips, given):
    """The class names in label order: `given` (checked against the CSV `path`), else the CSV's labels sorted."""
    if given is None:
        labels = {clip.label for clip in clips}
        return sorted(labels, key=lambda name: (0, int(name), "") if name.isdigit() else (1, 0, name))
    try:
        names = parse_class_names(given)
    except (OSError, ValueError) as error:
        raise ExtractionError(str(error)) from None
    for clip in clips:
        if clip.label not in names:
            raise ExtractionError(f"{path}:{clip.line}: label {clip.label!r} is not one of --class_names {given}")
    return names


@dataclass
class _Decoded:
    """How far the decoding of a clip's segment got."""
    frames: int = 0  # frames inside the segment
    reached_end: bool = False  # decoding stopped at the segment's end (the video goes on)
    last_time: float = 0.0  # else: the video's last frame time
    ended_early: str = ""  # and why it stopped before its end, if it did (inference.decode.VideoReader)


def _describe_tracks(spans):
    return ", ".join(f"track {k + 1}: {span.detections} detections, mean face {span.mean_box_width:.0f} px wide"
                     for k, span in enumerate(spans))


class Extractor:
    """Detector, tracker settings and output folders of an extraction; `video(path, clips)` extracts the clips
    of one video and returns their records."""

    def __init__(self, args, output):
        self.output, self.sampling, self.size = output, args.sampling, args.short_side_size
        self.several_people = args.several_people
        self.detector_name = detector_name(args)
        self.options = Options(margin=args.margin, iou_threshold=args.iou_threshold,
                               max_gap_seconds=args.max_gap_seconds, break_seconds=args.break_seconds,
                               min_track_frames=args.min_track_frames)
        self.options.check()
        self.detector = build_detector(self.detector_name, args.detector_model, args.min_face, args.device)

    def video(self, path, clips):
        """{clip id: record} of `clips` (all of the video `path`); a video that cannot be read fails them all."""
        try:
            info = probe_video(path)
        except VideoError as error:
            return {c.clip_id: dict(status="failed", reason=f"unreadable video: {error}") for c in clips}
        records = {}
        for clip in clips:
            try:
                records[clip.clip_id] = self._clip(info, clip)
            except (VideoError, cv2.error) as error:
                records[clip.clip_id] = dict(status="failed", reason=f"unreadable video: {error}")
        return records

    def _clip(self, info, clip):
        """The record of one clip; its frames (the main face track's crops, sampled) go to clips/<clip id>."""
        clips_dir = os.path.join(self.output, "clips")
        work = tempfile.mkdtemp(prefix=f".{clip.clip_id}.partial-", dir=clips_dir)  # every track's crops
        try:
            decoded = _Decoded()
            spread = self.sampling["mode"] == "spread"
            policy = None if spread else WindowPolicy(1, 1 / self.sampling["fps"], 1 / self.sampling["fps"],
                                                      "extraction: consecutive frames")
            faces = SegmentFaces.with_options(self._segment_frames(info, clip, decoded), self.detector,
                                              self.detector_name, self.options, policy, self.size, scheduled=False)
            detections, written = {}, {}  # spread: track serial -> [(time, frame index, box)]; fps: windows written
            for step in faces:
                for observation, sample in zip(step.observations or (), step.samples):
                    if spread:
                        serial = observation.track.serial
                        _write_crop(os.path.join(work, str(serial), f"{step.frame.index}.png"), sample().crop)
                        detections.setdefault(serial, []).append((step.frame.time, step.frame.index, observation.box))
                for window in step.windows:  # fps: one crop each
                    written[window.track_id] = written.get(window.track_id, 0) + 1
                    _write_crop(os.path.join(work, str(window.track_id), f"{written[window.track_id]:05d}.png"),
                                window.crops[0])
            record, main = self._choose(clip, info, decoded, faces)
            if main is None:
                return record
            final = os.path.join(clips_dir, clip.clip_id)
            shutil.rmtree(final, ignore_errors=True)  # a folder of a run killed before its record was written
            with staged_folder(final) as staging:
                if spread:
                    record["frames"] = self._spread(work, main, detections[main], staging)
                else:
                    track_id = faces.serial_to_id[main]
                    for k in range(1, written[track_id] + 1):
                        os.rename(os.path.join(work, str(track_id), f"{k:05d}.png"),
                                  os.path.join(staging, f"{k:05d}.png"))
                    record["frames"] = written[track_id]
            return record
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _segment_frames(self, info, clip, decoded):
        """The frames of the clip's segment, counted in `decoded`, which says at the end how far decoding got."""
        reader = VideoReader(info)
        frames = iter(reader)
        for frame in frames:
            if frame.time >= clip.end:
                frames.close()
                decoded.reached_end = True
                return
            if frame.time >= clip.start:
                decoded.frames += 1
                yield frame
        decoded.last_time = reader.last_time if reader.last_time is not None else 0.0
        decoded.ended_early = reader.ended_early

    def _choose(self, clip, info, decoded, faces):
        """(record, the serial of the track whose crops make the clip); serial None when the clip is skipped."""
        step = 1 / info.fps if info.fps else 1 / 30
        if not decoded.reached_end:
            last_time = decoded.last_time
            tolerance = step + 1e-3  # a segment may end at the video's duration: one frame after the last
            if decoded.ended_early and (decoded.frames == 0 or clip.end > last_time + tolerance):
                return dict(status="failed", reason=f"unreadable video: it stopped decoding at {last_time:.2f} s "
                                                     "(truncated or damaged)"), None
            if decoded.frames == 0 or clip.end != math.inf and clip.end > last_time + tolerance:
                return dict(status="skipped", reason=f"segment outside the video: the video's last frame is at "
                                                     f"{last_time:.3f} s"), None
        if decoded.frames == 0:
            return dict(status="skipped", reason="no frame of the video lies in the segment"), None
        # the main face first: the most detections, then the largest (mean box area)
        confirmed = sorted(faces.serial_to_id, key=lambda s: (-faces.spans[s].detections,
                                                              -faces.spans[s].mean_box_area))
        if not confirmed:
            return dict(status="skipped", reason=f"no face found in its {decoded.frames} frames"), None
        spans = [faces.spans[s] for s in confirmed]
        record = dict(status="ok", face_tracks=len(spans), seconds=round(spans[0].last_time - spans[0].first_time, 4))
        if len(spans) > 1:
            if self.several_people == "skip":
                return dict(status="skipped", reason=f"several people ({_describe_tracks(spans)}); "
                                                     "--several_people skip"), None
            record["note"] = (f"several people ({_describe_tracks(spans)}): kept track 1, the face with the most "
                              "detections (then the largest)")
        return record, confirmed[0]

    def _spread(self, work, serial, detections, staging):
        """Write the --frames crops spread over the track's detections `detections`, chosen as the analysis
        chooses a window's samples (the detection nearest to each time of the grid); returns their number."""
        frames = self.sampling["frames"]
        step = (detections[-1][0] - detections[0][0]) / (frames - 1) or 1.0  # one detection: it, repeated
        windows, cut = TrackWindows(WindowPolicy(frames, step, frames * step, "extraction: spread")), []

        def staged(time, index, box):
            crop = cv2.imread(os.path.join(work, str(serial), f"{index}.png"), cv2.IMREAD_COLOR)
            return Sample(time, index, box, cv2.cvtColor(crop, cv2.COLOR_BGR2RGB))

        for time, index, box in detections:
            windows.offer(time, functools.partial(staged, time, index, box))
            cut += windows.ready(serial)
        cut += windows.close(serial)
        crops = [crop for window in cut for crop in window.crops]
        for position, crop in enumerate(crops, start=1):
            _write_crop(os.path.join(staging, f"{position:05d}.png"), crop)
        return len(crops)


def _write_crop(path, rgb):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if not cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"OpenCV cannot write {path}")


def check_groups(groups, folds, test_groups, which):
    """The groups of `which` clips allow the split asked for; ExtractionError otherwise."""
    listed = ", ".join(sorted(g for g in groups if g is not None))
    if test_groups:
        if None in groups:
            raise ExtractionError("--test_groups needs a group column in the labels CSV (--group_column)")
        missing = sorted(set(test_groups) - groups)
        if missing:
            raise ExtractionError(f"--test_groups: no {which} clip of group(s) {', '.join(missing)} (groups: "
                                  f"{listed})")
    elif None not in groups and len(groups) < folds:
        raise ExtractionError(f"--folds {folds} needs at least {folds} groups; the {which} clips have {len(groups)} "
                              f"({listed}): pass fewer --folds or --test_groups")


def make_splits(clips, labels, folds, test_groups, seed):
    """(train indices, test indices) per split of the extracted `clips`: the clips of `test_groups` against
    the rest, else `folds` folds stratified by label, kept apart by group when the clips have groups."""
    groups = [c.group for c in clips]
    check_groups(set(groups), folds, test_groups, "extracted")
    if test_groups:
        return [([i for i, g in enumerate(groups) if g not in test_groups],
                 [i for i, g in enumerate(groups) if g in test_groups])]
    indices = np.arange(len(clips))
    try:
        if groups[0] is None:
            splitter = StratifiedKFold(folds, shuffle=True, random_state=seed).split(indices, labels)
        else:
            splitter = StratifiedGroupKFold(folds, shuffle=True, random_state=seed).split(indices, labels, groups)
        return [(sorted(train), sorted(test)) for train, test in splitter]
    except ValueError as error:
        raise ExtractionError(f"--folds {folds}: {error}") from None


def write_data_set(args, clips, records, names):
    """classes.txt, clips.csv, report.csv, splits/ and dataset.json from the records of every clip."""
    out = args.output
    extracted, report = [], []
    for clip in clips:
        record = records[clip.clip_id]
        if record["status"] == "ok":
            extracted.append(clip)
        if record["status"] != "ok" or "note" in record:
            report.append(dict(line=clip.line, **clip.row(), clip=clip.clip_id,
                               status="kept one face" if record["status"] == "ok" else record["status"],
                               reason=record.get("reason") or record["note"]))
    write_csv_atomically(os.path.join(out, "report.csv"), REPORT_COLUMNS, report)
    if not extracted:
        raise ExtractionError(f"no clip could be extracted: see {os.path.join(out, 'report.csv')}")
    write_text_atomically(os.path.join(out, CLASSES_FILE), "".join(f"{name}\n" for name in names))
    write_csv_atomically(os.path.join(out, "clips.csv"), CLIP_COLUMNS, (
        dict(clip=f"clips/{c.clip_id}", **c.row(), frames=records[c.clip_id]["frames"],
             seconds=records[c.clip_id]["seconds"], face_tracks=records[c.clip_id]["face_tracks"]) for c in extracted))
    labels = [names.index(c.label) for c in extracted]
    splits = make_splits(extracted, labels, args.folds, args.test_groups, args.seed)
    shutil.rmtree(os.path.join(out, "splits"), ignore_errors=True)
    for k, (train, test) in enumerate(splits, start=1):
        for split, indices in (("train", train), ("test", test)):
            write_csv_atomically(os.path.join(out, "splits", f"{split}_set_{k}.csv"), ("video_name", "label"),
                                 ([f"clips/{extracted[i].clip_id}", labels[i]] for i in indices))
    seconds = [records[c.clip_id]["seconds"] for c in extracted]
    write_json_atomically(os.path.join(out, DESCRIPTION_FILE), dict(
        sampling=args.sampling, median_clip_seconds=round(statistics.median(seconds), 4), class_names=names,
        clips=len(extracted), not_extracted=sum(r["status"] != "kept one face" for r in report),
        class_counts={n: labels.count(k) for k, n in enumerate(names)},
        splits=[dict(train=len(train), test=len(test)) for train, test in splits],
        split_by="test_groups" if args.test_groups else ("group" if extracted[0].group else "clip"),
        labels=os.path.abspath(args.labels), settings=settings_record(args)))
    return extracted, report, splits


def settings_record(args):
    """What determines the crops: a rerun into the same folder must use the same."""
    return dict(sampling=args.sampling, short_side_size=args.short_side_size,
                detector=detector_name(args), detector_model=args.detector_model,
                min_face=args.min_face, margin=args.margin, iou_threshold=args.iou_threshold,
                max_gap_seconds=args.max_gap_seconds, break_seconds=args.break_seconds,
                min_track_frames=args.min_track_frames, several_people=args.several_people)


def prepare_output(args):
    """Rank 0 records the settings (or refuses other settings than the first run's) and clears what a killed run
    left; then every rank checks the settings."""
    path = os.path.join(args.output, SETTINGS_FILE)
    if get_rank() == 0:
        if args.overwrite:
            for name in ("clips", "records"):
                shutil.rmtree(os.path.join(args.output, name), ignore_errors=True)
        os.makedirs(os.path.join(args.output, "clips"), exist_ok=True)
        os.makedirs(os.path.join(args.output, "records"), exist_ok=True)
        remove_staged_folders(os.path.join(args.output, "clips"))
        record_settings(path, settings_record(args), args.overwrite)
    barrier()
    if changed := changed_settings(path, settings_record(args)):
        raise ExtractionError(f"{args.output} holds clips extracted with other settings ({', '.join(changed)} "
                              f"differ; see its {SETTINGS_FILE}): pass --overwrite to redo them, or another --output")


def record_path(output, clip):
    return os.path.join(output, "records", f"{clip.clip_id}.json")


def read_record(output, clip):
    """The record of a clip extracted (or skipped) before, else None; a failed clip (unreadable video) is tried
    again."""
    path = record_path(output, clip)
    if not os.path.isfile(path):
        return None
    record = json.loads(Path(path).read_text())
    return None if record["status"] == "failed" else record


def my_share(by_video):
    """This process's videos (a share balanced by file size, as in corpus mode); missing files go to rank 0."""
    existing = [v for v in by_video if os.path.isfile(v)]
    mine = [existing[i] for i in shares(existing, get_world_size())[get_rank()]]
    return mine + ([v for v in by_video if not os.path.isfile(v)] if get_rank() == 0 else [])


def extract(args, extractor, by_video):
    """Extract this process's share of the clips not done before, yielding a record per clip."""
    for video in my_share(by_video):
        pending = [c for c in by_video[video] if read_record(args.output, c) is None]
        if not pending:
            continue
        records = extractor.video(video, pending)
        for clip in pending:
            write_json_atomically(record_path(args.output, clip), records[clip.clip_id])
            yield records[clip.clip_id]


def extract_data_set(args):
    """The whole extraction (scripts/extract_clips.py); under torchrun each process extracts a share of the
    videos. Returns 0; ExtractionError or inference.AnalysisError (the face detector) on bad input."""
    clips = read_labels(args.labels, args.video_root or os.path.dirname(os.path.abspath(args.labels)),
                        args.group_column)
    names = class_names(args.labels, clips, args.class_names)
    check_groups({c.group for c in clips}, args.folds, args.test_groups, "labelled")
    try:
        args.device = choose_device(args.device)
    except DeviceError as error:
        raise ExtractionError(str(error)) from None
    init_distributed_mode(args)
    rank = get_rank()
    prepare_output(args)
    extractor = Extractor(args, args.output)
    by_video = {}
    for clip in clips:
        by_video.setdefault(clip.video, []).append(clip)
    todo = sum(read_record(args.output, c) is None for v in my_share(by_video) for c in by_video[v])
    print(f"[rank {rank}] {todo} clips to extract, {len(clips)} in {args.labels} ({len(by_video)} videos); "
          f"classes {', '.join(names)}", file=sys.stderr, flush=True)
    progress = ProgressLogger(f"[rank {rank}] Clips:", args.print_freq, unit="clips", stream=sys.stderr)
    for _ in progress.log_every(extract(args, extractor, by_video), todo):
        pass
    barrier()
    if rank == 0:
        records = {c.clip_id: json.loads(Path(record_path(args.output, c)).read_text()) for c in clips}
        extracted, report, splits = write_data_set(args, clips, records, names)
        failed = sum(r["status"] != "kept one face" for r in report)
        print(f"{len(extracted)} of {len(clips)} clips extracted into {args.output}/clips ({failed} not extracted, "
              f"{len(report) - failed} kept one face of several: see report.csv); {len(splits)} split(s) in "
              f"{args.output}/splits; classes.txt: {', '.join(names)}", file=sys.stderr)
    barrier()
    return 0


