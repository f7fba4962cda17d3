"""app.py, the web page over the video pipeline: its handler on a drawn-face video with a tiny random-weight
demo-style checkpoint (the table against predictions.csv, the H.264 video, progress), its messages for bad
input, the models it offers, the clean-up that bounds its disk; and the page itself in headless Chromium
(Debian's chromium, driven by Playwright): upload, analysis, timeline, table, a playing video, downloads, a
non-video file, downloads of the newest analysis after older ones were deleted."""
import contextvars
import csv
import json
import os
import shutil
from argparse import Namespace
from collections import Counter
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

import app
from datasets.classes import DFEW_CLASSES
from datasets.description import describe_args
from datasets.synthetic import write_synthetic_dfew
from scripts.make_synthetic_video import write_video
from tests.helpers import served_app, tiny_checkpoint
from tests.videos import write_cv2_video
from webapp.analysis import Model, VideoAnalyses, find_models

EXPRESSIONS, FRAMES_PER_EXPRESSION, SIZE, FPS = ["happy", "sad", "angry"], 16, 64, 8.0
NUM_FRAMES = len(EXPRESSIONS) * FRAMES_PER_EXPRESSION
CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.filterwarnings("ignore:LandmarkFeatures")


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    """A folder laid out as scripts/demo.sh leaves it: output/demo/{checkpoint.pth,synthetic.mp4}, the checkpoint
    storing what training on the synthetic clips stores (their dataset.json: windows, whole frames as faces, the
    note) and the random landmark network."""
    root = tmp_path_factory.mktemp("app")
    (root / "output" / "demo").mkdir(parents=True)
    write_synthetic_dfew(root / "data", clips_per_class=5, num_frames=4, size=16)
    args = Namespace(data_set="DFEW", data_path=str(root / "data" / "clips"), class_names=None, nb_classes=None,
                     num_frames=4, sampling_rate=1)
    describe_args(args, names_fixed=True)
    tiny_checkpoint(root / app.DEMO_CHECKPOINT, landmark_weights="random", clip_sampling=args.clip_sampling,
                    clip_detector=args.clip_detector, data_note=args.data_note)
    write_video(root / app.DEMO_SAMPLE_VIDEO, EXPRESSIONS, FRAMES_PER_EXPRESSION, SIZE, FPS, seed=0)
    return root


@pytest.fixture
def not_a_video(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("a text file renamed .mp4\n")
    return path


def demo_analyses(demo_dir, workdir, **limits):
    models = find_models([str(demo_dir / app.DEMO_CHECKPOINT)], str(demo_dir / "ckpts"))
    return VideoAnalyses(models, str(workdir), "ckpts/mobilefacenet_model_best.pth.tar", "cpu", **limits), \
        models[0].label


def test_handler_returns_the_tracks_table_video_and_downloads(demo_dir, tmp_path):
    analyses, label = demo_analyses(demo_dir, tmp_path)
    request = contextvars.ContextVar("request")
    request.set("this request")  # gr.Progress finds its request in context variables

    calls = []

    class Progress:
        def __bool__(self):  # as gr.Progress, whose len() counts the iterables it tracks
            return False

        def __call__(self, value, **kwargs):
            calls.append((value, request.get(None)))

    status, timeline, table, video, downloads = analyses.analyze(str(demo_dir / app.DEMO_SAMPLE_VIDEO), label,
                                                                 Progress())
    assert "synthetic.mp4**: 1 face track(s)" in status and "s2d_tiny_patch8_64, classes happy, sad, neutral," in status
    # what the checkpoint stores: windows of one expression every 0.5 s, the whole frame, the random network
    assert "windows of 4 crops 0.625 s apart every 0.50 s." in status
    description = analyses.describe(label)
    assert "the whole frame is the face, the random landmark network;" in description
    assert "**Note:** trained on synthetic drawn faces (datasets/synthetic.py): its predictions on real faces mean " \
           "nothing." in description
    assert [Path(p).name for p in downloads] == ["predictions.csv", "summary.json"]
    ran = json.loads(Path(downloads[1]).read_text())["backend"]
    assert f"Ran on {ran['backend']} {ran['precision']}: {ran['reason']}." in status
    with open(downloads[0], newline="") as handle:
        rows = list(csv.DictReader(handle))
    probabilities = np.array([[float(r[n]) for n in DFEW_CLASSES] for r in rows])
    tops = Counter(r["top_class"] for r in rows)
    assert table["headers"] == ["track", "start (s)", "end (s)", "windows", "dominant emotion",
                                *(f"{n} %" for n in DFEW_CLASSES)]
    ((track, start, end, windows, dominant, *shares),) = table["data"]
    assert (track, start, windows) == (1, 0.0, len(rows)) and end == pytest.approx((NUM_FRAMES - 1) / FPS)
    assert dominant == DFEW_CLASSES[int(np.argmax(probabilities.mean(axis=0)))]
    assert shares == pytest.approx([100 * tops[n] / len(rows) for n in DFEW_CLASSES], abs=0.05)
    assert cv2.imread(timeline).shape[2] == 3
    assert Path(video).name == "annotated.mp4"  # the pipeline's own file, not a re-encoded copy
    with av.open(video) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.width, stream.height) == ("h264", SIZE, SIZE)
        assert sum(1 for _ in container.decode(stream)) == NUM_FRAMES
    values = [value for value, _ in calls]
    assert values[0] == 0.0  # loading the model
    assert values.count((NUM_FRAMES, NUM_FRAMES)) == 2  # frames done, of all: analysis, then annotated video
    assert {context for _, context in calls} == {"this request"}  # also from the pipeline's worker thread
    assert Path(video).is_relative_to(tmp_path)


