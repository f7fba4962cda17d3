"""Throughput and peak memory of S2D (landmark network included), a plain timm ViT-B/16 for reference,
one training step, and the data loader per worker; on CPU and, when present, on CUDA (bf16 and fp16).

    python scripts/benchmark.py                      # CPU: tiny models, base at batch 1, data loader
    python scripts/benchmark.py --device cuda        # adds bf16/fp16 autocast rows
    python scripts/benchmark.py --json results.json

Each case runs in a fresh process so its peak memory (max RSS on CPU, max allocated on CUDA) is its own.
"""
import argparse
import json
import multiprocessing as mp
import platform
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: import models


def _build(name, num_frames):
    """(forward(video) -> logits, trainable parameters, image size) for a benchmark model name."""
    import timm
    from einops import rearrange

    from models import LandmarkFeatures, build_model, freeze_for_finetuning
    if name == "vit_base_patch16_224":  # reference: the same ViT-B/16 on every frame, no prompts or adapters
        vit = timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=7)
        forward = lambda video: vit(rearrange(video, "b c t h w -> (b t) c h w"))  # noqa: E731
        return vit, forward, 224
    model = build_model(name, num_frames=num_frames)
    freeze_for_finetuning(model)
    landmark = LandmarkFeatures(None)
    return (model, landmark), (lambda video: model(video, landmark(video))[0]), model.img_size


def _run_case(case, queue):
    torch.manual_seed(0)
    device = torch.device(case["device"])
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[case["precision"]]
    modules, forward, size = _build(case["model"], case["frames"])
    modules = modules if isinstance(modules, tuple) else (modules,)
    for m in modules:
        m.to(device)
    video = torch.randn(case["batch"], 3, case["frames"], size, size, device=device)
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5)
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    autocast = torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)

    def step():
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

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(case["warmup"]):
        step()
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(case["iters"]):
        step()
    sync()
    seconds = (time.perf_counter() - start) / case["iters"]
    peak = (torch.cuda.max_memory_allocated() if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    queue.put({**case, "clips_per_s": round(case["batch"] / seconds, 3), "ms_per_step": round(1000 * seconds, 1),
               "peak_memory_mib": round(peak / 2 ** 20, 1)})


def run_case(case):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=_run_case, args=(case, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def cases(args):
    """Benchmark cases for the requested device(s)."""
    precisions = ["fp32"] if args.device == "cpu" else ["bf16", "fp16"]
    tiny = dict(model="s2d_tiny_patch8_112", frames=args.tiny_frames, batch=args.tiny_batch)
    base = dict(model="s2d_base_patch16_224", frames=16, batch=args.base_batch)
    vit = dict(model="vit_base_patch16_224", frames=16, batch=args.base_batch)
    out = []
    for precision in precisions:
        for mode, models in (("inference", [base, vit, tiny]), ("train", [base, tiny])):
            for m in models:
                out.append({**m, "mode": mode, "precision": precision, "device": args.device,
                            "warmup": args.warmup, "iters": args.iters})
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--base_batch", type=int, default=None, help="clips per step for base models "
                        "(default: 1 on CPU, 16 on CUDA)")
    parser.add_argument("--tiny_batch", type=int, default=8)
    parser.add_argument("--tiny_frames", type=int, default=8)
    parser.add_argument("--iters", type=int, default=None, help="timed steps (default: 3 on CPU, 20 on CUDA)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps (default: 1 on CPU, 5 on CUDA)")
    parser.add_argument("--skip_data", action="store_true", help="skip the data-loader benchmark")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    on_cpu = args.device == "cpu"
    args.base_batch = args.base_batch or (1 if on_cpu else 16)
    args.iters = args.iters or (3 if on_cpu else 20)
    args.warmup = args.warmup if args.warmup is not None else (1 if on_cpu else 5)

    machine = {"python": platform.python_version(), "torch": torch.__version__, "cpu": platform.processor() or
               platform.machine(), "threads": torch.get_num_threads(),
               "gpu": torch.cuda.get_device_name() if not on_cpu else None,
               "date": time.strftime("%Y-%m-%d")}
    print(json.dumps(machine))
    print(f"| model | mode | precision | batch x frames | clips/s | ms/step | peak MiB |")
    print("|---|---|---|---|---|---|---|")
    results = []
    for case in cases(args):
        r = run_case(case)
        results.append(r)
        print(f"| {r['model']} | {r['mode']} | {r['precision']} | {r['batch']} x {r['frames']} | "
              f"{r['clips_per_s']} | {r['ms_per_step']} | {r['peak_memory_mib']} |", flush=True)
    data = None
    if not args.skip_data:
        from benchmark_data import benchmark_loader, parse_args as data_args
        data = benchmark_loader(data_args([]))
        print(f"data loader, one worker: {data['train_clips_per_s']} train clips/s, "
              f"{data['test_views_per_s']} test views/s")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "models": results, "data_loader": data}, indent=2))


if __name__ == "__main__":
    main()
