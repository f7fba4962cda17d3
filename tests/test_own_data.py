"""One's own labelled videos: scripts/extract_clips.py (on real faces: matplotlib's grace_hopper.jpg in videos the
tests write) proven to feed the model the tensors predict.py feeds it, its report of skipped clips, resume, splits
and bad labels; class names and clip sampling carried from the data set through training into the analysis."""
import csv
import json
import re
import shutil
import socket
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
import torch

import predict
from datasets.description import describe_args
from datasets.frames import load_frames
from datasets.video_dataset import VideoClsDataset
from inference import AnalysisSummary, Analyzer, Options, extraction
from inference.model import VideoModel
from inference.windows import window_policy
from scripts import extract_clips
from scripts.make_synthetic_recordings import write_recordings
from tests.helpers import ENV, ROOT, read_log, run_main
from tests.videos import face_frame, write_cv2_video
from webapp.analysis import VideoAnalyses, find_models, track_table

pytestmark = pytest.mark.filterwarnings("ignore:LandmarkFeatures")
FPS, WIDTH, HEIGHT = 10, 320, 240
FACE_FRAMES = range(2, 14)  # the face is in frames 2..13 of 15
SIZE = 64  # the tiny checkpoint's short_side_size


def photo_position(i):
    t = (i - FACE_FRAMES[0]) / (len(FACE_FRAMES) - 1)
    return int(20 + 100 * t), int(8 * t), (200 + 50 * t) / 600


def extract(*args):
    return extract_clips.main([*args, "--device", "cpu", "--print_freq", "1000"])


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    """face.mp4: a moving face (group A); still.mp4: a short one (group B)."""
    root = tmp_path_factory.mktemp("raw")
    write_cv2_video(root / "face.mp4", [face_frame(WIDTH, HEIGHT, [photo_position(i)] if i in FACE_FRAMES else [])
                                        for i in range(15)], FPS)
    write_cv2_video(root / "still.mp4", [face_frame(160, 120, [(10, 0, 0.25)])] * 5, FPS)
    (root / "labels.csv").write_text("video,label,group\nface.mp4,happy,A\nstill.mp4,sad,B\n")
    return root


def analysis_inputs(checkpoint, video, output_dir, monkeypatch, **options):
    """The tensors predict.py's pipeline feeds the model, window by window, and predictions.csv's rows."""
    inputs = []
    original = VideoModel.classify_and_embed

    def recording(self, clips):
        inputs.extend(self.inputs(clips))
        return original(self, clips)

    monkeypatch.setattr(VideoModel, "classify_and_embed", recording)
    analyzer = Analyzer(str(checkpoint), landmark_weights="random", device="cpu",
                        options=Options(write_video=False, **options))
    result = analyzer.analyze(str(video), str(output_dir))
    monkeypatch.undo()
    return inputs, read_rows(result.predictions_csv)


def training_dataset(root, nb_classes=2):
    """The FRAMES data set as main_finetune.py reads it: the train split holds face.mp4's clip."""
    return VideoClsDataset(str(root / "splits" / "train_set_1.csv"), str(root), "validation", nb_classes,
                           (".png",), clip_len=4, input_size=SIZE, short_side_size=SIZE)


