"""The tracked, cropped faces of a segment of a video: decoded frames -> face detection -> tracks -> each track's
windows of face crops (inference.windows). The analysis (inference.pipeline) classifies the windows; the clip
extraction (inference.extraction) writes them as training clips: both cut the same crops at the same times.
"""
import functools
from dataclasses import dataclass

import cv2
import numpy as np

from .align import face_crop
from .decode import Frame
from .detection_schedule import DetectionSchedule, with_next_times
from .detectors import crop_margin
from .tracking import Observation, face_tracker
from .windows import Sample, TrackWindows, Window


@dataclass
class TrackSpan:
    """A track's detections so far: the first and the last, how many, and the sums of their box widths and areas."""
    first_time: float
    first_frame: int
    last_time: float = 0.0
    last_frame: int = 0
    detections: int = 0
    box_width: float = 0.0
    box_area: float = 0.0

    def add(self, frame: Frame, box: np.ndarray):
        self.last_time, self.last_frame, self.detections = frame.time, frame.index, self.detections + 1
        self.box_width += float(box[2])
        self.box_area += float(box[2] * box[3])

    @property
    def mean_box_width(self) -> float:
        return self.box_width / self.detections

    @property
    def mean_box_area(self) -> float:
        return self.box_area / self.detections


@dataclass
class SegmentStep:
    """One decoded frame of the segment; `frame` None: the segment's end (the tracks' last windows)."""
    frame: Frame | None
    observations: list[Observation] | None  # None: the schedule left the frame undetected
    samples: list  # per observation, a callable returning its Sample (the crop is made once, when first asked)
    windows: list[Window]  # the windows cut at this frame


class SegmentFaces:
    """Iterating gives a SegmentStep per frame of `frames`, then one for the segment's end. `schedule` (an
    inference.detection_schedule.DetectionSchedule) decides which frames are detected; None: every frame. `policy` None:
    no windows (the caller takes the samples it needs). `spans` and
    `serial_to_id` (track serial -> id, confirmed tracks) describe the tracks found so far."""

    def __init__(self, frames, detector, tracker, policy, crop_size, margin, schedule=None):
        self.frames, self.detector, self.tracker, self.policy = frames, detector, tracker, policy
        self.crop_size, self.margin, self.schedule = crop_size, margin, schedule
        self.track_windows: dict[int, TrackWindows] = {}
        self.spans: dict[int, TrackSpan] = {}
        self.serial_to_id: dict[int, int] = {}

    @classmethod
    def with_options(cls, frames, detector, detector_name, options, policy, crop_size, scheduled=True):
        """SegmentFaces set up by `options` (inference.Options): the detector's crop margin and tracker and, when
        `scheduled`, the detection schedule of options.detect_interval (every frame without a detector)."""
        schedule = DetectionSchedule(0 if detector_name == "none" else options.detect_interval) if scheduled else None
        return cls(frames, detector, face_tracker(options, detector_name), policy, crop_size,
                   crop_margin(options.margin, detector_name), schedule)

    def __iter__(self):
        for frame, next_time in with_next_times(self.frames):
            if self.schedule is not None and not self.schedule.wants(frame.time, next_time,
                                                                     self.track_windows.values()):
                yield SegmentStep(frame, None, [], [])
                continue
            faces = self.detector(frame.image)
            observations, ended = self.tracker.update(frame.time, faces.boxes, faces.landmarks)
            samples, windows = [], []
            for observation in observations:
                samples.append(self._sample(frame, observation))
                windows += self._observe(frame, observation, samples[-1])
            for track in ended:
                windows += self._end(track)
            yield SegmentStep(frame, observations, samples, windows)
        windows = []
        for track in self.tracker.finish():
            windows += self._end(track)
        yield SegmentStep(None, None, [], windows)

    def _sample(self, frame, observation):
        @functools.cache
        def sample():
            crop = face_crop(frame.image, observation.box, observation.landmarks, self.crop_size, self.margin)[0]
            return Sample(frame.time, frame.index, observation.box, cv2.cvtColor(crop, cv2.COLOR_BGR2RGB))
        return sample

    def _observe(self, frame, observation, sample):
        track = observation.track
        self.spans.setdefault(track.serial, TrackSpan(frame.time, frame.index)).add(frame, observation.box)
        if track.track_id is not None:
            self.serial_to_id[track.serial] = track.track_id
        if self.policy is None:
            return []
        windows = self.track_windows.setdefault(track.serial, TrackWindows(self.policy))
        cut = windows.close(track.track_id) if observation.resumed else []
        windows.offer(frame.time, sample)
        if track.track_id is not None:
            cut += windows.ready(track.track_id)
        return cut

    def _end(self, track):
        windows = self.track_windows.pop(track.serial, None)
        return windows.close(track.track_id) if windows is not None else []
