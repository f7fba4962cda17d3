"""Windows of a face track as the checkpoint's training data presented clips: `num_frames` face crops
spaced `sample_step` seconds apart, a new window every `stride` seconds.

- DFEW's frames are 16 frames spread uniformly over a whole clip, its first frame to its last: a window of
  `num_frames` samples from its start to `window_seconds` later (sample_step = window_seconds / (num_frames - 1)).
- FERV39K's and MAFW's frames are consecutive frames at the source video's rate, and the test protocol
  takes `num_frames` consecutive ones: sample_step = 1 / source_fps.
A video of any frame rate is resampled to that grid: each sample is the crop whose time is nearest.
"""
import math
from dataclasses import dataclass

import numpy as np

from datasets.build import ALIASES

DFEW_WINDOW_SECONDS = 3.0  # a typical DFEW clip (movie excerpts of a few seconds)
SOURCE_FPS = 25.0  # FERV39K / MAFW frames: consecutive frames of film and TV sources (24-30 fps)


@dataclass(frozen=True)
class WindowPolicy:
    num_frames: int
    sample_step: float  # seconds between the samples of a window
    stride: float  # seconds between window starts
    source: str  # how the policy was chosen, for the summary

    @property
    def stride_samples(self) -> int:
        return max(1, round(self.stride / self.sample_step))

    @property
    def span(self) -> float:
        """Seconds from a window's first sample to its last."""
        return (self.num_frames - 1) * self.sample_step


def window_policy(data_set: str | None, num_frames: int, window_seconds: float | None = None,
                  source_fps: float | None = None, stride_seconds: float | None = None,
                  clip_sampling: dict | None = None) -> WindowPolicy:
    """The policy of the data set the checkpoint was trained on, with the given overrides.

    `window_seconds` asks for uniform sampling over that span, `source_fps` for consecutive frames at
    that rate; without either, a checkpoint trained on clips extracted from one's own videos follows their
    `clip_sampling` (datasets.description.clip_sampling, with its stride if it gives one), DFEW checkpoints get
    uniform sampling over DFEW_WINDOW_SECONDS and the others consecutive frames at SOURCE_FPS. The stride
    defaults to half a window's samples.
    """
    if window_seconds is not None and source_fps is not None:
        raise ValueError("give either window_seconds (uniform sampling) or source_fps (consecutive frames)")
    name = ALIASES.get(data_set, data_set)
    if window_seconds is None and source_fps is None:
        if clip_sampling and clip_sampling["mode"] == "spread":
            window_seconds = clip_sampling["window_seconds"]
            source = f"its training clips: frames spread over {window_seconds:.3g} s (their median length)"
        elif clip_sampling:
            source_fps = clip_sampling["fps"]
            source = f"its training clips: consecutive frames at {source_fps:g} fps"
        if clip_sampling and stride_seconds is None:
            stride_seconds = clip_sampling.get("stride_seconds")
        elif name == "DFEW":
            window_seconds, source = DFEW_WINDOW_SECONDS, "DFEW: uniform over a clip"
        else:
            source_fps, source = SOURCE_FPS, f"{name}: consecutive frames at the source rate"
    else:
        source = "command line"
    step = window_seconds / max(num_frames - 1, 1) if window_seconds is not None else 1 / source_fps
    if step <= 0:
        raise ValueError(f"window_seconds and source_fps must be positive (sample step {step} s)")
    stride = stride_seconds if stride_seconds is not None else max(num_frames // 2, 1) * step
    if stride <= 0:
        raise ValueError(f"stride_seconds must be positive, got {stride}")
    return WindowPolicy(num_frames, step, stride, source)


@dataclass
class Window:
    track_id: int
    times: np.ndarray  # (T,) the presentation time of each sample's frame
    frame_indices: np.ndarray  # (T,)
    box: np.ndarray  # the face box (x, y, w, h) of the middle sample
    crops: np.ndarray  # (T, S, S, 3) RGB uint8
    repeated: int = 0  # samples that take an earlier sample's frame: the grid is denser than the frames
    feature: np.ndarray | None = None  # the model's clip feature, once classified (predict.py --features)

    @property
    def start(self) -> float:
        return float(self.times[0])

    @property
    def end(self) -> float:
        return float(self.times[-1])


@dataclass
class Sample:
    time: float
    frame_index: int
    box: np.ndarray
    crop: np.ndarray


class TrackWindows:
    """One track's grid of samples and the windows cut from it, streaming.

    `offer(time, candidate)` is called for every observation of the track, in time order; `candidate`
    is a callable returning the Sample (crop made only if it is used). Each grid time takes the
    nearer of the observations just before and after it. `close()` ends a stretch (the track ended, or
    it was absent longer than windows may span): the remaining windows are cut, the last aligned with
    the stretch's end, or one padded by repeating its last sample when the stretch is shorter than a
    window (as the test protocol pads short clips). Only samples still needed are kept.
    """

    def __init__(self, policy: WindowPolicy):
        self.policy = policy
        self._reset()

    def _reset(self):
        self.samples: dict[int, Sample] = {}  # grid position -> sample
        self.grid_start = self.previous = None  # previous: (time, candidate) of the last observation
        self.count = self.next_window = self.covered = 0

    def offer(self, time: float, candidate) -> None:
        if self.grid_start is None:
            self.grid_start = time
        while self.grid_start + self.count * self.policy.sample_step <= time + 1e-9:
            grid_time = self.grid_start + self.count * self.policy.sample_step
            use_previous = self.previous is not None and grid_time - self.previous[0] < time - grid_time
            self.samples[self.count] = (self.previous[1] if use_previous else candidate)()
            self.count += 1
        self.previous = (time, candidate)

    def has_grid_time(self, start: float, end: float) -> bool:
        """Whether a time of the current stretch's sample grid lies in [start, end)."""
        if self.grid_start is None:
            return False
        first = max(math.ceil((start - self.grid_start) / self.policy.sample_step), 0)
        return self.grid_start + first * self.policy.sample_step < end

    def ready(self, track_id: int) -> list[Window]:
        """The full windows that can be cut now."""
        windows = []
        T, stride = self.policy.num_frames, self.policy.stride_samples
        while self.next_window + T <= self.count:
            windows.append(self._window(track_id, range(self.next_window, self.next_window + T)))
            self.next_window += stride
        for position in [p for p in self.samples if p < min(self.next_window, self.count - T)]:
            del self.samples[position]
        return windows

    def close(self, track_id: int | None) -> list[Window]:
        """End the stretch; its last windows (none for an unconfirmed track, `track_id` None)."""
        windows = self.ready(track_id) if track_id is not None else []
        if track_id is not None and self.covered < self.count:
            T = self.policy.num_frames
            start = max(self.count - T, 0)
            positions = list(range(start, self.count))
            windows.append(self._window(track_id, positions + positions[-1:] * (T - len(positions))))
        self._reset()
        return windows

    def _window(self, track_id, positions):
        samples = [self.samples[p] for p in positions]
        self.covered = max(self.covered, positions[-1] + 1)
        distinct = dict.fromkeys(positions)  # a padded window repeats its last position on purpose
        repeated = len(distinct) - len({self.samples[p].frame_index for p in distinct})
        return Window(track_id, np.array([s.time for s in samples]), np.array([s.frame_index for s in samples]),
                      samples[len(samples) // 2].box, np.stack([s.crop for s in samples]), repeated)
