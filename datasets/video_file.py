"""Streaming the frames of a video file with OpenCV, one at a time (never the whole video in memory)."""
import math
import os
from dataclasses import dataclass

import cv2


class VideoError(ValueError):
    """The video cannot be opened or holds no decodable frame; the message names the file."""


@dataclass(frozen=True)
class VideoInfo:
    path: str
    fps: float
    frame_count: int  # as the container reports it
    width: int
    height: int


def _open(path: str) -> cv2.VideoCapture:
    if not os.path.isfile(path):
        raise VideoError(f"video file not found: {path}")
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise VideoError(f"{path}: OpenCV cannot open this file as a video (unknown format or unreadable)")
    return capture


def probe_video(path: str) -> VideoInfo:
    """Frame rate, frame count and size read from the file; refuses a file without a decodable frame."""
    capture = _open(path)
    try:
        ok, frame = capture.read()
        if not ok or frame is None:
            raise VideoError(f"{path}: no decodable video frame")
        fps = capture.get(cv2.CAP_PROP_FPS)
        if not math.isfinite(fps) or fps <= 0:
            raise VideoError(f"{path}: the file reports no valid frame rate ({fps})")
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        return VideoInfo(path, fps, max(count, 1), frame.shape[1], frame.shape[0])
    finally:
        capture.release()


def read_frames(path: str, every: int = 1, max_frames: int | None = None):
    """Yield (frame index, BGR uint8 frame) for every `every`-th frame among the first `max_frames`."""
    capture = _open(path)
    try:
        index = 0
        while max_frames is None or index < max_frames:
            if index % every:
                if not capture.grab():
                    break
            else:
                ok, frame = capture.read()
                if not ok:
                    break
                yield index, frame
            index += 1
    finally:
        capture.release()
