"""The detection schedule (inference/detection_schedule.py): the frames that windows sample are always detected
(the windows are those of detecting every frame), a face moving at a realistic speed keeps its track, a face that
appears between two detections is found within the interval, boxes are interpolated between detections; and the
same end to end with MTCNN on a real face."""
import csv
import math
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

import predict
from inference import Analyzer, Options
from inference.detection_schedule import DEFAULT_DETECT_INTERVAL, DetectionSchedule, InterpolatedBoxes, with_next_times
from inference.tracking import FaceTracker
from inference.windows import Sample, TrackWindows, WindowPolicy, window_policy
from tests.videos import face_frame, write_cv2_video

pytestmark = pytest.mark.filterwarnings("ignore:LandmarkFeatures")

FRAME_RATES = {"24 fps": 24.0, "25 fps": 25.0, "29.97 fps": 30000 / 1001, "60 fps": 60.0, "10 fps": 10.0,
               "VFR 1": 1, "VFR 2": 2}  # VFR: variable, 20 to 35 fps (the value seeds it)
POLICIES = {"DFEW": window_policy("DFEW", 16), "DFEW over 2 s": window_policy("DFEW", 16, window_seconds=2.0),
            "MAFW": window_policy("MAFW", 16), "4 samples 0.25 s apart": WindowPolicy(4, 0.25, 0.5, "test")}


def frame_times(rate, seconds=6.0):
    """Presentation times at a constant rate, or (rate 1, 2, ...) a variable rate of 20 to 35 fps seeded by it."""
    if rate > 5:
        return [k / rate for k in range(round(seconds * rate))]
    gaps = np.random.default_rng(rate).uniform(1 / 35, 1 / 20, 400)
    return [float(t) for t in np.concatenate([[0], np.cumsum(gaps)]) if t < seconds]


def windows_of(times, policy, interval, visible=lambda t: True, break_seconds=0.5):
    """The pipeline's loop for one face: the schedule over every frame, the face's track windows fed with the
    detected frames where it is `visible` and closed when it comes back after more than `break_seconds`.
    Returns (the frame indices of each window's samples, the detected frame indices)."""
    frames = [SimpleNamespace(index=k, time=t) for k, t in enumerate(times)]
    schedule, windows, cut, detected, last_seen = DetectionSchedule(interval), TrackWindows(policy), [], [], None
    for frame, next_time in with_next_times(frames):
        if not schedule.wants(frame.time, next_time, [windows]):
            continue
        detected.append(frame.index)
        if visible(frame.time):
            if last_seen is not None and frame.time - last_seen > break_seconds:
                cut += windows.close(1)
            windows.offer(frame.time, lambda f=frame: Sample(f.time, f.index, np.zeros(4), np.zeros((1, 1, 3))))
            cut += windows.ready(1)
            last_seen = frame.time
    cut += windows.close(1)
    return [list(w.frame_indices) for w in cut], detected


@pytest.mark.parametrize("policy", POLICIES.values(), ids=POLICIES.keys())
@pytest.mark.parametrize("rate", FRAME_RATES.values(), ids=FRAME_RATES.keys())
def test_sampled_frames_are_always_detected(rate, policy):
    times = frame_times(rate)
    every_frame, all_frames = windows_of(times, policy, 0)
    assert all_frames == list(range(len(times)))
    windows, detected = windows_of(times, policy, DEFAULT_DETECT_INTERVAL)
    assert windows == every_frame and len(windows) > 2  # the same samples, from the same frames
    assert {k for window in windows for k in window} <= set(detected)
    if policy.sample_step >= 0.2 and rate != 10:  # windows sample a few frames: most frames are skipped
        assert len(detected) < 0.55 * len(times)


