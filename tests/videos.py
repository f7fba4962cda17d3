"""Videos the inference tests write: a real face (matplotlib's grace_hopper.jpg) placed on a grey background,
variable frame rate files with exact timestamps (PyAV), rotation metadata, and broken files."""
import fractions
import struct

import av
import cv2
import numpy as np
from matplotlib import cbook

PHOTO = cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))


def face_frame(width, height, placements=()):
    """A grey frame with the photograph at each (x, y, scale) of `placements`."""
    frame = np.full((height, width, 3), 90, np.uint8)
    for x, y, scale in placements:
        face = cv2.resize(PHOTO, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        frame[y:y + face.shape[0], x:x + face.shape[1]] = face[:height - y, :width - x]
    return frame


def write_cv2_video(path, frames, fps, fourcc="mp4v"):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, frames[0].shape[1::-1])
    for frame in frames:
        writer.write(frame)
    writer.release()


def write_timed_video(path, frames, times, keyframe_every=None, index_first=False, codec="libx264"):
    """An H.264 mp4 (or `codec`, e.g. libx265 into a .mov) whose frames carry exactly the given presentation times
    (seconds, millisecond ticks); `index_first`: the index (moov) before the frames, as streaming files have it."""
    with av.open(str(path), "w", options={"movflags": "+faststart"} if index_first else {}) as container:
        stream = container.add_stream(codec, rate=1000)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.options = {**({"g": str(keyframe_every)} if keyframe_every else {}),
                          **({"x265-params": "log-level=none"} if codec == "libx265" else {})}
        for frame, time in zip(frames, times):
            picture = av.VideoFrame.from_ndarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), format="rgb24")
            picture.pts = round(time * 1000)
            container.mux(stream.encode(picture))
        container.mux(stream.encode())


def show_only(path, seconds):
    """Shorten the first edit list entry of an mp4 to `seconds`: the file shows its first `seconds` while its sample
    table (the frame count in its header) still counts every frame, as in edited phone and camera files."""
    data = bytearray(path.read_bytes())
    elst, movie = data.find(b"elst"), data.find(b"mvhd")
    assert elst > 0 and data[elst + 4] == 0 and data[movie + 4] == 0, "needs a version-0 edit list"
    timescale = struct.unpack(">I", data[movie + 16:movie + 20])[0]
    data[elst + 12:elst + 16] = struct.pack(">I", round(seconds * timescale))
    path.write_bytes(bytes(data))


def set_rotation(path, degrees):
    """Write a clockwise display rotation into the first track header (tkhd matrix) of an mp4, as phones do
    for portrait videos (PyAV and OpenCV's writers cannot write one)."""
    data = bytearray(path.read_bytes())
    at = data.find(b"tkhd")
    matrix_at = at + 4 + 4 + (20 if data[at + 4] == 0 else 32) + 8 + 8
    cos, sin = round(np.cos(np.radians(degrees))), round(np.sin(np.radians(degrees)))
    data[matrix_at:matrix_at + 36] = struct.pack(">9i", cos << 16, sin << 16, 0, -sin << 16, cos << 16, 0, 0, 0,
                                                 1 << 30)
    path.write_bytes(bytes(data))


def write_audio_only(path, seconds=1.0, rate=16000):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=rate)
        samples = (np.sin(np.linspace(0, 440 * 2 * np.pi * seconds, int(rate * seconds))) * 0.3).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(samples[None], format="fltp", layout="mono")
        frame.sample_rate, frame.time_base, frame.pts = rate, fractions.Fraction(1, rate), 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
