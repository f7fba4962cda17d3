"""Emotion timeline of every face in a raw video, or in a corpus of videos, with a fine-tuned S2D model (the
command line of `inference`, the video pipeline package).

    python predict.py --checkpoint ckpts/<fine-tuned>.pth --video in.mp4 --output_dir out/
    python predict.py --checkpoint ckpts/<fine-tuned>.pth --stream 0 --output_dir out/live  # camera 0, live
    torchrun --nproc_per_node 4 predict.py --checkpoint ckpts/<fine-tuned>.pth --videos folder/ --output_dir out/

Writes predictions.csv, summary.json, timeline.png and annotated.mp4 (and features.npy with --features) to
--output_dir (--video), or to one folder per video plus index.csv (--videos); --stream writes a row per reading as
it comes, then summary.json and timeline.png when the stream ends (docs/PREDICT.md, "Live analysis"). Exit codes:
0 done (also when no face is found; under torchrun, every process whose share is done), 1 some videos of the corpus
failed (one process; index.csv says why), 2 bad command-line value, 3 bad video or live source, 4 bad checkpoint
or landmark weights, 5 face detector cannot be built, 6 the video broke off mid-stream (outputs cover the part
before; summary.json says where), 7 out of GPU memory on a single window, 130 interrupted by Ctrl-C or SIGTERM
(nothing half-written; a live stream's outputs then cover what was seen; a live stream that ends or breaks off
exits 0).
"""
import argparse
import json
import sys

import inference
from datasets.build import ALIASES, DATASETS
from inference import AnalysisError, Analyzer, Options
from inference.backends import BACKENDS, PRECISIONS, needs_cpu
from inference.corpus import analyze_corpus, collect_videos
from inference.face_flags import add_face_arguments, detector_name
from models.landmark import DEFAULT_LANDMARK_WEIGHTS
from utils.device import DeviceError, choose_device
from utils.distributed import local_device, torchrun_ranks
from utils.stop import EXIT_STOPPED, stop_on_signals

EXIT_CORPUS_FAILURES, EXIT_PARTIAL = 1, 6
EXIT_CODES = {inference.InvalidSettings: 2, inference.UnreadableVideo: 3, inference.UnusableCheckpoint: 4,
              inference.DetectorUnavailable: 5, inference.OutOfGPUMemory: 7}  # of each error (the docstring above)


def exit_code(error: AnalysisError) -> int:
    """The documented exit code of an analysis error (of its kind in EXIT_CODES)."""
    return next(code for kind, code in EXIT_CODES.items() if isinstance(error, kind))