@pytest.mark.parametrize("rate", [24.0, 1], ids=["24 fps", "VFR"])
def test_a_face_that_comes_back_is_sampled_on_detected_frames(rate):
    """Absent from 2.0 to 3.0 s: its windows after the return are on a grid anchored at its first detection
    after it, and still sampled on detected frames."""
    times = frame_times(rate)
    windows, detected = windows_of(times, window_policy("DFEW", 16), DEFAULT_DETECT_INTERVAL,
                                   visible=lambda t: not 2.0 <= t < 3.0)
    anchor = next(k for k in detected if times[k] >= 3.0)
    assert times[anchor] - 3.0 <= DEFAULT_DETECT_INTERVAL
    assert any(window[0] == anchor for window in windows) and all(max(w) < anchor or min(w) >= anchor
                                                                   for w in windows)
    assert {k for window in windows for k in window} <= set(detected)


@pytest.mark.parametrize("rate", FRAME_RATES.values(), ids=FRAME_RATES.keys())
def test_a_face_appearing_between_two_detections_is_found_within_the_interval(rate):
    times = frame_times(rate, seconds=3.0)
    _, detected = windows_of(times, window_policy("DFEW", 16), DEFAULT_DETECT_INTERVAL, visible=lambda t: False)
    gaps = np.diff([times[k] for k in detected])
    frame_gap = np.diff(times).max()
    # the longest wait from any frame to the next detection: the interval, or one frame when frames are further apart
    assert gaps.max() <= max(DEFAULT_DETECT_INTERVAL, frame_gap) + 1e-9
    if frame_gap < DEFAULT_DETECT_INTERVAL / 2:
        assert gaps[:-1].min() > DEFAULT_DETECT_INTERVAL / 2  # not every frame (the last frame is always detected)
    for appears in range(len(times)):
        found = next(k for k in detected if k >= appears)
        assert times[found] - times[appears] <= max(DEFAULT_DETECT_INTERVAL, frame_gap) + 1e-9


def tracks_of_a_moving_face(speed, interval, width=70.0, seconds=4.0, fps=24):
    """Confirmed tracks and tracks started for a face `width` px wide moving sideways back and forth over 4 widths
    at `speed` face widths per second, turning instantly, detected on the frames the tracking rule picks (no
    windows: the fewest detections)."""
    options, schedule = Options(), DetectionSchedule(interval)
    tracker = FaceTracker(options.iou_threshold, options.max_gap_seconds, options.break_seconds,
                          options.min_track_frames)
    times = frame_times(fps, seconds)
    serials = set()
    for k, time in enumerate(times):
        if schedule.wants(time, times[k + 1] if k + 1 < len(times) else math.inf, []):
            phase = (speed * time / 4) % 2  # in spans of 4 widths
            x = 4 * width * (phase if phase < 1 else 2 - phase)
            observations, _ = tracker.update(time, [[x, 50.0, width, width * 1.2]])
            serials.update(o.track.serial for o in observations)
    return tracker.num_confirmed, len(serials)


def test_a_face_moving_at_a_realistic_speed_keeps_its_track():
    """2 face widths per second with instant turns: a face crossing a close-up shot (a third of the frame wide)
    in 1.5 s and turning back at once. Too fast for the default interval (and kept when every frame is
    detected): 8 widths per second."""
    assert tracks_of_a_moving_face(2.0, DEFAULT_DETECT_INTERVAL) == (1, 1)
    assert tracks_of_a_moving_face(2.0, 0) == (1, 1)
    assert tracks_of_a_moving_face(8.0, DEFAULT_DETECT_INTERVAL)[1] > 1
    assert tracks_of_a_moving_face(8.0, 0) == (1, 1)


