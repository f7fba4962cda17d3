"""Decoding a video file with OpenCV, one frame at a time, each frame with its presentation time.

Times come from the container's timestamps (`CAP_PROP_POS_MSEC` of each decoded frame), so variable
frame rate videos (phones) get true seconds; frames come upright (OpenCV applies the rotation stored
in the file's metadata). The video stream's duration, which says whether decoding reached the end, is
read with PyAV (OpenCV does not report it).
"""
import math
import os
from dataclasses import dataclass

import av
import cv2
import numpy as np

from utils.stop import stop_point


class VideoError(ValueError):
    """The file `path` cannot be analysed as a video, for `reason`; the message names the file and says why."""

    def __init__(self, path, reason):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


@dataclass(frozen=True)
class VideoInfo:
    path: str
    width: int  # of the decoded, upright frames
    height: int
    fps: float  # the container's nominal frame rate; 0 when the header gives none
    frame_count: int  # as the container reports it (an estimate: edit lists, B-frames); 0 when unknown
    duration: float  # seconds of the video stream as the container gives it; 0 when unknown
    rotation: int  # degrees of the rotation metadata that decoding applied
    codec: str


@dataclass
class Frame:
    index: int  # 0-based, in decoding order
    time: float  # presentation time in seconds
    image: np.ndarray  # BGR uint8, upright


def _open(path: str) -> cv2.VideoCapture:
    if not os.path.isfile(path):
        raise VideoError(path, "video file not found")
    if os.path.getsize(path) == 0:
        raise VideoError(path, "the file is empty (0 bytes)")
    if cv2.haveImageReader(path):
        raise VideoError(path, "this is a still image, not a video")
    capture = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
    if not capture.isOpened():
        capture.release()
        raise VideoError(path, "cannot be opened as a video (not a video file, an unknown format, no video "
                               "stream, or a damaged container)")
    return capture


def _fourcc(capture) -> str:
    code = int(capture.get(cv2.CAP_PROP_FOURCC))
    text = "".join(chr((code >> 8 * k) & 0xFF) for k in range(4))
    return text if text.isprintable() and text.strip() else str(code)


def stream_duration(path: str) -> float:
    """Seconds of the first video stream by the container: the stream's own duration, else its DURATION tag (how
    FFmpeg's Matroska and WebM muxers record it), else the container's when the video is its only stream; else 0."""
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            if stream.duration and stream.time_base:
                return float(stream.duration * stream.time_base)
            if tag := stream.metadata.get("DURATION"):
                hours, minutes, seconds = tag.split(":")
                return 3600 * int(hours) + 60 * int(minutes) + float(seconds)
            if container.duration and len(container.streams) == 1:
                return container.duration / av.time_base
    except (av.error.FFmpegError, IndexError, ValueError):
        pass
    return 0.0


def damaged_packet(path: str) -> str:
    """Reads the video stream's packets (no decoding): where the first one cut short (the file ends inside it) or
    unreadable is, '' when every packet is whole."""
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            for packet in container.demux(stream):
                if packet.is_corrupt:
                    where = f" at {float(packet.pts * stream.time_base):.2f} s" if packet.pts is not None else ""
                    return f"a damaged or cut-off packet{where}"
    except av.error.FFmpegError as error:
        return f"a read error ({error})"
    return ""


def probe_video(path: str) -> VideoInfo:
    """What the container says, and the size of its first decoded frame; refuses a file without one."""
    capture = _open(path)
    try:
        ok, frame = capture.read()
        if not ok or frame is None:
            raise VideoError(path, "no decodable video frame (audio only, or a damaged video stream)")
        fps = capture.get(cv2.CAP_PROP_FPS)
        count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
        return VideoInfo(path, frame.shape[1], frame.shape[0],
                         fps if math.isfinite(fps) and fps > 0 else 0.0,
                         int(count) if math.isfinite(count) and count > 0 else 0,
                         stream_duration(path), int(capture.get(cv2.CAP_PROP_ORIENTATION_META)), _fourcc(capture))
    finally:
        capture.release()


class VideoReader:
    """Iterates `Frame`s of every `every`-th frame up to `max_seconds`, never holding more than one.

    A timestamp that does not advance (missing or broken in the container) is replaced by the previous
    one plus one nominal frame interval; `repaired_timestamps` counts them. After the iteration,
    `frames_decoded`, `last_time` and `ended_early` say how far decoding got. `ended_early` says why decoding
    stopped before the end ('' when it did not): the last frame (plus its own interval) ends more than one frame
    interval before the stream's duration in the header, or decoding gave fewer frames than the header counts and
    the file holds a packet cut short (a truncated file whose header gives no duration of its own, such as an AVI
    without its index). The frame count alone is no reason: it is an estimate (edit lists, B-frames, variable
    frame rate), and a complete file may announce a few frames more than it shows.
    """

    def __init__(self, info: VideoInfo, every: int = 1, max_seconds: float | None = None):
        self.info, self.every, self.max_seconds = info, every, max_seconds
        self.frames_decoded, self.last_time, self.repaired_timestamps = 0, None, 0
        self.last_interval, self.ended_early = 0.0, ""

    def __iter__(self):
        capture = _open(self.info.path)
        step = 1 / self.info.fps if self.info.fps else 1 / 30
        try:
            while True:
                stop_point()
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
                self.last_interval = time - previous if self.last_time is not None else 0.0
                self.frames_decoded, self.last_time = index + 1, time
                if index % self.every == 0:
                    yield Frame(index, time, image)
            duration, interval = self.info.duration, max(step if self.info.fps else 0.0, self.last_interval)
            end = (self.last_time or 0.0) + interval if self.frames_decoded else 0.0
            if duration > 0 and end < duration - interval - 1e-3:
                self.ended_early = f"before the end of its stream ({duration:.2f} s by its header)"
            elif self.frames_decoded < self.info.frame_count and (damage := damaged_packet(self.info.path)):
                self.ended_early = f"at {damage} (its header counts {self.info.frame_count} frames)"
        finally:
            capture.release()
