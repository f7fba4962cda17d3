"""Decoding the frames of one clip."""
import os

import numpy as np
import torch
from PIL import Image

from .annotations import Clip


class BadClipError(ValueError):
    """A frame of a clip cannot be decoded; the message names the CSV line, the clip and the frame."""

    @staticmethod
    def summary(error: Exception) -> str:
        """The one-line message of `error` (this or another exception type), also when re-raised from a
        DataLoader worker (whose message holds the worker's traceback, the original message last)."""
        last_line = str(error).strip().splitlines()[-1]
        return last_line.split(f"{type(error).__name__}: ", 1)[-1]


def decode_frame(path: str) -> np.ndarray:
    """(H, W, 3) uint8 pixels of an image file; ValueError naming the file when it cannot be decoded."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ValueError(f"cannot decode frame {path!r}: {error}") from error


def _where(clip: Clip) -> str:
    return f"{clip.csv_path}:{clip.line}: clip {clip.clip_id!r}"


def load_frames(clip: Clip, indices) -> torch.Tensor:
    """Frames `indices` (positions in the sorted frame list) as uint8 (T, 3, H, W); each file decoded once."""
    decoded = {}
    for i in dict.fromkeys(int(i) for i in indices):
        try:
            decoded[i] = decode_frame(os.path.join(clip.folder, clip.frame_names[i]))
        except ValueError as error:
            raise BadClipError(f"{_where(clip)}: {error}") from None
    sizes = {frame.shape for frame in decoded.values()}
    if len(sizes) > 1:
        raise BadClipError(f"{_where(clip)}: frames of clip folder {clip.folder!r} differ in size: {sorted(sizes)}")
    return torch.from_numpy(np.stack([decoded[int(i)] for i in indices])).permute(0, 3, 1, 2).contiguous()
