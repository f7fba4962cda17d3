"""Clip-level train and evaluation transforms: one parameter draw per clip, output (3, T, H, W)."""
import random

import numpy as np
import torch
from PIL import Image
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, rand_augment_transform
from timm.data.random_erasing import RandomErasing
from timm.data.transforms import str_to_pil_interp
from torchvision import tv_tensors
from torchvision.transforms import v2


class ClipRandAugment:
    """timm RandAugment applying the same operations and magnitudes to every frame of a clip.

    The ops and magnitudes come from python's `random` and numpy's global RNG; both states are
    restored before each frame, so every frame replays the first frame's draws.
    """

    def __init__(self, config_str: str, input_size: int, interpolation: str):
        hparams = dict(translate_const=int(input_size * 0.45),
                       img_mean=tuple(round(255 * x) for x in IMAGENET_DEFAULT_MEAN),
                       interpolation=str_to_pil_interp(interpolation))
        self.rand_augment = rand_augment_transform(config_str, hparams)

    def __call__(self, frames: list[Image.Image]) -> list[Image.Image]:
        python_state, numpy_state = random.getstate(), np.random.get_state()
        augmented = []
        for frame in frames:
            random.setstate(python_state)
            np.random.set_state(numpy_state)
            augmented.append(self.rand_augment(frame))
        return augmented


def _resize(short_side: int) -> v2.Resize:
    return v2.Resize((short_side, short_side), interpolation=v2.InterpolationMode.BILINEAR)


def _to_normalized_float() -> v2.Compose:
    return v2.Compose([v2.ToDtype(torch.float32, scale=True),
                       v2.Normalize(IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, inplace=True)])


def _channels_first(video: torch.Tensor) -> torch.Tensor:
    return video.as_subclass(torch.Tensor).permute(1, 0, 2, 3)


class ClipTrainTransform:
    """uint8 (T, 3, H, W) frames -> augmented float (3, T, input_size, input_size) (docs/TRAINING.md, "Clip
    sampling and augmentation")."""

    def __init__(self, input_size: int, short_side: int, auto_augment: str | None,
                 interpolation: str, reprob: float, remode: str, recount: int):
        self.resize = _resize(short_side)
        self.rand_augment = ClipRandAugment(auto_augment, input_size, interpolation) if auto_augment else None
        self.to_normalized_float = _to_normalized_float()
        # antialias off: the original resizes the crop with plain bilinear F.interpolate
        self.crop_and_flip = v2.Compose([
            v2.RandomResizedCrop(input_size, scale=(0.08, 1.0), ratio=(0.75, 1.3333), antialias=False),
            v2.RandomHorizontalFlip(0.5),
        ])
        # quirk kept from the original: erasing is decided independently for every frame
        self.erase = RandomErasing(reprob, mode=remode, max_count=recount, device="cpu") if reprob > 0 else None

    def _rand_augment(self, frames: torch.Tensor) -> torch.Tensor:
        images = [Image.fromarray(frame) for frame in frames.permute(0, 2, 3, 1).contiguous().numpy()]
        augmented = np.stack([np.asarray(image) for image in self.rand_augment(images)])
        # (T, H, W, C) memory, i.e. channels-last, which makes the crop's resize several times faster
        return torch.from_numpy(augmented).permute(0, 3, 1, 2)

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        frames = self.resize(tv_tensors.Video(frames))
        if self.rand_augment is not None:
            frames = tv_tensors.Video(self._rand_augment(frames))
        video = self.crop_and_flip(self.to_normalized_float(frames))
        if self.erase is not None:
            video = self.erase(video.as_subclass(torch.Tensor))
        return _channels_first(video)


class ClipEvalTransform:
    """uint8 (T, 3, H, W) frames -> float (3, T, input_size, input_size): resize, view crop, centre crop."""

    def __init__(self, input_size: int, short_side: int):
        self.short_side = short_side
        self.resize = _resize(short_side)
        self.center_crop = v2.CenterCrop(input_size)
        self.to_normalized_float = _to_normalized_float()

    def __call__(self, frames: torch.Tensor, spatial_start: int = 0) -> torch.Tensor:
        """`spatial_start`: first pixel of the short_side-wide test crop along the longer side."""
        frames = self.resize(tv_tensors.Video(frames))
        end = spatial_start + self.short_side
        if frames.shape[-2] >= frames.shape[-1]:
            frames = frames[..., spatial_start:end, :]
        else:
            frames = frames[..., spatial_start:end]
        return _channels_first(self.to_normalized_float(self.center_crop(tv_tensors.Video(frames))))