def test_extracted_clips_feed_the_model_what_the_analysis_feeds_it(raw, checkpoint, tmp_path, monkeypatch):
    """MTCNN, eye-level crops: --fps at the video's rate gives every frame of the face track, and each analysis
    window (4 consecutive frames) is, tensor for tensor, the training data set's 4 frames at that place; --frames
    4 --spread gives the 4 frames of an analysis window as long as the track."""
    assert extract("--labels", str(raw / "labels.csv"), "--output", str(tmp_path / "fps"), "--fps", str(FPS),
                   "--short_side_size", str(SIZE), "--test_groups", "B") == 0
    (clip_row, _) = read_rows(tmp_path / "fps" / "clips.csv")
    assert clip_row["clip"] == "clips/face" and int(clip_row["frames"]) == len(FACE_FRAMES)
    assert float(clip_row["seconds"]) == pytest.approx((len(FACE_FRAMES) - 1) / FPS)
    inputs, rows = analysis_inputs(checkpoint, raw / "face.mp4", tmp_path / "analysis", monkeypatch, source_fps=FPS)
    dataset = training_dataset(tmp_path / "fps")
    (clip,) = dataset.clips
    assert len(inputs) == len(rows) >= 5
    for window, row in zip(inputs, rows):
        first = int(row["first_frame"]) - FACE_FRAMES[0]
        expected = dataset.transform(load_frames(clip, range(first, first + 4)))
        assert torch.equal(window, expected), row

    assert extract("--labels", str(raw / "labels.csv"), "--output", str(tmp_path / "spread"), "--frames", "4",
                   "--spread", "--short_side_size", str(SIZE), "--test_groups", "B") == 0
    seconds = float(read_rows(tmp_path / "spread" / "clips.csv")[0]["seconds"])
    inputs, rows = analysis_inputs(checkpoint, raw / "face.mp4", tmp_path / "analysis_spread", monkeypatch,
                                   window_seconds=seconds)
    assert (int(rows[0]["first_frame"]), int(rows[0]["last_frame"])) == (FACE_FRAMES[0], FACE_FRAMES[-1])
    assert torch.equal(inputs[0], training_dataset(tmp_path / "spread")[0][0])


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """Clips of good, face-less, unreadable and missing videos, two people in one, a segment past the end."""
    root = tmp_path_factory.mktemp("mixed")
    write_cv2_video(root / "one.mp4", [face_frame(160, 120, [(10, 0, 0.18)])] * 8, FPS)
    write_cv2_video(root / "two.mp4", [face_frame(330, 130, [(20, 5, 0.22), (200, 10, 0.16)])] * 6, FPS)
    write_cv2_video(root / "blank.mp4", [np.full((120, 160, 3), 90, np.uint8)] * 4, FPS)
    (root / "notes.mp4").write_text("not a video")
    (root / "labels.csv").write_text(
        "video,label,start_s,end_s,person\n"
        "one.mp4,sad,0,0.4,P1\none.mp4,happy,0.4,0.8,P1\ntwo.mp4,happy,,,P2\nblank.mp4,sad,,,P3\n"
        "notes.mp4,happy,,,P3\nmissing.mp4,sad,,,P4\none.mp4,happy,5,9,P1\n")
    return root


def mixed_run(root, output, *extra):
    return extract("--labels", str(root / "labels.csv"), "--output", str(output), "--fps", "5", "--min_face", "20",
                   "--short_side_size", "32", "--group_column", "person", "--folds", "2", *extra)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:The least populated class")  # two folds of 3 clips
def test_report_splits_and_resume(mixed, tmp_path, capsys):
    output = tmp_path / "data"
    assert mixed_run(mixed, output) == 0
    report = {int(r["line"]): r for r in read_rows(output / "report.csv")}
    assert sorted(report) == [4, 5, 6, 7, 8]
    assert report[4]["status"] == "kept one face" and "several people (track 1: 6 detections, mean face" in \
        report[4]["reason"] and "kept track 1, the face with the most detections (then the largest)" in \
        report[4]["reason"]
    widths = [float(w) for w in re.findall(r"mean face (\d+) px wide", report[4]["reason"])]
    assert widths[0] > widths[1]  # equal detections: the larger face is kept
    assert (report[5]["status"], report[5]["reason"]) == ("skipped", "no face found in its 4 frames")
    assert report[6]["status"] == "failed" and "notes.mp4: cannot be opened as a video" in report[6]["reason"]
    assert report[7]["status"] == "failed" and "video file not found" in report[7]["reason"]
    assert report[8]["status"] == "skipped" and "segment outside the video" in report[8]["reason"]
    clips = read_rows(output / "clips.csv")
    assert [c["clip"] for c in clips] == ["clips/one_0-400ms", "clips/one_400-800ms", "clips/two"]
    assert [int(c["frames"]) for c in clips] == [2, 2, 3]  # 5 per second, from the face's first frame
    assert sorted(p.name for p in (output / "clips" / "two").iterdir()) == [f"{k:05d}.png" for k in range(1, 4)]
    assert (output / "classes.txt").read_text() == "happy\nsad\n"
    description = json.loads((output / "dataset.json").read_text())
    assert description["sampling"] == {"mode": "fps", "fps": 5.0} and description["split_by"] == "group"
    group_of = {c["clip"]: c["group"] for c in clips}
    tested = []
    for k in (1, 2):  # two folds, groups never on both sides
        train, test = (read_rows(output / "splits" / f"{s}_set_{k}.csv") for s in ("train", "test"))
        assert not {group_of[r["video_name"]] for r in train} & {group_of[r["video_name"]] for r in test}
        tested += [r["video_name"] for r in test]
    assert sorted(tested) == sorted(group_of)
    assert "3 of 7 clips extracted" in capsys.readouterr().err

    shutil.copy(mixed / "one.mp4", mixed / "missing.mp4")  # the missing video appears: failed clips are retried
    try:
        assert mixed_run(mixed, output) == 0
    finally:
        (mixed / "missing.mp4").unlink()
    err = capsys.readouterr().err
    assert "2 clips to extract" in err and "4 of 7 clips extracted" in err
    assert mixed_run(mixed, output, "--margin", "0.1") == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(
        f"error: {output} holds clips extracted with other settings (margin differ")


