"""Throughput and peak memory of predict.py on long videos (one face), corpus throughput, and the real-time
factor on a laptop-sized video, with random-weight models.

    python benchmarks/benchmark_predict.py --model s2d_tiny_patch8_112 --minutes 1 10 30
    python benchmarks/benchmark_predict.py --model s2d_base_patch16_224 --minutes 1 --cpu_int8
    python benchmarks/benchmark_predict.py --model s2d_tiny_patch8_112 --minutes 0.5 --corpus 8 --nproc 1 2
    python benchmarks/benchmark_predict.py --realtime 20
    python benchmarks/benchmark_predict.py --backends --repeats 2 --realtime 10 --cases "fp32 (torch)" "auto (defaults)"
    python benchmarks/benchmark_predict.py --live 60

Writes a video per length in which a real face (matplotlib's sample photograph grace_hopper.jpg) drifts
back and forth and changes size (320x240 by default, 25 fps), a random-weight checkpoint per model (16 frames, DFEW:
windows of 16 samples over 3 s every 1.5 s), and runs predict.py on each video in a fresh process with the
default MTCNN detector and the annotated video. Prints, per run, video frames per second of the whole
analysis (decoding, detection, tracking, crops, landmark network and S2D, outputs) and the process's peak
resident memory (from the kernel's rusage of that process). With --corpus N: N such videos analysed by
`predict.py --videos` in 1 process and under torchrun with 2 (CPU: gloo, one torch thread per process, as
torchrun sets), printing videos per hour and video frames per second of the whole run, start-up included.

With --realtime SECONDS: one 640x360 24 fps video of that length in which the face moves over a textured
background (`write_realtime_video`), analysed with S2D base (or --model) by predict.py --no_video in a fresh
process per case (--cases picks some): fp32 PyTorch as before (every frame detected, `--detect_interval 0
--no_speedups`), fp32 PyTorch with every frame detected, fp32 PyTorch as now (`--backend torch --precision fp32`),
fp32 OpenVINO (`--backend openvino --precision fp32`), `--cpu_int8` with every frame detected and as now, and the
defaults (`--backend auto`: the path inference/backends.py picks on this CPU).
Prints per case the wall time of the analysis (decoding to predictions.csv: summary.json's `seconds`; model
loading excluded), video frames per second, the real-time factor (video seconds per wall second), the frames
detected, and the speed relative to the first case.

With --backends: the model alone (S2D with its landmark network, --model, default S2D base, random weights) on
one 16-frame window, for every backend x precision installed here (bf16 only on a CPU with native bf16), timed
in --repeats alternating rounds (best of each); its agreement with PyTorch fp32 on --windows drawn faces (largest
logit difference, top-1 agreement, mean probability difference); the model-alone real-time factor (DFEW policy:
a window every 1.5 s of video, so 1.5 / seconds per window); the CPU's name and flags. Printed as a Markdown table.

With --live SECONDS: the --realtime video played at its own pace into `predict.py --stream --realtime` (MTCNN,
DFEW windows: 16 samples over 3 s every 1.5 s), a fresh process per case of LIVE_CASES: S2D tiny, S2D base fp32
and S2D base int8. Prints per case, from summary.json, the readings, the capture-to-reading latency (mean, max),
the windows per second the model sustains, the windows dropped (a newer one of the same face was ready) and the
frames skipped (face tracking was busy).
"""
import argparse
import collections
import functools
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
from models.checkpoint import save_checkpoint
from models.registry import build_model

