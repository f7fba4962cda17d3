"""How fast a face may move and keep its track, for each longest time between two detections (`predict.py
--detect_interval`): the measurement behind inference.detection_schedule.DEFAULT_DETECT_INTERVAL.

    python benchmarks/benchmark_tracking.py

A real face (matplotlib's grace_hopper.jpg, about 70 px wide) moves sideways over a textured 640x360
background at 24 fps, at a range of speeds in face widths per second, in two ways:
- back and forth, turning instantly every second (the worst case for the tracker's constant-velocity
  prediction: after a turn the predicted box is off by twice the distance covered, only the last box can
  still overlap), over one face width per unit of speed up to the width of the frame;
- steadily across the frame from its first frame (a new track has no velocity yet: only its last box can
  overlap until the second detection).
MTCNN runs once on every frame; each interval then replays the detections that the schedule's tracking rule
makes (inference.detection_schedule.DetectionSchedule without windows: the fewest detections, since the frames that
windows sample only add some) through FaceTracker with predict.py's defaults. A speed is kept when the face
is one confirmed track from its first detection to its last, and the last speed kept is printed per interval,
next to what the IoU threshold allows in theory (a box shifted sideways by s of its width overlaps the box
before by (1 - s) / (1 + s): 0.3 up to s = 0.54) over the longest gap between two detections at 24 fps.
"""
import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a file: import inference
from benchmarks.benchmark_predict import PHOTO, textured_background, with_face  # noqa: E402
from inference import Options  # noqa: E402
from inference.detection_schedule import DetectionSchedule  # noqa: E402
from inference.mtcnn import MTCNNDetector  # noqa: E402
from inference.tracking import face_tracker  # noqa: E402

WIDTH, HEIGHT, FPS, SCALE = 640, 360, 24, 0.4
SPEEDS = (1, 2, 3, 4, 6, 8, 12)  # face widths per second
INTERVALS = (0.0, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)


def back_and_forth(t, speed, face_width, room):
    """x of the photograph at time t: from 0 to `span` and back at `speed`, turning every second at most."""
    span = min(speed * face_width, room)
    period = 2 * span / (speed * face_width)
    phase = (t % period) / period
    return span * (2 * phase if phase < 0.5 else 2 - 2 * phase)


def detections(positions, detector):
    background = textured_background(WIDTH, HEIGHT)
    return [detector(with_face(background, int(x), 40, SCALE)) for x in positions]


def kept(faces, times, interval):
    """Whether the face stays one track, detected on the frames the tracking rule picks."""
    schedule, tracker = DetectionSchedule(interval), face_tracker(Options(), "mtcnn")
    serials = set()
    for k, (found, time) in enumerate(zip(faces, times)):
        if schedule.wants(time, times[k + 1] if k + 1 < len(times) else math.inf, []):
            observations, _ = tracker.update(time, found.boxes[:1], found.landmarks[:1])
            serials.update(o.track.serial for o in observations)
    tracker.finish()
    return len(serials) == 1 and tracker.num_confirmed == 1


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="of back-and-forth motion per speed")
    args = parser.parse_args()
    detector = MTCNNDetector()
    background = textured_background(WIDTH, HEIGHT)
    face_width = float(detector(with_face(background, 0, 40, SCALE)).boxes[0, 2])
    photo_width = round(PHOTO.shape[1] * SCALE)
    room = WIDTH - photo_width
    print(f"face {face_width:.0f} px wide; photograph {photo_width} px; {FPS} fps; speeds in face widths per second")
    results = {}
    for speed in SPEEDS:
        times = np.arange(round(args.seconds * FPS)) / FPS
        wave = detections([back_and_forth(t, speed, face_width, room) for t in times], detector)
        crossing = min(int(room / (speed * face_width) * FPS) + 1, len(times))
        steady = detections([speed * face_width * t for t in times[:crossing]], detector)
        results[speed] = {interval: (kept(wave, times, interval), kept(steady, times[:crossing], interval))
                          for interval in INTERVALS}
        print(f"{speed} widths/s: " + ", ".join(f"{interval} s: {'kept' if a else 'lost'}/{'kept' if b else 'lost'}"
                                                 for interval, (a, b) in results[speed].items()), flush=True)
    print("\n| --detect_interval | longest gap at 24 fps | fastest face kept: back and forth / steady from the start "
          "| half a width per gap |")
    print("|---|---|---|---|")
    for interval in INTERVALS:
        fastest = []
        for motion in (0, 1):
            speeds = [s for s in SPEEDS if all(results[v][interval][motion] for v in SPEEDS if v <= s)]
            fastest.append(f"{speeds[-1]:g}" if speeds else f"< {SPEEDS[0]:g}")
        gap = max(math.floor(interval * FPS + 1e-6), 1) / FPS
        print(f"| {interval:g} s | {gap:.3f} s | {fastest[0]} / {fastest[1]} widths per second | {0.54 / gap:.1f} |")


if __name__ == "__main__":
    main()
