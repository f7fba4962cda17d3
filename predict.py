"""Emotion timeline of every face in a raw video with a trained S2D model.

    python predict.py --checkpoint ckpts/<fine-tuned>.pth --data_set DFEW --video in.mp4 --output_dir out/

The video is decoded frame by frame (OpenCV); faces are detected (Haar cascade by default, YuNet, or
the whole frame with --no_detect) and tracked by box overlap; each track's square face crops are cut
into sliding windows of the model's num_frames crops, which go through the landmark network and S2D
with the evaluation normalisation. Writes predictions.csv, summary.json, timeline.png and
annotated.mp4 to --output_dir, each atomically. Exit codes: 0 done (also when no face is found:
a warning and empty but valid outputs), 2 bad command-line value, 3 bad video, 4 bad checkpoint or
landmark weights, 5 face detector cannot be built.
"""
import argparse
import math
import os
import pickle
import sys
import time
from collections import defaultdict, deque

import cv2
import numpy as np
import torch

from datasets.build import ALIASES, DATASETS
from datasets.faces import DetectorError, FaceTracker, HaarDetector, WholeFrame, YuNetDetector, square_crop
from datasets.transforms import ClipEvalTransform
from datasets.video_file import VideoError, probe_video, read_frames
from engine import ProgressLogger
from engine.timeline import FrameAnnotator, plot_timeline, write_annotated_video, write_json, write_predictions_csv
from engine.video_windows import TrackWindows, moving_average
from models import MODEL_CONFIGS, apply_checkpoint, build_landmark, build_model, is_image_model, read_checkpoint
from models.quantize import quantize_int8

DEFAULT_MODEL = "s2d_base_patch16_224"
EXIT_BAD_VIDEO, EXIT_BAD_CHECKPOINT, EXIT_BAD_DETECTOR = 3, 4, 5


class PredictError(Exception):
    def __init__(self, message, exit_code):
        super().__init__(message)
        self.exit_code = exit_code


def get_args_parser():
    p = argparse.ArgumentParser("S2D emotion timeline of a video", add_help=True)
    p.add_argument("--video", required=True, help="input video file (any format OpenCV's FFmpeg reads)")
    p.add_argument("--checkpoint", required=True, help="fine-tuned checkpoint (the authors' or this project's)")
    p.add_argument("--output_dir", required=True)

    g = p.add_argument_group("model (default: the checkpoint's stored args, else the value shown)")
    g.add_argument("--model", default=None, help=f"default {DEFAULT_MODEL}")
    g.add_argument("--data_set", default=None, choices=sorted(DATASETS) + sorted(ALIASES),
                   help="gives the class names; FRAMES: classes named 0..K-1")
    g.add_argument("--num_frames", default=None, type=int, help="frames per window (default 16)")
    g.add_argument("--sampling_rate", default=None, type=int, help="crops between window frames (default 1)")
    g.add_argument("--input_size", default=None, type=int, help="default: the model's image size")
    g.add_argument("--short_side_size", default=None, type=int, help="default: input_size")
    g.add_argument("--landmark_weights", default="ckpts/mobilefacenet_model_best.pth.tar",
                   help="MobileFaceNet weights, or 'random' (demo and tests only)")
    g.add_argument("--trust_checkpoint", action="store_true",
                   help="allow arbitrary pickled objects in checkpoints (only for files you trust)")

    g = p.add_argument_group("faces")
    g.add_argument("--detector", default="haar", choices=["haar", "yunet"])
    g.add_argument("--detector_model", default="", help="YuNet ONNX file for --detector yunet")
    g.add_argument("--no_detect", action="store_true", help="the whole frame is the face (face-cropped clips)")
    g.add_argument("--min_face", default=40, type=int, help="smallest face side in pixels")
    g.add_argument("--margin", default=0.25, type=float,
                   help="crop = square of side (1 + 2 * margin) * longer box side, centred on the box")
    g.add_argument("--iou_threshold", default=0.3, type=float, help="box overlap that continues a track")
    g.add_argument("--max_gap", default=5, type=int,
                   help="processed frames a track survives without a detection (boxes interpolated)")
    g.add_argument("--min_track_frames", default=3, type=int,
                   help="detections before a track counts (shorter ones are dropped as false positives)")

    g = p.add_argument_group("windows and run")
    g.add_argument("--window_stride", default=None, type=int,
                   help="processed frames between window starts (default: half a window)")
    g.add_argument("--smooth", default=1, type=int, help="moving average over K windows of a track (1: none)")
    g.add_argument("--every", default=1, type=int, help="process every Nth frame")
    g.add_argument("--max_seconds", default=None, type=float, help="only the first seconds of the video")
    g.add_argument("--batch_size", default=8, type=int, help="windows per forward pass")
    g.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available); bf16 on cuda")
    g.add_argument("--cpu_int8", action="store_true",
                   help="CPU only: run the Linear layers in int8 (faster, small differences; see docs/BENCHMARKS.md)")
    g.add_argument("--no_video", action="store_true", help="do not write annotated.mp4")
    g.add_argument("--print_freq", default=50, type=int, help="progress line every N processed frames")
    return p


