"""Speed options that leave the computation unchanged: channels-last landmark CNN and torch.compile."""
import torch
from torch import nn


def prepare_for_speed(model: nn.Module, landmark: nn.Module, channels_last: bool = False,
                      compile: bool = False) -> None:
    """In place. `channels_last`: the landmark network's convolutions use channels-last memory (faster with
    cuDNN under autocast; used on CUDA). `compile`: torch.compile both modules' forward (nn.Module.compile,
    so parameter names, state dicts and checkpoints are unchanged). The ViT attention already runs fused
    (F.scaled_dot_product_attention in timm's Attention, the temporal adapters' included)."""
    if channels_last:
        landmark.to(memory_format=torch.channels_last)
    if compile:
        model.compile()
        landmark.compile()