def test_handler_messages_for_bad_input(demo_dir, tmp_path, not_a_video):
    analyses, label = demo_analyses(demo_dir, tmp_path, max_video_seconds=5)
    assert analyses.analyze(None, label) == ("Upload a video first.", None, None, None, None)
    status, *outputs = analyses.analyze(str(not_a_video), label)
    assert status == ("**Cannot analyse notes.mp4:** cannot be opened as a video (not a video file, an unknown "
                      "format, no video stream, or a damaged container)")
    assert outputs == [None] * 4
    status, *outputs = analyses.analyze(str(demo_dir / app.DEMO_SAMPLE_VIDEO), label)
    assert status == ("**Cannot analyse synthetic.mp4:** the video lasts 6 s; this page analyses videos of at "
                      "most 5 s (app.py --max_video_seconds)") and outputs == [None] * 4


def test_checkpoint_storing_no_clip_settings_runs_mtcnn_and_says_when_no_face_is_found(tmp_path):
    video = tmp_path / "grey wall.mp4"
    write_cv2_video(video, [np.full((96, 128, 3), 120, np.uint8)] * 10, 10)
    model = Model("tiny.pth", str(tiny_checkpoint(tmp_path / "tiny.pth")))
    analyses = VideoAnalyses([model], str(tmp_path), "random", "cpu")
    status, timeline, table, _, _ = analyses.analyze(str(video), "tiny.pth")
    assert status.startswith("**Warning:** no face found in grey wall.mp4.")
    assert analyses.analyzer("tiny.pth").detector_name == "mtcnn" and table["data"] == []
    assert "windows of 4 crops 1.000 s apart every 2.00 s" in status  # DFEW's policy
    description = analyses.describe("tiny.pth")
    assert "faces found by MTCNN, the random landmark network;" in description and "Note" not in description
    assert os.path.isfile(timeline)


@pytest.mark.slow
def test_six_analyses_leave_the_last_three(demo_dir, tmp_path):
    """With keep_analyses 3, six analyses in a row (one of a file that is not a video) leave three analysis
    folders; the uploads of the deleted ones are deleted (never a file outside the upload folder), the newest
    downloads are there, and an upload deleted meanwhile gets a message."""
    uploads = tmp_path / "work"
    models = find_models([str(demo_dir / app.DEMO_CHECKPOINT)], str(demo_dir / "ckpts"))
    analyses = VideoAnalyses(models, str(uploads), "random", "cpu", keep_analyses=3, upload_dir=str(uploads))
    sent = []
    for number in range(6):
        upload = uploads / f"upload{number}" / ("notes.mp4" if number == 4 else "synthetic.mp4")
        upload.parent.mkdir(parents=True)
        if number == 4:
            upload.write_text("not a video")
        else:
            shutil.copy(demo_dir / app.DEMO_SAMPLE_VIDEO, upload)
        sent.append(upload)
        status, timeline, _, video, downloads = analyses.analyze(str(upload), models[0].label)
        assert len(list((uploads / "analyses").iterdir())) <= 3
    assert [p.exists() for p in sent] == [False, False, False, True, True, True]
    assert "1 face track(s)" in status and all(os.path.getsize(p) > 0 for p in [timeline, video, *downloads])
    assert predictions_header(downloads[0]).startswith("track,start_s,end_s")
    analyses.analyze(str(demo_dir / app.DEMO_SAMPLE_VIDEO), models[0].label)
    analyses.analyze(str(demo_dir / app.DEMO_SAMPLE_VIDEO), models[0].label)
    assert (demo_dir / app.DEMO_SAMPLE_VIDEO).exists() and not sent[3].exists()
    status, *outputs = analyses.analyze(str(sent[0]), models[0].label)
    assert status.startswith("**Cannot analyse synthetic.mp4:** the upload was removed") and outputs == [None] * 4


