"""Where S2D's time goes: torch.profiler over inference and a fine-tuning training step, per module group.

    python benchmarks/profile_s2d.py --device cuda                  # S2D base, bf16 autocast, batch 8 x 16 frames
    python benchmarks/profile_s2d.py --device cpu --batch_size 1 --json profile.json
    python benchmarks/profile_s2d.py --device cuda --speedups lean_layout,fold_landmark_bn

Each operator's own time goes to the innermost module group it ran in (forward hooks open a profiler scope per
module; a backward operator goes to the group of the forward operator that created it, matched by the autograd
sequence number), so the groups add up to the whole step. On CUDA the group times are kernel times on the
device (not launch times); CPU times are shown beside them (the host side: Python, dispatch and launches).
The step is the one of benchmarks/benchmark.py: landmark network included, the fine-tuning freezing, AdamW.
"""
import argparse
import collections
import json
import sys
from pathlib import Path

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile, record_function

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a file: import benchmark (it adds the root)
from benchmark import BASE, build_case, clip_batch, make_step, time_step  # noqa: E402

LANDMARK, PATCH, PROMPT, TMA, VIT_BLOCKS, OTHER, OPTIMIZER = (
    "landmark network", "patch embedding", "prompt blocks (without TMA)", "TMA", "ViT blocks", "head and other",
    "optimizer")
GROUPS = (LANDMARK, PATCH, PROMPT, TMA, VIT_BLOCKS, OTHER, OPTIMIZER)
SCOPE = "s2d::"
BACKWARD = "autograd::engine::evaluate_function: "


def module_groups(model, landmark):
    """[(module, group)]: the modules whose forward opens a profiler scope."""
    pairs = [(landmark, LANDMARK), (model.patch_embed, PATCH), (model.patch_embed_prompt, PATCH)]
    pairs += [(m, PROMPT) for m in (*model.prompt_blocks, *model.prompt_norms)]
    pairs += [(m.TMA, TMA) for m in model.prompt_blocks if m.TMA is not None]
    return pairs + [(m, VIT_BLOCKS) for m in model.blocks]


def add_scopes(model, landmark):
    """Profiler scopes `s2d::<group>` around the forward of every grouped module and around the layer glue of
    the deep prompts (PromptedViT.prompted_layer); returns the hook handles."""
    open_scopes = []

    def enter(group):
        def hook(module, args):
            open_scopes.append(record_function(SCOPE + group).__enter__())
        return hook

    def leave(module, args, output):
        open_scopes.pop().__exit__(None, None, None)

    layer = model.prompted_layer

    def scoped_layer(*args):
        with record_function(SCOPE + PROMPT):
            return layer(*args)

    model.prompted_layer = scoped_layer
    return [h for m, group in module_groups(model, landmark)
            for h in (m.register_forward_pre_hook(enter(group)), m.register_forward_hook(leave))]


def group_of(event, backward_groups):
    """The group of a CPU event: its innermost scope; in the backward pass, the forward group of its node."""
    while event is not None:
        if event.name.startswith(SCOPE):
            return event.name[len(SCOPE):]
        if event.name.startswith("Optimizer."):
            return OPTIMIZER
        if event.name.startswith(BACKWARD):
            return backward_groups.get(event.sequence_nr, OTHER)
        event = event.cpu_parent
    return OTHER


def is_backward(event):
    while event is not None:
        if event.name.startswith(BACKWARD):
            return True
        event = event.cpu_parent
    return False


def attribute(events, steps):
    """{"groups": {group: {"cpu_ms", "device_ms", "kernels"} per step}, "top": [...]} from profiler events."""
    cpu_events = [e for e in events if e.device_type == DeviceType.CPU and not e.is_async]
    backward_groups = {}
    for e in cpu_events:  # forward operators that recorded an autograd node: the node's sequence number -> group
        if e.sequence_nr >= 0 and not is_backward(e):
            backward_groups[e.sequence_nr] = group_of(e, {})
    groups = {g: collections.Counter() for g in GROUPS}
    ops = collections.defaultdict(collections.Counter)
    for e in cpu_events:
        row = groups[group_of(e, backward_groups)]
        row["cpu_ms"] += e.self_cpu_time_total / 1e3 / steps
        row["device_ms"] += e.self_device_time_total / 1e3 / steps
        row["kernels"] += len(e.kernels) / steps
        if not e.name.startswith((SCOPE, "Optimizer.", BACKWARD)):
            ops[e.name].update(ms=e.self_cpu_time_total / 1e3 / steps, calls=1 / steps)
    kernels = collections.defaultdict(collections.Counter)
    for e in events:
        if e.device_type != DeviceType.CPU and not e.is_async and not e.name.startswith((SCOPE, "Optimizer.")):
            kernels[e.name].update(ms=e.device_time_total / 1e3 / steps, calls=1 / steps)
    return {"groups": {g: dict(row) for g, row in groups.items()}, "top_cpu_ops": top(ops), "top_kernels": top(kernels)}


