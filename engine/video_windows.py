"""Sliding windows over one face track's crops, sampled as the test protocol samples a clip."""
from dataclasses import dataclass

import numpy as np
import torch

from datasets.sampling import all_frame_indices


@dataclass
class Window:
    track_id: int
    first_frame: int
    last_frame: int
    box: np.ndarray  # the face box (x, y, w, h) of the window's middle crop
    video: torch.Tensor  # (3, T, S, S), normalised as in evaluation


class TrackWindows:
    """Collects a track's crops and cuts them into windows of `clip_len` crops taken every
    `sampling_rate` crops (a span of clip_len * sampling_rate crops), starting every `stride` crops.

    A track that ends between two window starts gets one last window aligned with its end, so every
    crop is covered; a track shorter than a span gets one window padded by repeating its last crop
    (as the test protocol pads short clips). Only the crops still needed are kept.
    """

    def __init__(self, clip_len: int, sampling_rate: int, stride: int):
        self.clip_len, self.sampling_rate, self.stride = clip_len, sampling_rate, stride
        self.span = clip_len * sampling_rate
        self.crops = {}  # position in the track -> (frame index, box, (3, 1, S, S) crop)
        self.count = 0
        self.next_start = 0
        self.covered = 0  # crops covered by the windows cut so far

    def add(self, frame_index: int, box: np.ndarray, crop: torch.Tensor) -> None:
        self.crops[self.count] = (frame_index, box, crop)
        self.count += 1

    def ready(self, track_id: int) -> list[Window]:
        """The full windows that can be cut now."""
        windows = []
        while self.next_start + self.span <= self.count:
            windows.append(self._window(track_id, self.next_start, self.span))
            self.next_start += self.stride
        keep_from = min(self.next_start, max(self.count - self.span, 0))
        for position in [p for p in self.crops if p < keep_from]:
            del self.crops[position]
        return windows

    def final(self, track_id: int) -> list[Window]:
        """At the end of the track: the remaining full windows, then the end-aligned or padded one."""
        windows = self.ready(track_id)
        if self.covered < self.count:
            start = max(self.count - self.span, 0)
            windows.append(self._window(track_id, start, self.count - start))
        return windows

    def _window(self, track_id, start, length):
        positions = [start + i for i in all_frame_indices(length, self.clip_len, self.sampling_rate)[:self.clip_len]]
        frames = [self.crops[p][0] for p in positions]
        self.covered = max(self.covered, start + length)
        return Window(track_id, frames[0], frames[-1], self.crops[positions[len(positions) // 2]][1],
                      torch.cat([self.crops[p][2] for p in positions], dim=1))


def moving_average(probabilities: np.ndarray, k: int) -> np.ndarray:
    """Centred moving average over `k` consecutive windows (rows); fewer at the ends."""
    n = len(probabilities)
    if k <= 1 or n == 0:
        return probabilities
    sums = np.concatenate([np.zeros((1, probabilities.shape[1])), np.cumsum(probabilities, axis=0)])
    rows = np.arange(n)
    low, high = np.clip(rows - (k - 1) // 2, 0, n), np.clip(rows + k // 2 + 1, 0, n)
    return (sums[high] - sums[low]) / (high - low)[:, None]
