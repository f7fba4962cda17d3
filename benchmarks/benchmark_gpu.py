"""S2D's opt-in speed-ups side by side with eager S2D and a plain ViT of the same backbone, in one process.

    python benchmarks/benchmark_gpu.py --json gpu.json   # CUDA, bf16: S2D base vs ViT-B/16, batch 8 and 32
    python benchmarks/benchmark_gpu.py --test_clips 64 --variants none  # only the test pass (distinct views on/off)
    python benchmarks/benchmark_gpu.py --device cpu --model s2d_tiny_patch8_64 --frames 2 --batches 1 \\
        --iters 1 --warmup 1 --compile_backend aot_eager             # a quick check of the wiring on a CPU

For every variant (built once) and mode (inference; training step with the fine-tuning freezing, AdamW) and
batch: the first step (compilation, CUDA-graph capture and cuDNN autotuning happen there), the fastest of
--iters steps, the peak memory (max allocated after the warm-up) and the time relative to the plain ViT's
eager step. Order: the eager variants (CUDA graphs included), the largest training batch that fits (doubling
from the largest --batches, then halving the gap), the compiled variants (at --compiled_batches only), the
ratios; optionally the multi-view test pass of benchmarks/benchmark.py. The landmark network is part of every
S2D step; the ViT runs on the same frames (all its weights trained in its training step: full fine-tuning).
Results go to --json after every row, so a run cut short keeps what it measured.
"""
import argparse
import gc
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a file: import benchmark (it adds the root)
from benchmark import BASE, VIT, build_case, clip_batch, make_step, time_step, time_test_pass  # noqa: E402

from models.registry import MODEL_CONFIGS  # noqa: E402

LEAN_FOLD = ("lean_layout", "fold_landmark_bn")
VARIANTS = {  # name -> (S2D or the plain ViT, speed-ups, inference from CUDA graphs)
    "S2D eager": ("s2d", (), False),
    "ViT eager": ("vit", (), False),
    "S2D lean_layout": ("s2d", ("lean_layout",), False),
    "S2D fold_landmark_bn": ("s2d", ("fold_landmark_bn",), False),
    "S2D lean+fold": ("s2d", LEAN_FOLD, False),
    "S2D lean+fold cuda_graph": ("s2d", LEAN_FOLD, True),
    "ViT cuda_graph": ("vit", (), True),
    "S2D lean+fold compile_layers": ("s2d", LEAN_FOLD + ("compile_layers",), False),
    "ViT compile_layers": ("vit", ("compile_layers",), False),
}
FLOOR = "ViT eager"
TARGETS = {"inference": 1.3, "train": 1.0}  # S2D / plain ViT time: the aims of docs/BENCHMARKS.md


def empty_caches():
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def measure(case, modules, forward, size):
    """One row: first step, fastest step and peak memory of `case` on already built modules; "OOM" rows on
    CUDA out-of-memory."""
    row = {k: case[k] for k in ("variant", "mode", "batch", "frames")}
    try:
        step, video = make_step(case, modules, forward), clip_batch(case, size)
        start = time.perf_counter()
        step(video)
        if video.is_cuda:
            torch.cuda.synchronize()
        row["first_step_s"] = round(time.perf_counter() - start, 2)
        seconds, peak = time_step(step, video, case["warmup"], case["iters"])
        row.update(ms_per_step=round(1e3 * seconds, 2), clips_per_s=round(case["batch"] / seconds, 2),
                   peak_memory_mib=peak)
    except torch.OutOfMemoryError:
        row["oom"] = True
    finally:
        step = video = None
        for m in modules:  # gradients of a step cut short by out-of-memory
            m.zero_grad(set_to_none=True)
        empty_caches()
    return row


