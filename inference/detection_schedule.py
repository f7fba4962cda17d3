"""Which frames the face detector sees (docs/PREDICT.md, "Detection schedule").

Every frame is decoded, but the detector runs only on
- the frames that windows sample: for each track, the frame nearest to each time of its sample grid, so that
  every crop a window holds comes from a detection on its own frame, as when every frame is detected;
- enough frames in between for the tracker: never more than `interval` seconds between two detections (when
  the video's frames are that close), so a face moves little between two detections and a new face is found
  within `interval` of its first frame.
Between two detections, the annotated video's boxes are interpolated.
"""
import math

DEFAULT_DETECT_INTERVAL = 0.15  # seconds; why this value: docs/PREDICT.md, "Detection schedule"
TIME_TOLERANCE = 1e-6  # seconds: times this close count as equal (a grid time midway is detected on both frames)


def with_next_times(frames):
    """Each frame with the presentation time of the frame after it (infinity for the last); holds one frame."""
    previous = None
    for frame in frames:
        if previous is not None:
            yield previous, frame.time
        previous = frame
    if previous is not None:
        yield previous, math.inf


class DetectionSchedule:
    """Decides for each frame, in time order, whether the detector runs on it. `interval` 0: every frame."""

    def __init__(self, interval: float):
        self.interval = interval
        self.last_detection = self.previous_time = -math.inf
        self.frames_detected = 0

    def wants(self, time: float, next_time: float, grids) -> bool:
        """Whether to detect the frame at `time`; `next_time` is the next frame's (infinity for the last), `grids`
        the tracks' inference.windows.TrackWindows. A grid time takes the frame nearest to it: this one for the
        grid times between the midpoints to the previous and the next frame."""
        start, end = (self.previous_time + time) / 2, (time + next_time) / 2
        self.previous_time = time
        detect = (next_time - self.last_detection > self.interval + TIME_TOLERANCE
                  or any(grid.has_grid_time(start - TIME_TOLERANCE, end + TIME_TOLERANCE) for grid in grids))
        if detect:
            self.last_detection = time
            self.frames_detected += 1
        return detect


class InterpolatedBoxes:
    """The box records of the annotated video (frame index, track serial, box), in frame order: each detected
    frame's boxes and, on the frames the schedule skipped before it, boxes interpolated linearly in time for
    the tracks found on both detected frames around them."""

    def __init__(self):
        self.skipped = []  # (index, time) of the frames since the last detected frame
        self.previous = {}  # track serial -> (time, box) on the last detected frame

    def skip(self, frame):
        self.skipped.append((frame.index, frame.time))

    def records(self, frame, observations) -> list:
        current = {o.track.serial: o.box for o in observations}
        records = []
        for index, time in self.skipped:
            for serial, box in current.items():
                if serial in self.previous:
                    start, start_box = self.previous[serial]
                    weight = (time - start) / (frame.time - start)
                    records.append((index, serial, start_box + weight * (box - start_box)))
        records += [(frame.index, serial, box) for serial, box in current.items()]
        self.skipped, self.previous = [], {serial: (frame.time, box) for serial, box in current.items()}
        return records
