"""Mixup / CutMix on video batches as the original does them: the same lambda and box for every frame of a sample."""
import numpy as np
import torch
from timm.data import Mixup

MIXUP_MODES = ("batch", "pair", "elem")


def cutmix_box(height: int, width: int, lam: float, minmax=None) -> tuple[tuple[int, int, int, int], float]:
    """((top, bottom, left, right), lambda corrected to the box's area) of a CutMix box, with numpy's RNG.

    The box of the original's utils/mixup.py (timm 0.4): from the centre, half the cut size to each side (so an odd
    cut size loses a pixel), or with `minmax` a corner drawn in [0, size - cut); timm 0.9 and later make both one
    pixel larger.
    """
    if minmax is not None:
        cut_h = np.random.randint(int(height * minmax[0]), int(height * minmax[1]))
        cut_w = np.random.randint(int(width * minmax[0]), int(width * minmax[1]))
        top, left = np.random.randint(0, height - cut_h), np.random.randint(0, width - cut_w)
        bottom, right = top + cut_h, left + cut_w
    else:
        ratio = np.sqrt(1 - lam)
        cut_h, cut_w = int(height * ratio), int(width * ratio)
        centre_y, centre_x = np.random.randint(0, height), np.random.randint(0, width)
        top, bottom = np.clip(centre_y - cut_h // 2, 0, height), np.clip(centre_y + cut_h // 2, 0, height)
        left, right = np.clip(centre_x - cut_w // 2, 0, width), np.clip(centre_x + cut_w // 2, 0, width)
    return (top, bottom, left, right), 1.0 - (bottom - top) * (right - left) / float(height * width)


class VideoMixup(Mixup):
    """timm's Mixup (its parameter draws and soft targets) on (B, C, T, H, W) batches, mixing as the original's
    utils/mixup.py: `__call__(x, target) -> (x mixed in place, soft targets (B, num_classes))`."""

    def __call__(self, x: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 5:
            raise ValueError(f"VideoMixup expects a (B, C, T, H, W) batch, got shape {tuple(x.shape)}")
        if len(x) % 2 != 0:
            raise ValueError(f"VideoMixup needs an even batch size, got {len(x)}; "
                             "drop the last incomplete batch or use an even batch size")
        return super().__call__(x, target)

    def _box(self, x: torch.Tensor, lam: float):
        return cutmix_box(x.shape[-2], x.shape[-1], lam, self.cutmix_minmax)

    def _mix_batch(self, x):
        lam, use_cutmix = self._params_per_batch()
        if lam == 1.0:
            return 1.0
        if use_cutmix:
            (top, bottom, left, right), lam = self._box(x, lam)
            x[..., top:bottom, left:right] = x.flip(0)[..., top:bottom, left:right]
        else:
            flipped = x.flip(0).mul_(1.0 - lam)
            x.mul_(lam).add_(flipped)
        return lam

    def _mix_pairs(self, x, lam_batch, use_cutmix, both):
        """Sample i mixed with sample B-1-i (and, with `both`, B-1-i with i) for every i of lam_batch."""
        source = x.clone()
        for i, lam in enumerate(lam_batch):
            j = len(x) - i - 1
            if lam == 1.0:
                continue
            if use_cutmix[i]:
                (top, bottom, left, right), lam_batch[i] = self._box(x, lam)
                x[i][..., top:bottom, left:right] = source[j][..., top:bottom, left:right]
                if both:
                    x[j][..., top:bottom, left:right] = source[i][..., top:bottom, left:right]
            else:
                x[i] = x[i] * lam + source[j] * (1 - lam)
                if both:
                    x[j] = x[j] * lam + source[i] * (1 - lam)
        return lam_batch

    def _mix_elem(self, x):
        lam_batch = self._mix_pairs(x, *self._params_per_elem(len(x)), both=False)
        return torch.tensor(lam_batch, device=x.device, dtype=x.dtype).unsqueeze(1)

    def _mix_pair(self, x):
        lam_batch = self._mix_pairs(x, *self._params_per_elem(len(x) // 2), both=True)
        return torch.tensor(np.concatenate((lam_batch, lam_batch[::-1])), device=x.device, dtype=x.dtype).unsqueeze(1)