def run_variant(args, name, batches, out, save):
    """Rows of variant `name` (built once) for every mode and batch, printed and saved as they come."""
    base, (modules, forward, size) = build_variant(args, name)
    for mode in args.modes.split(","):
        for batch in [] if mode == "train" and base["cuda_graph"] else batches:
            out["rows"].append(measure({**base, "mode": mode, "batch": batch, "warmup": args.warmup,
                                        "iters": args.iters}, modules, forward, size))
            print(row_line(out["rows"][-1]), flush=True)
            save()
    del modules, forward
    empty_caches()


def build_variant(args, name):
    kind, speedups, cuda_graph = VARIANTS[name]
    base = dict(variant=name, model=args.model if kind == "s2d" else VIT, precision=args.precision, compile=False,
                frames=args.frames, device=args.device, speedups=speedups, cuda_graph=cuda_graph,
                compile_options={"backend": args.compile_backend}, backbone=MODEL_CONFIGS[args.model])
    torch.manual_seed(0)
    return base, build_case(base)


def largest_batch(args, name, start):
    """(largest training batch that fits, its row) of variant `name`, see `search_largest`."""
    base, (modules, forward, size) = build_variant(args, name)
    result = search_largest(lambda batch: measure({**base, "mode": "train", "batch": batch, "warmup": 1, "iters": 2},
                                                  modules, forward, size), start, args.max_batch_tries)
    modules = forward = None  # freed before the caches are emptied
    empty_caches()
    return result


