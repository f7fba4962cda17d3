"""Dynamic int8 quantization of the Linear layers, for faster inference on a CPU."""
import warnings

import torch
from torch import nn


def quantize_int8(model: nn.Module) -> nn.Module:
    """An inference-only copy of `model` on the CPU whose nn.Linear layers (ViT blocks, adapters, temporal
    attention, head: nearly all of the computation) run in int8: weights quantized once per tensor,
    activations quantized on the fly per call. Everything else stays float32; `model` is left unchanged.
    """
    if any(p.device.type != "cpu" for p in model.parameters()):
        raise ValueError("quantize_int8: move the model to the CPU first (the int8 kernels are CPU-only)")
    with warnings.catch_warnings():
        # torch.ao.quantization is deprecated in favour of torchao, but shipped and working in the pinned torch
        warnings.filterwarnings("ignore", message=r"torch\.ao\.quantization is deprecated")
        warnings.filterwarnings("ignore", message=r"torch\.quantize_per_tensor, torch\.quantize_per_channel")
        quantized = torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
    return quantized.eval()
