"""Live analysis (predict.py --stream, Analyzer.live, the page's Live tab) with a tiny random-weight checkpoint on
real faces (matplotlib's grace_hopper.jpg moved over a background): bounded latency with a model slowed on purpose
to a third of real time, windows dropped and counted, the last window at the source's end; a truncated file and a
closed socket end cleanly with the rows so far; a stop and --duration; memory that does not grow with the
stream's length; the Live tab in headless Chromium fed by its fake camera."""
import csv
import http.server
import itertools
import json
import os
import shutil
import threading
import time
import tracemalloc
from pathlib import Path

import cv2
import pytest

import predict
from inference import Analyzer, NewestFrame, Options, UnreadableVideo
from inference.live import LiveSource, SourceError
from inference.model import VideoModel
from tests.helpers import served_app
from tests.videos import face_frame, write_cv2_video, write_timed_video
from utils import stop
from webapp.live import LiveSessions

FPS, SECONDS, WIDTH, HEIGHT = 10, 8, 160, 120
WINDOW = ("--window_seconds", "0.9", "--stride_seconds", "0.3")  # 4 samples 0.3 s apart, one every 0.3 s
# the slowed model's test: windows of 4 s (4 samples 1 s apart), one a second, so that a model call of three strides
# (3 s) leaves the tiny model's own time (up to a second or two on two busy cores) inside it
SLOW_WINDOW = ("--window_seconds", "3", "--stride_seconds", "1")
SLOW_WINDOW_LENGTH, SLOW_STRIDE, SLOW_SECONDS = 4, 1, 16
CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.filterwarnings("ignore:LandmarkFeatures")


def moving_face(i, width=WIDTH, height=HEIGHT):
    """Frame `i`: the photograph gliding right and back."""
    x = int(10 + 40 * abs((i % 60) - 30) / 30)
    return face_frame(width, height, [(x, 10, 0.25)])


@pytest.fixture(scope="module")
def face_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("live") / "face.mp4"
    write_cv2_video(path, [moving_face(i) for i in range(FPS * SECONDS)], FPS)
    return path