ROOT = Path(__file__).resolve().parents[1]
FPS = 25
PHOTO = cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
TORCH_FP32 = ("--backend", "torch", "--precision", "fp32")
REALTIME_CASES = (  # (name, predict.py flags)
    ("fp32, every frame, no speed-ups (before)", (*TORCH_FP32, "--detect_interval", "0", "--no_speedups")),
    ("fp32, every frame", (*TORCH_FP32, "--detect_interval", "0")),
    ("fp32 (torch)", TORCH_FP32),
    ("fp32 (openvino)", ("--backend", "openvino", "--precision", "fp32")),
    ("int8, every frame", ("--cpu_int8", "--detect_interval", "0")),
    ("int8 (--cpu_int8)", ("--cpu_int8",)),
    ("auto (defaults)", ()),
)
LIVE_CASES = (  # (name, model, predict.py flags)
    ("tiny fp32", "s2d_tiny_patch8_112", TORCH_FP32),
    ("base fp32", "s2d_base_patch16_224", TORCH_FP32),
    ("base int8", "s2d_base_patch16_224", ("--cpu_int8",)),
)
BACKEND_PATHS = (("torch", "fp32"), ("torch", "int8"), ("torch", "bf16"), ("onnxruntime", "fp32"),
                 ("onnxruntime", "int8"), ("openvino", "fp32"), ("openvino", "bf16"))
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def face_placement(index, height):
    """(x, y, scale) of the photograph at frame `index` of a video `height` pixels high: a slow drift and
    breathing size (period 8 s); the path and the face scale with the height (240 px: a face about 80 px)."""
    phase = 2 * np.pi * index / (8 * FPS)
    unit = height / 240
    return (int(unit * (60 + 50 * np.sin(phase))), int(unit * (12 + 10 * np.cos(phase))),
            unit * (0.3 + 0.05 * np.sin(phase)))


def with_face(background, x, y, scale):
    """A copy of `background` with the photograph scaled by `scale`, its top left corner at (x, y)."""
    frame = background.copy()
    face = cv2.resize(PHOTO, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    height, width = frame.shape[:2]
    frame[y:y + face.shape[0], x:x + face.shape[1]] = face[:height - y, :width - x]
    return frame


def textured_background(width, height, seed=0):
    """Smooth random blotches of colour (a detector finds more face candidates in texture than on a flat grey)."""
    noise = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return cv2.normalize(cv2.GaussianBlur(noise, (0, 0), 6), None, 40, 200, cv2.NORM_MINMAX)


def write_long_video(path, minutes, width, height):
    background = np.full((height, width, 3), 90, np.uint8)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (width, height))
    for index in range(int(minutes * 60 * FPS)):
        writer.write(with_face(background, *face_placement(index, height)))
    writer.release()


def write_realtime_video(path, seconds, width=640, height=360, fps=24):
    """The face (about 70 px wide at 360 px high) drifts sideways over half the width and back every 8 s,
    bobbing and changing size a little: at most about 1.7 face widths per second."""
    background = textured_background(width, height)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    unit = height / 360
    for index in range(round(seconds * fps)):
        phase = 2 * np.pi * index / (8 * fps)
        writer.write(with_face(background, int(width * 0.3 + unit * 150 * np.sin(phase)),
                               int(unit * (20 + 20 * np.cos(phase))), unit * (0.4 + 0.05 * np.sin(phase))))
    writer.release()


def random_checkpoint(path, model_name):
    model = build_model(model_name, num_classes=7, num_frames=16)
    save_checkpoint({"model": model.state_dict(), "epoch": "best",
                     "args": argparse.Namespace(model=model_name, num_frames=16, data_set="DFEW")}, path)


