"""predict.py and the inference pipeline end to end on real faces (matplotlib's grace_hopper.jpg placed in
videos the tests write) with tiny random-weight checkpoints: tracks, true timestamps (variable frame rate),
rotation metadata, window policies, identity over an absence, bad input, bounded memory, the Python API;
plus scripts/make_synthetic_video.py and scripts/download_checkpoints.py against an offline cache."""
import csv
import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

import predict
from datasets.classes import DFEW_CLASSES, MAFW_CLASSES
from inference import Options, UnusableCheckpoint, analyze_video
from inference.faces import HaarDetector
from inference.model import VideoModel
from scripts.make_synthetic_video import write_video
from tests.helpers import ROOT, fake_hub_cache, tiny_checkpoint
from tests.videos import face_frame, set_rotation, show_only, write_audio_only, write_cv2_video, write_timed_video

FPS, WIDTH, HEIGHT, NUM_FRAMES = 10, 320, 240, 40
FACE_FRAMES = range(4, 34)  # the face is in frames 4..33
CLIP_LEN = 4
pytestmark = pytest.mark.filterwarnings("ignore:LandmarkFeatures")


def photo_position(frame_index):
    """(x, y, scale) of the photograph in the frame: it moves right and down and grows."""
    t = (frame_index - FACE_FRAMES[0]) / (len(FACE_FRAMES) - 1)
    return int(20 + 120 * t), int(10 * t), (200 + 60 * t) / 600


@pytest.fixture(scope="module")
def face_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "face.mp4"
    write_cv2_video(path, [face_frame(WIDTH, HEIGHT, [photo_position(i)] if i in FACE_FRAMES else [])
                           for i in range(NUM_FRAMES)], FPS)
    return path


def run_predict(video, checkpoint, output_dir, *extra):
    """predict.py's exit code and, when outputs were written, its summary."""
    code = predict.run(["--video", str(video), "--checkpoint", str(checkpoint), "--output_dir", str(output_dir),
                        "--landmark_weights", "random", "--device", "cpu", *extra])
    summary = Path(output_dir) / "summary.json"
    return code, json.loads(summary.read_text()) if summary.exists() else None


