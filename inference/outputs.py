"""What an analysis writes, streaming: predictions.csv row by row, the per-track summary from running
sums, then timeline.png and annotated.mp4 from the CSV and a frame-ordered file of face boxes, so that
memory does not grow with the video's length.
"""
import csv
import functools
import math
import os
import shutil
from collections import defaultdict
from fractions import Fraction

import av
import cv2
import numpy as np

from utils.files import atomic_output

from .smoothing import CentredAverage

CSV_COLUMNS = ("track", "start_s", "end_s", "first_frame", "last_frame", "box_x", "box_y", "box_w", "box_h")
BOX_COLOURS = ((0, 200, 0), (0, 140, 255), (255, 80, 0), (200, 0, 200), (0, 200, 200), (80, 80, 255))
TIMELINE_POINTS = 1000  # per track; longer timelines are averaged into this many time bins
BOX_RECORD = np.dtype([("frame", "<i8"), ("serial", "<i8"), ("box", "<f8", 4)])
# annotated.mp4: H.264 (every browser plays it), else VP9 (most browsers), else MPEG-4 part 2 (video players)
VIDEO_CODECS = ("libx264", "h264", "libvpx-vp9", "mpeg4")
VIDEO_TIME_BASE = Fraction(1, 60000)  # frame times to 1/60 ms; MPEG-4 part 2 takes at most 1/65535


class FeatureWriter:
    """features.npy, one float32 row per window as rows come: appended to a raw file beside it, which close()
    turns into the .npy file (its header, then the rows copied over), so memory does not grow with the rows."""

    def __init__(self, path, dim):
        self.path, self.dim, self.rows = path, dim, 0
        self.raw_path = f"{path}.raw"
        self.handle = open(self.raw_path, "wb")

    def add(self, feature):
        np.asarray(feature, dtype="<f4").reshape(self.dim).tofile(self.handle)
        self.rows += 1

    def close(self):
        self.handle.close()
        header = dict(descr=np.lib.format.dtype_to_descr(np.dtype("<f4")), fortran_order=False,
                      shape=(self.rows, self.dim))
        with open(self.path, "wb") as out, open(self.raw_path, "rb") as raw:
            np.lib.format.write_array_header_1_0(out, header)
            shutil.copyfileobj(raw, out)
        os.remove(self.raw_path)


class PredictionWriter:
    """predictions.csv (one row per window, per-track smoothing applied) and per-track running sums; with
    `features` (a FeatureWriter), each row's window feature in the same order."""

    def __init__(self, path, class_names, smooth, features=None):
        self.class_names, self.smooth, self.features = class_names, smooth, features
        self.handle = open(path, "w", newline="")
        self.writer = csv.writer(self.handle, lineterminator="\n")
        self.writer.writerow([*CSV_COLUMNS, *class_names, "top_class"])
        self.smoothers = {}
        self.tracks = {}  # track id -> running statistics
        self.rows = 0

    def add(self, window, probabilities):
        smoother = self.smoothers.setdefault(window.track_id, CentredAverage(self.smooth))
        self._write(smoother.push(window, probabilities))

    def close(self):
        for smoother in self.smoothers.values():
            self._write(smoother.finish())
        self.handle.close()
        if self.features is not None:
            self.features.close()

    def _write(self, rows):
        for window, p in rows:
            top = int(np.argmax(p))
            self.writer.writerow([window.track_id, f"{window.start:.4f}", f"{window.end:.4f}",
                                  int(window.frame_indices[0]), int(window.frame_indices[-1]),
                                  *(int(round(v)) for v in window.box), *(f"{v:.6f}" for v in p),
                                  self.class_names[top]])
            if self.features is not None:
                self.features.add(window.feature)
            stats = self.tracks.setdefault(window.track_id, dict(windows=0, sum=np.zeros(len(p)),
                                                                  top_counts=np.zeros(len(p), np.int64)))
            stats["windows"] += 1
            stats["sum"] += p
            stats["top_counts"][top] += 1
            self.rows += 1
        self.handle.flush()