def timed(clock, stage, function):
    """`function`, adding the wall seconds of each call to clock[stage]."""
    @functools.wraps(function)
    def call(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            clock[stage] += time.perf_counter() - start
    return call


def timed_iterator(clock, stage, iter_method):
    """An __iter__ adding the wall seconds of producing each item to clock[stage]."""
    @functools.wraps(iter_method)
    def iterate(self):
        items = iter_method(self)
        while True:
            start = time.perf_counter()
            try:
                item = next(items)
            except StopIteration:
                return
            finally:
                clock[stage] += time.perf_counter() - start
            yield item
    return iterate


def predict_with_stage_clock(clock_path, predict_args):
    """predict.run(predict_args), then the wall seconds spent in each stage written to `clock_path` as JSON.
    Decoding, detection, tracking and crops run in the worker thread while the model runs in the main thread,
    so the stages overlap; `analysis` is the whole call."""
    import predict
    from inference import faces, mtcnn, pipeline, segment, tracking
    clock = collections.Counter()
    pipeline.VideoReader.__iter__ = timed_iterator(clock, "decode", pipeline.VideoReader.__iter__)
    for detector in (mtcnn.MTCNNDetector, faces.HaarDetector, faces.YuNetDetector, faces.WholeFrame):
        detector.__call__ = timed(clock, "detect", detector.__call__)
    segment.face_crop = timed(clock, "crop", segment.face_crop)
    tracking.FaceTracker.update = timed(clock, "track", tracking.FaceTracker.update)
    pipeline.VideoModel.classify_and_embed = timed(clock, "model", pipeline.VideoModel.classify_and_embed)
    pipeline.PredictionWriter.add = timed(clock, "outputs", pipeline.PredictionWriter.add)
    for name in ("write_json_atomically", "write_timeline", "annotate_video"):
        setattr(pipeline, name, timed(clock, "outputs", getattr(pipeline, name)))
    pipeline.Analyzer.analyze = timed(clock, "analysis", pipeline.Analyzer.analyze)
    code = predict.run(predict_args)
    Path(clock_path).write_text(json.dumps({stage: round(seconds, 2) for stage, seconds in clock.items()}))
    return code


def run_predict(video, checkpoint, output_dir, device, flags=(), stage_clock=None):
    """predict.py in a fresh process: (its summary, its peak RSS in MiB); with `stage_clock` (a JSON file),
    through predict_with_stage_clock."""
    command = [sys.executable, str(ROOT / "predict.py"), "--video", str(video), "--checkpoint", str(checkpoint),
               "--output_dir", str(output_dir), "--landmark_weights", "random", "--device", device,
               "--print_freq", "1500", *flags]
    if stage_clock:
        command[1:2] = ["-c", f"import sys; sys.path.insert(0, {str(ROOT)!r}); from benchmarks.benchmark_predict "
                              "import predict_with_stage_clock as run; sys.exit(run(sys.argv[1], sys.argv[2:]))",
                        str(stage_clock)]
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


def run_backends(name, repeats, windows, tmp):
    """The --backends table: a result per backend x precision, then a Markdown table."""
    from inference.backends import BackendLoader, agreement, check_clips, installed, read_cpu
    from inference.model import VideoModel
    from inference.windows import window_policy

    random_checkpoint(tmp / f"{name}.pth", name)
    video_model = VideoModel(tmp / f"{name}.pth", "random", "cpu", backend="torch", precision="fp32")
    cpu = read_cpu()
    loader = BackendLoader(video_model, str(tmp / "cache"), cpu, print)
    paths = [(b, p) for b, p in BACKEND_PATHS if installed(b) and (p != "bf16" or cpu.native_bf16)]
    runners, setup = {}, {}
    for path in paths:
        start = time.perf_counter()
        runners[path] = loader.runner(*path)
        setup[path] = time.perf_counter() - start
    inputs = check_clips(video_model, windows)
    reference = runners["torch", "fp32"](inputs)
    agreements = {path: agreement(reference, runner(inputs)) for path, runner in runners.items()}
    window = inputs[:1]
    times = {path: [] for path in paths}
    for _ in range(repeats):  # alternating: every path sees the same spells of a shared machine
        for path, runner in runners.items():
            start = time.perf_counter()
            runner(window)
            times[path].append(time.perf_counter() - start)
    stride = window_policy("DFEW", video_model.settings.num_frames).stride
    fp32 = min(times["torch", "fp32"])
    results = [dict(model=name, backend=b, precision=p, seconds_per_window=round(min(times[b, p]), 3),
                    all_seconds=[round(t, 3) for t in times[b, p]], setup_seconds=round(setup[b, p], 1),
                    speed_up=round(fp32 / min(times[b, p]), 2),
                    model_realtime_factor=round(stride / min(times[b, p]), 3),
                    **agreements[b, p], cpu=cpu.name, cpu_flags=[f for f in CPU_FLAGS if f in cpu.flags],
                    torch_threads=torch.get_num_threads(), load_average_after=os.getloadavg()[0]) for b, p in paths]
    for result in results:
        print(json.dumps(result), flush=True)
    print(f"\nCPU: {cpu.name or platform.processor()}; flags: {', '.join(results[0]['cpu_flags']) or 'none of note'}"
          f"; native bf16: {'yes' if cpu.native_bf16 else 'no'}; torch threads {torch.get_num_threads()}; "
          f"{name}, 1 x {video_model.settings.num_frames} frames, best of {repeats}\n")
    print(f"| backend | precision | s per window | vs torch fp32 | model real-time factor | max abs logit difference | "
          f"top-1 agreement ({windows} windows) | mean abs prob. difference | set-up s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['backend']} | {r['precision']} | {r['seconds_per_window']:.2f} | {r['speed_up']:.2f}x | "
              f"{r['model_realtime_factor']:.2f} | {r['max_logit_difference']:.1e} | "
              f"{100 * r['top1_agreement']:.0f}% | {r['mean_probability_difference']:.1e} | {r['setup_seconds']:.0f} |")
    return results


def run_realtime(seconds, models, device, tmp, cases=None):
    """The --realtime cases on one video: a result per case, printed as it comes, then a Markdown table."""
    write_realtime_video(tmp / "realtime.mp4", seconds)
    results = []
    for name in models:
        random_checkpoint(tmp / f"{name}.pth", name)
        for case, flags in REALTIME_CASES:
            if cases and case not in cases:
                continue
            load = os.getloadavg()[0]
            summary, peak_rss = run_predict(tmp / "realtime.mp4", tmp / f"{name}.pth", tmp / f"{name}-{len(results)}",
                                            device, ("--no_video", *flags), tmp / "clock.json")
            video_seconds = summary["frames_decoded"] / summary["container"]["fps"]
            results.append(dict(model=name, case=case, flags=" ".join(flags), size="640x360", fps=24,
                                backend=summary["backend"],
                                frames=summary["frames_decoded"], frames_detected=summary["frames_detected"],
                                windows=summary["windows"], seconds=summary["seconds"],
                                video_frames_per_second=summary["video_frames_per_second"],
                                realtime_factor=round(video_seconds / summary["seconds"], 3),
                                stage_seconds=json.loads((tmp / "clock.json").read_text()),
                                peak_rss_mib=round(peak_rss, 1), load_average_before=load,
                                torch_threads=torch.get_num_threads(), machine=platform.processor()))
            print(json.dumps(results[-1]), flush=True)
    print("\n| model | case | ran on | wall s | frames/s | real-time factor | frames detected | "
          "frames/s vs first case |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        first = next(f for f in results if f["model"] == r["model"])
        print(f"| {r['model']} | {r['case']} | {r['backend']['backend']} {r['backend']['precision']} | "
              f"{r['seconds']:.1f} | {r['video_frames_per_second']:.2f} | "
              f"{r['realtime_factor']:.2f} | {r['frames_detected']} of {r['frames']} | "
              f"{r['video_frames_per_second'] / first['video_frames_per_second']:.2f}x |")
    stages = ("decode", "detect", "track", "crop", "model", "outputs", "analysis")
    print("\nWall seconds per stage (decoding, detection, tracking and crops in the worker thread, the model at the "
          "same time in the main thread; analysis: the whole call, model loading excluded)\n")
    print(f"| model | case | {' | '.join(stages)} |")
    print(f"|---|---|{'---|' * len(stages)}")
    for r in results:
        print(f"| {r['model']} | {r['case']} | "
              + " | ".join(f"{r['stage_seconds'].get(stage, 0):.1f}" for stage in stages) + " |")
    return results


def run_live(seconds, device, tmp, cases=None):
    """The LIVE_CASES on one video played at its own pace: a result per case, printed as it comes, then a table."""
    write_realtime_video(tmp / "live.mp4", seconds)
    results = []
    for case, name, flags in LIVE_CASES:
        if cases and case not in cases:
            continue
        if not (tmp / f"{name}.pth").exists():
            random_checkpoint(tmp / f"{name}.pth", name)
        output_dir, load = tmp / f"live-{len(results)}", os.getloadavg()[0]
        command = [sys.executable, str(ROOT / "predict.py"), "--stream", str(tmp / "live.mp4"), "--realtime",
                   "--checkpoint", str(tmp / f"{name}.pth"), "--output_dir", str(output_dir), "--landmark_weights",
                   "random", "--device", device, *flags]
        subprocess.run(command, cwd=ROOT, check=True, stderr=subprocess.DEVNULL)
        summary = json.loads((output_dir / "summary.json").read_text())
        live = summary["live"]
        results.append(dict(case=case, model=name, flags=" ".join(flags), size="640x360", fps=24, seconds=seconds,
                            backend=summary["backend"], readings=summary["windows"], **live,
                            load_average_before=load, machine=platform.processor()))
        print(json.dumps(results[-1]), flush=True)
    print("\n| case | ran on | readings | latency mean s | latency max s | model windows/s | windows dropped | "
          "frames skipped |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['case']} | {r['backend']['backend']} {r['backend']['precision']} | {r['readings']} | "
              f"{r['latency_s']['mean']:.2f} | {r['latency_s']['max']:.2f} | {r['model_windows_per_s']:.2f} | "
              f"{r['windows_dropped']} of {r['windows_cut']} | {r['frames_skipped']} of {r['frames_received']} |")
    return results


def run_lengths_and_corpus(args, tmp):
    """The --minutes and --corpus runs."""
    results = []
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
                                            tmp / f"{name}-{minutes:g}", args.device,
                                            ["--cpu_int8"] * args.cpu_int8)
            results.append(dict(model=name, device=args.device, int8=args.cpu_int8,
                                size=f"{args.width}x{args.height}", minutes=minutes,
                                frames=summary["frames_decoded"], windows=summary["windows"],
                                tracks=len(summary["tracks"]), seconds=summary["seconds"],
                                video_frames_per_second=summary["video_frames_per_second"],
                                peak_rss_mib=round(peak_rss, 1), torch_threads=torch.get_num_threads(),
                                machine=platform.processor()))
            print(json.dumps(results[-1]), flush=True)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", default=[],
                        help="repeatable (default: s2d_tiny_patch8_112; with --realtime s2d_base_patch16_224)")
    parser.add_argument("--minutes", nargs="+", type=float, default=[1.0], help="video lengths")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240, help="the face's path and size scale with it")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cpu_int8", action="store_true", help="predict.py --cpu_int8 (int8 Linear layers)")
    parser.add_argument("--corpus", type=int, default=0, help="N videos of --minutes[0] each, as one corpus")
    parser.add_argument("--nproc", nargs="+", type=int, default=[1, 2], help="process counts for --corpus")
    parser.add_argument("--realtime", type=float, default=0,
                        help="seconds: the real-time factor cases on a 640x360 24 fps video this long (see above)")
    parser.add_argument("--cases", nargs="+", default=None,
                        choices=[name for name, _ in REALTIME_CASES] + [name for name, _, _ in LIVE_CASES],
                        help="--realtime, --live: only these cases (default: all)")
    parser.add_argument("--backends", action="store_true",
                        help="the model alone on every backend x precision installed here (see above)")
    parser.add_argument("--repeats", type=int, default=3, help="--backends: alternating timing rounds")
    parser.add_argument("--windows", type=int, default=4, help="--backends: drawn faces for the agreement")
    parser.add_argument("--live", type=float, default=0,
                        help="seconds: the live cases on a 640x360 24 fps video this long, played at its pace")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.backends:
            results += run_backends((args.model or ["s2d_base_patch16_224"])[0], args.repeats, args.windows, Path(tmp))
        if args.live:
            results += run_live(args.live, args.device, Path(tmp), args.cases)
        if args.realtime:
            results += run_realtime(args.realtime, args.model or ["s2d_base_patch16_224"], args.device, Path(tmp),
                                    args.cases)
        elif not (args.backends or args.live):
            results = run_lengths_and_corpus(args, Path(tmp))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