def get_args_parser():
    p = argparse.ArgumentParser(description="S2D emotion timeline of a video or a corpus")
    inputs = p.add_mutually_exclusive_group(required=True)
    inputs.add_argument("--video", help="one video file (any format OpenCV's FFmpeg reads)")
    inputs.add_argument("--videos", nargs="+", metavar="PATH",
                        help="a corpus: video files, folders (searched recursively) and text files listing videos")
    inputs.add_argument("--stream", metavar="SOURCE",
                        help="live: a camera (0, /dev/video0), a stream URL FFmpeg opens (rtsp://, rtmp://, http://, "
                             "an HLS .m3u8) or, with --realtime, a video file played at its own pace")
    p.add_argument("--checkpoint", required=True, help="fine-tuned checkpoint (the authors' or this project's)")
    p.add_argument("--output_dir", required=True, help="the outputs (--video), or one folder per video (--videos)")
    p.add_argument("--overwrite", action="store_true", help="--videos: redo the videos analysed before")

    g = p.add_argument_group("live (--stream; docs/PREDICT.md, \"Live analysis\")")
    g.add_argument("--realtime", action="store_true", help="play the --stream file at the pace of its timestamps")
    g.add_argument("--duration", default=None, type=float, help="stop after this many seconds of the stream")
    g.add_argument("--jsonl", action="store_true",
                   help="also write each reading to stdout as one JSON line (track, times, probabilities, latency)")
    g.add_argument("--save_video", action="store_true",
                   help="also write recording.mp4: the frames analysed, with each face's box and latest reading "
                        "(no frame is stored otherwise)")

    g = p.add_argument_group("model (default: the checkpoint's stored args, else what its weights say)")
    g.add_argument("--model", default=None, help="default s2d_base_patch16_224")
    g.add_argument("--data_set", default=None, choices=sorted(DATASETS) + sorted(ALIASES),
                   help="gives the class names and the window policy (default: the checkpoint's, and the class "
                        "names and clip sampling it stores when trained on clips of one's own videos; FRAMES "
                        "without stored names: 0..K-1)")
    g.add_argument("--num_frames", default=None, type=int, help="frames per window (default: the checkpoint's)")
    g.add_argument("--input_size", default=None, type=int, help="default: the model's image size")
    g.add_argument("--short_side_size", default=None, type=int, help="default: input_size")
    g.add_argument("--landmark_weights", default=DEFAULT_LANDMARK_WEIGHTS,
                   help="MobileFaceNet weights, or 'random' (demo and tests only)")
    g.add_argument("--trust_checkpoint", action="store_true",
                   help="allow arbitrary pickled objects in checkpoints (only for files you trust)")

    defaults = Options()
    faces = add_face_arguments(p)
    faces.add_argument("--detect_interval", default=defaults.detect_interval, type=float,
                       help="seconds: the longest time between two face detections (frames that windows sample are "
                            "always detected, the others only as often as the tracker needs); 0: detect every frame")

    g = p.add_argument_group("windows (default: the policy of the checkpoint's training data, see docs/PREDICT.md)")
    g.add_argument("--window_seconds", default=None, type=float,
                   help="num_frames samples spread uniformly over this many seconds (DFEW-style)")
    g.add_argument("--source_fps", default=None, type=float,
                   help="num_frames consecutive samples at this rate (FERV39K/MAFW-style)")
    g.add_argument("--stride_seconds", default=None, type=float, help="between window starts (default: half a window)")
    g.add_argument("--smooth", default=defaults.smooth, type=int,
                   help="centred moving average over K windows of a track")

    g = p.add_argument_group("run")
    g.add_argument("--frame_stride", "--every", default=defaults.frame_stride, type=int,
                   help="process every Nth decoded frame (--every: its former name)")
    g.add_argument("--max_seconds", default=None, type=float, help="only the first seconds of the video")
    g.add_argument("--batch_size", default=defaults.batch_size, type=int, help="windows per forward pass")
    g.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available); bf16 on cuda")
    g.add_argument("--backend", default="auto", choices=BACKENDS,
                   help="what runs the model: auto (default: on a GPU PyTorch; on the CPU the fastest path installed "
                        "and verified here, docs/PREDICT.md), torch, openvino or onnxruntime (CPU only)")
    g.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="auto (default), fp32, bf16 (fast with native bf16: AMX or AVX512-BF16) or int8 (CPU only); "
                        "summary.json records what ran and why")
    g.add_argument("--backend_cache", default=None,
                   help="folder of the exported and compiled models (default: $S2D_CACHE, else ~/.cache/s2d)")
    g.add_argument("--cpu_int8", action="store_true",
                   help="CPU only: run the Linear layers in int8 (faster, small differences; see docs/BENCHMARKS.md); "
                        "the same as --backend torch --precision int8")
    g.add_argument("--no_speedups", action="store_true",
                   help="the reference computation, without the speed-ups that give the same outputs (for checking)")
    g.add_argument("--no_video", action="store_true", help="do not write annotated.mp4")
    g.add_argument("--features", action="store_true",
                   help="also write features.npy: float32, one row per row of predictions.csv, each the clip feature "
                        "the model's head classifies (docs/PREDICT.md)")
    g.add_argument("--print_freq", default=defaults.print_freq, type=int, help="progress line every N processed frames")
    return p


def options_from(args):
    return Options(frame_stride=args.frame_stride, max_seconds=args.max_seconds, window_seconds=args.window_seconds,
                   source_fps=args.source_fps, stride_seconds=args.stride_seconds, smooth=args.smooth,
                   margin=args.margin, iou_threshold=args.iou_threshold, max_gap_seconds=args.max_gap_seconds,
                   break_seconds=args.break_seconds, min_track_frames=args.min_track_frames,
                   detect_interval=args.detect_interval, batch_size=args.batch_size, write_video=not args.no_video,
                   features=args.features, print_freq=args.print_freq)