def read_csv(output_dir):
    with open(Path(output_dir) / "predictions.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], [dict(zip(rows[0], r)) for r in rows[1:]]


def probabilities_of(rows, names=DFEW_CLASSES):
    return np.array([[float(r[n]) for n in names] for r in rows])


@pytest.fixture(scope="module")
def default_run(face_video, checkpoint, tmp_path_factory):
    """MTCNN, eye-level crops, windows of 4 samples 0.2 s apart (--window_seconds 0.8) every 0.4 s."""
    output_dir = tmp_path_factory.mktemp("out") / "face"
    code, summary = run_predict(face_video, checkpoint, output_dir, "--window_seconds", "0.6")
    assert code == 0
    return output_dir, summary


def test_one_track_with_true_times_and_boxes(default_run):
    output_dir, summary = default_run
    (track,) = summary["tracks"]
    assert track["track"] == 1 and summary["dropped_short_tracks"] == 0 and summary["detector"] == "mtcnn"
    assert (track["first_frame"], track["last_frame"]) == (FACE_FRAMES[0], FACE_FRAMES[-1])
    assert (track["start_s"], track["end_s"]) == (FACE_FRAMES[0] / FPS, FACE_FRAMES[-1] / FPS)
    assert track["frames_detected"] == len(FACE_FRAMES)
    assert summary["container"]["fps"] == FPS and summary["frames_decoded"] == NUM_FRAMES
    assert summary["duration_s"] == pytest.approx((NUM_FRAMES - 1) / FPS) and summary["complete"]
    _, rows = read_csv(output_dir)
    haar = HaarDetector(min_face=40)
    for row in rows:  # the window's box is its middle sample's, where the face is in that frame
        middle = int(round((float(row["start_s"]) + float(row["end_s"])) / 2 * FPS))
        frame = face_frame(WIDTH, HEIGHT, [photo_position(middle)])
        (truth,) = haar(frame).boxes
        box = np.array([float(row[k]) for k in ("box_x", "box_y", "box_w", "box_h")])
        assert np.abs((box[:2] + box[2:] / 2) - (truth[:2] + truth[2:] / 2)).max() < 0.25 * truth[2], row


def test_window_grid_csv_and_summary(default_run):
    output_dir, summary = default_run
    header, rows = read_csv(output_dir)
    assert header == ["track", "start_s", "end_s", "first_frame", "last_frame", "box_x", "box_y", "box_w", "box_h",
                      *DFEW_CLASSES, "top_class"]
    policy = summary["window_policy"]
    assert (policy["num_frames"], policy["sample_step"], policy["stride"]) == (CLIP_LEN, pytest.approx(0.2),
                                                                               pytest.approx(0.4))
    # samples every 0.2 s from the track's first frame (0.4 s): windows start every 0.4 s, the last one
    # aligned with the end of the track's grid (last grid time 3.2 s, the frame at 3.3 s is nearer 3.4 s)
    starts = [float(r["start_s"]) for r in rows]
    assert starts == pytest.approx([0.4, 0.8, 1.2, 1.6, 2.0, 2.4, 2.6])
    assert [float(r["end_s"]) - float(r["start_s"]) for r in rows] == pytest.approx([0.6] * len(rows))
    assert [int(r["last_frame"]) - int(r["first_frame"]) for r in rows] == [6] * len(rows)
    for row in rows:
        probabilities = probabilities_of([row])[0]
        assert probabilities.sum() == pytest.approx(1, abs=1e-5)
        assert row["top_class"] == DFEW_CLASSES[int(probabilities.argmax())]
    (track,) = summary["tracks"]
    mean = probabilities_of(rows).mean(0)
    assert list(track["mean_probabilities"].values()) == pytest.approx(mean, abs=1e-5)
    assert track["dominant_emotion"] == DFEW_CLASSES[int(mean.argmax())]
    tops = [r["top_class"] for r in rows]
    assert track["class_shares"] == {n: pytest.approx(tops.count(n) / len(rows), abs=1e-4) for n in DFEW_CLASSES}
    assert track["windows"] == len(rows) == summary["windows"]
    assert summary["model"]["model"] == "s2d_tiny_patch8_64" and summary["model"]["num_frames"] == CLIP_LEN


def test_plot_annotated_video_and_no_leftovers(default_run):
    output_dir, _ = default_run
    assert sorted(os.listdir(output_dir)) == ["annotated.mp4", "predictions.csv", "summary.json", "timeline.png"]
    assert [p for p in os.listdir(output_dir.parent) if ".partial-" in p] == []
    assert (output_dir / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    capture = cv2.VideoCapture(str(output_dir / "annotated.mp4"))
    frames = [capture.read()[1] for _ in range(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)))]
    assert len(frames) == NUM_FRAMES and frames[10].shape == (HEIGHT, WIDTH, 3)
    # the box is drawn in green on the frames of the track, never on the face-less frames
    green = [int(((f[..., 1] > 150) & (f[..., 0] < 80) & (f[..., 2] < 80)).sum()) for f in frames]
    assert all(green[i] > 50 for i in FACE_FRAMES) and all(green[i] == 0 for i in (0, 1, 2, 3, 36, 37))


