"""predict.py on a real face: matplotlib's grace_hopper.jpg moving and scaling in an OpenCV-written
video (with face-less frames and a short occlusion), a tiny random-weight S2D checkpoint; plus the
window/tracking/smoothing units, scripts/make_synthetic_video.py and scripts/download_checkpoints.py
against a Hugging Face cache built here (offline)."""
import argparse
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import predict
from datasets.classes import DFEW_CLASSES
from datasets.faces import FaceTracker
from engine.video_windows import TrackWindows, moving_average
from models import build_model, save_checkpoint
from scripts.benchmark_predict import write_face_video
from scripts.make_synthetic_video import write_video

ROOT = Path(__file__).resolve().parents[1]
FPS, WIDTH, HEIGHT, NUM_FRAMES = 10, 320, 240, 40
FACE_FRAMES = range(4, 34)  # the face is in frames 4..33 ...
HIDDEN = (18, 19)  # ... except these two (a gap the tracker bridges)
CLIP_LEN = 4
pytestmark = pytest.mark.filterwarnings("ignore:LandmarkFeatures")


def photo_position(frame_index):
    """(x, y, scale) of the photograph in the frame: it moves right and down and grows."""
    t = (frame_index - FACE_FRAMES[0]) / (len(FACE_FRAMES) - 1)
    return int(20 + 120 * t), int(10 * t), (200 + 60 * t) / 600


@pytest.fixture(scope="module")
def face_video(tmp_path_factory):
    """The video and, per frame of FACE_FRAMES, the box where the face is (the still photo's face box,
    found by the same detector, moved and scaled with the photo; hidden frames: where it would be)."""
    path = tmp_path_factory.mktemp("video") / "face.mp4"
    placements = [photo_position(i) if i in FACE_FRAMES else None for i in range(NUM_FRAMES)]
    truth = write_face_video(path, [None if i in HIDDEN else p for i, p in enumerate(placements)],
                             FPS, WIDTH, HEIGHT)
    before, after = HIDDEN[0] - 1, HIDDEN[-1] + 1  # the photo moves linearly: interpolate
    for i in HIDDEN:
        truth[i] = truth[before] + (truth[after] - truth[before]) * (i - before) / (after - before)
    return path, truth


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny random-weight video model in the original layout, with this project's stored args."""
    torch.manual_seed(0)
    model = build_model("s2d_tiny_patch8_112", num_classes=7, num_frames=CLIP_LEN)
    path = tmp_path_factory.mktemp("ckpt") / "checkpoint-best.pth"
    save_checkpoint({"model": model.state_dict(), "epoch": "best",
                     "args": argparse.Namespace(model="s2d_tiny_patch8_112", input_size=112, num_frames=CLIP_LEN,
                                                data_set="DFEW", nb_classes=7, scale_factor=0.25)}, path)
    return path


def run_predict(video, checkpoint, output_dir, *extra):
    args = predict.get_args_parser().parse_args(
        ["--video", str(video), "--checkpoint", str(checkpoint), "--output_dir", str(output_dir),
         "--landmark_weights", "random", "--device", "cpu", *extra])
    return predict.main(args)


