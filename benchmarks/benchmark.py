"""Speed and peak memory of S2D base (landmark network included) next to a plain timm ViT-B/16 on the same
frames, for inference and a training step; int8 inference on CPU; the test pass of a DFEW-shaped fold with
and without view de-duplication; and the data loader per worker. Ratios are printed at the end.

    python benchmarks/benchmark.py                                  # CPU: batch 1, fp32 and int8
    python benchmarks/benchmark.py --device cuda                    # GPU: batch 8 (published), bf16 and fp16
    python benchmarks/benchmark.py --device cuda --compile          # adds torch.compile rows
    python benchmarks/benchmark.py --json results.json

Each case runs in a fresh process (its peak memory is its own: max RSS on CPU, max allocated on CUDA);
with --repeats N the cases run N times in alternation and each keeps its fastest step, so that the
ratios of a noisy shared machine compare like with like. On CPU the int8 speed-up of S2D base is also
measured as alternating fp32/int8 pairs in one process (--int8_pairs), the steadier figure.
"""
import argparse
import json
import multiprocessing as mp
import platform
import queue as queue_module
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: import models

BASE, VIT = "s2d_base_patch16_224", "vit_base_patch16_224"
PRECISIONS = {"fp32": None, "int8": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def build_case(case):
    """(modules on the case's device, forward(video) -> logits, image size). Optional case entries: "speedups"
    (names of models.fast_paths.SPEEDUPS; for the plain ViT only "compile_layers": each block compiled),
    "compile_options" (for torch.compile), "backbone" (timm ViT keyword overrides, e.g. a tiny ViT)."""
    import timm
    from einops import rearrange

    from models.fast_paths import prepare_for_speed
    from models.freezing import freeze_for_finetuning
    from models.landmark import LandmarkFeatures
    from models.quantize import quantize_int8
    from models.registry import build_model
    speedups, compile_options = tuple(case.get("speedups", ())), case.get("compile_options", {})
    if case["model"] == VIT:  # the floor: the same ViT on every frame, no prompts, adapters or landmarks
        if set(speedups) - {"compile_layers"}:
            raise ValueError(f"the plain ViT takes only the compile_layers speed-up, not {speedups}")
        vit = timm.create_model(VIT, pretrained=False, num_classes=7, **case.get("backbone", {}))
        if case["precision"] == "int8":
            vit = quantize_int8(vit)
        if case["compile"]:
            vit.compile(**compile_options)
        if "compile_layers" in speedups:
            for block in vit.blocks:
                block.compile(**compile_options)
        size = vit.patch_embed.img_size[0]
        return (vit.to(case["device"]),), lambda video: vit(rearrange(video, "b c t h w -> (b t) c h w")), size
    model = build_model(case["model"], num_frames=case["frames"])
    freeze_for_finetuning(model)  # the fine-tuning recipe: backbone and landmark network frozen
    landmark = LandmarkFeatures(None, grid_size=model.grid_size)
    if case["precision"] == "int8":
        model = quantize_int8(model)
    model.to(case["device"])
    landmark.to(case["device"])
    prepare_for_speed(model, landmark, channels_last=case["device"] == "cuda", compile=case["compile"],
                      speedups=speedups, compile_options=compile_options)
    return (model, landmark), lambda video: model(video, landmark(video))[0], model.img_size


def make_step(case, modules, forward):
    """step(video): one inference forward or one training step (AdamW on the trainable parameters) of the
    case's mode and precision; "cuda_graph" in the case: inference replayed from CUDA graphs."""
    from models.cuda_graph import CudaGraphInference
    device = torch.device(case["device"])
    dtype = PRECISIONS[case["precision"]]
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5) if case["mode"] == "train" else None
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 and case["mode"] == "train" else None
    autocast = torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)
    if case.get("cuda_graph"):
        if case["mode"] != "inference":
            raise ValueError("cuda_graph is for inference")
        forward = CudaGraphInference(forward, dtype)  # autocast inside the graph
        autocast = torch.autocast(device.type, enabled=False)

    def step(video):
        if case["mode"] == "inference":
            modules[0].eval()
            with torch.inference_mode(), autocast:
                forward(video)
            return
        modules[0].train()
        with autocast:
            loss = forward(video).float().logsumexp(-1).mean()
        (scaler.scale(loss) if scaler else loss).backward()
        if scaler:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return step


def time_step(step, video, warmup, iters):
    """(fastest of `iters` timed steps in seconds, peak memory in MiB: max allocated after the warm-up on CUDA,
    the process's max RSS on CPU)."""
    cuda = video.device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    for _ in range(warmup):
        step(video)
    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    seconds = []
    for _ in range(iters):
        start = time.perf_counter()
        step(video)
        sync()
        seconds.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return min(seconds), round(peak / 2 ** 20, 1)


def clip_batch(case, size):
    return torch.randn(case["batch"], 3, case["frames"], size, size, device=case["device"])


