"""Decoding a video file with OpenCV, one frame at a time, each frame with its presentation time.

Times come from the container's timestamps (`CAP_PROP_POS_MSEC` of each decoded frame), so variable
frame rate videos (phones) get true seconds; frames come upright (OpenCV applies the rotation stored
in the file's metadata).
"""
import math
import os
from dataclasses import dataclass

import cv2
import numpy as np


class VideoError(ValueError):
    """The file cannot be analysed as a video; the message names the file and says why."""


@dataclass(frozen=True)
class VideoInfo:
    path: str
    width: int  # of the decoded, upright frames
    height: int
    fps: float  # the container's nominal frame rate; 0 when the header gives none
    frame_count: int  # as the container reports it; 0 when unknown
    rotation: int  # degrees of the rotation metadata that decoding applied
    codec: str


@dataclass
class Frame:
    index: int  # 0-based, in decoding order
    time: float  # presentation time in seconds
    image: np.ndarray  # BGR uint8, upright


def _open(path: str) -> cv2.VideoCapture:
    if not os.path.isfile(path):
        raise VideoError(f"video file not found: {path}")
    if os.path.getsize(path) == 0:
        raise VideoError(f"{path}: the file is empty (0 bytes)")
    if cv2.haveImageReader(path):
        raise VideoError(f"{path}: this is a still image, not a video")
    capture = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
    if not capture.isOpened():
        capture.release()
        raise VideoError(f"{path}: cannot be opened as a video (not a video file, an unknown format, "
                         "no video stream, or a damaged container)")
    return capture


def _fourcc(capture) -> str:
    code = int(capture.get(cv2.CAP_PROP_FOURCC))
    text = "".join(chr((code >> 8 * k) & 0xFF) for k in range(4))
    return text if text.isprintable() and text.strip() else str(code)


def probe_video(path: str) -> VideoInfo:
    """What the container says, and the size of its first decoded frame; refuses a file without one."""
    capture = _open(path)
    try:
        ok, frame = capture.read()
        if not ok or frame is None:
            raise VideoError(f"{path}: no decodable video frame (audio only, or a damaged video stream)")
        fps = capture.get(cv2.CAP_PROP_FPS)
        count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
        return VideoInfo(path, frame.shape[1], frame.shape[0],
                         fps if math.isfinite(fps) and fps > 0 else 0.0,
                         int(count) if math.isfinite(count) and count > 0 else 0,
                         int(capture.get(cv2.CAP_PROP_ORIENTATION_META)), _fourcc(capture))
    finally:
        capture.release()


class VideoReader:
    """Iterates `Frame`s of every `every`-th frame up to `max_seconds`, never holding more than one.

    A timestamp that does not advance (missing or broken in the container) is replaced by the previous
    one plus one nominal frame interval; `repaired_timestamps` counts them. After the iteration,
    `frames_decoded`, `last_time` and `ended_early` (the container announced clearly more frames than
    could be decoded: a truncated or damaged file) say how far decoding got.
    """

    def __init__(self, info: VideoInfo, every: int = 1, max_seconds: float | None = None):
        self.info, self.every, self.max_seconds = info, every, max_seconds
        self.frames_decoded, self.last_time, self.repaired_timestamps = 0, None, 0
        self.ended_early = False

    def __iter__(self):
        capture = _open(self.info.path)
        step = 1 / self.info.fps if self.info.fps else 1 / 30
        try:
            while True:
                index = self.frames_decoded
                if index % self.every:
                    if not capture.grab():
                        break
                else:
                    ok, image = capture.read()
                    if not ok:
                        break
                time = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000
                previous = -step if self.last_time is None else self.last_time
                if not (math.isfinite(time) and time > previous):
                    time = previous + step
                    self.repaired_timestamps += 1
                if self.max_seconds is not None and time >= self.max_seconds:
                    return
                self.frames_decoded, self.last_time = index + 1, time
                if index % self.every == 0:
                    yield Frame(index, time, image)
            count = self.info.frame_count
            self.ended_early = count > 0 and self.frames_decoded < count - max(2, 0.01 * count)
        finally:
            capture.release()
