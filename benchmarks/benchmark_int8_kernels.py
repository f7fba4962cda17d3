"""Time of S2D base's Linear layers (every shape it has, on the tokens of one 16-frame clip) in float32 and
in dynamic int8 packed for each quantized engine of this PyTorch: the measurement behind the engine that
`models.quantize.quantize_int8` packs for. Run it on a quiet machine; the engines alternate, each keeps its
fastest call.

    python benchmarks/benchmark_int8_kernels.py
"""
import argparse
import sys
import time
import warnings
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: import models
from models.quantize import quantized_engine  # noqa: E402

TOKENS = 16 * 197  # one clip of 16 frames, 196 patches + the class token each
# (in, out, uses per forward): ViT-B/16 block qkv, proj, fc1, fc2; TMA adapters down/up, temporal qkv, proj
SHAPES = [(768, 2304, 12), (768, 768, 12), (768, 3072, 12), (3072, 768, 12),
          (768, 192, 24), (192, 768, 24), (192, 576, 12), (192, 192, 12)]


def seconds(module, x):
    start = time.perf_counter()
    module(x)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="calls per engine and shape (the fastest counts)")
    args = parser.parse_args(argv)
    engines = [e for e in torch.backends.quantized.supported_engines if e in ("fbgemm", "onednn", "qnnpack")]
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {TOKENS} tokens; ms per call")
    print("| in -> out | uses | fp32 | " + " | ".join(f"int8 {e}" for e in engines) + " |")
    print("|---" * (3 + len(engines)) + "|")
    totals = dict.fromkeys(["fp32", *engines], 0.0)
    for d_in, d_out, uses in SHAPES:
        linear = nn.Sequential(nn.Linear(d_in, d_out)).eval()
        candidates = {"fp32": linear}
        for engine in engines:
            with warnings.catch_warnings(), quantized_engine(engine):
                warnings.simplefilter("ignore")
                candidates[engine] = torch.ao.quantization.quantize_dynamic(linear, {nn.Linear}, dtype=torch.qint8)
        x = torch.randn(TOKENS, d_in)
        with torch.inference_mode():
            for module in candidates.values():
                module(x)  # warm-up
            best = dict.fromkeys(candidates, float("inf"))
            for _ in range(args.rounds):  # alternating, so that a slow spell of a shared machine hits every engine
                for name, module in candidates.items():
                    best[name] = min(best[name], seconds(module, x))
        for name in totals:
            totals[name] += uses * best[name]
        print(f"| {d_in} -> {d_out} | {uses} | " + " | ".join(f"{1e3 * best[n]:.1f}" for n in candidates) + " |")
    print("| all Linear layers of one forward | | " + " | ".join(f"{1e3 * t:.0f}" for t in totals.values()) + " |")
    for engine in engines:
        print(f"int8 {engine}: {totals['fp32'] / totals[engine]:.2f}x faster than float32 on these layers")


if __name__ == "__main__":
    main()