def track_summaries(writer, spans, class_names):
    """Per confirmed track: times, detections, windows, mean probabilities, share of windows per top class
    and the dominant emotion. `spans`: track id -> inference.segment.TrackSpan."""
    summaries = []
    for track_id in sorted(spans):
        span, stats = spans[track_id], writer.tracks.get(track_id)
        entry = dict(track=track_id, start_s=round(span.first_time, 4), end_s=round(span.last_time, 4),
                     first_frame=span.first_frame, last_frame=span.last_frame,
                     frames_detected=span.detections, windows=stats["windows"] if stats else 0)
        if stats:
            mean = stats["sum"] / stats["windows"]
            entry.update(mean_probabilities={n: round(float(p), 6) for n, p in zip(class_names, mean)},
                         class_shares={n: round(c / stats["windows"], 4)
                                       for n, c in zip(class_names, stats["top_counts"])},
                         dominant_emotion=class_names[int(np.argmax(mean))])
        summaries.append(entry)
    return summaries


def read_predictions(path, class_names):
    """Iterate the rows of a predictions.csv as (track id, window centre in seconds, probabilities)."""
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            yield (int(row["track"]), (float(row["start_s"]) + float(row["end_s"])) / 2,
                   np.array([float(row[n]) for n in class_names]))


def timeline_and_labels(path, class_names, duration):
    """One pass over predictions.csv: per track the timeline binned into at most TIMELINE_POINTS time bins
    (mean probabilities per bin) and the label arrays the annotated video needs (centres, top class, its
    probability)."""
    bins = max(duration, 1e-6) / TIMELINE_POINTS
    sums = defaultdict(dict)
    labels = defaultdict(lambda: ([], [], []))
    for track, centre, p in read_predictions(path, class_names):
        cell = sums[track].setdefault(int(centre / bins), [0, np.zeros(len(p)), 0.0])
        cell[0] += 1
        cell[1] += p
        cell[2] += centre
        for column, value in zip(labels[track], (centre, int(np.argmax(p)), float(np.max(p)))):
            column.append(value)
    timeline = {t: (np.array([c[2] / c[0] for c in cells.values()]), np.stack([c[1] / c[0] for c in cells.values()]))
                for t, cells in sums.items()}
    return timeline, {t: tuple(np.array(column) for column in columns) for t, columns in labels.items()}


def write_timeline(folder, class_names, duration, title):
    """timeline.png in `folder` from its predictions.csv; returns the annotated video's labels (timeline_and_labels)."""
    timeline, labels = timeline_and_labels(os.path.join(folder, "predictions.csv"), class_names, duration)
    plot_timeline(os.path.join(folder, "timeline.png"), timeline, class_names, title)
    return labels


def plot_timeline(path, timeline, class_names, title):
    """timeline_figure as a PNG file."""
    fig = timeline_figure(timeline, class_names, title)
    import matplotlib.pyplot as plt  # after timeline_figure chose the Agg backend
    with atomic_output(path) as tmp_path:
        fig.savefig(tmp_path, dpi=100, format="png")
    plt.close(fig)


