"""One DFEW-shaped training epoch taken apart: the data loader alone, the model alone, and the real epoch.

    python benchmarks/benchmark_epoch.py --json epoch.json              # CUDA: 2,000 clips, batch 8, every core loads
    python benchmarks/benchmark_epoch.py --device cpu --model s2d_tiny_patch8_64 --size 64 --frames 4 --clips 8 \\
        --distinct 2 --batch_size 2 --workers 1                       # a quick check of the wiring on a CPU

Clips: --distinct synthetic JPEG clips (benchmarks/benchmark_data.py's write_benchmark_clips), hard-linked under
new names up to --clips (each clip is still decoded and augmented on its own). The loader, criterion (mixup,
cutmix, label smoothing), model with the fine-tuning freezing, landmark network, AdamW and training loop are
main_finetune.py's, with the DFEW recipe's flags (scripts/recipe_common.sh, scripts/ft_dfew.sh; random weights,
SDL off as published). Timed: (1) the loader alone: every batch of the epoch read with --workers workers;
(2) the model alone: as many training steps on one batch held in pinned memory (after --warmup steps);
(3) the real epoch: engine.train_one_epoch over the loader. Worker start-up is inside (1) and (3), as in
training (main_finetune.py starts the workers every epoch).
"""
import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a file: import benchmark_data
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # and main_finetune, engine, models
from benchmark_data import write_benchmark_clips  # noqa: E402
from timm.optim import create_optimizer_v2  # noqa: E402

import main_finetune  # noqa: E402
from engine.train import train_one_epoch  # noqa: E402
from models.fast_paths import prepare_for_speed  # noqa: E402
from models.freezing import freeze_for_finetuning  # noqa: E402
from models.landmark import build_landmark  # noqa: E402
from models.registry import build_model  # noqa: E402
from utils.progress import ProgressLogger  # noqa: E402


def write_clips(root: Path, num_clips: int, distinct: int, frames: int, size: int) -> Path:
    """`distinct` synthetic clips, then hard links to them under new clip names up to `num_clips`; the CSV."""
    csv_path = write_benchmark_clips(root, min(distinct, num_clips), frames, size)
    rows = [f"{clip:05d},{clip % 7}" for clip in range(distinct, num_clips)]
    for clip in range(distinct, num_clips):
        source, target = root / f"{clip % distinct:05d}", root / f"{clip:05d}"
        target.mkdir()
        for frame in sorted(source.iterdir()):
            os.link(frame, target / frame.name)
    with csv_path.open("a") as f:
        f.writelines(row + "\n" for row in rows)
    return csv_path


def recipe_args(args, data_path, csv_path):
    """main_finetune.py's arguments for the DFEW recipe on the synthetic clips."""
    flags = ["--model", args.model, "--data_set", "DFEW", "--nb_classes", "7", "--data_path", str(data_path),
             "--train_label_path", str(csv_path), "--val_label_path", str(csv_path),
             "--test_label_path", str(csv_path), "--batch_size", str(args.batch_size), "--num_sample", "1",
             "--input_size", str(args.size), "--short_side_size", str(args.size), "--num_frames", str(args.frames),
             "--sampling_rate", "1", "--opt", "adamw", "--lr", "1e-5", "--opt_betas", "0.9", "0.999",
             "--weight_decay", "0.05", "--num_workers", str(args.workers), "--landmark_weights", "random",
             "--device", args.device]
    recipe = main_finetune.get_args_parser().parse_args(flags)
    recipe.distributed = False
    return recipe


class RepeatedBatch:
    """A loader stand-in: the same batch `steps` times (what engine.train_one_epoch reads: iteration,
    batch_size)."""

    def __init__(self, batch, steps, batch_size):
        self.batch, self.steps, self.batch_size = batch, steps, batch_size

    def __iter__(self):
        return iter([self.batch] * self.steps)

    def __len__(self):
        return self.steps


def timed(function):
    start = time.perf_counter()
    function()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def run(args):
    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        csv_path = write_clips(Path(scratch), args.clips, args.distinct, args.frames, args.size)
        print(f"wrote {args.clips} clips ({args.distinct} distinct) in {time.perf_counter() - start:.1f} s", flush=True)
        recipe = recipe_args(args, scratch, csv_path)
        loader, _ = main_finetune.build_train_val_loaders(recipe, 1, 0)
        criterion, mixup_fn = main_finetune.build_criterion(recipe)
        device = torch.device(args.device)
        model = build_model(recipe.model, **main_finetune.model_arguments(recipe))
        freeze_for_finetuning(model)
        model.to(device)
        landmark = build_landmark("random", grid_size=model.grid_size).to(device)
        prepare_for_speed(model, landmark, channels_last=device.type == "cuda", speedups=args.speedups)
        optimizer = create_optimizer_v2(model, opt="adamw", lr=recipe.lr, weight_decay=recipe.weight_decay,
                                        eps=recipe.opt_eps, betas=tuple(recipe.opt_betas))
        steps = len(loader.dataset) // args.batch_size
        amp_dtype = torch.bfloat16 if device.type == "cuda" else None

        def epoch(batches, num_steps):
            train_one_epoch(model, landmark, criterion, batches, optimizer, device, 0,
                            steps_per_epoch=num_steps, update_freq=1, lr_schedule=[recipe.lr] * num_steps,
                            wd_schedule=[recipe.weight_decay] * num_steps, amp_dtype=amp_dtype,
                            mixup_fn=mixup_fn, progress=ProgressLogger("epoch", print_freq=num_steps))

        loader_s = timed(lambda: [None for _ in loader])
        batch = next(iter(loader))
        batch = [t.pin_memory() if device.type == "cuda" and torch.is_tensor(t) else t for t in batch]
        epoch(RepeatedBatch(batch, args.warmup, args.batch_size), args.warmup)
        model_s = timed(lambda: epoch(RepeatedBatch(batch, steps, args.batch_size), steps))
        epoch_s = timed(lambda: epoch(loader, steps))
    clips = steps * args.batch_size
    result = {"clips": clips, "batch_size": args.batch_size, "workers": args.workers, "device": args.device,
              "model": args.model, "speedups": list(args.speedups)}
    for name, seconds in (("loader_alone", loader_s), ("model_alone", model_s), ("real_epoch", epoch_s)):
        result[name] = {"seconds": round(seconds, 2), "clips_per_s": round(clips / seconds, 2)}
    return result


def summary_line(result):
    loader, model, epoch = (result[k]["clips_per_s"] for k in ("loader_alone", "model_alone", "real_epoch"))
    return (f"epoch of {result['clips']} clips, batch {result['batch_size']}: loader alone {loader} clips/s "
            f"({result['workers']} workers), model alone {model} clips/s, real epoch {epoch} clips/s "
            f"({epoch / min(loader, model):.0%} of the slower part, the {'loader' if loader < model else 'model'})")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    parser.add_argument("--model", default="s2d_base_patch16_224")
    parser.add_argument("--clips", type=int, default=2000, help="training clips in the epoch")
    parser.add_argument("--distinct", type=int, default=100, help="distinct clips written (the rest are links)")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=224, help="frame size, input size and short side")
    parser.add_argument("--batch_size", type=int, default=8, help="clips per step (the published 8 per GPU)")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="loader workers (default: every core)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed training steps before the model alone")
    parser.add_argument("--speedups", default="", help="comma-separated models.fast_paths.SPEEDUPS names")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    args.speedups = tuple(s for s in args.speedups.split(",") if s)
    return args


def main(argv=None):
    args = parse_args(argv)
    result = run(args)
    print(json.dumps(result), flush=True)
    print(summary_line(result), flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