def test_consecutive_policy_resamples_to_the_source_rate(checkpoint, tmp_path):
    """A 40 fps face-cropped video, windows of consecutive frames at 20 fps: every other frame, stride 0.1 s."""
    video = tmp_path / "fast.mp4"
    write_cv2_video(video, [face_frame(96, 96, [(0, 0, 0.2)]) for _ in range(40)], 40)
    code, summary = run_predict(video, checkpoint, tmp_path / "out", "--no_detect", "--source_fps", "20",
                                "--no_video")
    assert code == 0 and summary["window_policy"]["sample_step"] == pytest.approx(0.05)
    _, rows = read_csv(tmp_path / "out")
    assert [(int(r["first_frame"]), int(r["last_frame"])) for r in rows] == \
        [(0, 6), (4, 10), (8, 14), (12, 18), (16, 22), (20, 26), (24, 30), (28, 34), (32, 38)]
    # the default policy of a MAFW checkpoint is consecutive frames at 25 fps
    mafw = tiny_checkpoint(tmp_path / "mafw.pth", data_set="MAFW", num_classes=11)
    code, summary = run_predict(video, mafw, tmp_path / "mafw", "--no_detect", "--no_video")
    assert code == 0 and summary["window_policy"]["sample_step"] == pytest.approx(0.04)
    assert read_csv(tmp_path / "mafw")[0][9:-1] == list(MAFW_CLASSES)