def check_args(parser, args):
    for name in ("every", "smooth", "batch_size", "print_freq", "num_frames", "sampling_rate", "window_stride",
                 "min_track_frames"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be a positive integer, got {value}")
    if args.max_gap < 0 or args.margin < 0 or not 0 < args.iou_threshold <= 1:
        parser.error("--max_gap and --margin must be >= 0 and --iou_threshold in (0, 1]")
    if args.max_seconds is not None and args.max_seconds <= 0:
        parser.error(f"--max_seconds must be positive, got {args.max_seconds}")


def resolve_settings(args, stored):
    """Flags first, then the checkpoint's stored args, then defaults; fills `args` in place."""
    def pick(name, default):
        value = getattr(args, name)
        if value is None:
            value = getattr(stored, name, None)
        return default if value is None else value

    stored_model = getattr(stored, "model", None)
    video_models = sorted(name for name in MODEL_CONFIGS if not is_image_model(name))
    # the authors' files name a model of the original code, which this registry does not know
    args.model = args.model or (stored_model if stored_model in video_models else DEFAULT_MODEL)
    if args.model not in video_models:
        raise PredictError(f"unknown --model {args.model!r}; known video models: {video_models}",
                           EXIT_BAD_CHECKPOINT)
    img_size = MODEL_CONFIGS[args.model]["img_size"]
    args.num_frames, args.sampling_rate = pick("num_frames", 16), pick("sampling_rate", 1)
    args.input_size = pick("input_size", img_size)
    args.short_side_size = pick("short_side_size", args.input_size)
    args.data_set = pick("data_set", None)
    if args.input_size != img_size or args.short_side_size < args.input_size:
        raise PredictError(f"{args.model} takes {img_size}x{img_size} frames; got input_size {args.input_size}, "
                           f"short_side_size {args.short_side_size} (must be >= input_size)", EXIT_BAD_CHECKPOINT)
    if args.window_stride is None:
        args.window_stride = max(args.num_frames * args.sampling_rate // 2, 1)


def class_names_for(args, num_classes):
    if args.data_set is None:
        raise PredictError(f"{args.checkpoint} stores no data set name: pass --data_set (DFEW, FERV39K, MAFW; "
                           "FRAMES names the classes 0..K-1)", EXIT_BAD_CHECKPOINT)
    names, _ = DATASETS[ALIASES.get(args.data_set, args.data_set)]
    names = list(names) if names else [str(k) for k in range(num_classes)]
    if len(names) != num_classes:
        raise PredictError(f"{args.checkpoint} has a {num_classes}-class head, but {args.data_set} has "
                           f"{len(names)} classes ({', '.join(names)}); pass the --data_set it was trained on",
                           EXIT_BAD_CHECKPOINT)
    return names


def load_model(args, device):
    """(S2D with the checkpoint's weights, landmark network, class names), both in eval mode on `device`."""
    try:
        checkpoint = read_checkpoint(args.checkpoint, trust=args.trust_checkpoint)
        state = checkpoint.get("model")
        if not isinstance(state, dict):
            raise ValueError(f"{args.checkpoint}: no 'model' state dict (found entries: {sorted(checkpoint)})")
        resolve_settings(args, checkpoint.get("args"))
        head = next((v for k, v in state.items() if k.endswith("head.fc_cls.weight")), None)
        if head is None:
            raise ValueError(f"{args.checkpoint}: no head.fc_cls.weight in its model state dict: not a fine-tuned "
                             "S2D video model")
        names = class_names_for(args, head.shape[0])
        model = build_model(args.model, num_classes=head.shape[0], num_frames=args.num_frames,
                            adapter_ratio=getattr(checkpoint.get("args"), "scale_factor", 0.25))
        apply_checkpoint(model, checkpoint, "finetuned", args.checkpoint)
        landmark = build_landmark(args.landmark_weights, trust=args.trust_checkpoint, grid_size=model.grid_size)
    except (OSError, ValueError, pickle.UnpicklingError) as error:
        raise PredictError(str(error), EXIT_BAD_CHECKPOINT) from error
    return model.eval().to(device), landmark.to(device), names


def build_detector(args):
    try:
        if args.no_detect:
            return WholeFrame()
        if args.detector == "yunet":
            return YuNetDetector(args.detector_model, args.min_face)
        return HaarDetector(args.min_face)
    except DetectorError as error:
        raise PredictError(str(error), EXIT_BAD_DETECTOR) from error


@torch.inference_mode()
def classify(model, landmark, windows, device):
    """Class probabilities (N, K) of a list of Windows; bf16 autocast on CUDA."""
    video = torch.stack([w.video for w in windows]).to(device)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        logits, _ = model(video, landmark(video))
    return logits.float().softmax(dim=-1).cpu().numpy()


def window_rows(windows, probabilities, fps):
    return [dict(track=w.track_id, first_frame=w.first_frame, last_frame=w.last_frame,
                 start_s=round(w.first_frame / fps, 4), end_s=round(w.last_frame / fps, 4),
                 box_x=int(round(w.box[0])), box_y=int(round(w.box[1])), box_w=int(round(w.box[2])),
                 box_h=int(round(w.box[3])), probabilities=p) for w, p in zip(windows, probabilities)]


def track_summaries(rows, seen, hits, names, fps):
    summaries = []
    for track_id in sorted(seen):
        frames = sorted(f for f, _ in seen[track_id])
        mean = np.mean([r["probabilities"] for r in rows if r["track"] == track_id], axis=0)
        summaries.append(dict(track=track_id, first_frame=frames[0], last_frame=frames[-1],
                              start_s=round(frames[0] / fps, 4), end_s=round(frames[-1] / fps, 4),
                              frames_seen=len(frames), frames_detected=hits[track_id],
                              windows=sum(r["track"] == track_id for r in rows),
                              mean_probabilities={n: round(float(p), 6) for n, p in zip(names, mean)},
                              dominant_emotion=names[int(np.argmax(mean))]))
    return summaries


def main(args):
    if args.device is None:
        args.device = "cpu" if args.cpu_int8 or not torch.cuda.is_available() else "cuda"
    if args.cpu_int8 and args.device != "cpu":
        raise PredictError("--cpu_int8 runs on the CPU only; pass --device cpu", 2)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise PredictError("--device cuda was asked for but no CUDA device is available; use --device cpu", 2)
    device = torch.device(args.device)
    try:
        info = probe_video(args.video)
    except VideoError as error:
        raise PredictError(str(error), EXIT_BAD_VIDEO) from error
    model, landmark, names = load_model(args, device)
    if args.cpu_int8:
        model = quantize_int8(model)
    detector = build_detector(args)
    os.makedirs(args.output_dir, exist_ok=True)
    max_frames = None if args.max_seconds is None else math.ceil(args.max_seconds * info.fps)
    total = math.ceil(min(info.frame_count, max_frames or info.frame_count) / args.every)
    print(f"{args.video}: {info.width}x{info.height}, {info.fps:.3f} fps, {info.frame_count} frames; "
          f"{args.model}, windows of {args.num_frames} crops every {args.window_stride}, classes {names}",
          file=sys.stderr)

    transform = ClipEvalTransform(args.input_size, args.short_side_size)
    tracker = FaceTracker(args.iou_threshold, args.max_gap, 1 if args.no_detect else args.min_track_frames)
    track_windows, observed, seen, hits = {}, defaultdict(list), {}, {}
    recent_frames = deque(maxlen=args.max_gap + 1)
    queue, windows, probabilities = [], [], []
    frames_read = 0

    def crop(frame, box):
        image = frame if args.no_detect else square_crop(frame, box, args.margin)
        rgb = torch.from_numpy(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)).permute(2, 0, 1)
        return transform(rgb[None])

    def flush(force=False):
        if queue and (force or len(queue) >= args.batch_size):
            probabilities.extend(classify(model, landmark, queue, device))
            windows.extend(queue)
            queue.clear()

    def end(tracks):
        for track in tracks:
            if track.track_id is not None:
                queue.extend(track_windows[track].final(track.track_id))
                seen[track.track_id], hits[track.track_id] = observed[track], track.hits
            del track_windows[track], observed[track]

    progress = ProgressLogger("Frames:", args.print_freq, unit="frames", stream=sys.stderr)
    start = time.time()
    for index, frame in progress.log_every(read_frames(args.video, args.every, max_frames), total):
        frames_read += 1
        recent_frames.append((index, frame))
        observations, ended = tracker.update(index, detector(frame))
        frame_at = dict(recent_frames)
        for track, frame_index, box in observations:
            if track not in track_windows:
                track_windows[track] = TrackWindows(args.num_frames, args.sampling_rate, args.window_stride)
            track_windows[track].add(frame_index, box, crop(frame_at[frame_index], box))
            observed[track].append((frame_index, box))
        for track in {t for t, _, _ in observations if t.track_id is not None}:
            queue.extend(track_windows[track].ready(track.track_id))
        end(ended)
        flush()
    end(tracker.finish())
    flush(force=True)
    elapsed = time.time() - start

    rows = window_rows(windows, probabilities, info.fps)
    rows.sort(key=lambda r: (r["track"], r["first_frame"]))
    for track_id in seen:
        track_rows = [r for r in rows if r["track"] == track_id]
        smoothed = moving_average(np.stack([r["probabilities"] for r in track_rows]), args.smooth)
        for r, p in zip(track_rows, smoothed):
            r["probabilities"] = p
    summary = dict(
        video=args.video, fps=info.fps, frame_count=info.frame_count, width=info.width, height=info.height,
        frames_processed=frames_read, seconds=round(elapsed, 3),
        video_frames_per_second=round(frames_read * args.every / max(elapsed, 1e-9), 3),
        tracks=track_summaries(rows, seen, hits, names, info.fps), dropped_short_tracks=tracker.num_dropped,
        settings={k: v for k, v in sorted(vars(args).items())}, class_names=names)
    if not seen:
        summary["warning"] = f"no face found in {args.video}"
        print(f"warning: no face found in {args.video} ({frames_read} frames processed); the outputs are empty",
              file=sys.stderr)
    out = args.output_dir
    write_predictions_csv(os.path.join(out, "predictions.csv"), rows, names)
    write_json(os.path.join(out, "summary.json"), summary)
    plot_timeline(os.path.join(out, "timeline.png"), rows, names, f"{os.path.basename(args.video)} ({args.model})")
    if not args.no_video:
        annotate = FrameAnnotator(seen, rows, names, args.every)
        frames = ProgressLogger("Annotated video:", args.print_freq * args.every, unit="frames", stream=sys.stderr)
        write_annotated_video(os.path.join(out, "annotated.mp4"),
                              frames.log_every(read_frames(args.video, 1, max_frames), total * args.every),
                              info.fps, (info.width, info.height), annotate)
    print(f"{len(seen)} track(s), {len(rows)} windows; outputs in {out}: predictions.csv, summary.json, timeline.png"
          + ("" if args.no_video else ", annotated.mp4"), file=sys.stderr)
    return summary


if __name__ == "__main__":
    parser = get_args_parser()
    cli_args = parser.parse_args()
    check_args(parser, cli_args)
    try:
        main(cli_args)
    except PredictError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(error.exit_code)