def predictions_header(path):
    return Path(path).read_text().splitlines()[0]


def test_models_offered_default_first(demo_dir, tmp_path):
    demo = str(demo_dir / app.DEMO_CHECKPOINT)
    (tmp_path / "ckpts" / "dfew").mkdir(parents=True)
    for name in ("dfew/fold1.pth", "a.pth", "weights.pth.tar"):
        (tmp_path / "ckpts" / name).touch()
    given = str(tmp_path / "ckpts" / "a.pth")
    models = find_models([given, demo], str(tmp_path / "ckpts"))
    assert [Path(m.checkpoint).name for m in models] == ["a.pth", "checkpoint.pth", "fold1.pth"]
    assert [m.checkpoint for m in find_models([demo], str(tmp_path / "none"))] == [demo]
    analyses = VideoAnalyses(models, str(tmp_path), "random", "cpu")
    assert analyses.describe(models[0].label).startswith(f"**Model:** `{models[0].label}` cannot be loaded: ")


def test_no_model_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        app.main([])
    assert stop.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].startswith("app.py: error: no model to run: run `bash "
                                                               "scripts/demo.sh`")


@pytest.fixture
def served_demo(demo_dir, tmp_path):
    """app.py serving the demo folder's model; yields its URL. The temporary folder it writes in must be gone once
    it is stopped."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    with served_app(["--device", "cpu", "--keep_analyses", "1"], demo_dir, tmp_path / "app.log",
                    env=dict(TMPDIR=str(temp))) as url:
        yield url
    assert not list(temp.glob("s2d-app-*"))


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium: apt-get install -y chromium")
def test_page_in_chromium(served_demo, demo_dir, not_a_video):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(served_demo)
        expect(page.locator("#model")).to_contain_text("trained on synthetic drawn faces")
        page.locator("#video input[type=file]").set_input_files(demo_dir / app.DEMO_SAMPLE_VIDEO)
        expect(page.locator("#video td[aria-label='synthetic.mp4']")).to_have_count(1)
        page.click("#analyse")
        expect(page.locator("#status")).to_contain_text("1 face track(s)", timeout=40_000)
        assert page.locator("#timeline img").evaluate("img => img.complete && img.naturalWidth") == 1000
        link = page.locator("#downloads a[download='predictions.csv']").get_attribute("href")
        predictions = page.request.get(link).text().splitlines()
        assert predictions[0].startswith("track,start_s,end_s")
        rows = page.locator("#tracks").get_by_role("row")
        expect(rows).to_have_count(2)
        assert rows.first.get_by_role("columnheader").all_inner_texts()[4:6] == ["dominant emotion", "happy %"]
        cells = rows.nth(1).get_by_role("gridcell").all_inner_texts()
        assert cells[:4] == ["1", "0", str((NUM_FRAMES - 1) / FPS), str(len(predictions) - 1)]
        assert cells[4] in DFEW_CLASSES and sum(map(float, cells[5:])) == pytest.approx(100, abs=0.2)
        player = page.locator("#annotated video")
        page.wait_for_function("v => v.readyState >= 1", arg=player.element_handle(), timeout=10_000)
        assert player.evaluate("v => [v.videoWidth, v.duration]") == [SIZE, pytest.approx(NUM_FRAMES / FPS)]

        page.locator("#video button[aria-label='Clear']").click()
        page.locator("#video input[type=file]").set_input_files(not_a_video)
        expect(page.locator("#video td[aria-label='notes.mp4']")).to_have_count(1)
        page.click("#analyse")
        expect(page.locator("#status")).to_contain_text("Cannot analyse notes.mp4: cannot be opened as a video")
        expect(page.locator("#timeline img")).to_have_count(0)

        page.locator("#video button[aria-label='Clear']").click()
        page.get_by_role("button", name="Use the sample video").click()
        expect(page.locator("#video td[aria-label='synthetic.mp4']")).to_have_count(1)
        page.click("#analyse")  # the third analysis: with --keep_analyses 1 only its files are kept
        expect(page.locator("#status")).to_contain_text("1 face track(s)", timeout=40_000)
        newest = page.locator("#downloads a[download='predictions.csv']").get_attribute("href")
        assert newest != link and page.request.get(newest).text().splitlines() == predictions
        assert "/analyses/" in newest  # served from the analysis folder itself, not from a copy
        assert page.request.get(link).status in (403, 404)  # the first analysis's files were deleted
        browser.close()
