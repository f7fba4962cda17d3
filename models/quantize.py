"""Dynamic int8 quantization of the Linear layers, for faster inference on a CPU."""
import re
import warnings
from contextlib import contextmanager

import torch
from torch import nn

# oneDNN's int8 Linear kernels: ViT-B/16 Linear layers 1.9x faster than float32 on an AVX2 CPU without
# VNNI, fbgemm's (PyTorch's default engine there) 1.7x (docs/BENCHMARKS.md).
PREFERRED_ENGINE = "onednn"


def quantize_int8(model: nn.Module, keep_float: str | None = None) -> nn.Module:
    """An inference-only copy of `model` on the CPU whose nn.Linear layers (ViT blocks, adapters, temporal
    attention, head: nearly all of the computation) run in int8: weights quantized once per tensor,
    activations quantized on the fly per call. Everything else stays float32, and so do the Linear layers whose
    name `keep_float` (a regular expression) finds; `model` is left unchanged.
    The weights are packed for oneDNN where this PyTorch has it (the packing picks the kernels that run;
    the process-wide quantized engine is left as it was).
    """
    if any(p.device.type != "cpu" for p in model.parameters()):
        raise ValueError("quantize_int8: move the model to the CPU first (the int8 kernels are CPU-only)")
    with warnings.catch_warnings(), quantized_engine(int8_engine()):
        # torch.ao.quantization is deprecated in favour of torchao, but shipped and working in the pinned torch
        warnings.filterwarnings("ignore", message=r"torch\.ao\.quantization is deprecated")
        warnings.filterwarnings("ignore", message=r"torch\.quantize_per_tensor, torch\.quantize_per_channel")
        layers = {nn.Linear} if keep_float is None else {
            name: torch.ao.quantization.default_dynamic_qconfig for name, module in model.named_modules()
            if isinstance(module, nn.Linear) and not re.search(keep_float, name)}
        quantized = torch.ao.quantization.quantize_dynamic(model, layers, dtype=torch.qint8)
    return quantized.eval()


def int8_engine() -> str:
    """The quantized engine the weights are packed for: oneDNN where available, else PyTorch's default."""
    supported = torch.backends.quantized.supported_engines
    return PREFERRED_ENGINE if PREFERRED_ENGINE in supported else torch.backends.quantized.engine


@contextmanager
def quantized_engine(name: str):
    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = name
    try:
        yield
    finally:
        torch.backends.quantized.engine = previous
