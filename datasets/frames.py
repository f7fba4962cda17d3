"""Decoding the frames of one clip."""
import os

import torch
from torchvision.io import ImageReadMode, decode_image, read_file

from .annotations import Clip


def _decode(path: str) -> torch.Tensor:
    try:
        return decode_image(read_file(path), mode=ImageReadMode.RGB)
    except (RuntimeError, ValueError) as error:
        raise ValueError(f"cannot decode frame {path!r}: {error}") from error


def load_frames(clip: Clip, indices) -> torch.Tensor:
    """Frames `indices` (positions in the sorted frame list) as uint8 (T, 3, H, W); each file decoded once."""
    decoded = {}
    for i in dict.fromkeys(int(i) for i in indices):
        decoded[i] = _decode(os.path.join(clip.folder, clip.frame_names[i]))
    sizes = {tuple(frame.shape[1:]) for frame in decoded.values()}
    if len(sizes) > 1:
        raise ValueError(f"frames of clip folder {clip.folder!r} differ in size: {sorted(sizes)}")
    return torch.stack([decoded[int(i)] for i in indices])
