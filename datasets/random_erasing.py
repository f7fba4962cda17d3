"""Random erasing of a whole clip: one decision and one box per clip, as the original S2D code erases
(docs/TRAINING.md, "Clip sampling and augmentation"). timm's RandomErasing has no clip mode: on a (T, C, H, W)
tensor it decides and places a box for every frame on its own."""
import math
import random

import torch

MODES = ("const", "rand", "pixel")
MAX_TRIES = 100


class ClipRandomErasing:
    """`__call__(video (T, C, H, W) float) -> video`, erased in place.

    With probability `probability` (one python `random()` draw per clip) the clip gets `count` boxes (1, or drawn
    from 1..`max_count`), each of area `min_area`..`max_area` of a frame divided by `count` and log-uniform aspect
    ratio in [min_aspect, 1 / min_aspect], up to 100 tries to fit; a box covers the same pixels on every frame, and
    every frame gets its own fill from torch's RNG: per-pixel normal noise ('pixel'), a per-channel normal
    colour ('rand') or zeros ('const'). Python's `random` and torch's RNG are drawn in the original's order.
    """

    def __init__(self, probability: float, mode: str = "pixel", max_count: int = 1, min_area: float = 0.02,
                 max_area: float = 1 / 3, min_aspect: float = 0.3):
        if mode not in MODES:
            raise ValueError(f"random erasing mode must be one of {MODES}, got {mode!r}")
        if max_count < 1:
            raise ValueError(f"random erasing count must be at least 1, got {max_count}")
        self.probability, self.mode, self.max_count = probability, mode, max_count
        self.min_area, self.max_area = min_area, max_area
        self.log_aspect_range = (math.log(min_aspect), math.log(1 / min_aspect))

    def _fill(self, channels: int, height: int, width: int, dtype: torch.dtype) -> torch.Tensor:
        if self.mode == "pixel":
            return torch.empty((channels, height, width), dtype=dtype).normal_()
        if self.mode == "rand":
            return torch.empty((channels, 1, 1), dtype=dtype).normal_()
        return torch.zeros((channels, 1, 1), dtype=dtype)

    def __call__(self, video: torch.Tensor) -> torch.Tensor:
        if random.random() > self.probability:
            return video
        frames, channels, height, width = video.shape
        # quirk kept: the original passes num_splits = max_count, which leaves the first T // max_count frames clean
        first = frames // self.max_count if self.max_count > 1 else 0
        count = 1 if self.max_count == 1 else random.randint(1, self.max_count)
        for _ in range(count):
            for _ in range(MAX_TRIES):
                area = random.uniform(self.min_area, self.max_area) * height * width / count
                aspect = math.exp(random.uniform(*self.log_aspect_range))
                box_height = int(round(math.sqrt(area * aspect)))
                box_width = int(round(math.sqrt(area / aspect)))
                if box_width < width and box_height < height:
                    top = random.randint(0, height - box_height)
                    left = random.randint(0, width - box_width)
                    for frame in video[first:]:
                        frame[:, top:top + box_height, left:left + box_width] = self._fill(
                            channels, box_height, box_width, video.dtype)
                    break
        return video