def test_shares_of_two_processes_split_the_videos(mixed, monkeypatch):
    clips = extraction.read_labels(str(mixed / "labels.csv"), str(mixed), "person")
    by_video = {}
    for clip in clips:
        by_video.setdefault(clip.video, []).append(clip)
    parts = []
    for rank in (0, 1):
        monkeypatch.setattr(extraction, "get_rank", lambda rank=rank: rank)
        monkeypatch.setattr(extraction, "get_world_size", lambda: 2)
        parts.append(extraction.my_share(by_video))
    assert parts[0] and parts[1] and not set(parts[0]) & set(parts[1])
    assert sorted(parts[0] + parts[1]) == sorted(by_video)
    assert str(mixed / "missing.mp4") in parts[0]  # a missing file: rank 0 reports it


@pytest.mark.slow
def test_memory_does_not_grow_with_the_clips_or_the_video_length(tmp_path):
    """Peak traced memory (numpy and Python) of extractions of 8 and 32 clips, and of a segment near the end of a
    100- and a 1,000-frame video."""
    rng = np.random.default_rng(0)

    def frames(n):
        return [rng.integers(0, 256, (48, 48, 3), dtype=np.uint8) for _ in range(n)]

    def peak(folder, labels):
        (folder / "labels.csv").write_text(labels)
        tracemalloc.start()
        try:
            assert extract("--labels", str(folder / "labels.csv"), "--output", str(folder / "out"), "--fps", "10",
                           "--no_detect", "--short_side_size", "32", "--folds", "2") == 0
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    peaks = {}
    for n in (8, 32):
        (tmp_path / f"clips{n}").mkdir()
        for k in range(n):
            write_cv2_video(tmp_path / f"clips{n}" / f"{k}.mp4", frames(6), FPS)
        peaks[n] = peak(tmp_path / f"clips{n}", "video,label\n" + "".join(f"{k}.mp4,{'ab'[k % 2]}\n" for k in range(n)))
    for n in (100, 1000):
        (tmp_path / f"long{n}").mkdir()
        write_cv2_video(tmp_path / f"long{n}" / "a.mp4", frames(n), FPS)
        write_cv2_video(tmp_path / f"long{n}" / "b.mp4", frames(20), FPS)
        peaks[f"{n} frames"] = peak(tmp_path / f"long{n}", f"video,label,start_s,end_s\na.mp4,a,{n / FPS - 2},"
                                    f"{n / FPS - 1}\na.mp4,b,1,2\nb.mp4,a,0,1\nb.mp4,b,1,2\n")
    assert peaks[32] < 1.2 * peaks[8] and peaks["1000 frames"] < 1.2 * peaks["100 frames"], peaks