def _run_case(case, queue):
    torch.manual_seed(0)
    modules, forward, size = build_case(case)
    seconds, peak = time_step(make_step(case, modules, forward), clip_batch(case, size), case["warmup"],
                              case["iters"])
    queue.put({"seconds": seconds, "peak_memory_mib": peak})


def int8_pairs(case):
    """[(fp32 seconds, int8 seconds)] of `case["pairs"]` alternating forwards of one clip in one process: the two
    runs of a pair see the same machine speed (CPU boost after idle, neighbours on a shared machine), so the
    ratios of pairs are steadier than the fastest steps of separate processes."""
    torch.manual_seed(0)
    (model, _), fp32, size = build_case({**case, "precision": "fp32"})
    _, int8, _ = build_case({**case, "precision": "int8"})
    model.eval()
    video = torch.randn(case["batch"], 3, case["frames"], size, size)

    def seconds(forward):
        start = time.perf_counter()
        forward(video)
        return time.perf_counter() - start

    with torch.inference_mode():
        fp32(video), int8(video)  # warm-up
        return [(seconds(fp32), seconds(int8)) for _ in range(case["pairs"])]


def _int8_pairs(case, queue):
    queue.put(int8_pairs(case))


def _test_pass(case, queue):
    queue.put(time_test_pass(case))


def time_test_pass(case):
    """Seconds of the multi-view test of `num_clips` DFEW-shaped clips (`frames` JPEG frames at the model's size,
    2 segments x 2 crops), data loading included, with and without view de-duplication."""
    from benchmark_data import write_benchmark_clips
    from torch.utils.data import DataLoader

    from datasets import VideoClsDataset
    from datasets.unique_views import UniqueTestViews, collate_views
    from engine.evaluate import evaluate
    torch.manual_seed(0)
    device = torch.device(case["device"])
    (model, landmark), _, size = build_case(case)
    loader_options = dict(batch_size=case["batch"], num_workers=case["workers"], pin_memory=device.type == "cuda")
    result = {}
    with tempfile.TemporaryDirectory() as scratch:
        csv_path = write_benchmark_clips(Path(scratch), case["num_clips"], case["frames"], size)
        dataset = VideoClsDataset(str(csv_path), scratch, "test", 7, (".jpg",), clip_len=case["frames"],
                                  input_size=size, short_side_size=size, test_num_segment=2, test_num_crop=2)
        loaders = {"all views": DataLoader(dataset, **loader_options),
                   "distinct views": DataLoader(UniqueTestViews(dataset), collate_fn=collate_views, **loader_options)}
        for name in ["all views", "distinct views"] * 2:  # alternating; each keeps its faster round
            start = time.perf_counter()
            metrics, *_ = evaluate(model, landmark, loaders[name], device, 7, PRECISIONS[case["precision"]])
            if device.type == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - start
            if name not in result or seconds < result[name]["seconds"]:
                result[name] = {"seconds": seconds, "forward_passes": len(loaders[name].dataset),
                                "uar": metrics["uar"], "war": metrics["war"]}
    return result


def run_in_process(target, case):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=target, args=(case, queue))
    process.start()
    while True:
        try:
            result = queue.get(timeout=5)
            break
        except queue_module.Empty:
            if not process.is_alive():
                raise SystemExit(f"benchmark case {case} failed (exit code {process.exitcode}; its error is above)")
    process.join()
    return result


def cases(args):
    """Model cases for the device: S2D base and the plain ViT-B/16 at the same batch, frames and precision."""
    precisions = ["fp32", "int8"] if args.device == "cpu" else ["bf16", "fp16"]
    compiles = [False, True] if args.compile else [False]
    out = []
    for precision in precisions:
        for compiled in compiles:
            for mode in ("inference",) if precision == "int8" else ("inference", "train"):
                for model in (BASE, VIT):
                    out.append(dict(model=model, mode=mode, precision=precision, compile=compiled, frames=16,
                                    batch=args.batch, device=args.device, warmup=args.warmup, iters=args.iters))
    return out