def search_largest(run, start, tries):
    """(largest batch whose row `run(batch)` is not out of memory, that row): doubling from `start` until out of
    memory, then halving the gap until it is at most a quarter of the batch that fits; at most `tries` runs.
    (None, None) when `start` does not fit."""
    fits, fails, best, batch = None, None, None, start
    for _ in range(tries):
        row = run(batch)
        if row.get("oom"):
            fails = batch
        else:
            fits, best = batch, row
        if fails is None:
            batch *= 2
        elif fits is None or fails - fits <= max(1, fits // 4):
            break
        else:
            batch = (fits + fails) // 2
    return fits, best


def ratio_lines(rows):
    """S2D / plain ViT time per mode and batch (eager floor; compiled against compiled, graphs against graphs)."""
    times = {(r["variant"], r["mode"], r["batch"]): r["ms_per_step"] for r in rows if "ms_per_step" in r}
    lines = []
    for (variant, mode, batch), ms in times.items():
        if not variant.startswith("S2D"):
            continue
        floors = [FLOOR] + [f"ViT {tag}" for tag in ("compile_layers", "cuda_graph") if variant.endswith(tag)]
        parts = [f"{ms / times[(f, mode, batch)]:.2f}x {f}" for f in floors if (f, mode, batch) in times]
        if parts:
            met = ms / times[(FLOOR, mode, batch)] <= TARGETS[mode] if (FLOOR, mode, batch) in times else None
            aim = "" if met is None else f" (aim <= {TARGETS[mode]}x: {'met' if met else 'not met'})"
            lines.append(f"{variant}, {mode}, batch {batch}: " + ", ".join(parts) + aim)
    return lines


def views_line(result):
    full, unique = result["all views"], result["distinct views"]
    return (f"test pass, {result['num_clips']} clips x 2 x 2 views: all views {full['seconds']:.1f} s "
            f"({full['forward_passes']} forward passes), distinct views {unique['seconds']:.1f} s "
            f"({unique['forward_passes']}): {full['seconds'] / unique['seconds']:.2f}x; UAR/WAR "
            f"{full['uar']:.2f}/{full['war']:.2f} vs {unique['uar']:.2f}/{unique['war']:.2f}")


def largest_batch_line(name, result):
    return f"largest training batch of {name}: {result['batch']}" + (
        f" ({result['clips_per_s']} clips/s, {result['peak_memory_mib']} MiB)" if result["batch"] else "")


TABLE_HEADER = ("| variant | mode | batch x frames | clips/s | ms/step | peak MiB | first step s |\n"
                "|---|---|---|---|---|---|---|")


def row_line(r):
    if r.get("oom"):
        return f"| {r['variant']} | {r['mode']} | {r['batch']} x {r['frames']} | out of memory | | | |"
    return (f"| {r['variant']} | {r['mode']} | {r['batch']} x {r['frames']} | {r['clips_per_s']} | "
            f"{r['ms_per_step']} | {r['peak_memory_mib']} | {r['first_step_s']} |")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    parser.add_argument("--model", default=BASE, help="the S2D model; the plain ViT gets its backbone")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--batches", default="8,32", help="comma-separated clip batch sizes")
    parser.add_argument("--modes", default="inference,train")
    parser.add_argument("--variants", default="all", help=f"comma-separated, 'all' or 'none': {', '.join(VARIANTS)}")
    parser.add_argument("--iters", type=int, default=10, help="timed steps per row")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps after the first")
    parser.add_argument("--compile_backend", default="inductor", help="torch.compile backend (aot_eager: no codegen)")
    parser.add_argument("--compiled_batches", default="8", help="batches of the compiled variants (each batch size "
                        "and mode compiles again: minutes)")
    parser.add_argument("--max_batch", default="S2D eager,ViT eager", help="variants whose largest training batch "
                        "is searched (comma-separated; '' skips it; CUDA only: a CPU has no memory limit to find)")
    parser.add_argument("--max_batch_tries", type=int, default=6)
    parser.add_argument("--test_clips", type=int, default=0, help="DFEW-shaped clips for the test pass (0 skips it)")
    parser.add_argument("--test_workers", type=int, default=8, help="data-loader workers in the test pass")
    parser.add_argument("--json", type=Path, help="also write the results here (after every row)")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    args.precision = "bf16" if args.device == "cuda" else "fp32"
    names = {"all": list(VARIANTS), "none": []}.get(args.variants, [v for v in args.variants.split(",") if v])
    unknown = [v for v in names + args.max_batch.split(",") if v and v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {list(VARIANTS)}")
    # CUDA graphs and the memory limit are CUDA-only
    args.variant_names = [v for v in names if args.device == "cuda" or not VARIANTS[v][2]]
    args.max_batch_names = [v for v in args.max_batch.split(",") if v and args.device == "cuda"]
    return args


def main(argv=None):
    args = parse_args(argv)
    setting = {"model": args.model, "device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu",
               "precision": args.precision, "frames": args.frames, "torch": torch.__version__,
               "date": time.strftime("%Y-%m-%d"), "command": " ".join(sys.argv)}
    out = {"setting": setting, "rows": [], "largest_train_batch": {}, "ratios": [], "test_pass": None}

    def save():
        if args.json:
            args.json.write_text(json.dumps(out, indent=2))

    print(json.dumps(setting), flush=True)
    print(TABLE_HEADER)
    batches = [int(b) for b in args.batches.split(",")]
    compiled = [v for v in args.variant_names if "compile_layers" in VARIANTS[v][1]]
    for name in [v for v in args.variant_names if v not in compiled]:  # eager first: a run cut short keeps them
        run_variant(args, name, batches, out, save)
    for name in args.max_batch_names:
        fits, row = largest_batch(args, name, max(batches))
        out["largest_train_batch"][name] = {"batch": fits, **(row or {})}
        print(largest_batch_line(name, out["largest_train_batch"][name]), flush=True)
        save()
    for name in compiled:
        run_variant(args, name, [int(b) for b in args.compiled_batches.split(",")], out, save)
    out["ratios"] = ratio_lines(out["rows"])
    print("\n".join(out["ratios"]), flush=True)
    save()
    if args.test_clips:
        out["test_pass"] = time_test_pass(dict(model=args.model, precision=args.precision, compile=False,
                                          device=args.device, frames=args.frames, batch=batches[0],
                                          num_clips=args.test_clips, workers=args.test_workers))
        out["test_pass"]["num_clips"] = args.test_clips
        print(views_line(out["test_pass"]), flush=True)
        save()
    return out


if __name__ == "__main__":
    main()