@pytest.mark.parametrize("text, line, message", [
    ("video,label,mood\na.mp4,happy,x\n", 1, "expected the columns video, label"),
    ("video,label,start_s\na.mp4,happy,1\n", 1, "give both start_s and end_s"),
    ("video,label\na.mp4,happy\nb.mp4,\n", 3, "must not be empty"),
    ("video,label,start_s,end_s\na.mp4,happy,one,2\n", 2, "start_s 'one' is not a number"),
    ("video,label,start_s,end_s\na.mp4,happy,3,2\n", 2, "end_s 2 must be after start_s 3"),
    ("video,label,start_s,end_s\na.mp4,happy,1,2\na.mp4,sad,1,2\n", 3, "the same clip (video and segment) as line 2"),
    ("video,label\na.mp4,happy,extra\n", 2, "3 fields for the 2 columns"),
    ("video,label,group\na.mp4,happy,\n", 2, "empty group"),
])
def test_bad_labels_csv_is_a_one_line_error_naming_the_line(tmp_path, capsys, text, line, message):
    labels = tmp_path / "labels.csv"
    labels.write_text(text)
    assert extract("--labels", str(labels), "--output", str(tmp_path / "out"), "--fps", "5") == 2
    (error,) = capsys.readouterr().err.strip().splitlines()
    assert error.startswith(f"error: {labels}:{line}: ") and message in error
    assert not (tmp_path / "out").exists()


