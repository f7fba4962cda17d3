"""Face tracks over time: detections matched to tracks by box overlap with the box each track's motion
predicts, so that a face keeps its identity through a short absence (turned away, hidden, a cut-away).

Boxes are float arrays (x, y, w, h); times are in seconds.
"""
import itertools
from dataclasses import dataclass, field

import numpy as np


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of `a` (N, 4) with every box of `b` (M, 4): (N, M)."""
    a_end, b_end = a[:, None, :2] + a[:, None, 2:], b[None, :, :2] + b[None, :, 2:]
    overlap = np.clip(np.minimum(a_end, b_end) - np.maximum(a[:, None, :2], b[None, :, :2]), 0, None)
    intersection = overlap[..., 0] * overlap[..., 1]
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None, :] - intersection
    return intersection / np.maximum(union, 1e-9)


@dataclass(eq=False)
class Track:
    """One face over time. `track_id` is given once the track is confirmed (1, 2, ... in that order);
    `serial` numbers every track the tracker ever started, confirmed or not."""
    serial: int
    box: np.ndarray
    last_time: float
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))  # box units per second
    hits: int = 1
    track_id: int | None = None

    def predicted_box(self, time: float) -> np.ndarray:
        box = self.box + self.velocity * (time - self.last_time)
        box[2:] = np.maximum(box[2:], 1.0)
        return box


@dataclass
class Observation:
    """A detection assigned to a track at one frame; `resumed` marks the first one after an absence
    longer than the tracker's `break_seconds` (windows must not span it)."""
    track: Track
    box: np.ndarray
    landmarks: np.ndarray | None
    resumed: bool


class FaceTracker:
    """Greedy matching of detections to tracks, frame by frame.

    A detection continues the track whose box, as predicted by the track's smoothed velocity (or, for
    a track seen at this frame's predecessor, its last box), overlaps it most, with IoU at least
    `iou_threshold`. A track survives `max_gap_seconds` without a detection and keeps its id when it
    is found again where its motion leads. A track is confirmed (gets an id) after `min_hits`
    detections; unconfirmed tracks that end are dropped as detector false positives.
    """

    def __init__(self, iou_threshold: float = 0.3, max_gap_seconds: float = 2.0, break_seconds: float = 0.5,
                 min_hits: int = 3, velocity_smoothing: float = 0.5):
        self.iou_threshold, self.max_gap_seconds, self.break_seconds = iou_threshold, max_gap_seconds, break_seconds
        self.min_hits, self.velocity_smoothing = min_hits, velocity_smoothing
        self.active: list[Track] = []
        self.num_confirmed = self.num_dropped = 0
        self._serials = itertools.count()

    def update(self, time: float, boxes: np.ndarray, landmarks: np.ndarray | None = None):
        """Assign the frame's detections; returns (observations, tracks that ended)."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        ended = [t for t in self.active if time - t.last_time > self.max_gap_seconds]
        for track in ended:
            self._end(track)
        observations, unmatched = [], set(range(len(boxes)))
        for i, j in self._match(time, boxes):
            track = self.active[i]
            observations.append(Observation(track, boxes[j], None if landmarks is None else landmarks[j],
                                            resumed=time - track.last_time > self.break_seconds))
            self._move(track, time, boxes[j])
            unmatched.discard(j)
        for j in sorted(unmatched):
            track = Track(next(self._serials), boxes[j], time)
            self._confirm(track)
            self.active.append(track)
            observations.append(Observation(track, boxes[j], None if landmarks is None else landmarks[j], False))
        return observations, ended

    def finish(self):
        """End every active track (end of the video); returns them."""
        ended = list(self.active)
        for track in ended:
            self._end(track)
        return ended

    def _match(self, time, boxes):
        if not self.active or not len(boxes):
            return []
        predicted = np.stack([t.predicted_box(time) for t in self.active])
        last = np.stack([t.box for t in self.active])
        iou = np.maximum(box_iou(predicted, boxes), box_iou(last, boxes))
        pairs = []
        while iou.size and iou.max() >= self.iou_threshold:
            i, j = np.unravel_index(iou.argmax(), iou.shape)
            pairs.append((i, j))
            iou[i, :], iou[:, j] = -1, -1
        return pairs

    def _move(self, track, time, box):
        elapsed = time - track.last_time
        if elapsed > 0:
            velocity = (box - track.box) / elapsed
            track.velocity = self.velocity_smoothing * track.velocity + (1 - self.velocity_smoothing) * velocity
        track.box, track.last_time = box, time
        track.hits += 1
        self._confirm(track)

    def _confirm(self, track):
        if track.track_id is None and track.hits >= self.min_hits:
            self.num_confirmed += 1
            track.track_id = self.num_confirmed

    def _end(self, track):
        self.active.remove(track)
        if track.track_id is None:
            self.num_dropped += 1


def face_tracker(options, detector_name):
    """The tracker of `options` (inference.Options' tracking fields); without detection (the whole frame) a
    track needs no confirmation."""
    return FaceTracker(options.iou_threshold, options.max_gap_seconds, options.break_seconds,
                       1 if detector_name == "none" else options.min_track_frames)
