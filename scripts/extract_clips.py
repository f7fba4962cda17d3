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
import csv
import hashlib
import json
import math
import os
import re
import shutil
import statistics
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: import the project's packages
from datasets.annotations import csv_rows
from datasets.description import CLASSES_FILE, DESCRIPTION_FILE
from inference import AnalysisError, Options
from inference.align import face_crop
from inference.corpus import shares
from inference.decode import VideoError, VideoReader, probe_video
from inference.pipeline import build_detector, crop_margin, face_tracker
from inference.windows import Sample, TrackWindows, WindowPolicy
from predict import add_face_arguments
from utils.device import DeviceError, choose_device
from utils.distributed import barrier, get_rank, get_world_size, init_distributed_mode, is_distributed
from utils.files import write_csv_atomically, write_json_atomically, write_text_atomically
from utils.progress import ProgressLogger
from utils.stop import EXIT_STOPPED, stop_on_signals

SETTINGS_FILE = "extraction.json"
CLIP_COLUMNS = ("clip", "video", "start_s", "end_s", "label", "group", "frames", "seconds", "face_tracks")
REPORT_COLUMNS = ("line", "video", "start_s", "end_s", "label", "group", "clip", "status", "reason")
NO_PIXELS = np.zeros(0, np.uint8)  # samples are chosen before any crop is made


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
    names = [name.strip() for name in given.split(",")]
    if not all(names) or len(set(names)) != len(names):
        raise ExtractionError(f"--classes {given!r}: expected distinct non-empty names separated by commas")
    for clip in clips:
        if clip.label not in names:
            raise ExtractionError(f"{path}:{clip.line}: label {clip.label!r} is not one of --classes {given}")
    return names


@dataclass
class Observed:
    """One detection of a face track."""
    time: float
    frame: int
    box: np.ndarray
    landmarks: np.ndarray | None
    resumed: bool  # the first after an absence longer than --break_seconds


@dataclass
class ClipFaces:
    """The face tracks of one labelled clip, filled as the video is decoded."""
    clip: LabelledClip
    tracker: object
    frames: int = 0
    tracks: dict = field(default_factory=dict)  # track serial -> (Track, [Observed])

    def update(self, frame, faces):
        self.frames += 1
        observations, _ = self.tracker.update(frame.time, faces.boxes, faces.landmarks)
        for o in observations:
            self.tracks.setdefault(o.track.serial, (o.track, []))[1].append(
                Observed(frame.time, frame.index, o.box, o.landmarks, o.resumed))

    def confirmed(self):
        """The confirmed tracks' detections, the main face first: most detections, then largest (mean box area)."""
        self.tracker.finish()
        tracks = [observed for track, observed in self.tracks.values() if track.track_id is not None]
        return sorted(tracks, key=lambda o: (-len(o), -np.mean([d.box[2] * d.box[3] for d in o])))


def sampled_frames(observed, sampling):
    """The detections the clip's frames are cut from, in order, chosen as the analysis chooses a window's
    samples (inference.windows.TrackWindows: the detection nearest to each time of the track's grid)."""
    if sampling["mode"] == "spread":
        frames = sampling["frames"]
        step = (observed[-1].time - observed[0].time) / (frames - 1) or 1.0  # one detection: it, repeated
        policy = WindowPolicy(frames, step, frames * step, "extraction")
    else:
        policy = WindowPolicy(1, 1 / sampling["fps"], 1 / sampling["fps"], "extraction")
    by_frame = {o.frame: o for o in observed}
    windows, cut = TrackWindows(policy), []
    for o in observed:
        if o.resumed and sampling["mode"] == "fps":  # as in the analysis: the grid starts again after an absence
            cut += windows.close(1)
        windows.offer(o.time, lambda o=o: Sample(o.time, o.frame, o.box, NO_PIXELS))
        cut += windows.ready(1)
    cut += windows.close(1)
    return [by_frame[int(index)] for window in cut for index in window.frame_indices]


