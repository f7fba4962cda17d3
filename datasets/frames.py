"""Decoding the frames of one clip."""
import os

import numpy as np
import torch
from PIL import Image

from .annotations import Clip


def _decode(path: str) -> np.ndarray:
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except OSError as error:
        raise ValueError(f"cannot decode frame {path!r}: {error}") from error


def load_frames(clip: Clip, indices) -> torch.Tensor:
    """Frames `indices` (positions in the sorted frame list) as uint8 (T, 3, H, W); each file decoded once."""
    decoded = {}
    for i in dict.fromkeys(int(i) for i in indices):
        decoded[i] = _decode(os.path.join(clip.folder, clip.frame_names[i]))
    sizes = {frame.shape for frame in decoded.values()}
    if len(sizes) > 1:
        raise ValueError(f"frames of clip folder {clip.folder!r} differ in size: {sorted(sizes)}")
    return torch.from_numpy(np.stack([decoded[int(i)] for i in indices])).permute(0, 3, 1, 2).contiguous()