def ratios(results, test_pass, pairs=None):
    """Lines of the side-by-side ratios."""
    by_key = {(r["model"], r["mode"], r["precision"], r["compile"]): r["seconds"] for r in results}
    lines = []
    for (model, mode, precision, compiled), seconds in by_key.items():
        tag = f"{mode}, {precision}{', compiled' if compiled else ''}"
        if model == BASE and (VIT, mode, precision, compiled) in by_key:
            lines.append(f"S2D / plain ViT-B/16 time, {tag}: {seconds / by_key[(VIT, mode, precision, compiled)]:.3f}")
        if precision == "int8" and (model, mode, "fp32", compiled) in by_key:
            speed_up = by_key[(model, mode, 'fp32', compiled)] / seconds
            lines.append(f"int8 speed-up over fp32, {model} {mode}: {speed_up:.2f}x")
        if compiled and (model, mode, precision, False) in by_key:
            speed_up = by_key[(model, mode, precision, False)] / seconds
            lines.append(f"torch.compile speed-up, {model} {tag}: {speed_up:.2f}x")
    if pairs:
        speed_ups = sorted(fp32 / int8 for fp32, int8 in pairs)
        lines.append(f"int8 speed-up over fp32, {BASE} inference, {len(pairs)} alternating pairs in one process: "
                     f"median {statistics.median(speed_ups):.2f}x (range {speed_ups[0]:.2f}-{speed_ups[-1]:.2f}x)")
    if test_pass:
        full, unique = test_pass["all views"], test_pass["distinct views"]
        lines.append(f"DFEW-shaped test pass ({test_pass['num_clips']} clips x 2 x 2 views): all views "
                     f"{full['seconds']:.1f} s ({full['forward_passes']} forward passes), distinct views "
                     f"{unique['seconds']:.1f} s ({unique['forward_passes']}): "
                     f"{full['seconds'] / unique['seconds']:.2f}x "
                     f"faster; UAR/WAR {full['uar']:.2f}/{full['war']:.2f} vs {unique['uar']:.2f}/{unique['war']:.2f}")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--batch", type=int, default=None,
                        help="clips per step (default: 1 on CPU, 8 on CUDA, the published batch per GPU)")
    parser.add_argument("--iters", type=int, default=None, help="timed steps per case (default: 2 on CPU, 20 on CUDA)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps (default: 1 on CPU, 5 on CUDA)")
    parser.add_argument("--repeats", type=int, default=1, help="run the cases this many times, alternating")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile'd models")
    parser.add_argument("--int8_pairs", type=int, default=5, help="CPU: alternating fp32/int8 forward pairs of S2D "
                        "base in one process, for the int8 speed-up (0 skips them)")
    parser.add_argument("--test_clips", type=int, default=None,
                        help="DFEW-shaped clips in the test-pass timing (default: 2 on CPU, 64 on CUDA; 0 skips it)")
    parser.add_argument("--test_workers", type=int, default=None, help="data-loader workers in the test pass "
                        "(default: 0 on CPU, 8 on CUDA as the recipes)")
    parser.add_argument("--skip_data", action="store_true", help="skip the data-loader benchmark")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    on_cpu = args.device == "cpu"
    args.batch = args.batch or (1 if on_cpu else 8)
    args.iters = args.iters or (2 if on_cpu else 20)
    args.warmup = args.warmup if args.warmup is not None else (1 if on_cpu else 5)
    args.test_clips = args.test_clips if args.test_clips is not None else (2 if on_cpu else 64)
    args.test_workers = args.test_workers if args.test_workers is not None else (0 if on_cpu else 8)

    machine = {"python": platform.python_version(), "torch": torch.__version__, "cpu": platform.processor() or
               platform.machine(), "threads": torch.get_num_threads(),
               "gpu": torch.cuda.get_device_name() if not on_cpu else None,
               "date": time.strftime("%Y-%m-%d"), "command": " ".join(sys.argv)}
    print(json.dumps(machine))
    print("| model | mode | precision | compiled | batch x frames | clips/s | ms/step | peak MiB |")
    print("|---|---|---|---|---|---|---|---|")
    best = {}
    for _ in range(args.repeats):
        for case in cases(args):
            key = json.dumps(case, sort_keys=True)
            r = run_in_process(_run_case, case)
            if key not in best or r["seconds"] < best[key]["seconds"]:
                best[key] = {**case, **r}
    results = list(best.values())
    for r in results:
        r["clips_per_s"], r["ms_per_step"] = round(r["batch"] / r["seconds"], 3), round(1000 * r["seconds"], 1)
        print(f"| {r['model']} | {r['mode']} | {r['precision']} | {'yes' if r['compile'] else 'no'} | "
              f"{r['batch']} x {r['frames']} | {r['clips_per_s']} | {r['ms_per_step']} | {r['peak_memory_mib']} |")
    pairs = None
    if on_cpu and args.int8_pairs:
        pairs = run_in_process(_int8_pairs, dict(model=BASE, compile=False, frames=16, batch=args.batch,
                                                 device="cpu", pairs=args.int8_pairs))
    test_pass = None
    if args.test_clips:
        test_pass = run_in_process(_test_pass, dict(
            model=BASE, precision="fp32" if on_cpu else "bf16", compile=False, device=args.device, frames=16,
            batch=args.batch, num_clips=args.test_clips, workers=args.test_workers))
        test_pass["num_clips"] = args.test_clips
    print("\n".join(ratios(results, test_pass, pairs)), flush=True)
    data = None
    if not args.skip_data:
        from benchmark_data import benchmark_loader
        from benchmark_data import parse_args as data_args
        data = benchmark_loader(data_args([]))
        print(f"data loader, one worker: {data['train_clips_per_s']} train clips/s, "
              f"{data['test_views_per_s']} test views/s")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "models": results, "int8_pairs": pairs,
                                         "test_pass": test_pass, "data_loader": data}, indent=2))


if __name__ == "__main__":
    main()