def test_boxes_are_interpolated_between_detections_in_frame_order():
    interpolated = InterpolatedBoxes()

    def observed(index, time, boxes):
        observations = [SimpleNamespace(track=SimpleNamespace(serial=serial), box=np.array(box, dtype=float))
                        for serial, box in boxes.items()]
        return interpolated.records(SimpleNamespace(index=index, time=time), observations)

    assert [(i, s) for i, s, _ in observed(0, 0.0, {0: [0, 0, 10, 10], 1: [50, 0, 10, 10]})] == [(0, 0), (0, 1)]
    for index in (1, 2):
        interpolated.skip(SimpleNamespace(index=index, time=index / 10))
    records = observed(3, 0.3, {0: [30, 6, 16, 10], 2: [90, 0, 10, 10]})  # track 1 lost, track 2 new
    assert [(i, s) for i, s, _ in records] == [(1, 0), (2, 0), (3, 0), (3, 2)]
    np.testing.assert_allclose(records[0][2], [10, 2, 12, 10])
    np.testing.assert_allclose(records[1][2], [20, 4, 14, 10])
    assert [(i, s) for i, s, _ in observed(4, 0.4, {})] == []


def test_detect_interval_must_be_shorter_than_a_break(tmp_path, capsys):
    code = predict.run(["--video", "missing.mp4", "--checkpoint", "missing.pth", "--output_dir", str(tmp_path),
                        "--detect_interval", "0.5"])
    assert code == 2 and "detect_interval" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


FPS, WIDTH, HEIGHT = 24, 320, 240


def photo_at(index):
    """About 1.7 face widths per second (100 px/s, the face about 58 px wide), turning back after 1.5 s."""
    phase = index / FPS / 1.5
    return int(10 + 150 * (phase if phase < 1 else 2 - phase)), 10, 0.33


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


@pytest.fixture(scope="module")
def analyses(checkpoint, tmp_path_factory):
    """MTCNN on a 24 fps video of a real face moving from its first frame, windows of 4 samples 0.2 s apart:
    every frame detected, and the default schedule."""
    folder = tmp_path_factory.mktemp("schedule")
    video = str(folder / "face.mp4")
    write_cv2_video(video, [face_frame(WIDTH, HEIGHT, [photo_at(i)]) for i in range(72)], FPS)
    analyzer = Analyzer(checkpoint, landmark_weights="random", device="cpu", options=Options(window_seconds=0.6))
    every_frame = analyzer.analyze(video, folder / "every_frame", detect_interval=0, write_video=False)
    scheduled = analyzer.analyze(video, folder / "scheduled")
    return every_frame, scheduled


@pytest.mark.slow
def test_the_schedule_gives_the_predictions_of_detecting_every_frame(analyses):
    every_frame, scheduled = analyses
    assert every_frame.summary.frames_detected == every_frame.summary.frames_decoded == 72
    assert scheduled.summary.frames_detected < 0.6 * 72
    assert len(scheduled.summary.tracks) == 1 and scheduled.summary.windows > 5
    # the same frames sampled, with the same detections on them: the same crops, boxes and probabilities
    assert read_rows(scheduled.predictions_csv) == read_rows(every_frame.predictions_csv)


def test_annotated_video_has_a_box_on_every_frame(analyses):
    _, scheduled = analyses
    capture = cv2.VideoCapture(f"{scheduled.output_dir}/annotated.mp4")
    green = []
    while (frame := capture.read()[1]) is not None:
        green.append(int(((frame[..., 1] > 150) & (frame[..., 0] < 80) & (frame[..., 2] < 80)).sum()))
    assert len(green) == 72 and min(green) > 50


def test_a_face_appearing_between_detections_is_tracked_from_the_next_one(checkpoint, tmp_path):
    """No face in frames 0-3: frames 0, 3, 6, ... are detected (24 fps, 0.15 s); the face appears at frame 4."""
    video = str(tmp_path / "late.mp4")
    write_cv2_video(video, [face_frame(WIDTH, HEIGHT, [photo_at(i)] if i >= 4 else []) for i in range(24)], FPS)
    result = Analyzer(checkpoint, landmark_weights="random", device="cpu").analyze(
        video, tmp_path / "out", window_seconds=0.6, write_video=False)
    (track,) = result.summary.tracks
    assert track["first_frame"] == 6 and track["start_s"] - 4 / FPS <= DEFAULT_DETECT_INTERVAL
