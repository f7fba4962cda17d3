"""Which Linear layers int8 can take: PyTorch dynamic int8 with some layers kept in float32, against PyTorch fp32,
on the agreement sets of tests/test_agreement.py (the trained tiny video model; 140 drawn test clips, 100 windows
of a real photograph): top-1 agreement, mean |probability difference|, and fp32's top-2 margin on the clips whose
class changes. With --time_model, the seconds per 16-frame window of each choice on that model (random weights,
alternating rounds, fastest of --repeats).

    python benchmarks/int8_layers.py --keep_float '' 'mlp\\.fc2' --time_model s2d_base_patch16_224
"""
import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: import the project
from benchmarks.benchmark_predict import random_checkpoint  # noqa: E402
from inference.backends import TorchRunner, check_clips  # noqa: E402
from inference.model import VideoModel  # noqa: E402
from models.quantize import quantize_int8  # noqa: E402
from tests.test_agreement import drawn_clips, photo_windows, probabilities, trained_tiny_checkpoint  # noqa: E402


def int8_run(video_model, keep_float):
    """The video model's runner with its Linear layers in int8 but those whose name `keep_float` finds ('': none)."""
    return TorchRunner(quantize_int8(video_model.model, keep_float or None), video_model.landmark,
                       video_model.device, "fp32")


def top2_margin(probabilities_):
    ordered = np.sort(probabilities_, axis=1)
    return ordered[:, -1] - ordered[:, -2]


def agreement_rows(choices, tmp):
    video_model = VideoModel(trained_tiny_checkpoint(tmp / "trained.pth"), "random", "cpu", backend="torch",
                             precision="fp32", log=lambda line: None)
    clip_sets = {"drawn": drawn_clips(), "photo": photo_windows()}
    fp32_run = video_model.run
    reference = {name: probabilities(video_model, clips) for name, clips in clip_sets.items()}
    for name, expected in reference.items():
        quantiles = np.quantile(top2_margin(expected), [0.05, 0.1, 0.5])
        print(f"fp32 top-2 margin on {name}: 5% {quantiles[0]:.4f}, 10% {quantiles[1]:.4f}, median {quantiles[2]:.4f}")
    print("\n| Linear layers kept in fp32 | clips | top-1 agreement | mean abs prob. difference | "
          "fp32 top-2 margin of the changed clips |")
    print("|---|---|---|---|---|")
    for keep_float in choices:
        video_model.run = int8_run(video_model, keep_float)
        for name, clips in clip_sets.items():
            got, expected = probabilities(video_model, clips), reference[name]
            changed = got.argmax(1) != expected.argmax(1)
            margins = ", ".join(f"{m:.4f}" for m in top2_margin(expected)[changed]) or "none"
            print(f"| {keep_float or 'none'} | {name} ({len(clips)}) | {100 * (1 - changed.mean()):.1f}% | "
                  f"{np.abs(got - expected).mean():.4f} | {margins} |", flush=True)
        video_model.run = fp32_run


def timing_rows(choices, model_name, repeats, tmp):
    random_checkpoint(tmp / "random.pth", model_name)
    video_model = VideoModel(tmp / "random.pth", "random", "cpu", backend="torch", precision="fp32",
                             log=lambda line: None)
    runs = {"fp32 (no int8)": video_model.run, **{keep or "none": int8_run(video_model, keep) for keep in choices}}
    window, times = check_clips(video_model, 1), {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run(window)
            times[name].append(time.perf_counter() - start)
    fp32 = min(times["fp32 (no int8)"])
    print(f"\n{model_name}, 1 x {video_model.settings.num_frames} frames, {torch.get_num_threads()} threads, "
          f"fastest of {repeats}\n\n| Linear layers kept in fp32 | s per window | vs fp32 |\n|---|---|---|")
    for name, seconds in times.items():
        print(f"| {name} | {min(seconds):.2f} | {fp32 / min(seconds):.2f}x |")


def layer_pattern(text):
    try:
        re.compile(text)
    except re.error as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not a regular expression ({error})") from None
    return text


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep_float", nargs="+", default=["", r"mlp\.fc2"], type=layer_pattern,
                        help="regular expressions of Linear layer names kept in fp32 ('': none)")
    parser.add_argument("--time_model", default=None, help="also time each choice on this model, e.g. "
                                                            "s2d_base_patch16_224")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        agreement_rows(args.keep_float, Path(tmp))
        if args.time_model:
            timing_rows(args.keep_float, args.time_model, args.repeats, Path(tmp))


if __name__ == "__main__":
    main()
