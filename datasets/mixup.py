"""Mixup / CutMix on video batches: the same lambda and box for every frame of a sample."""
import torch
from timm.data import Mixup


class VideoMixup:
    """timm Mixup on (B, C, T, H, W) batches; returns (mixed batch, soft targets (B, num_classes))."""

    def __init__(self, mixup_alpha: float = 0.8, cutmix_alpha: float = 1.0, cutmix_minmax=None,
                 prob: float = 1.0, switch_prob: float = 0.5, mode: str = "batch",
                 label_smoothing: float = 0.1, num_classes: int = 1000):
        self.mixup = Mixup(mixup_alpha=mixup_alpha, cutmix_alpha=cutmix_alpha, cutmix_minmax=cutmix_minmax,
                           prob=prob, switch_prob=switch_prob, mode=mode,
                           label_smoothing=label_smoothing, num_classes=num_classes)

    def __call__(self, x: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 5:
            raise ValueError(f"VideoMixup expects a (B, C, T, H, W) batch, got shape {tuple(x.shape)}")
        if len(x) % 2 != 0:
            raise ValueError(f"VideoMixup needs an even batch size, got {len(x)}; "
                             "drop the last incomplete batch or use an even batch size")
        batch, channels, frames, height, width = x.shape
        # timm cuts its box from the last two dims but slices dims 2-3: fold T into channels first
        folded = x.reshape(batch, channels * frames, height, width)
        mixed, soft_target = self.mixup(folded, target)
        return mixed.reshape(batch, channels, frames, height, width), soft_target