def test_classes_and_groups_that_cannot_work_stop_before_any_work(tmp_path, capsys):
    labels = tmp_path / "labels.csv"
    labels.write_text("video,label,group\na.mp4,happy,A\nb.mp4,calm,B\n")
    assert extract("--labels", str(labels), "--output", str(tmp_path / "out"), "--fps", "5", "--class_names",
                   "happy,sad") == 2
    assert capsys.readouterr().err.strip() == f"error: {labels}:3: label 'calm' is not one of --class_names happy,sad"
    assert extract("--labels", str(labels), "--output", str(tmp_path / "out"), "--fps", "5") == 2
    assert capsys.readouterr().err.strip() == ("error: --folds 5 needs at least 5 groups; the labelled clips have 2 "
                                               "(A, B): pass fewer --folds or --test_groups")
    assert extract("--labels", str(labels), "--output", str(tmp_path / "out"), "--fps", "5", "--test_groups",
                   "C") == 2
    assert capsys.readouterr().err.strip() == "error: --test_groups: no labelled clip of group(s) C (groups: A, B)"
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Recordings of 2 drawn people -> clips (4 frames spread over each segment; P2 held out) -> 1 epoch."""
    root = tmp_path_factory.mktemp("own")
    labels = write_recordings(root / "raw", people=2, recordings=1, repeats=1, frames_per_expression=8, size=64,
                              fps=8.0, seed=0)
    assert extract("--labels", str(labels), "--output", str(root / "data"), "--frames", "4", "--spread",
                   "--short_side_size", "64", "--no_detect", "--group_column", "person", "--test_groups", "P2") == 0
    run_main(["--model", "s2d_tiny_patch8_64", "--data_set", "FRAMES", "--data_path", str(root / "data"),
              "--train_label_path", str(root / "data" / "splits" / "train_set_1.csv"),
              "--test_label_path", str(root / "data" / "splits" / "test_set_1.csv"), "--input_size", "64",
              "--short_side_size", "64", "--num_frames", "4", "--batch_size", "2", "--num_sample", "1", "--epochs",
              "1", "--warmup_epochs", "0", "--test_num_segment", "1", "--test_num_crop", "1", "--num_workers", "0",
              "--device", "cpu", "--landmark_weights", "random", "--ban_mixup", "--output_dir", str(root / "run")])
    return root


@pytest.mark.slow
def test_class_names_and_sampling_travel_from_the_data_set_to_the_analysis(trained, tmp_path):
    names = ["anger", "astonishment", "joy", "sorrow"]
    assert (trained / "data" / "classes.txt").read_text().split() == names
    median = json.loads((trained / "data" / "dataset.json").read_text())["median_clip_seconds"]
    assert median == pytest.approx(7 / 8)  # 8 frames at 8 fps: the first to the last
    stored = torch.load(trained / "run" / "checkpoint.pth", weights_only=False)["args"]
    assert stored.class_names == names and stored.nb_classes == 4
    assert stored.clip_sampling == {"mode": "spread", "window_seconds": pytest.approx(median)}
    assert "anger" in (trained / "run" / "confusion_matrix_last.txt").read_text()
    assert read_log(trained / "run")[-1]["final_last_num_clips"] == 4
    video = trained / "raw" / "videos" / "P2_01.mp4"
    code = predict.run(["--video", str(video), "--checkpoint", str(trained / "run" / "checkpoint.pth"),
                        "--output_dir", str(tmp_path / "out"), "--landmark_weights", "random", "--device", "cpu",
                        "--no_detect", "--no_video"])
    assert code == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["class_names"] == names and summary["tracks"][0]["dominant_emotion"] in names
    assert summary["window_policy"]["sample_step"] == pytest.approx(median / 3)
    assert summary["window_policy"]["source"].startswith("its training clips: frames spread over 0.875 s")
    with open(tmp_path / "out" / "predictions.csv") as handle:
        assert handle.readline().strip().split(",")[9:] == [*names, "top_class"]
    analyzer = Analyzer(str(trained / "run" / "checkpoint.pth"), landmark_weights="random", device="cpu")
    assert analyzer.model.class_names == names
    models = find_models([str(trained / "run" / "checkpoint.pth")], str(tmp_path))
    page = VideoAnalyses(models, str(tmp_path), "random", "cpu")  # the web page's models and table
    assert page.analyzer(models[0].label).model.class_names == names
    assert track_table(AnalysisSummary(**summary))["headers"][5:] == [f"{n} %" for n in names]
    # a data set named on the command line wins over the stored names
    assert Analyzer(str(trained / "run" / "checkpoint.pth"), landmark_weights="random", device="cpu",
                    data_set="FRAMES").model.class_names == ["0", "1", "2", "3"]


@pytest.mark.slow
def test_torchrun_two_processes_extract_what_one_does(trained, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
                             "127.0.0.1", "--master_port", str(port), "scripts/extract_clips.py", "--labels",
                             str(trained / "raw" / "labels.csv"), "--output", str(tmp_path / "two"), "--frames", "4",
                             "--spread", "--short_side_size", "64", "--no_detect", "--group_column", "person",
                             "--test_groups", "P2", "--device", "cpu"],
                            cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "[rank 0]" in result.stderr and "[rank 1]" in result.stderr
    one = trained / "data"
    for name in ("clips.csv", "classes.txt", "splits/train_set_1.csv", "splits/test_set_1.csv"):
        assert (tmp_path / "two" / name).read_bytes() == (one / name).read_bytes(), name
    frames = sorted(p.relative_to(one) for p in (one / "clips").rglob("*.png"))
    assert frames == sorted(p.relative_to(tmp_path / "two") for p in (tmp_path / "two" / "clips").rglob("*.png"))
    assert all((one / f).read_bytes() == (tmp_path / "two" / f).read_bytes() for f in frames) and len(frames) == 32


def description_args(tmp_path, **overrides):
    from argparse import Namespace
    return Namespace(**{**dict(data_set="FRAMES", data_path=str(tmp_path), class_names=None, nb_classes=None,
                               num_frames=16, sampling_rate=1), **overrides})


def test_class_names_and_sampling_of_the_training_arguments(tmp_path):
    (tmp_path / "classes.txt").write_text("calm\ntense\n\n")
    (tmp_path / "dataset.json").write_text(json.dumps(dict(sampling=dict(mode="fps", fps=30.0),
                                                           median_clip_seconds=2.0)))
    args = description_args(tmp_path, sampling_rate=2)
    describe_args(args, names_fixed=False)
    assert (args.class_names, args.nb_classes, args.clip_sampling) == (["calm", "tense"], 2, {"mode": "fps",
                                                                                               "fps": 15.0})
    policy = window_policy("FRAMES", 16, clip_sampling=args.clip_sampling)
    assert policy.sample_step == pytest.approx(1 / 15) and "consecutive frames at 15 fps" in policy.source
    args = description_args(tmp_path, class_names="a,b,c")
    describe_args(args, names_fixed=False)
    assert args.class_names == ["a", "b", "c"] and args.nb_classes == 3
    with pytest.raises(ValueError, match=r"--nb_classes 3, but 2 class names are given \(calm, tense\)"):
        describe_args(description_args(tmp_path, nb_classes=3), names_fixed=False)
    with pytest.raises(ValueError, match="--class_names is for data sets without fixed class names"):
        describe_args(description_args(tmp_path, data_set="DFEW", class_names="a,b"), names_fixed=True)
    (tmp_path / "classes.txt").write_text("calm\ntense\ncalm\n")
    with pytest.raises(ValueError, match=rf"{tmp_path / 'classes.txt'}:3: class 'calm' is named again"):
        describe_args(description_args(tmp_path), names_fixed=False)