def build_analyzer(args):
    return Analyzer(args.checkpoint, landmark_weights=args.landmark_weights, device=args.device,
                    cpu_int8=args.cpu_int8, trust_checkpoint=args.trust_checkpoint,
                    detector=detector_name(args), detector_model=args.detector_model,
                    min_face=args.min_face, model=args.model, data_set=args.data_set, num_frames=args.num_frames,
                    input_size=args.input_size, short_side_size=args.short_side_size, options=options_from(args),
                    speedups=not args.no_speedups, backend=args.backend, precision=args.precision,
                    backend_cache=args.backend_cache)


def analyze_one(args):
    """Analyse args.video; returns the exit code (raises AnalysisError)."""
    result = build_analyzer(args).analyze(args.video, args.output_dir)
    print(f"outputs in {result.output_dir}: predictions.csv, summary.json, timeline.png"
          + ("" if args.no_video else ", annotated.mp4") + (", features.npy" if args.features else ""),
          file=sys.stderr)
    return 0 if result.summary.complete else EXIT_PARTIAL


def analyze_many(args):
    """Analyse this process's share of args.videos (one share per torchrun process); returns the exit code."""
    videos = collect_videos(args.videos)
    try:
        args.device = choose_device(args.device, cpu_only=args.cpu_int8 or needs_cpu(args.backend, args.precision))
    except DeviceError as error:
        raise inference.InvalidSettings(str(error)) from error
    rank, world_size, local_rank = torchrun_ranks()  # one process per GPU, without a process group
    args.device = local_device(args.device, local_rank) if world_size > 1 else args.device
    result = analyze_corpus(build_analyzer(args), videos, args.output_dir, args.overwrite, rank=rank,
                            world_size=world_size)
    rows = result.rows
    failed = [r for r in rows if r["status"] == "failed"]
    partial = sum(r["status"] == "partial" for r in rows)
    counts = f"{len(failed)} failed; index: {args.output_dir}/index.csv"
    if world_size == 1:
        print(f"{len(rows)} videos: {len(rows) - len(failed) - partial} ok, {partial} partial, {counts}",
              file=sys.stderr)
        return EXIT_CORPUS_FAILURES if failed else 0
    # under torchrun a process that exits with an error makes torchrun stop the others: each exits 0
    print(f"[rank {rank}] share done; {len(rows)} of {len(videos)} videos finished so far by all processes: "
          f"{len(rows) - len(failed) - partial} ok, {partial} partial, {counts}", file=sys.stderr)
    return 0


def analyze_live(args):
    """Analyse args.stream as it comes, a line per reading (and a JSON line on stdout with --jsonl); returns the exit
    code: 0 when the stream ended, broke off or reached --duration, EXIT_STOPPED on Ctrl-C or SIGTERM."""
    live = build_analyzer(args).live(args.stream, args.output_dir, args.realtime, args.duration, args.save_video)
    try:
        for reading in live:
            if args.jsonl:
                print(json.dumps(reading.to_json()), flush=True)
            print(f"{reading.end_s:9.2f} s  track {reading.track}: {reading.top_class} "
                  f"{reading.probabilities[reading.top_class]:.2f} | latency {reading.latency_s:.2f} s, "
                  f"{reading.dropped} dropped, model {reading.model_windows_per_s:.2f} windows/s", file=sys.stderr)
    except KeyboardInterrupt:
        print(f"stopped: the outputs in {args.output_dir} cover what was seen", file=sys.stderr)
        return EXIT_STOPPED
    print(f"outputs in {args.output_dir}: predictions.csv, summary.json, timeline.png"
          + (", recording.mp4" if args.save_video else "") + (", features.npy" if args.features else ""),
          file=sys.stderr)
    return 0


def run(argv=None):
    parser = get_args_parser()
    args = parser.parse_args(argv)
    live_flags = [f"--{name}" for name in ("realtime", "duration", "jsonl", "save_video") if getattr(args, name)]
    if live_flags and not args.stream:
        parser.error(f"{', '.join(live_flags)}: for --stream only")
    try:
        with stop_on_signals():  # Ctrl-C, or SIGTERM (kill, torchrun, a scheduler): honoured at safe points
            if args.stream:
                return analyze_live(args)
            return analyze_one(args) if args.video else analyze_many(args)
    except AnalysisError as error:
        print(f"error: {error}", file=sys.stderr)
        return exit_code(error)
    except KeyboardInterrupt:
        print("interrupted: nothing half-written is left", file=sys.stderr)
        return EXIT_STOPPED


if __name__ == "__main__":
    sys.exit(run())