def timeline_figure(timeline, class_names, title, width=10):
    """Per track, each class's probability over time (window centres), one panel per track: a matplotlib figure
    (the caller closes it). `timeline`: track id -> (times, probabilities (N, K))."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    track_ids = sorted(timeline)
    fig, axes = plt.subplots(max(len(track_ids), 1), 1, figsize=(width, 2.6 * max(len(track_ids), 1) + 0.6),
                             squeeze=False, sharex=True)
    for ax, track_id in zip(axes[:, 0], track_ids):
        times, probabilities = timeline[track_id]
        for k, name in enumerate(class_names):
            ax.plot(times, probabilities[:, k], marker="." if len(times) < 30 else None, label=name)
        ax.set_ylim(0, 1)
        ax.set_ylabel(f"track {track_id}\nprobability")
        ax.grid(alpha=0.3)
    if track_ids:
        axes[0, 0].legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    else:
        axes[0, 0].text(0.5, 0.5, "no face found", ha="center", va="center", transform=axes[0, 0].transAxes)
    axes[-1, 0].set_xlabel("time (s), window centre")
    fig.suptitle(title, fontsize="medium")
    fig.tight_layout()
    return fig


def read_box_records(path, chunk=4096):
    """Iterate the records of a box file (frame index, track serial, box), in the order written."""
    with open(path, "rb") as handle:
        while block := np.fromfile(handle, dtype=BOX_RECORD, count=chunk).tolist():
            yield from block


@functools.cache
def video_codec() -> str:
    """The first of VIDEO_CODECS that this PyAV build can open for encoding."""
    for name in VIDEO_CODECS:
        try:
            context = av.CodecContext.create(name, "w")
            context.width, context.height, context.pix_fmt, context.time_base = 64, 64, "yuv420p", VIDEO_TIME_BASE
            context.open()
            return name
        except (av.error.FFmpegError, ValueError):
            continue
    raise OSError(f"this PyAV build has none of the video encoders {', '.join(VIDEO_CODECS)}: cannot write "
                  "annotated.mp4 (--no_video skips it)")


def draw_face(image, box, track_id, text):
    """Draw a face's box and `text` (its track and reading) on a BGR `image`, in the track's colour."""
    colour = BOX_COLOURS[(track_id - 1) % len(BOX_COLOURS)]
    x, y, w, h = (int(round(v)) for v in box)
    cv2.rectangle(image, (x, y), (x + w, y + h), colour, 2)
    cv2.putText(image, text, (x, max(y - 6, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)


class VideoEncoder:
    """An mp4 written frame by frame with video_codec(), each frame at its own presentation time (a variable frame
    rate stays variable). `rate`: the nominal frame rate, a hint for the encoder. The index comes first
    (faststart), so that a browser plays the file before all of it has arrived; yuv420p, which every browser
    decodes, needs an even width and height, so an odd last column or row is left out."""

    def __init__(self, path, size, rate=None):
        self.width, self.height = size[0] // 2 * 2, size[1] // 2 * 2
        self.container = av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"})
        self.stream = self.container.add_stream(video_codec(),
                                                rate=Fraction(rate).limit_denominator(1001) if rate else None)
        self.stream.width, self.stream.height, self.stream.pix_fmt = self.width, self.height, "yuv420p"
        self.stream.codec_context.time_base = VIDEO_TIME_BASE
        if self.stream.codec_context.name == "libx264":
            self.stream.options = {"preset": "veryfast", "crf": "23"}
        self.last_pts = -1

    def write(self, image, time):
        """A BGR frame shown from `time` seconds on (a time not after the previous frame's is moved just after)."""
        picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:self.height, :self.width]), format="bgr24")
        self.last_pts = picture.pts = max(round(time / VIDEO_TIME_BASE), self.last_pts + 1)
        picture.time_base = VIDEO_TIME_BASE
        self.container.mux(self.stream.encode(picture))

    def close(self, flush=True):
        """Flush the encoder (`flush`: the frames it still holds) and close the file, also when flushing fails (a
        full disk: the file's space then comes back once it is removed)."""
        try:
            if flush:
                self.container.mux(self.stream.encode())
        finally:
            self.container.close()

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        self.close(flush=kind is None)


def annotate_video(path, frames, box_records, serial_to_id, labels, class_names, size, every, rate=None):
    """Encode `frames` (inference.decode.Frame, every frame) once with a VideoEncoder, with each confirmed face's
    box, track id and the label of the window whose centre is nearest. `box_records` come in frame order; a box is
    drawn on the frames up to the next processed frame (`every`)."""
    records, pending, current, shown_frame = iter(box_records), None, {}, -math.inf
    with VideoEncoder(path, size, rate) as video:
        for frame in frames:
            if pending is None:
                pending = next(records, None)
            while pending is not None and pending[0] < frame.index:  # a frame the second decoding lacks
                pending = next(records, None)
            if pending is not None and pending[0] == frame.index:
                current, shown_frame = {}, frame.index
                while pending is not None and pending[0] == frame.index:
                    current[pending[1]] = pending[2]
                    pending = next(records, None)
            if frame.index - shown_frame >= every:
                current = {}
            for serial, box in current.items():
                track_id = serial_to_id.get(serial)
                if track_id is None or track_id not in labels:
                    continue
                centres, tops, confidences = labels[track_id]
                nearest = int(np.argmin(np.abs(centres - frame.time)))
                draw_face(frame.image, box, track_id,
                          f"#{track_id} {class_names[tops[nearest]]} {confidences[nearest]:.2f}")
            video.write(frame.image, frame.time)
