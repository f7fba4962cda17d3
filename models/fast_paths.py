"""Speed options that leave the computation unchanged: channels-last landmark CNN, torch.compile (whole or per
layer), fewer layout copies in the prompt blocks, BatchNorm folded into the landmark network's convolutions."""
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .mobilefacenet import ConvBlock, LinearBlock


def use_lean_layout(model: nn.Module, enabled: bool = True) -> None:
    """Every prompt block copies its token map once and regroups the TMA's hidden features (`PromptBlock`)."""
    for block in model.prompt_blocks:
        block.lean_layout = enabled


def fold_landmark_batchnorm(landmark: nn.Module) -> None:
    """In place: each convolution of the (frozen, always eval-mode) landmark network absorbs the BatchNorm after
    it, one kernel instead of two; equal up to float rounding. The landmark network's state dict loses its
    BatchNorm entries, so load its weights before (the S2D model's state dict is not touched)."""
    for block in landmark.modules():
        if isinstance(block, (ConvBlock, LinearBlock)) and isinstance(block.bn, nn.BatchNorm2d):
            block.conv, block.bn = fuse_conv_bn_eval(block.conv, block.bn), nn.Identity()


def compile_layers(model: nn.Module, landmark: nn.Module | None = None, **compile_options) -> None:
    """Regional torch.compile: the first ViT block, and the (deep prompt, ViT block) layer that the other blocks
    share (`PromptedViT.prompted_layer`, modules as arguments: compiled once, reused by every layer), and the
    landmark network when given. Much shorter compilation than the whole model; names and state dicts
    unchanged. Undo with `del model.prompted_layer`."""
    model.blocks[0].compile(**compile_options)
    model.prompted_layer = torch.compile(type(model).prompted_layer, **compile_options)
    if landmark is not None:
        landmark.compile(**compile_options)


SPEEDUPS = {  # name -> function(model, landmark, **compile_options)
    "lean_layout": lambda model, landmark, **_: use_lean_layout(model),
    "fold_landmark_bn": lambda model, landmark, **_: fold_landmark_batchnorm(landmark),
    "compile_layers": compile_layers,
}
# On by default in training, evaluation and analysis: the same outputs and gradients (tests/test_speedups.py), no
# compilation. compile_layers stays opt-in (minutes of compilation).
EQUAL_SPEEDUPS = ("lean_layout", "fold_landmark_bn")


def prepare_for_speed(model: nn.Module, landmark: nn.Module, channels_last: bool = False,
                      compile: bool = False, speedups=(), compile_options=None) -> None:
    """In place. `speedups`: names from SPEEDUPS, applied first; `compile_options`: torch.compile's keywords.
    `channels_last`: the landmark network's convolutions use channels-last memory (faster with cuDNN under
    autocast; used on CUDA). `compile`: torch.compile both modules' forward (nn.Module.compile, so parameter
    names, state dicts and checkpoints are unchanged). The ViT attention already runs fused
    (F.scaled_dot_product_attention in timm's Attention, the temporal adapters' included)."""
    unknown = sorted(set(speedups) - set(SPEEDUPS))
    if unknown:
        raise ValueError(f"unknown speed-ups {unknown}; known: {sorted(SPEEDUPS)}")
    if compile and "compile_layers" in speedups:
        raise ValueError("compile (the whole model) and the compile_layers speed-up exclude each other")
    for name in SPEEDUPS:  # a fixed order: BatchNorm folded before the compilation
        if name in speedups:
            SPEEDUPS[name](model, landmark, **(compile_options or {}))
    if channels_last:
        landmark.to(memory_format=torch.channels_last)
    if compile:
        model.compile(**(compile_options or {}))
        landmark.compile(**(compile_options or {}))