def _describe_tracks(tracks):
    return ", ".join(f"track {k + 1}: {len(o)} detections, mean face {np.mean([d.box[2] for d in o]):.0f} px wide"
                     for k, o in enumerate(tracks))


class Extractor:
    """Detector, tracker settings and output folders of an extraction; `video(path, clips)` extracts the clips
    of one video and returns their records."""

    def __init__(self, args, output):
        self.output, self.sampling, self.size = output, args.sampling, args.short_side_size
        self.several_people = args.several_people
        self.detector_name = "none" if args.no_detect else args.detector
        self.options = Options(margin=args.margin, iou_threshold=args.iou_threshold,
                               max_gap_seconds=args.max_gap_seconds, break_seconds=args.break_seconds,
                               min_track_frames=args.min_track_frames)
        self.options.check()
        self.margin = crop_margin(self.options, self.detector_name)
        self.detector = build_detector(self.detector_name, args.detector_model, args.min_face, args.device)

    def video(self, path, clips):
        """{clip id: record} of `clips` (all of the video `path`); a video that cannot be read skips them all."""
        try:
            info = probe_video(path)
            faces, end = self._detect_and_track(info, clips)
            records, needed = {}, {}
            for state in faces:
                record, frames = self._choose(state, info, end)
                records[state.clip.clip_id] = record
                if frames:
                    for position, o in enumerate(frames):
                        needed.setdefault(o.frame, []).append((state.clip.clip_id, position, o))
            self._crop(info, needed, records)
        except (VideoError, cv2.error) as error:
            return {c.clip_id: dict(status="failed", reason=f"unreadable video: {error}") for c in clips}
        return records

    def _detect_and_track(self, info, clips):
        """Decode up to the last clip's end, detecting faces in the frames some clip holds; (ClipFaces per clip,
        the end: None when decoding stopped at the last clip's end, else (last frame time, ended early))."""
        states = [ClipFaces(c, face_tracker(self.options, self.detector_name)) for c in clips]
        stop = max(c.end for c in clips)
        reader = VideoReader(info)
        frames = iter(reader)
        for frame in frames:
            if frame.time >= stop:
                frames.close()
                return states, None
            inside = [s for s in states if s.clip.start <= frame.time < s.clip.end]
            if inside:
                faces = self.detector(frame.image)
                for state in inside:
                    state.update(frame, faces)
        return states, (reader.last_time if reader.last_time is not None else 0.0, reader.ended_early)

    def _choose(self, state, info, end):
        """(record, the detections to crop, in order) of a clip; no detections when it is skipped."""
        clip, step = state.clip, 1 / info.fps if info.fps else 1 / 30
        if end is not None:
            last_time, ended_early = end
            tolerance = step + 1e-3  # a segment may end at the video's duration: one frame after the last
            if ended_early and (state.frames == 0 or clip.end > last_time + tolerance):
                return dict(status="failed", reason=f"unreadable video: it stopped decoding at {last_time:.2f} s "
                                                     "(truncated or damaged)"), None
            if state.frames == 0 or clip.end != math.inf and clip.end > last_time + tolerance:
                return dict(status="skipped", reason=f"segment outside the video: the video's last frame is at "
                                                     f"{last_time:.3f} s"), None
        if state.frames == 0:
            return dict(status="skipped", reason="no frame of the video lies in the segment"), None
        tracks = state.confirmed()
        if not tracks:
            return dict(status="skipped", reason=f"no face found in its {state.frames} frames"), None
        record = dict(status="ok", face_tracks=len(tracks), seconds=round(tracks[0][-1].time - tracks[0][0].time, 4))
        if len(tracks) > 1:
            if self.several_people == "skip":
                return dict(status="skipped", reason=f"several people ({_describe_tracks(tracks)}); "
                                                     "--several_people skip"), None
            record["note"] = (f"several people ({_describe_tracks(tracks)}): kept track 1, the face with the most "
                              "detections (then the largest)")
        frames = sampled_frames(tracks[0], self.sampling)
        record["frames"] = len(frames)
        return record, frames

    def _crop(self, info, needed, records):
        """Decode again, crop the chosen detections of every clip into its staging folder, then move the folders
        into place (a clip folder appears only complete)."""
        staging = {clip_id: os.path.join(self.output, "clips", f".{clip_id}.partial")
                   for clip_id, r in records.items() if r["status"] == "ok"}
        for folder in staging.values():
            shutil.rmtree(folder, ignore_errors=True)
            os.makedirs(folder)
        written = dict.fromkeys(staging, 0)
        last = max(needed, default=-1)
        try:
            for frame in VideoReader(info):
                if frame.index > last:
                    break
                for clip_id, position, o in needed.get(frame.index, ()):
                    crop = face_crop(frame.image, o.box, o.landmarks, self.size, self.margin)[0]
                    path = os.path.join(staging[clip_id], f"{position + 1:05d}.png")
                    if not cv2.imwrite(path, crop):
                        raise OSError(f"OpenCV cannot write {path}")
                    written[clip_id] += 1
        except BaseException:
            for folder in staging.values():
                shutil.rmtree(folder, ignore_errors=True)
            raise
        for clip_id, folder in staging.items():
            if written[clip_id] != records[clip_id]["frames"]:
                shutil.rmtree(folder)
                records[clip_id] = dict(status="failed", reason="unreadable video: a second decoding gave other "
                                                                 "frames than the first")
                continue
            final = os.path.join(self.output, "clips", clip_id)
            shutil.rmtree(final, ignore_errors=True)  # a folder of a run killed before its record was written
            os.rename(folder, final)


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
                detector="none" if args.no_detect else args.detector, detector_model=args.detector_model,
                min_face=args.min_face, margin=args.margin, iou_threshold=args.iou_threshold,
                max_gap_seconds=args.max_gap_seconds, break_seconds=args.break_seconds,
                min_track_frames=args.min_track_frames, several_people=args.several_people)