def read_csv(output_dir):
    with open(output_dir / "predictions.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], [dict(zip(rows[0], r)) for r in rows[1:]]


@pytest.fixture(scope="module")
def default_run(face_video, checkpoint, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("out")
    summary = run_predict(face_video[0], checkpoint, output_dir)
    return output_dir, summary


def test_one_track_follows_the_face_through_the_gap(face_video, default_run):
    output_dir, summary = default_run
    (track,) = json.loads((output_dir / "summary.json").read_text())["tracks"]
    assert track["track"] == 1 and summary["dropped_short_tracks"] == 0
    # (detections at this size are reliable with OpenCV 4.14; one frame of slack at each end)
    first, last = track["first_frame"], track["last_frame"]
    assert abs(first - FACE_FRAMES[0]) <= 1 and abs(last - FACE_FRAMES[-1]) <= 1
    assert (track["start_s"], track["end_s"]) == (first / FPS, last / FPS)
    assert track["frames_seen"] == last - first + 1  # the hidden frames are bridged
    assert len(FACE_FRAMES) - 6 <= track["frames_detected"] <= len(FACE_FRAMES) - len(HIDDEN)
    _, rows = read_csv(output_dir)
    truth = face_video[1]
    for row in rows:
        middle = int(row["first_frame"]) + CLIP_LEN // 2  # the window's box is its middle crop's
        x, y, w, h = (float(row[k]) for k in ("box_x", "box_y", "box_w", "box_h"))
        tx, ty, tw, th = truth[middle]  # in the hidden frames: where the face would be
        tolerance = 0.2 * tw
        assert abs(x + w / 2 - (tx + tw / 2)) < tolerance and abs(y + h / 2 - (ty + th / 2)) < tolerance, row
        assert 0.75 < w / tw < 1.33, row


def test_windows_timing_columns_and_probabilities(default_run):
    output_dir, summary = default_run
    header, rows = read_csv(output_dir)
    assert header == ["track", "first_frame", "last_frame", "start_s", "end_s", "box_x", "box_y", "box_w",
                      "box_h", *DFEW_CLASSES, "top_class"]
    (track,) = summary["tracks"]
    first, last = track["first_frame"], track["last_frame"]
    stride = CLIP_LEN // 2  # default: half a window
    starts = list(range(first, last - CLIP_LEN + 2, stride))
    if starts[-1] + CLIP_LEN - 1 < last:
        starts.append(last - CLIP_LEN + 1)  # the last window is aligned with the end of the track
    assert [int(r["first_frame"]) for r in rows] == starts
    assert [int(r["last_frame"]) for r in rows] == [s + CLIP_LEN - 1 for s in starts]
    for row in rows:
        assert float(row["start_s"]) == pytest.approx(int(row["first_frame"]) / FPS)
        assert float(row["end_s"]) == pytest.approx(int(row["last_frame"]) / FPS)
        probabilities = np.array([float(row[name]) for name in DFEW_CLASSES])
        assert probabilities.sum() == pytest.approx(1, abs=1e-5)
        assert row["top_class"] == DFEW_CLASSES[int(probabilities.argmax())]
    mean = probabilities_of(rows).mean(0)
    assert list(track["mean_probabilities"].values()) == pytest.approx(mean, abs=1e-5)
    assert track["dominant_emotion"] == DFEW_CLASSES[int(mean.argmax())]
    assert track["windows"] == len(rows)
    assert summary["settings"]["model"] == "s2d_tiny_patch8_112"  # from the checkpoint's args
    assert summary["frames_processed"] == NUM_FRAMES and summary["fps"] == FPS


def test_plot_video_and_atomic_outputs(default_run):
    output_dir, _ = default_run
    assert sorted(os.listdir(output_dir)) == ["annotated.mp4", "predictions.csv", "summary.json", "timeline.png"]
    assert (output_dir / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    capture = cv2.VideoCapture(str(output_dir / "annotated.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == NUM_FRAMES
    frames = [capture.read()[1] for _ in range(NUM_FRAMES)]
    assert frames[10].shape == (HEIGHT, WIDTH, 3)
    # the box is drawn in green on frames of the track, never on the face-less frames
    green = [int(((f[..., 1] > 150) & (f[..., 0] < 80) & (f[..., 2] < 80)).sum()) for f in frames]
    assert all(green[i] > 50 for i in FACE_FRAMES) and all(green[i] == 0 for i in (0, 1, 2, 3, 36, 37))


def probabilities_of(rows):
    return np.array([[float(r[n]) for n in DFEW_CLASSES] for r in rows])


def test_every(face_video, checkpoint, tmp_path):
    summary = run_predict(face_video[0], checkpoint, tmp_path, "--every", "2", "--window_stride", "4", "--no_video")
    assert summary["frames_processed"] == NUM_FRAMES // 2
    assert not (tmp_path / "annotated.mp4").exists()
    (track,) = summary["tracks"]
    assert track["first_frame"] % 2 == 0 and track["frames_seen"] == (track["last_frame"] - track["first_frame"]) // 2 + 1
    _, rows = read_csv(tmp_path)
    # windows of CLIP_LEN processed frames (every other video frame), starting every 4 processed frames
    starts = [int(r["first_frame"]) for r in rows]
    assert starts[:-1] == list(range(track["first_frame"], track["first_frame"] + 8 * (len(rows) - 1), 8))
    assert all(int(r["last_frame"]) - int(r["first_frame"]) == 2 * (CLIP_LEN - 1) for r in rows)
    assert int(rows[-1]["last_frame"]) == track["last_frame"]


def test_no_detect_smooth_and_max_seconds(checkpoint, tmp_path):
    video = tmp_path / "synthetic.mp4"
    description = write_video(video, ["happy", "surprise"], 6, 64, 8.0, seed=0)
    assert [s["first_frame"] for s in description["segments"]] == [0, 6]
    assert json.loads((tmp_path / "synthetic.mp4.json").read_text())["segments"][1]["start_s"] == 0.75
    summary = run_predict(video, checkpoint, tmp_path / "raw", "--no_detect", "--max_seconds", "1.0", "--no_video")
    assert summary["frames_processed"] == 8  # 1 s at 8 fps
    (track,) = summary["tracks"]
    assert (track["first_frame"], track["last_frame"], track["frames_seen"]) == (0, 7, 8)
    _, rows = read_csv(tmp_path / "raw")
    assert [(int(r["first_frame"]), int(r["last_frame"])) for r in rows] == [(0, 3), (2, 5), (4, 7)]
    assert all((r["box_x"], r["box_y"], r["box_w"], r["box_h"]) == ("0", "0", "64", "64") for r in rows)
    run_predict(video, checkpoint, tmp_path / "smooth", "--no_detect", "--max_seconds", "1.0", "--no_video",
                "--smooth", "3")
    raw, smooth = probabilities_of(rows), probabilities_of(read_csv(tmp_path / "smooth")[1])
    assert smooth[1] == pytest.approx(raw.mean(0), abs=1e-5)
    assert smooth[0] == pytest.approx(raw[:2].mean(0), abs=1e-5)  # fewer windows at the ends
    assert smooth[2] == pytest.approx(raw[1:].mean(0), abs=1e-5)
    assert np.abs(raw - smooth).max() > 1e-4  # the random model does not give identical windows


def test_cpu_int8_agrees_with_fp32_and_is_cpu_only(checkpoint, tmp_path):
    video = tmp_path / "synthetic.mp4"
    write_video(video, ["happy", "surprise"], 6, 64, 8.0, seed=0)
    flags = ("--no_detect", "--max_seconds", "1.0", "--no_video")
    run_predict(video, checkpoint, tmp_path / "fp32", *flags)
    run_predict(video, checkpoint, tmp_path / "int8", *flags, "--cpu_int8")
    fp32, int8 = probabilities_of(read_csv(tmp_path / "fp32")[1]), probabilities_of(read_csv(tmp_path / "int8")[1])
    assert fp32.shape == int8.shape == (3, 7)
    assert 0 < np.abs(fp32 - int8).max() < 0.05  # int8 really ran, and stays close to fp32
    with pytest.raises(predict.PredictError, match="--cpu_int8 runs on the CPU only"):
        run_predict(video, checkpoint, tmp_path / "gpu", *flags, "--cpu_int8", "--device", "cuda:0")


def test_no_face_gives_empty_valid_outputs(checkpoint, tmp_path, capsys):
    video = tmp_path / "empty.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 5, (96, 96))
    for _ in range(6):
        writer.write(np.full((96, 96, 3), 128, np.uint8))
    writer.release()
    summary = run_predict(video, checkpoint, tmp_path / "out", "--no_video")
    assert summary["tracks"] == [] and "no face found" in summary["warning"]
    assert "warning: no face found" in capsys.readouterr().err
    header, rows = read_csv(tmp_path / "out")
    assert rows == [] and header[-1] == "top_class"
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["tracks"] == []


def test_bad_inputs_are_clear_errors(face_video, checkpoint, tmp_path):
    def error_of(*args, video=face_video[0], ckpt=checkpoint):
        with pytest.raises(predict.PredictError) as info:
            run_predict(video, ckpt, tmp_path / "out", "--no_video", *args)
        return info.value.exit_code, str(info.value)

    code, message = error_of(video=tmp_path / "missing.mp4")
    assert code == 3 and "missing.mp4" in message
    (tmp_path / "notes.mp4").write_text("not a video")
    code, message = error_of(video=tmp_path / "notes.mp4")
    assert code == 3 and "notes.mp4" in message
    code, message = error_of("--data_set", "MAFW")
    assert code == 4 and str(checkpoint) in message and "7-class" in message and "11 classes" in message
    code, message = error_of("--detector", "yunet")
    assert code == 5 and "--detector_model" in message
    assert not (tmp_path / "out").exists() or os.listdir(tmp_path / "out") == []


def test_command_line_exit_code(tmp_path):
    result = subprocess.run([sys.executable, "predict.py", "--video", str(tmp_path / "none.mp4"), "--checkpoint",
                             "x.pth", "--output_dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 3 and "error: video file not found" in result.stderr


def test_tracker_ids_gaps_and_false_positives():
    tracker = FaceTracker(iou_threshold=0.3, max_gap=2, min_hits=3)
    a, b = np.array([0.0, 0, 50, 50]), np.array([200.0, 0, 50, 50])
    for frame in range(4):  # b: 2 detections only
        tracker.update(frame, [a + [frame, 0, 0, 0], b] if frame < 2 else [a + [frame, 0, 0, 0]])
    track_a, track_b = tracker.active
    assert (track_a.track_id, track_b.track_id, tracker.num_dropped) == (1, None, 0)
    _, ended = tracker.update(4, [])
    assert ended == [track_b] and tracker.active == [track_a]  # b missed 3 frames > max_gap
    tracker.update(5, [])
    observations, _ = tracker.update(6, [a + [10, 0, 0, 0]])
    assert tracker.num_dropped == 1  # b never reached min_hits
    assert [(o[0].track_id, o[1]) for o in observations] == [(1, 4), (1, 5), (1, 6)]
    assert observations[0][2][0] == pytest.approx(3 + (10 - 3) / 3)  # interpolated over the gap
    for frame in (7, 8, 9):
        _, ended = tracker.update(frame, [])
    assert ended == [track_a]
    tracker.update(10, [a])
    assert tracker.active[0].track_id is None  # a new, not yet confirmed track


def test_track_windows_sampling():
    def windows(count, stride, clip_len=4, rate=1):
        collector = TrackWindows(clip_len, rate, stride)
        for i in range(count):
            collector.add(100 + i, np.zeros(4), torch.full((3, 1, 2, 2), float(i)))
        cut = collector.ready(1) + collector.final(1)
        return [(w.first_frame, w.last_frame, w.video[0, :, 0, 0].int().tolist()) for w in cut]

    assert windows(2, 2) == [(100, 101, [0, 1, 1, 1])]  # padded with the last crop
    assert windows(7, 2) == [(100, 103, [0, 1, 2, 3]), (102, 105, [2, 3, 4, 5]), (103, 106, [3, 4, 5, 6])]
    assert windows(6, 2) == [(100, 103, [0, 1, 2, 3]), (102, 105, [2, 3, 4, 5])]
    # every 3rd crop, a span of 6: the windows starting at 0..3 cover all 9 crops
    assert windows(9, 1, clip_len=2, rate=3) == [(100, 103, [0, 3]), (101, 104, [1, 4]), (102, 105, [2, 5]),
                                                  (103, 106, [3, 6])]


def test_moving_average():
    p = np.eye(3)[[0, 1, 2, 0]]
    assert moving_average(p, 1) is p
    assert moving_average(p, 3)[1] == pytest.approx(p[:3].mean(0))
    assert moving_average(p, 3)[3] == pytest.approx(p[2:].mean(0))
    assert moving_average(p, 10) == pytest.approx(np.tile(p.mean(0), (4, 1)))


def fake_hub_cache(root, files):
    """A Hugging Face cache holding one snapshot of cyinen/S2D, laid out as huggingface_hub writes it."""
    repo = root / "models--cyinen--S2D"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "blobs").mkdir()
    for name, content in files.items():
        blob = repo / "blobs" / f"blob{len(content)}{abs(hash(name))}"
        blob.write_bytes(content)
        link = repo / "snapshots" / commit / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))


def test_download_checkpoints_offline_from_a_cache(tmp_path):
    files = {"DFEW/dfew_fold1.pth": b"fold one", "DFEW/dfew_fold2.pth": b"fold two", "MAFW/mafw_fold1.pth": b"m",
             "pretrain-AffectNet-7.pth": b"static"}
    fake_hub_cache(tmp_path / "hub", files)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}

    def script(*args):
        return subprocess.run([sys.executable, "scripts/download_checkpoints.py", "--cache_dir",
                               str(tmp_path / "hub"), "--dest", str(tmp_path / "ckpts"), *args],
                              cwd=ROOT, env=env, capture_output=True, text=True)

    listed = script("--list")
    assert listed.returncode == 0 and listed.stdout.split() == sorted(files)
    assert script("--list", "--pattern", "DFEW/*").stdout.split() == ["DFEW/dfew_fold1.pth", "DFEW/dfew_fold2.pth"]
    first = script("--pattern", "*fold1*")
    assert first.returncode == 0, first.stderr
    assert sorted(str(p.relative_to(tmp_path / "ckpts")) for p in (tmp_path / "ckpts").rglob("*.pth")) == \
        ["DFEW/dfew_fold1.pth", "MAFW/mafw_fold1.pth"]
    assert (tmp_path / "ckpts" / "DFEW" / "dfew_fold1.pth").read_bytes() == b"fold one"
    again = script("--pattern", "*fold1*", "--pattern", "pretrain*")
    assert again.stdout.count("(present)") == 2 and again.stdout.count("(written)") == 1
    missing = script("--pattern", "*FERV39K*")
    assert missing.returncode == 1 and "no file of cyinen/S2D matches" in missing.stderr and "dfew_fold2" in missing.stderr
