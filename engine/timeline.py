"""The files predict.py writes: per-window CSV, per-track summary, timeline plot, annotated video.

Each file is written under a temporary name beside its destination and renamed when complete.
"""
import bisect
import csv
import json
import os

import cv2
import numpy as np

from models.checkpoint import atomic_output

CSV_COLUMNS = ("track", "first_frame", "last_frame", "start_s", "end_s", "box_x", "box_y", "box_w", "box_h")
BOX_COLOURS = ((0, 200, 0), (0, 140, 255), (255, 80, 0), (200, 0, 200), (0, 200, 200), (80, 80, 255))


def write_predictions_csv(path, windows, class_names):
    """One row per window: `windows` are dicts with the CSV_COLUMNS keys and `probabilities`."""
    with atomic_output(path) as tmp_path, open(tmp_path, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([*CSV_COLUMNS, *class_names, "top_class"])
        for window in windows:
            probabilities = window["probabilities"]
            writer.writerow([*(window[c] for c in CSV_COLUMNS), *(f"{p:.6f}" for p in probabilities),
                             class_names[int(np.argmax(probabilities))]])


def write_json(path, content):
    with atomic_output(path) as tmp_path, open(tmp_path, "w") as handle:
        json.dump(content, handle, indent=2)
        handle.write("\n")


def plot_timeline(path, windows, class_names, title):
    """Per track, each class's probability over time (window centres), one panel per track."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    track_ids = sorted({w["track"] for w in windows})
    fig, axes = plt.subplots(max(len(track_ids), 1), 1, figsize=(10, 2.6 * max(len(track_ids), 1) + 0.6),
                             squeeze=False, sharex=True)
    for ax, track_id in zip(axes[:, 0], track_ids):
        rows = [w for w in windows if w["track"] == track_id]
        times = [(w["start_s"] + w["end_s"]) / 2 for w in rows]
        probabilities = np.stack([w["probabilities"] for w in rows])
        for k, name in enumerate(class_names):
            ax.plot(times, probabilities[:, k], marker="." if len(rows) < 30 else None, label=name)
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
    with atomic_output(path) as tmp_path:
        fig.savefig(tmp_path, dpi=100, format="png")
    plt.close(fig)


class FrameAnnotator:
    """Draws, on any frame, the boxes of the tracks seen at the latest processed frame and the label
    of the nearest window (by centre frame) of each track."""

    def __init__(self, observations, windows, class_names, every):
        self.every, self.class_names = every, class_names
        self.tracks = {}  # track id -> (sorted frame indices, boxes, window centres, window probabilities)
        for track_id, frames_and_boxes in observations.items():
            rows = [w for w in windows if w["track"] == track_id]
            frames_and_boxes = sorted(frames_and_boxes, key=lambda item: item[0])
            self.tracks[track_id] = ([f for f, _ in frames_and_boxes], [b for _, b in frames_and_boxes],
                                     np.array([(w["first_frame"] + w["last_frame"]) / 2 for w in rows]),
                                     [w["probabilities"] for w in rows])

    def __call__(self, frame_index, frame):
        for track_id, (frames, boxes, centres, probabilities) in self.tracks.items():
            i = bisect.bisect_right(frames, frame_index) - 1
            if i < 0 or frame_index - frames[i] >= self.every or not len(centres):
                continue
            x, y, w, h = (int(round(v)) for v in boxes[i])
            p = probabilities[int(np.argmin(np.abs(centres - frame_index)))]
            colour = BOX_COLOURS[(track_id - 1) % len(BOX_COLOURS)]
            cv2.rectangle(frame, (x, y), (x + w, y + h), colour, 2)
            label = f"#{track_id} {self.class_names[int(np.argmax(p))]} {np.max(p):.2f}"
            cv2.putText(frame, label, (x, max(y - 6, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
        return frame


def write_annotated_video(path, frames, fps, size, annotate):
    """Encode (index, BGR frame) pairs, each passed through `annotate`, as an mp4 (mp4v)."""
    with atomic_output(path) as tmp_path:
        writer = cv2.VideoWriter(tmp_path, cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        if not writer.isOpened():
            raise OSError(f"OpenCV cannot write an mp4 video to {tmp_path}")
        try:
            for index, frame in frames:
                writer.write(annotate(index, frame))
        finally:
            writer.release()
