"""Clip-level train and evaluation transforms: one parameter draw per clip, output (3, T, H, W).

The training transform draws from python's `random`, numpy's and torch's global RNGs in the original's order
(RandAugment: numpy then python; crop: python and numpy; flip: numpy; erasing: python then torch), so a seeded run
augments as the original does with the same seeds (tests/test_parity_original.py).
"""
import math
import random

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, rand_augment_transform
from timm.data.transforms import str_to_pil_interp
from torchvision.transforms.v2 import functional as TF

from .random_erasing import ClipRandomErasing

CROP_SCALE = (0.08, 1.0)
CROP_RATIO = (0.75, 1.3333)
CROP_TRIES = 10


class ClipRandAugment:
    """timm RandAugment applying the same operations and magnitudes to every frame of a clip.

    The ops and magnitudes come from python's `random` and numpy's global RNG; both states are
    restored before each frame, so every frame replays the first frame's draws. Rotate, shear and
    translate fill with timm's default (128, 128, 128), as in the original (it passes no `img_mean`).
    """

    def __init__(self, config_str: str, input_size: int, interpolation: str):
        hparams = dict(translate_const=int(input_size * 0.45))
        if interpolation != "random":  # random: bilinear or bicubic drawn per operation (per clip here)
            hparams["interpolation"] = str_to_pil_interp(interpolation)
        self.rand_augment = rand_augment_transform(config_str, hparams)

    def __call__(self, frames: list[Image.Image]) -> list[Image.Image]:
        python_state, numpy_state = random.getstate(), np.random.get_state()
        augmented = []
        for frame in frames:
            random.setstate(python_state)
            np.random.set_state(numpy_state)
            augmented.append(self.rand_augment(frame))
        return augmented


def _resized_images(frames: torch.Tensor, size: int) -> list[Image.Image]:
    """uint8 (T, 3, H, W) frames as PIL images resized to size x size (PIL bilinear, as the original resizes)."""
    images = [Image.fromarray(frame) for frame in frames.permute(0, 2, 3, 1).contiguous().numpy()]
    if images[0].size == (size, size):
        return images
    return [image.resize((size, size), Image.BILINEAR) for image in images]


def _stacked(images: list[Image.Image]) -> torch.Tensor:
    """uint8 (T, 3, H, W) of RGB images, in (T, H, W, C) memory, i.e. channels-last."""
    return torch.from_numpy(np.stack([np.asarray(image) for image in images])).permute(0, 3, 1, 2)


def _resize(frames: torch.Tensor, size: int) -> torch.Tensor:
    return frames if tuple(frames.shape[-2:]) == (size, size) else _stacked(_resized_images(frames, size))


def _to_normalized_float(frames: torch.Tensor) -> torch.Tensor:
    """uint8 -> float32 / 255 (as torchvision's ToTensor divides), then ImageNet normalisation."""
    return TF.normalize(frames.to(torch.float32).div_(255), IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, inplace=True)


def random_crop_box(height: int, width: int) -> tuple[int, int, int, int]:
    """(top, left, box height, box width) of a random resized crop: area scale 0.08-1, log-uniform aspect
    ratio 3/4-4/3, 10 tries, else the central crop of the closest ratio. Drawn with python's `random` (and one
    unused numpy draw per try) as the original does; torchvision's RandomResizedCrop draws the same distribution
    from torch's RNG."""
    log_ratio = (math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1]))
    for _ in range(CROP_TRIES):
        area = random.uniform(*CROP_SCALE) * height * width
        aspect = math.exp(random.uniform(*log_ratio))
        box_width = int(round(math.sqrt(area * aspect)))
        box_height = int(round(math.sqrt(area / aspect)))
        np.random.uniform()  # quirk kept: the original draws this for an option that is off (switch_hw)
        if 0 < box_width <= width and 0 < box_height <= height:
            return random.randint(0, height - box_height), random.randint(0, width - box_width), box_height, box_width
    ratio = width / height
    if ratio < min(CROP_RATIO):
        box_width, box_height = width, int(round(width / min(CROP_RATIO)))
    elif ratio > max(CROP_RATIO):
        box_width, box_height = int(round(height * max(CROP_RATIO))), height
    else:
        box_width, box_height = width, height
    return (height - box_height) // 2, (width - box_width) // 2, box_height, box_width


def _channels_first(video: torch.Tensor) -> torch.Tensor:
    return video.permute(1, 0, 2, 3)


class ClipTrainTransform:
    """uint8 (T, 3, H, W) frames -> augmented float (3, T, input_size, input_size) (docs/TRAINING.md, "Clip
    sampling and augmentation")."""

    def __init__(self, input_size: int, short_side: int, auto_augment: str | None,
                 interpolation: str, reprob: float, remode: str, recount: int):
        self.input_size, self.short_side = input_size, short_side
        self.rand_augment = ClipRandAugment(auto_augment, input_size, interpolation) if auto_augment else None
        self.erase = ClipRandomErasing(reprob, mode=remode, max_count=recount) if reprob > 0 else None

    def _augmented_frames(self, frames: torch.Tensor) -> torch.Tensor:
        images = _resized_images(frames, self.short_side)
        if self.rand_augment is not None:
            images = self.rand_augment(images)
        return _stacked(images)  # channels-last memory makes the crop's resize several times faster

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        video = _to_normalized_float(self._augmented_frames(frames))
        top, left, height, width = random_crop_box(*video.shape[-2:])
        # plain bilinear, no antialiasing, as the original resizes the crop
        video = F.interpolate(video[..., top:top + height, left:left + width], size=(self.input_size,) * 2,
                              mode="bilinear", align_corners=False)
        if np.random.uniform() < 0.5:
            video = video.flip(-1)
        if self.erase is not None:
            video = self.erase(video)
        return _channels_first(video)


class ClipEvalTransform:
    """uint8 (T, 3, H, W) frames -> float (3, T, input_size, input_size): resize, view crop, centre crop."""

    def __init__(self, input_size: int, short_side: int):
        self.input_size, self.short_side = input_size, short_side

    def __call__(self, frames: torch.Tensor, spatial_start: int = 0) -> torch.Tensor:
        """`spatial_start`: first pixel of the short_side-wide test crop along the longer side."""
        frames = _resize(frames, self.short_side)
        end = spatial_start + self.short_side
        if frames.shape[-2] >= frames.shape[-1]:
            frames = frames[..., spatial_start:end, :]
        else:
            frames = frames[..., spatial_start:end]
        return _channels_first(_to_normalized_float(TF.center_crop(frames, [self.input_size])))