def top(by_name, n=15):
    rows = sorted(by_name.items(), key=lambda item: -item[1]["ms"])[:n]
    return [{"name": name, "ms": round(c["ms"], 3), "calls": round(c["calls"], 1)} for name, c in rows]


def profile_mode(args, mode):
    """Wall time, peak memory and the per-group profile of `mode` ("inference" or "train")."""
    cuda = args.device == "cuda"
    case = dict(model=args.model, mode=mode, precision="bf16" if cuda else "fp32", compile=False,
                frames=args.num_frames, batch=args.batch_size, device=args.device, speedups=args.speedups)
    torch.manual_seed(0)
    modules, forward, size = build_case(case)
    handles = add_scopes(*modules)
    step, video = make_step(case, modules, forward), clip_batch(case, size)
    seconds, peak = time_step(step, video, args.warmup, args.iters)
    activities = [ProfilerActivity.CPU] + [ProfilerActivity.CUDA] * cuda
    with profile(activities=activities) as prof:
        for _ in range(args.steps):
            step(video)
        if cuda:
            torch.cuda.synchronize()
    for handle in handles:
        handle.remove()
    result = attribute(prof.events(), args.steps)
    return {"mode": mode, "wall_ms": round(1e3 * seconds, 2), "peak_memory_mib": peak, **result}


def table(result, cuda):
    """Markdown lines: per group its time (kernel time on CUDA) and share of the step."""
    key = "device_ms" if cuda else "cpu_ms"
    total = sum(row.get(key, 0) for row in result["groups"].values())
    lines = [f"{result['mode']}: wall {result['wall_ms']} ms per step (fastest unprofiled step), peak "
             f"{result['peak_memory_mib']} MiB; profiled {'kernel' if cuda else 'CPU'} time {total:.1f} ms per step",
             "| group | " + ("kernel ms | % | kernels | CPU ms |" if cuda else "CPU ms | % |"),
             "|---|---|---|" + ("---|---|" if cuda else "")]
    for group, row in result["groups"].items():
        share = 100 * row.get(key, 0) / total if total else 0.0
        extra = f" {row.get('kernels', 0):.0f} | {row.get('cpu_ms', 0):.1f} |" if cuda else ""
        lines.append(f"| {group} | {row.get(key, 0):.1f} | {share:.1f} |{extra}")
    name = "top_kernels" if cuda else "top_cpu_ops"
    lines.append(f"top {'CUDA kernels' if cuda else 'CPU operators'} (ms per step, calls): " + "; ".join(
        f"{r['name'][:60]} {r['ms']:.2f} ({r['calls']:g})" for r in result[name][:8]))
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=BASE, help="an s2d_* video model of models/registry.py")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    parser.add_argument("--batch_size", type=int, default=None, help="clips per step (default: 8 on CUDA, 1 on CPU)")
    parser.add_argument("--num_frames", type=int, default=16)
    parser.add_argument("--modes", default="inference,train", help="comma-separated: inference, train")
    parser.add_argument("--speedups", default="", help="comma-separated models.fast_paths.SPEEDUPS names "
                        "(not compile_layers: compiled code has no module scopes)")
    parser.add_argument("--steps", type=int, default=None, help="profiled steps (default: 5 on CUDA, 1 on CPU)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default: 3 on CUDA, 1 on CPU)")
    parser.add_argument("--iters", type=int, default=None, help="timed unprofiled steps (default: 10 CUDA, 1 CPU)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    args.speedups = tuple(s for s in args.speedups.split(",") if s)
    if "compile_layers" in args.speedups:
        raise SystemExit("--speedups compile_layers cannot be profiled per module group")
    args.batch_size = args.batch_size or (8 if cuda else 1)
    args.steps = args.steps or (5 if cuda else 1)
    args.warmup = args.warmup if args.warmup is not None else (3 if cuda else 1)
    args.iters = args.iters or (10 if cuda else 1)
    setting = {"model": args.model, "device": torch.cuda.get_device_name() if cuda else "cpu",
               "batch x frames": f"{args.batch_size} x {args.num_frames}", "precision": "bf16" if cuda else "fp32",
               "speedups": list(args.speedups), "torch": torch.__version__, "threads": torch.get_num_threads()}
    print(json.dumps(setting), flush=True)
    results = []
    for mode in args.modes.split(","):
        results.append(profile_mode(args, mode))
        print("\n".join(table(results[-1], cuda)), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"setting": setting, "results": results}, indent=2))
    return results


if __name__ == "__main__":
    main()