@pytest.mark.slow
def test_variable_frame_rate_times_come_from_the_container(checkpoint, tmp_path):
    """2 s at 30 fps without a face, then 2 s at 10 fps with one: the face appears at 2.0 s (frame 60), where
    frame index / average frame rate would say 3.0 s. The annotated video, encoded once as H.264, keeps every
    frame's time."""
    times = [i / 30 for i in range(60)] + [2 + i / 10 for i in range(20)]
    frames = [face_frame(160, 120, [(20, 5, 0.2)] if t >= 2 else []) for t in times]
    video = tmp_path / "vfr.mp4"
    write_timed_video(video, frames, times)
    code, summary = run_predict(video, checkpoint, tmp_path / "out", "--window_seconds", "0.6",
                                "--detector", "haar", "--min_face", "20")
    assert summary["annotated_video"]["codec"] == "libx264"
    with av.open(str(tmp_path / "out" / "annotated.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and (stream.width, stream.height) == (160, 120)
        decoded = [float(frame.time) for frame in container.decode(stream)]
    assert decoded == pytest.approx(times, abs=1e-3)
    assert code == 0
    (track,) = summary["tracks"]
    assert track["first_frame"] == 60 and track["start_s"] == pytest.approx(2.0, abs=1e-3)
    assert track["end_s"] == pytest.approx(3.9, abs=1e-3)
    assert summary["duration_s"] == pytest.approx(3.9, abs=1e-3) and summary["repaired_timestamps"] == 0
    _, rows = read_csv(tmp_path / "out")
    assert float(rows[0]["start_s"]) == pytest.approx(2.0, abs=1e-3)
    assert [float(r["end_s"]) - float(r["start_s"]) for r in rows] == pytest.approx([0.6] * len(rows), abs=1e-3)


def test_hevc_mov_shorter_than_a_window(checkpoint, tmp_path):
    """An HEVC .mov (as iPhones record) of 0.4 s, under the DFEW policy's 3 s windows (4 samples 1 s apart): the
    face's track gets one window, padded with its only sample, as the test protocol pads short clips."""
    times = [i / 10 for i in range(5)]
    write_timed_video(tmp_path / "phone.mov", [face_frame(320, 240, [(40, 0, 0.38)]) for _ in times], times,
                      codec="libx265")
    code, summary = run_predict(tmp_path / "phone.mov", checkpoint, tmp_path / "out")
    assert code == 0 and summary["complete"] and summary["container"]["codec"] == "hevc"
    assert summary["window_policy"]["sample_step"] == 1.0 and summary["tracks"][0]["frames_detected"] == 5
    ((window),) = read_csv(tmp_path / "out")[1]
    assert (window["start_s"], window["end_s"], window["first_frame"], window["last_frame"]) == \
        ("0.0000", "0.0000", "0", "0")
    assert "repeated_frames" not in summary  # padding is not a repetition of the grid


def test_rotated_phone_video_is_analysed_and_annotated_upright(checkpoint, tmp_path):
    """The frames are stored turned a quarter to the left with a 90-degree rotation in the header."""
    upright = [face_frame(120, 160, [(5, 10, 0.25)]) for _ in range(12)]  # a face of about 45 px
    video = tmp_path / "portrait.mp4"
    write_cv2_video(video, [cv2.rotate(f, cv2.ROTATE_90_COUNTERCLOCKWISE) for f in upright], 10)
    assert len(HaarDetector(20)(cv2.rotate(upright[0], cv2.ROTATE_90_COUNTERCLOCKWISE)).boxes) == 0
    set_rotation(video, 90)
    code, summary = run_predict(video, checkpoint, tmp_path / "out", "--window_seconds", "0.6")
    assert code == 0 and summary["container"]["rotation"] == 90
    assert (summary["container"]["width"], summary["container"]["height"]) == (120, 160)
    (track,) = summary["tracks"]
    assert track["frames_detected"] >= 10 and track["last_frame"] == 11  # found upright, nearly every frame
    capture = cv2.VideoCapture(str(tmp_path / "out" / "annotated.mp4"))
    assert capture.read()[1].shape == (160, 120, 3)


@pytest.mark.slow
def test_identity_survives_a_one_second_absence(checkpoint, tmp_path):
    """Two faces move apart; for 1 s (10 frames) no face is visible. They come back where their motion leads and
    keep ids 1 and 2; with a 0.5 s gap limit (the old behaviour) they would be 4 tracks."""
    def placements(i):
        return [(300 - 8 * i, 5, 0.25), (430 + 8 * i, 5, 0.25)]

    frames = [face_frame(800, 160, placements(i) if not 10 <= i < 20 else []) for i in range(30)]
    video = tmp_path / "two.mp4"
    write_cv2_video(video, frames, 10)
    code, summary = run_predict(video, checkpoint, tmp_path / "out", "--window_seconds", "0.6", "--no_video")
    assert code == 0 and [t["track"] for t in summary["tracks"]] == [1, 2]
    for track in summary["tracks"]:
        assert (track["first_frame"], track["last_frame"], track["frames_detected"]) == (0, 29, 20)
    _, rows = read_csv(tmp_path / "out")
    sides = {(row["track"], float(row["box_x"]) < 400) for row in rows}
    assert len(sides) == 2 and {track for track, _ in sides} == {"1", "2"}  # each id stays with its face
    for row in rows:  # and no window spans the absence
        assert float(row["end_s"]) <= 0.9 or float(row["start_s"]) >= 2.0
    code, summary = run_predict(video, checkpoint, tmp_path / "short", "--window_seconds", "0.6", "--no_video",
                                "--max_gap_seconds", "0.5")
    assert [t["track"] for t in summary["tracks"]] == [1, 2, 3, 4]


def test_smooth_max_seconds_and_no_detect(checkpoint, tmp_path):
    video = tmp_path / "synthetic.mp4"
    description = write_video(video, ["happy", "surprise"], 8, 64, 8.0, seed=0)
    assert [s["first_frame"] for s in description["segments"]] == [0, 8]
    flags = ("--no_detect", "--max_seconds", "1.5", "--no_video", "--source_fps", "8", "--stride_seconds", "0.25")
    code, summary = run_predict(video, checkpoint, tmp_path / "raw", *flags)
    assert code == 0 and summary["frames_decoded"] == 12  # 1.5 s at 8 fps
    (track,) = summary["tracks"]
    assert (track["first_frame"], track["last_frame"], track["frames_detected"]) == (0, 11, 12)
    _, rows = read_csv(tmp_path / "raw")
    assert [(int(r["first_frame"]), int(r["last_frame"])) for r in rows] == [(0, 3), (2, 5), (4, 7), (6, 9), (8, 11)]
    assert all((r["box_x"], r["box_y"], r["box_w"], r["box_h"]) == ("0", "0", "64", "64") for r in rows)
    run_predict(video, checkpoint, tmp_path / "smooth", *flags, "--smooth", "3")
    raw, smooth = probabilities_of(rows), probabilities_of(read_csv(tmp_path / "smooth")[1])
    assert smooth[2] == pytest.approx(raw[1:4].mean(0), abs=1e-5)
    assert smooth[0] == pytest.approx(raw[:2].mean(0), abs=1e-5)  # fewer windows at the ends
    assert smooth[-1] == pytest.approx(raw[-2:].mean(0), abs=1e-5)
    assert np.abs(raw - smooth).max() > 1e-4  # the random model does not give identical windows


def test_out_of_gpu_memory_retries_the_batch_in_halves(checkpoint, tmp_path, monkeypatch, capsys):
    """A model that runs out of memory on more than 2 windows (the error injected: no GPU here): the batch is
    retried in halves, said once, and the results equal those of an unconstrained run; out of memory on a single
    window is a one-line error (exit 7) that leaves nothing written."""
    video = tmp_path / "synthetic.mp4"
    write_video(video, ["happy", "surprise"], 6, 64, 8.0, seed=0)
    flags = ("--no_detect", "--no_video", "--source_fps", "8", "--batch_size", "8", "--backend", "torch", "--precision",
             "fp32")  # dynamic int8 quantizes a batch's activations together: results would depend on the batch
    assert run_predict(video, checkpoint, tmp_path / "free", *flags)[0] == 0
    classify, sizes = VideoModel.classify_and_embed, []

    def tight(self, clips, limit=2):
        sizes.append(len(clips))
        if len(clips) > limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return classify(self, clips)

    monkeypatch.setattr(VideoModel, "classify_and_embed", tight)
    capsys.readouterr()
    code, summary = run_predict(video, checkpoint, tmp_path / "tight", *flags)
    assert code == 0 and sizes == [5, 2, 2, 1]  # 5 windows: 5 do not fit, 2 do, and 2 stays the size
    assert capsys.readouterr().err.count("out of GPU memory") == 1
    assert summary["out_of_memory"] == "batches of 8 windows ran out of GPU memory; the video ran in batches of 2"
    np.testing.assert_allclose(probabilities_of(read_csv(tmp_path / "tight")[1]),
                               probabilities_of(read_csv(tmp_path / "free")[1]), atol=1e-5)
    monkeypatch.setattr(VideoModel, "classify_and_embed", lambda self, clips: tight(self, clips, limit=0))
    capsys.readouterr()
    assert run_predict(video, checkpoint, tmp_path / "none", *flags) == (7, None)
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error == (f"error: {video}: out of GPU memory on a single window (cpu): free the GPU for this process, "
                     "or run on the CPU (--device cpu)")
    assert sorted(os.listdir(tmp_path)) == ["free", "synthetic.mp4", "synthetic.mp4.json", "tight"]


@pytest.mark.slow
def test_windows_that_repeat_frames_are_reported(face_video, checkpoint, tmp_path, capsys):
    """A 10 fps video under a 25 fps grid, and --every 2 under a 10 fps grid: each window's samples take some frames
    twice; summary.json counts those windows and says why, stderr once. A grid as dense as the frames: no note."""
    flags = ("--no_detect", "--no_video", "--max_seconds", "2")
    code, summary = run_predict(face_video, checkpoint, tmp_path / "dense", *flags, "--source_fps", "25")
    assert code == 0 and summary["repeated_frames"]["windows"] == summary["windows"] > 0
    assert "a sample every 0.040 s (25.0 per second), more often than the frames analysed (about 10.5 per second)" \
        in summary["repeated_frames"]["why"]
    assert capsys.readouterr().err.count("windows repeat frames") == 1
    _, summary = run_predict(face_video, checkpoint, tmp_path / "every", *flags, "--source_fps", "10", "--every", "2")
    assert summary["repeated_frames"]["windows"] == summary["windows"] and "with --frame_stride 2" in \
        summary["repeated_frames"]["why"]
    capsys.readouterr()
    _, summary = run_predict(face_video, checkpoint, tmp_path / "even", *flags, "--source_fps", "10")
    assert "repeated_frames" not in summary and "windows repeat frames" not in capsys.readouterr().err


@pytest.mark.slow
def test_cpu_int8_agrees_with_fp32_and_is_cpu_only(checkpoint, tmp_path):
    video = tmp_path / "synthetic.mp4"
    write_video(video, ["happy", "surprise"], 6, 64, 8.0, seed=0)
    flags = ("--no_detect", "--max_seconds", "1.0", "--no_video", "--source_fps", "8")
    run_predict(video, checkpoint, tmp_path / "fp32", *flags, "--backend", "torch", "--precision", "fp32")
    run_predict(video, checkpoint, tmp_path / "int8", *flags, "--cpu_int8")
    fp32, int8 = probabilities_of(read_csv(tmp_path / "fp32")[1]), probabilities_of(read_csv(tmp_path / "int8")[1])
    assert fp32.shape == int8.shape == (3, 7)
    assert 0 < np.abs(fp32 - int8).max() < 0.05  # int8 really ran, and stays close to fp32
    code, summary = run_predict(video, checkpoint, tmp_path / "gpu", *flags, "--cpu_int8", "--device", "cuda:0")
    assert code == 2 and summary is None
    code, summary = run_predict(video, checkpoint, tmp_path / "both", *flags, "--cpu_int8", "--precision", "fp32")
    assert code == 2 and summary is None


def test_no_face_gives_empty_valid_outputs(checkpoint, tmp_path, capsys):
    video = tmp_path / "empty.mp4"
    write_cv2_video(video, [np.full((96, 96, 3), 128, np.uint8)] * 6, 5)
    code, summary = run_predict(video, checkpoint, tmp_path / "out", "--no_video")
    assert code == 0 and summary["tracks"] == [] and "no face found" in summary["warning"]
    assert "warning: no face found" in capsys.readouterr().err
    header, rows = read_csv(tmp_path / "out")
    assert rows == [] and header[-1] == "top_class"


def test_checkpoint_without_args_takes_frames_from_its_temporal_embedding(face_video, tmp_path):
    bare = tiny_checkpoint(tmp_path / "bare.pth", num_frames=2, with_args=False)
    code, summary = run_predict(face_video, bare, tmp_path / "out", "--model", "s2d_tiny_patch8_64",
                                "--data_set", "DFEW", "--no_video", "--max_seconds", "1.5", "--no_detect")
    assert code == 0 and summary["model"]["num_frames"] == 2 and summary["window_policy"]["num_frames"] == 2
    code, _ = run_predict(face_video, bare, tmp_path / "wrong", "--model", "s2d_tiny_patch8_64", "--data_set",
                          "DFEW", "--num_frames", "4")
    assert code == 4


def test_python_api(face_video, checkpoint, tmp_path):
    result = analyze_video(str(face_video), str(checkpoint), str(tmp_path / "api"), landmark_weights="random",
                           device="cpu", detector="haar",
                           options=Options(max_seconds=2.0, write_video=False, window_seconds=0.6))
    assert result.summary.tracks[0]["track"] == 1
    assert os.path.isfile(result.predictions_csv) and result.output_dir == str(tmp_path / "api")
    with pytest.raises(UnusableCheckpoint) as error:
        analyze_video(str(face_video), str(checkpoint), str(tmp_path / "x"), landmark_weights="random",
                      device="cpu", data_set="MAFW")
    assert "7-class" in str(error.value) and "11 classes" in str(error.value)


@pytest.fixture
def bad_inputs(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "notes.mp4").write_text("not a video")
    cv2.imwrite(str(tmp_path / "still.jpg"), face_frame(96, 96))
    write_audio_only(tmp_path / "audio.m4a")
    write_cv2_video(tmp_path / "whole.mp4", [face_frame(96, 96)] * 10, 10)
    whole = (tmp_path / "whole.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(whole[:len(whole) // 2])  # OpenCV writes the index at the end
    return tmp_path


@pytest.mark.parametrize("name, message", [
    ("missing.mp4", "video file not found"), ("empty.mp4", "the file is empty"), ("notes.mp4", "cannot be opened"),
    ("still.jpg", "still image"), ("audio.m4a", "cannot be opened"), ("cut.mp4", "cannot be opened")])
def test_unusable_videos_exit_3_with_one_line_and_no_output(bad_inputs, checkpoint, name, message, capsys):
    code, summary = run_predict(bad_inputs / name, checkpoint, bad_inputs / "out")
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 3 and summary is None and not (bad_inputs / "out").exists()
    assert error[-1].startswith(f"error: {bad_inputs / name}: ")
    assert message in error[-1]
    assert [p for p in os.listdir(bad_inputs) if ".partial-" in p] == []


def test_video_broken_mid_stream_keeps_what_was_analysed(checkpoint, tmp_path):
    frames = [face_frame(96, 96, [(0, 0, 0.16)]) for _ in range(40)]
    write_cv2_video(tmp_path / "whole.avi", frames, 10, fourcc="MJPG")
    data = (tmp_path / "whole.avi").read_bytes()
    (tmp_path / "broken.avi").write_bytes(data[:len(data) // 2])
    code, summary = run_predict(tmp_path / "broken.avi", checkpoint, tmp_path / "out", "--no_detect",
                                "--source_fps", "10")
    assert code == 6 and not summary["complete"]
    assert 0 < summary["frames_decoded"] < 40 and "stopped decoding at" in summary["warning"]
    assert summary["tracks"][0]["windows"] >= 1 and read_csv(tmp_path / "out")[1]
    assert sorted(os.listdir(tmp_path / "out")) == ["annotated.mp4", "predictions.csv", "summary.json",
                                                    "timeline.png"]


def test_complete_is_decoding_to_the_stream_end_not_the_announced_frame_count(checkpoint, tmp_path):
    """An edited mp4 announces 40 frames (its sample table) and shows 30 (its edit list ends at 3 s): complete. The
    same frames with the index first, cut at 40% of the bytes: partial, the outputs covering what decoded."""
    frames = [face_frame(96, 96, [(i % 20, 0, 0.16)]) for i in range(40)]
    times = [i / 10 for i in range(40)]
    write_timed_video(tmp_path / "edited.mp4", frames, times)
    show_only(tmp_path / "edited.mp4", 3.0)
    flags = ("--no_detect", "--source_fps", "10", "--no_video")
    code, summary = run_predict(tmp_path / "edited.mp4", checkpoint, tmp_path / "edited", *flags)
    assert (summary["container"]["frame_count"], summary["container"]["duration_s"]) == (40, 3.0)
    assert code == 0 and summary["complete"] and "warning" not in summary
    assert (summary["frames_decoded"], summary["duration_s"]) == (30, pytest.approx(2.9))
    write_timed_video(tmp_path / "stream.mp4", frames, times, keyframe_every=1, index_first=True)
    data = (tmp_path / "stream.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[:len(data) * 4 // 10])
    code, summary = run_predict(tmp_path / "cut.mp4", checkpoint, tmp_path / "cut", *flags)
    assert code == 6 and not summary["complete"] and 0 < summary["frames_decoded"] < 20
    assert summary["warning"].startswith(f"the video stopped decoding at {summary['duration_s']:.2f} s (frame "
                                         f"{summary['frames_decoded']}), before the end of its stream (3.90 s")
    assert read_csv(tmp_path / "cut")[1]


@pytest.mark.slow
def test_zero_frame_rate_header_and_4k_frames(checkpoint, tmp_path):
    frames = [face_frame(96, 96, [(0, 0, 0.16)]) for _ in range(12)]
    write_cv2_video(tmp_path / "rate.avi", frames, 10, fourcc="MJPG")
    data = bytearray((tmp_path / "rate.avi").read_bytes())
    header = data.find(b"strh") + 8
    data[header + 20:header + 28] = bytes(8)  # the stream's frame rate, scale and rate, both 0
    (tmp_path / "rate.avi").write_bytes(bytes(data))
    code, summary = run_predict(tmp_path / "rate.avi", checkpoint, tmp_path / "out", "--no_detect", "--no_video",
                                "--source_fps", "10")
    assert code == 0 and summary["frames_decoded"] == 12 and summary["windows"] >= 1
    times = [float(r["start_s"]) for r in read_csv(tmp_path / "out")[1]]
    assert times == sorted(times) and len(set(times)) == len(times)
    big = [face_frame(3840, 2160, [(1500, 500, 2.0)]) for _ in range(4)]
    write_cv2_video(tmp_path / "4k.mp4", big, 10)
    code, summary = run_predict(tmp_path / "4k.mp4", checkpoint, tmp_path / "4k", "--window_seconds", "0.4",
                                "--min_track_frames", "2")
    assert code == 0 and (summary["container"]["width"], summary["container"]["height"]) == (3840, 2160)
    (track,) = summary["tracks"]
    assert track["frames_detected"] == 4


def test_interrupted_run_leaves_nothing(face_video, checkpoint, tmp_path, monkeypatch):
    from inference import faces

    calls = []

    def interrupt(self, frame):
        calls.append(frame)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return faces.WholeFrame()(frame)

    monkeypatch.setattr(faces.WholeFrame, "__call__", interrupt)
    code, summary = run_predict(face_video, checkpoint, tmp_path / "out", "--no_detect")
    assert code == 130 and summary is None and os.listdir(tmp_path) == []


def peak_traced_memory(video, checkpoint, output_dir):
    tracemalloc.start()
    try:
        code, summary = run_predict(video, checkpoint, output_dir, "--no_detect", "--window_seconds", "0.6",
                                    "--print_freq", "1000")
        return code, summary, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_memory_does_not_grow_with_the_video(checkpoint, tmp_path):
    """Peak memory (numpy and Python allocations) for 10 s and 40 s of video, annotated video included."""
    peaks = {}
    for seconds in (10, 40):
        video = tmp_path / f"{seconds}.mp4"
        frames = [face_frame(64, 64, [(0, 0, 0.1 + 0.002 * (i % 10))]) for i in range(10 * seconds)]
        write_cv2_video(video, frames, 10)
        del frames
        code, summary, peaks[seconds] = peak_traced_memory(video, checkpoint, tmp_path / f"out{seconds}")
        assert code == 0 and summary["windows"] > seconds  # a window every 0.4 s
    assert peaks[40] < 1.2 * peaks[10], peaks


@pytest.mark.slow
def test_command_line_exit_code(tmp_path):
    result = subprocess.run([sys.executable, "predict.py", "--video", str(tmp_path / "none.mp4"), "--checkpoint",
                             "x.pth", "--output_dir", str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 4 and result.stderr.strip().splitlines()[-1].startswith("error: checkpoint file")


@pytest.mark.slow
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
    assert missing.returncode == 1
    assert "no file of cyinen/S2D matches" in missing.stderr and "dfew_fold2" in missing.stderr


def test_rerun_into_the_same_folder_leaves_no_output_of_the_earlier_run(checkpoint, tmp_path):
    video = tmp_path / "synthetic.mp4"
    write_video(video, ["happy", "sad"], 6, 64, 8.0, seed=0)
    flags = ("--no_detect", "--source_fps", "8")
    assert run_predict(video, checkpoint, tmp_path / "out", *flags)[0] == 0
    assert (tmp_path / "out" / "annotated.mp4").exists()
    code, summary = run_predict(video, checkpoint, tmp_path / "out", *flags, "--no_video", "--smooth", "2")
    assert code == 0 and summary["options"]["smooth"] == 2
    assert sorted(os.listdir(tmp_path / "out")) == ["predictions.csv", "summary.json", "timeline.png"]
    assert sorted(os.listdir(tmp_path)) == ["out", "synthetic.mp4", "synthetic.mp4.json"]
