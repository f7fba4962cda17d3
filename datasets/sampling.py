"""Which frames of a clip make up a training sample or validation view, and each test view."""
import numpy as np


def train_frame_indices(num_frames: int, clip_len: int, sampling_rate: int) -> np.ndarray:
    """One random window of `clip_len` indices, for training and validation (docs/TRAINING.md, "Clip sampling and
    augmentation"); uses numpy's global RNG (one draw when the clip is longer than the window)."""
    window = clip_len * sampling_rate
    if num_frames <= window:
        indices = np.linspace(0, num_frames, num=num_frames // sampling_rate)
        padding = np.full(clip_len - num_frames // sampling_rate, num_frames)
        indices = np.concatenate((indices, padding))
        return np.clip(indices, 0, num_frames - 1).astype(np.int64)
    end = np.random.randint(window, num_frames)
    start = end - window
    indices = np.linspace(start, end, num=clip_len)
    return np.clip(indices, start, end - 1).astype(np.int64)


def all_frame_indices(num_frames: int, clip_len: int, sampling_rate: int) -> list[int]:
    """Every `sampling_rate`-th frame, padded with the last index up to `clip_len` entries."""
    indices = list(range(0, num_frames, sampling_rate))
    indices += [indices[-1]] * (clip_len - len(indices))
    return indices


def test_view_starts(num_indices: int, side: int, clip_len: int, short_side: int,
                     num_segments: int, num_crops: int, segment: int, crop: int) -> tuple[int, int]:
    """(first frame, first pixel along the longer side) of test view (segment, crop).

    `num_indices` is the length of the padded index list and `side` the longer side of the
    resized frames; a single segment or crop has step 0.
    """
    temporal_step = max((num_indices - clip_len) / (num_segments - 1), 0) if num_segments > 1 else 0
    spatial_step = (side - short_side) / (num_crops - 1) if num_crops > 1 else 0
    return int(segment * temporal_step), int(crop * spatial_step)