def run_stream(source, checkpoint, output_dir, *extra, window=WINDOW):
    """predict.py --stream: its exit code, summary and predictions.csv rows."""
    code = predict.run(["--stream", str(source), "--checkpoint", str(checkpoint), "--output_dir", str(output_dir),
                        "--landmark_weights", "random", "--device", "cpu", "--no_detect", *window, *extra])
    summary = Path(output_dir) / "summary.json"
    with open(Path(output_dir) / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return code, json.loads(summary.read_text()), rows


@pytest.fixture
def slow_model(monkeypatch):
    """The model slowed to a third of real time: each call takes three strides, however many windows it gets."""
    classify = VideoModel.classify_and_embed

    def slowly(self, clips):
        start = time.monotonic()
        outputs = classify(self, clips)
        time.sleep(max(3 * SLOW_STRIDE - (time.monotonic() - start), 0))
        return outputs

    monkeypatch.setattr(VideoModel, "classify_and_embed", slowly)


@pytest.mark.slow
def test_slow_model_latency_stays_bounded_and_drops_are_counted(checkpoint, slow_model, tmp_path, capsys):
    video = tmp_path / "long.mp4"
    write_cv2_video(video, [moving_face(i) for i in range(FPS * SLOW_SECONDS)], FPS)
    code, summary, rows = run_stream(video, checkpoint, tmp_path / "out", "--realtime", "--jsonl",
                                     window=SLOW_WINDOW)
    assert code == 0
    readings = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    live = summary["live"]
    assert live["ended"] == "the file ended" and summary["complete"]
    assert len(readings) == len(rows) == live["windows_classified"] == summary["windows"] >= 4
    latencies = [r["latency_s"] for r in readings]
    assert max(latencies) < 2 * SLOW_WINDOW_LENGTH, latencies  # from the first reading to the last: no backlog
    assert live["windows_dropped"] == live["windows_cut"] - live["windows_classified"] >= len(readings)
    assert sum(r["dropped"] for r in readings) == live["windows_dropped"]
    assert readings[-1]["end_s"] >= (FPS * SLOW_SECONDS - 1) / FPS - SLOW_STRIDE  # the last window: the file's end
    assert [float(r["end_s"]) for r in rows] == [r["end_s"] for r in readings]
    assert 0 < live["model_windows_per_s"] <= 1 / (3 * SLOW_STRIDE)
    assert sorted(os.listdir(tmp_path / "out")) == ["predictions.csv", "summary.json", "timeline.png"]


def test_truncated_file_ends_cleanly_with_the_rows_so_far(checkpoint, tmp_path):
    frames = [moving_face(i, 96, 96) for i in range(40)]
    write_cv2_video(tmp_path / "whole.avi", frames, 20, fourcc="MJPG")
    data = (tmp_path / "whole.avi").read_bytes()
    (tmp_path / "broken.avi").write_bytes(data[:len(data) // 2])
    code, summary, rows = run_stream(tmp_path / "broken.avi", checkpoint, tmp_path / "out", "--realtime")
    assert code == 0 and not summary["complete"] and "stopped decoding" in summary["live"]["ended"]
    assert 0 < summary["frames_decoded"] < 40 and len(rows) == summary["windows"] >= 1
    assert summary["warning"].endswith(f"the readings cover the {summary['duration_s']:.2f} s before")


class _HalfAndClose(http.server.BaseHTTPRequestHandler):
    """Sends the first half of the server's `payload` as a stream of unknown length, then closes the socket."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "video/mp2t")
        self.end_headers()
        self.wfile.write(self.server.payload[:len(self.server.payload) // 2])
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


def test_closed_socket_ends_cleanly_with_the_rows_so_far(checkpoint, tmp_path):
    frames = [moving_face(i, 96, 96) for i in range(60)]
    write_timed_video(tmp_path / "stream.ts", frames, [i / 20 for i in range(60)], keyframe_every=5,
                      codec="mpeg4")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HalfAndClose)
    server.payload = (tmp_path / "stream.ts").read_bytes()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/stream.ts"
        code, summary, rows = run_stream(url, checkpoint, tmp_path / "out")
    finally:
        server.shutdown()
    assert code == 0 and summary["live"]["ended"] == "the source ended or broke off" and not summary["complete"]
    assert 0 < summary["frames_decoded"] < 60 and len(rows) == summary["windows"] >= 1
    times = [float(r["end_s"]) for r in rows]
    assert times == sorted(times) and times[-1] < 60 / 20  # the stream's own timestamps


def test_stop_and_duration_keep_what_was_seen(face_video, checkpoint, tmp_path, monkeypatch):
    classify, calls = VideoModel.classify_and_embed, []

    def stop_on_the_third(self, clips):
        calls.append(len(clips))
        if len(calls) == 3:
            stop.request()  # what Ctrl-C and SIGTERM do
        return classify(self, clips)

    monkeypatch.setattr(VideoModel, "classify_and_embed", stop_on_the_third)
    code, summary, rows = run_stream(face_video, checkpoint, tmp_path / "stopped", "--realtime")
    assert code == 130 and summary["live"]["ended"] == "stopped" and summary["complete"]
    assert len(rows) == summary["windows"] == sum(calls[:3])
    assert (tmp_path / "stopped" / "timeline.png").stat().st_size > 0

    monkeypatch.setattr(VideoModel, "classify_and_embed", classify)
    code, summary, rows = run_stream(face_video, checkpoint, tmp_path / "duration", "--realtime", "--duration", "2")
    assert code == 0 and summary["live"]["ended"] == "the duration (2 s) was reached"
    assert 1.5 <= summary["duration_s"] < 2 and max(float(r["end_s"]) for r in rows) < 2


def test_sources_and_flags_are_checked(face_video, checkpoint, tmp_path, capsys):
    assert LiveSource.parse("0") == LiveSource("camera", 0)
    assert LiveSource.parse("/dev/video2") == LiveSource("camera", "/dev/video2")
    assert LiveSource.parse("rtsp://cam.local/live").kind == "network"
    assert LiveSource.parse(str(face_video), realtime=True) == LiveSource("file", str(face_video))
    for text, realtime, message in [(str(face_video), False, "only when played at its own pace (--realtime)"),
                                    ("ftp://host/x.mp4", False, "unknown stream protocol 'ftp'"),
                                    ("no-such.mp4", True, "not a camera")]:
        with pytest.raises(SourceError, match=message.replace("(", r"\(").replace(")", r"\)")):
            LiveSource.parse(text, realtime)
    analyzer = Analyzer(checkpoint, landmark_weights="random", device="cpu", detector="none")
    with pytest.raises(UnreadableVideo, match="cannot be opened"):
        analyzer.live("rtsp://127.0.0.1:9/none")
    with pytest.raises(SystemExit):
        predict.run(["--video", str(face_video), "--checkpoint", str(checkpoint), "--output_dir", str(tmp_path),
                     "--realtime"])
    assert "--realtime: for --stream only" in capsys.readouterr().err


def test_api_readings_of_pushed_frames_with_features(checkpoint):
    """Frames a caller pushes (as the page does), timed by the caller: each reading carries its window's times, the
    class probabilities and the clip feature; without an output folder nothing is written."""
    analyzer = Analyzer(checkpoint, landmark_weights="random", device="cpu", detector="none",
                        options=Options(window_seconds=0.9, stride_seconds=0.3, features=True))
    frames = NewestFrame()
    readings = []

    def push():
        for i in range(40):
            while frames.waiting is not None:  # as fast as tracking takes them, none skipped
                time.sleep(0.001)
            frames.put(moving_face(i, 64, 64), i / 10)
        frames.close("the caller's frames ended")

    threading.Thread(target=push, daemon=True).start()
    for reading in analyzer.live(frames):
        readings.append(reading)
    assert frames.skipped == 0 and len(readings) >= 1
    first = readings[0]
    assert first.start_s == 0.0 and first.end_s == pytest.approx(0.9)
    assert sum(first.probabilities.values()) == pytest.approx(1, abs=1e-4)
    assert first.top_class == max(first.probabilities, key=first.probabilities.get)
    assert len(first.feature) == analyzer.model.feature_dim


def test_page_sessions_one_per_model_started_and_stopped(checkpoint):
    """The Live tab's sessions without a browser: frames count only between Start and Stop, a second visitor of
    the same model is told it is busy, a reading fills the faces table and the timeline, Stop frees the model."""
    analyzer = Analyzer(checkpoint, landmark_weights="random", device="cpu", detector="none",
                        options=Options(window_seconds=0.9, stride_seconds=0.3))
    sessions = LiveSessions(lambda label: analyzer)

    def camera(i):
        return cv2.cvtColor(moving_face(i, 64, 64), cv2.COLOR_BGR2RGB)

    assert sessions.frame(camera(0), "model", "ada") == (None, None, None)  # before Start: nothing changes
    sessions.start("ada")
    assert "starting" in sessions.frame(camera(0), "model", "ada")[0]
    sessions.start("bob")
    assert "another visitor is watching" in sessions.frame(camera(0), "model", "bob")[0]
    deadline, table = time.time() + 60, None
    for i in itertools.count(1):
        status, table, timeline = sessions.frame(camera(i), "model", "ada")
        if table["data"] or time.time() > deadline:
            break
        time.sleep(0.05)
    assert [row[0] for row in table["data"]] == ["#1"] and table["data"][0][1] in analyzer.model.class_names
    assert "windows/s" in status and timeline is not None and timeline.ndim == 3
    assert sessions.stop("ada") == "**Live stopped.**" and sessions.sessions["model"].ended
    assert sessions.frame(camera(0), "model", "ada") == (None, None, None)  # frames under way after Stop
    assert "starting" in sessions.frame(camera(0), "model", "bob")[0]  # the model is free for another visitor
    sessions.stop_all()
    assert sessions.sessions["model"].ended


def pushed_stream_peak_memory(analyzer, seconds, output_dir):
    """Peak traced memory of a live analysis of `seconds` of pushed frames at 10 frames/s (none skipped)."""
    frames = NewestFrame()

    def push():
        for i in range(10 * seconds):
            while frames.waiting is not None:
                time.sleep(0.0005)
            frames.put(moving_face(i, 64, 64), i / 10)
        frames.close("ended")

    tracemalloc.start()
    try:
        threading.Thread(target=push, daemon=True).start()
        readings = sum(1 for _ in analyzer.live(frames, output_dir))
        return readings, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_memory_does_not_grow_with_the_stream(checkpoint, tmp_path):
    analyzer = Analyzer(checkpoint, landmark_weights="random", device="cpu", detector="none",
                        options=Options(window_seconds=0.9, stride_seconds=0.3, print_freq=10 ** 6))
    peaks = {}
    for seconds in (60, 240):
        readings, peaks[seconds] = pushed_stream_peak_memory(analyzer, seconds, tmp_path / str(seconds))
        live = json.loads((tmp_path / str(seconds) / "summary.json").read_text())["live"]
        assert live["frames_tracked"] == 10 * seconds and live["windows_cut"] >= 3 * seconds  # one every 0.3 s
        assert readings == live["windows_classified"] >= 1
    assert peaks[240] < 1.2 * peaks[60], peaks


def write_y4m(path, frames, fps):
    """A YUV4MPEG2 file, the format Chromium's fake camera plays (in a loop)."""
    height, width = frames[0].shape[:2]
    with open(path, "wb") as handle:
        handle.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            handle.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium: apt-get install -y chromium")
def test_live_tab_in_chromium_with_a_fake_camera(checkpoint, tmp_path):
    """app.py with a fine-tuned-style checkpoint (MTCNN finds the face); Chromium's fake camera plays the
    photograph moving over a background. The Live tab shows the face's emotion and the rolling timeline within a
    bounded time, keeps updating them, and Stop ends the live view with no error in the console or the log."""
    from playwright.sync_api import expect, sync_playwright

    camera = tmp_path / "camera.y4m"
    write_y4m(camera, [moving_face(i, 320, 240) for i in range(120)], 10)
    errors, log = [], tmp_path / "app.log"
    with served_app(["--device", "cpu", "--checkpoint", str(checkpoint), "--landmark_weights", "random"], tmp_path,
                    log) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={camera}"])
        page = browser.new_context(permissions=["camera"]).new_page()
        page.on("console", lambda message: message.type == "error" and errors.append(message.text))
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("response", lambda response: response.status >= 400 and errors.append(response.url))
        page.goto(url)
        page.get_by_role("tab", name="Live").click()
        page.click("#live-start")
        faces = page.locator("#live-faces").get_by_role("row")
        expect(faces).to_have_count(2, timeout=90_000)  # the header and face #1
        first = faces.nth(1).get_by_role("gridcell").all_inner_texts()
        assert first[0] == "#1" and first[1] in ("happy", "sad", "neutral", "angry", "surprise", "disgust",
                                                  "fear") and 0 < float(first[2]) <= 1
        timeline = page.locator("#live-timeline img")
        expect(timeline).to_have_count(1)
        first_image = timeline.get_attribute("src")
        expect(page.locator("#live-status")).to_contain_text("windows/s")
        expect(timeline).not_to_have_attribute("src", first_image, timeout=60_000)  # it keeps updating
        page.click("#live-stop")
        expect(page.locator("#live-status")).to_contain_text("Live stopped", timeout=30_000)
        expect(page.locator("#camera button", has_text="Record")).to_have_count(1)  # the camera stopped too
        time.sleep(2)  # frames still under way change nothing
        expect(page.locator("#live-status")).to_contain_text("Live stopped")
        browser.close()
    text = log.read_text()
    assert not errors, errors
    assert "Traceback" not in text and "error" not in text.lower(), text[-3000:]