def prepare_output(args):
    """Rank 0 records the settings (or refuses other settings than the first run's) and clears what a killed run
    left; then every rank reads the settings."""
    path = os.path.join(args.output, SETTINGS_FILE)
    if get_rank() == 0:
        if args.overwrite:
            for name in ("clips", "records"):
                shutil.rmtree(os.path.join(args.output, name), ignore_errors=True)
        os.makedirs(os.path.join(args.output, "clips"), exist_ok=True)
        os.makedirs(os.path.join(args.output, "records"), exist_ok=True)
        for stale in Path(args.output, "clips").glob(".*.partial"):
            shutil.rmtree(stale)
        if args.overwrite or not os.path.exists(path):
            write_json_atomically(path, settings_record(args), sort_keys=True)
    barrier()
    recorded = json.loads(Path(path).read_text())
    if recorded != settings_record(args):
        changed = sorted(k for k in recorded if recorded[k] != settings_record(args).get(k))
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


def run(args):
    clips = read_labels(args.labels, args.video_root or os.path.dirname(os.path.abspath(args.labels)),
                        args.group_column)
    names = class_names(args.labels, clips, args.classes)
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


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--labels", required=True, help="the labels CSV (see above)")
    p.add_argument("--video_root", default=None, help="folder the CSV's video paths are relative to (default: "
                                                      "the CSV's folder)")
    p.add_argument("--output", required=True, help="the data set folder (FRAMES --data_path)")
    p.add_argument("--group_column", default="group", help="the CSV column naming each clip's person or session")
    p.add_argument("--classes", default=None,
                   help="the class names in label order, separated by commas (default: the CSV's labels, sorted)")
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
            return run(args)
    except KeyboardInterrupt:
        print("interrupted: nothing half-written is left", file=sys.stderr)
        return EXIT_STOPPED
    except ExtractionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except AnalysisError as error:  # the face detector cannot be built
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    finally:
        if is_distributed():
            torch.distributed.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
